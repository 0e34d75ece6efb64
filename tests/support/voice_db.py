"""The voice engine's side of the store, driven from a test: ``voice.store`` on the server's own database.

The voice engine (SIP and media) reports a call's progress through ``restcomm.voice.store`` in its
own transactions; these helpers do exactly that from the test process, against the database of a
running server, so the server's API and its status-callback outbox see what an engine would write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.config import load_settings
from restcomm.store import db
from tests.support.server import Server


def run_in_db(server: Server, job: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
    """Run ``job`` in one write transaction on ``server``'s database and return its result."""
    env = {"RESTCOMM_DATA_DIR": str(server.data_dir)}
    if "database_url" in server.extra:
        env["RESTCOMM_DATABASE_URL"] = server.extra["database_url"]
    settings = load_settings(env=env)

    async def run() -> Any:
        engine = db.create_engine(settings)
        try:
            async with engine.connect() as conn:
                await conn.execution_options(sqlite_immediate=True)
                async with conn.begin():
                    return await job(conn)
        finally:
            await engine.dispose()

    return asyncio.run(run())
