"""Claiming queued messages with one account's backlog: oldest first vs a window function vs the walk.

Side by side on the same data, on SQLite and PostgreSQL: 100,000 queued messages of account A,
a few each of ``--accounts`` other accounts, and 300,000 already delivered (the history every table
grows). Each claim runs in a transaction that is rolled back, so every run sees the same queue.

* ``oldest``: the claim before fairness (``ORDER BY next_attempt_at LIMIT n``): cheap, unfair.
* ``window``: ``row_number() OVER (PARTITION BY account_sid ORDER BY next_attempt_at)`` over the due
  rows, at most a share per account: fair, but it numbers every queued row on every claim. (On
  PostgreSQL it cannot lock rows itself: FOR UPDATE is not allowed with window functions; the sids
  would need a second, locking statement, not counted here.)
* ``walk``: what messaging/store.py does: walk the accounts with queued rows (one index probe per
  account), then take each one's oldest share (``_Fair``), with FOR UPDATE SKIP LOCKED on PostgreSQL.

Prints per-claim p50/p99 in ms, ratios to ``walk``, how many of the claim went to accounts other
than A, and the plans (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE).

    .venv/bin/python bench/fair_claim.py [--backlog 100000] [--accounts 10] [--claims 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.store.schema import messages, metadata

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LIMIT = 256

OLDEST = text("SELECT * FROM messages WHERE status = 'queued' AND next_attempt_at <= :now "
              "ORDER BY next_attempt_at LIMIT :lim")
WINDOW = text(
    "SELECT * FROM (SELECT messages.*, row_number() OVER (PARTITION BY account_sid ORDER BY next_attempt_at) AS rn "
    "FROM messages WHERE status = 'queued' AND next_attempt_at <= :now) AS q WHERE rn <= :share "
    "ORDER BY next_attempt_at LIMIT :lim"
)


def rows(backlog: int, others: int, history: int) -> list[dict[str, Any]]:
    then = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    out = []

    def add(account: str, status: str, i: int) -> None:
        row = m.new_message(account_sid=account, from_number="+15550000001", to_number="+15550000002", body="x",
                            direction=m.OUTBOUND_API, status=status, num_segments=1, encoding="GSM-7",
                            now=then + timedelta(microseconds=i))
        out.append(row)

    for i in range(backlog):
        add("AC" + "a" * 32, m.QUEUED, i)
    for k in range(others):
        for j in range(3):
            add(f"AC{k:032d}", m.QUEUED, backlog + k * 3 + j)
    for i in range(history):
        add(f"AC{i % 50:032d}", m.DELIVERED, i)
    return out


async def fill(url: str, data: list[dict[str, Any]]) -> Any:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for i in range(0, len(data), 10_000):
            await conn.execute(messages.insert(), data[i:i + 10_000])
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return engine


async def time_claims(engine: Any, how: str, claims: int, alone: bool = False) -> tuple[list[float], int, int]:
    """Per-claim times in ms, rows claimed, rows for accounts other than A. ``alone``: the other
    accounts' queued rows are deleted first, in the same (rolled back) transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    times: list[float] = []
    others = total = 0
    for _ in range(claims):
        async with engine.connect() as conn:
            await conn.begin()
            if alone:
                await conn.execute(text("DELETE FROM messages WHERE status = 'queued' AND account_sid <> :a"),
                                   {"a": "AC" + "a" * 32})
            start = time.perf_counter()
            got = await claim(conn, how, now)
            times.append((time.perf_counter() - start) * 1000)
            total = len(got)
            others = sum(1 for r in got if not r["account_sid"].startswith("ACaaaa"))
            await conn.rollback()
    return times, total, others


async def claim(conn: AsyncConnection, how: str, now: datetime) -> list[Any]:
    pg = conn.dialect.name == "postgresql"
    if how == "oldest":
        stmt = text(OLDEST.text + (" FOR UPDATE SKIP LOCKED" if pg else ""))
        return list((await conn.execute(stmt, {"now": now, "lim": LIMIT})).mappings())
    if how == "window":
        return list((await conn.execute(WINDOW, {"now": now, "lim": LIMIT, "share": LIMIT // 8})).mappings())
    return await store._CLAIM_FRESH.claim(conn, store.FairCursor(), now, LIMIT)


async def plans(engine: Any) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    async with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        walk = store._CLAIM_FRESH.walk
        accounts = [a for (a,) in await conn.execute(walk, {"after": "", "accounts": LIMIT})]
        take = store._CLAIM_FRESH.take_pg if pg else store._CLAIM_FRESH.take_sqlite
        share = -(-LIMIT // len(accounts))
        take_params: dict[str, Any] = {"now": now, "share": share,
                                       "accts": accounts if pg else orjson.dumps(accounts).decode()}
        for name, stmt, params in (("walk: accounts", walk, {"after": "", "accounts": LIMIT}),
                                   ("walk: take", take, take_params),
                                   ("window", WINDOW, {"now": now, "lim": LIMIT, "share": LIMIT // 8})):
            prefix = "EXPLAIN (ANALYZE, COSTS OFF) " if pg else "EXPLAIN QUERY PLAN "
            clause = getattr(stmt, "element", stmt)  # the text of a TextualSelect
            result = await conn.execute(text(prefix + clause.text).bindparams(*clause._bindparams.values()), params)
            lines = [" | ".join(str(c) for c in r) for r in result]
            print(f"  plan, {name}:")
            for line in lines:
                print("    " + line)
        await conn.rollback()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def run_one(label: str, url: str, data: list[dict[str, Any]], claims: int) -> None:
    start = time.perf_counter()
    engine = await fill(url, data)
    print(f"\n{label}: {len(data)} rows written in {time.perf_counter() - start:.1f} s")
    for alone in (True, False):
        print(f"  {'A alone' if alone else 'A and the others'}:")
        results = {}
        for how in ("oldest", "window", "walk"):
            await time_claims(engine, how, 3, alone)  # warm
            results[how] = await time_claims(engine, how, claims, alone)
        base = statistics.median(results["walk"][0])
        for how, (times, total, others) in results.items():
            print(f"    {how:7s} p50 {pct(times, 0.5):8.2f} ms  p99 {pct(times, 0.99):8.2f} ms  "
                  f"x{pct(times, 0.5) / base:6.2f} of walk  rows {total:3d}, for other accounts: {others}")
    await plans(engine)
    await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--history", type=int, default=300_000)
    ap.add_argument("--claims", type=int, default=50)
    args = ap.parse_args()
    data = rows(args.backlog, args.accounts, args.history)
    with tempfile.TemporaryDirectory() as tmp:
        await run_one("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'fair.db'}", data, args.claims)
    name = "restcomm_bench_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await run_one("PostgreSQL", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", data, args.claims)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
