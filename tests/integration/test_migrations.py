"""Migrations build exactly the schema the code declares, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from restcomm.config import load_settings
from restcomm.store import db
from restcomm.store.schema import metadata
from tests.support.server import Server


def _diff(database_url: str | None, data_dir: Path) -> list[object]:
    env = {"RESTCOMM_DATA_DIR": str(data_dir)}
    if database_url:
        env["RESTCOMM_DATABASE_URL"] = database_url
    settings = load_settings(env=env)

    async def run() -> list[object]:
        engine = db.create_engine(settings)
        try:
            await db.upgrade(engine)  # idempotent: already at head on the server's database
            assert await db.current_revision(engine) == db.head_revision()
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrated_schema_matches_the_code(server: Server, tmp_path: Path) -> None:
    if server.backend == "postgres":
        diff = _diff(server.extra["database_url"], tmp_path)
    else:
        diff = _diff(None, tmp_path)  # a fresh SQLite database migrated from nothing
    assert diff == [], diff
