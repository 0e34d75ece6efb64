"""The message writer's cheaper paths on SQLite: statements registered with ``precompiled`` go
straight to the driver with the same results as through SQLAlchemy; a job given ``within`` joins
the next batch instead of committing alone; a single-job batch needs no savepoint of its own."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.messaging.writer import _FAST, LoopConnection
from restcomm.store.schema import messages
from tests.support.writer import sqlite_writer

NOW = datetime(2026, 1, 1, 12, 0, 0, 123456)


def _row(n: int, **extra: Any) -> dict[str, Any]:
    row = m.new_message(account_sid=f"AC{n % 2}", from_number="+1", to_number="+2", body="x",
                        direction=m.OUTBOUND_API, status=m.QUEUED, num_segments=1, encoding="GSM-7", now=NOW,
                        sid=f"SM{n:032d}")
    row.update(extra)
    return row


def test_precompiled_statements_answer_as_sqlalchemy_does(tmp_path: Path) -> None:
    """Rows, mappings, scalars, type processing (datetimes) and rowcounts: the direct path and
    SQLAlchemy's give the same, and a statement the direct path cannot run falls back."""
    async def run() -> None:
        async with sqlite_writer(tmp_path) as (engine, shared, writer):
            assert id(store.INSERT_MESSAGES) in _FAST and id(store._TAKE) in _FAST

            async def job(conn: Any) -> None:
                await conn.execute(store.INSERT_MESSAGES, [_row(i) for i in range(4)])
                lite = conn.sync
                params = {"now": NOW, "lim": 10, "owner": "n"}
                until = NOW + timedelta(seconds=30)
                took = await conn.execute(store._TAKE, [{"b_sid": f"SM{i:032d}", "owner": "n", "until": until,
                                                         "now": NOW} for i in range(2)])
                assert took.rowcount == 2
                stale = store._CLAIM_STALE.plain
                direct = list((await conn.execute(stale, {**params, "now": until + timedelta(seconds=1),
                                                          "owner": "other"})).mappings())
                slow = list(lite.execute(stale, {**params, "now": until + timedelta(seconds=1),
                                                 "owner": "other"}).mappings())
                assert [dict(r) for r in direct] == [dict(r) for r in slow] and len(direct) == 2
                assert isinstance(direct[0]["lease_until"], datetime) and direct[0]["lease_until"] == until
                assert direct[0]["attempts"] == 1 and direct[0]["status"] == m.SENDING
                walk = store._CLAIM_FRESH.walk_sqlite
                assert [a for (a,) in await conn.execute(walk, {"after": "", "accounts": 5})] == ["AC0", "AC1"]
                # IN lists: a form per length, the same rows as SQLAlchemy's expansion.
                for sids in (["AC0"], ["AC1", "AC0"], ["AC9", "AC1", "AC0"], ["AC0"]):
                    direct_orgs = sorted(tuple(r) for r in await conn.execute(store._ORGANIZATIONS, {"sids": sids}))
                    assert direct_orgs == sorted(tuple(r) for r in lite.execute(store._ORGANIZATIONS, {"sids": sids}))
                times = {"senders": ["+1", "1"], "recipients": ["+2"]}
                assert list(await conn.execute(store._OPT_OUT_TIMES, times)) == []
                last = (await conn.execute(store._LAST_SEQ, {"sid": "SM" + "0" * 32})).scalar_one()
                assert last == 0
                # A parameter left out: SQLAlchemy's own error, as before.
                with pytest.raises(Exception, match="b_sid"):
                    await conn.execute(store._TAKE, {"owner": "n", "until": until, "now": NOW})
                # An unregistered statement goes through SQLAlchemy.
                other = update(messages).where(messages.c.sid == bindparam("s")).values(body="y")
                assert (await conn.execute(other, {"s": "SM" + "0" * 32})).rowcount == 1

            await writer.run(job)
            with pytest.raises(IntegrityError):  # the driver's error, as SQLAlchemy's type
                await writer.insert((messages, [_row(0)]))
            assert isinstance(LoopConnection, type)

    asyncio.run(run())


def test_a_job_with_within_joins_the_next_batch_or_commits_alone_in_time(tmp_path: Path) -> None:
    async def run() -> None:
        async with sqlite_writer(tmp_path) as (engine, shared, writer):
            async def mark(conn: Any) -> None:
                await conn.execute(update(messages).values(body="marked"))

            await writer.insert((messages, [_row(1)]))
            commits = shared.commits
            lazy = asyncio.ensure_future(writer.run(mark, within=60))
            for _ in range(100):
                await asyncio.sleep(0)
            assert not lazy.done() and shared.commits == commits  # waiting for company
            await writer.insert((messages, [_row(2)]))  # a batch comes: the lazy job rides along
            await lazy
            assert shared.commits == commits + 1
            async with shared.write_batch() as conn:
                bodies = [b for (b,) in conn.execute(select(messages.c.body))]
            assert bodies.count("marked") >= 1

            # Alone, it is committed once its time is up (and the earliest deadline wins).
            slow = asyncio.ensure_future(writer.run(mark, within=60))
            quick = asyncio.ensure_future(writer.run(mark, within=0))
            await asyncio.wait_for(asyncio.gather(slow, quick), 30)

    asyncio.run(run())


def test_a_failing_job_alone_in_its_batch_rolls_back_only_itself(tmp_path: Path) -> None:
    async def run() -> None:
        async with sqlite_writer(tmp_path) as (engine, shared, writer):
            async def bad(conn: Any) -> None:
                await conn.execute(store.INSERT_MESSAGES, [_row(7)])
                raise ValueError("no")

            with pytest.raises(ValueError):
                await writer.run(bad)
            await writer.insert((messages, [_row(8)]))

            async def sids(conn: Any) -> list[str]:
                return [s for (s,) in await conn.execute(select(messages.c.sid))]

            assert await writer.run(sids) == [f"SM{8:032d}"]

    asyncio.run(run())
