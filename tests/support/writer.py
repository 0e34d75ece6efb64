"""The message writer on a migrated SQLite file, sharing the process's write transaction, as a
node runs it (for the writer's unit tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from restcomm.config import load_settings
from restcomm.messaging.writer import GroupCommitWriter, sqlite_sync_engine
from restcomm.store import db
from restcomm.store.session import Database


@asynccontextmanager
async def sqlite_writer(tmp_path: Path) -> AsyncIterator[tuple[Any, Database, GroupCommitWriter]]:
    """(engine, shared write transaction, started writer); all stopped and closed on exit."""
    engine = db.create_engine(load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)}))
    await db.upgrade(engine)
    shared = Database(engine)
    writer = GroupCommitWriter(engine, sync_engine=sqlite_sync_engine(engine, "FULL"), shared=shared)
    await writer.start()
    try:
        yield engine, shared, writer
    finally:
        await writer.stop()
        shared.close()
        await engine.dispose()
