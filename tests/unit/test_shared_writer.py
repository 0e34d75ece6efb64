"""SQLite: the message writer and the API's writes share one write transaction per process
(``store.session.Database.write_batch``); the writer's next batch queues behind the COMMIT in flight."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from restcomm.config import load_settings
from restcomm.messaging import model as m
from restcomm.store import db, session
from restcomm.store.schema import messages
from restcomm.store.session import Database
from tests.support.writer import sqlite_writer


def _row(n: int) -> dict[str, Any]:
    return m.new_message(account_sid="AC1", from_number="+1", to_number="+2", body="x", direction=m.OUTBOUND_API,
                         status=m.QUEUED, num_segments=1, encoding="GSM-7", now=datetime(2026, 1, 1),
                         sid=f"SM{n:032d}")


async def _until(cond: Any, turns: int = 10_000) -> None:
    """Let the loop run until ``cond()`` holds (bounded: a number of loop turns, no timing)."""
    for _ in range(turns):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_writer_batch_joins_the_transaction_after_the_commit_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the COMMIT of one batch is in flight (a slow disk's: in a worker thread), a message job
    and an API write both queue; when it ends they share the next transaction: two commits in all."""
    monkeypatch.setattr(session, "INLINE_COMMIT_SECONDS", 0.0)  # every commit off the loop
    monkeypatch.setattr(session, "INLINE_PROBE_SECONDS", 1e12)

    async def run() -> None:
        async with sqlite_writer(tmp_path) as (engine, shared, writer):
            first = asyncio.ensure_future(writer.insert((messages, [_row(1)])))
            # The first batch's COMMIT holds the write connection, its transaction no longer open to join.
            await _until(lambda: shared._busy and shared._batch is None)
            assert shared.commits == 0

            async def api_write() -> None:
                async with shared.write_batch() as conn:
                    conn.execute(insert(messages), [_row(3)])

            second = asyncio.ensure_future(writer.insert((messages, [_row(2)])))
            api = asyncio.ensure_future(api_write())
            await asyncio.gather(first, second, api)
            assert shared.commits == 2

            async def count(conn: Any) -> int:
                return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())

            assert await writer.run(count) == 3

    asyncio.run(run())


def test_shared_writer_runs_two_tasks_and_stops_cleanly(tmp_path: Path) -> None:
    async def run() -> None:
        async with sqlite_writer(tmp_path) as (engine, shared, writer):
            assert writer.concurrency == 2
            results = await asyncio.gather(*(writer.insert((messages, [_row(i)])) for i in range(200)))
            assert results == [None] * 200

    asyncio.run(run())


def _commit_some(tmp_path: Path, n: int) -> Database:
    async def run() -> Database:
        settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})
        engine = db.create_engine(settings)
        await db.upgrade(engine)
        shared = Database(engine)
        for i in range(n):
            async with shared.write_batch() as conn:
                conn.execute(insert(messages), [_row(i)])
        shared.close()
        await engine.dispose()
        return shared

    return asyncio.run(run())


def test_quick_commits_run_in_the_loop_thread(tmp_path: Path) -> None:
    shared = _commit_some(tmp_path, 5)
    assert shared.commits == 5
    if shared.commit_seconds < session.INLINE_COMMIT_SECONDS:  # a quick disk (not under test's control)
        assert shared.thread_commits == 0


def test_slow_commits_go_to_a_worker_thread_with_a_probe_now_and_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "INLINE_COMMIT_SECONDS", 0.0)  # every measured commit counts as slow
    monkeypatch.setattr(session, "INLINE_PROBE_SECONDS", 1e12)
    shared = _commit_some(tmp_path / "slow", 4)
    assert shared.commits == 4
    assert shared.thread_commits == 4
    monkeypatch.setattr(session, "INLINE_PROBE_SECONDS", 0.0)  # a probe every time: all in the loop thread
    shared = _commit_some(tmp_path / "probed", 3)
    assert shared.commits == 3 and shared.thread_commits == 0


def test_a_cancelled_writer_still_commits_for_the_others(tmp_path: Path) -> None:
    """A caller cancelled while it waits for the COMMIT cancels only its own wait."""

    async def run() -> None:
        settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})
        engine = db.create_engine(settings)
        await db.upgrade(engine)
        shared = Database(engine)

        async def write(n: int) -> None:
            async with shared.write_batch() as conn:
                conn.execute(insert(messages), [_row(n)])

        first, second = asyncio.ensure_future(write(1)), asyncio.ensure_future(write(2))
        await _until(lambda: shared._batch is not None and len(shared._batch) == 2)
        first.cancel()
        await second
        with pytest.raises(asyncio.CancelledError):
            await first
        rows = shared.read_connection().execute(select(func.count()).select_from(messages)).scalar_one()
        assert rows == 2  # both bodies ran before the COMMIT: the cancelled caller's write is durable too
        shared.close()
        await engine.dispose()

    asyncio.run(run())


def test_checkpoints_run_in_a_worker_thread_not_inside_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "CHECKPOINT_EVERY_COMMITS", 3)

    async def run() -> None:
        settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})
        engine = db.create_engine(settings)
        await db.upgrade(engine)
        shared = Database(engine)
        for i in range(7):
            async with shared.write_batch() as conn:
                conn.execute(insert(messages), [_row(i)])
            if shared._checkpointing is not None:
                await shared._checkpointing
        raw = shared.write_connection().connection.driver_connection
        assert raw is not None
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # none inside our COMMITs
        assert shared.commits == 7 and shared.checkpoints == 2  # after the 3rd and the 6th
        shared.close()
        await engine.dispose()

    asyncio.run(run())
