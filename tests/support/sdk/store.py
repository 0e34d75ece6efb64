"""Write notifications straight into a test server's database, the way the platform does.

Notifications have no create operation in the API: the platform writes them with
``restcomm.notify.write_notification``. Tests call the same function against the server's own
database (SQLite file or PostgreSQL), then read the results over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from restcomm.config import load_settings
from restcomm.notify import write_notification
from restcomm.store.db import create_engine


def write_notifications(env: Mapping[str, str], *specs: Mapping[str, Any]) -> list[str]:
    """Write one notification per spec (keyword arguments of write_notification, plus an optional
    ``at`` datetime that becomes the clock) in one transaction; return their SIDs in order."""

    async def run() -> list[str]:
        engine = create_engine(load_settings(env=dict(env)))
        try:
            sids: list[str] = []
            async with engine.begin() as conn:
                for spec in specs:
                    kw = dict(spec)
                    at: datetime | None = kw.pop("at", None)
                    if at is not None:
                        kw["clock"] = _fixed(at)
                    sids.append(await write_notification(conn, **kw))
            return sids
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _fixed(at: datetime) -> Any:
    def clock() -> datetime:
        return at

    return clock


def read_rows(env: Mapping[str, str], statement: Any) -> list[dict[str, Any]]:
    """Run one SELECT against the server's database (to check what is stored, e.g. only hashes)."""

    async def run() -> list[dict[str, Any]]:
        engine = create_engine(load_settings(env=dict(env)))
        try:
            async with engine.connect() as conn:
                return [dict(r) for r in (await conn.execute(statement)).mappings().all()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def write_rows(env: Mapping[str, str], table: Any, rows: list[dict[str, Any]], chunk: int = 10_000) -> None:
    """Insert ``rows`` into ``table`` of the server's database directly (a backlog set up fast)."""

    async def run() -> None:
        engine = create_engine(load_settings(env=dict(env)))
        try:
            async with engine.begin() as conn:
                for i in range(0, len(rows), chunk):
                    await conn.execute(table.insert(), rows[i:i + chunk])
        finally:
            await engine.dispose()

    asyncio.run(run())
