"""What PostgreSQL itself spends per round trip, for the capacity model in docs/performance.md.

    .venv/bin/python bench/pg_costs.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

One asyncpg connection; the backend's own CPU (user + system from /proc/<backend pid>/stat, so the
server must run on this machine) and the wall time are measured for: a prepared point SELECT by
primary key, a BEGIN + UPDATE + COMMIT (one WAL flush each), and rows of a batched INSERT (200 per
transaction, executemany). A scratch table ``bench_pg_costs`` is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg


def cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(dsn: str) -> None:
    c = await asyncpg.connect(dsn)
    try:
        await c.execute("DROP TABLE IF EXISTS bench_pg_costs; "
                        "CREATE TABLE bench_pg_costs (id text PRIMARY KEY, body text, n int)")
        await c.executemany("INSERT INTO bench_pg_costs VALUES ($1, $2, $3)", [(f"k{i}", "x" * 100, i) for i in range(10000)])
        pid = await c.fetchval("SELECT pg_backend_pid()")
        select = await c.prepare("SELECT * FROM bench_pg_costs WHERE id = $1")
        n = 20000
        c0, t0 = cpu(pid), time.perf_counter()
        for i in range(n):
            await select.fetchrow(f"k{i % 10000}")
        print(f"point SELECT:          {(cpu(pid) - c0) / n * 1e6:6.1f} us backend CPU, "
              f"{(time.perf_counter() - t0) / n * 1e6:6.0f} us wall per round trip")
        n = 3000
        c0, t0 = cpu(pid), time.perf_counter()
        for i in range(n):
            async with c.transaction():
                await c.execute("UPDATE bench_pg_costs SET n = n + 1 WHERE id = $1", f"k{i % 10000}")
        print(f"BEGIN+UPDATE+COMMIT:   {(cpu(pid) - c0) / n * 1e6:6.1f} us backend CPU, "
              f"{(time.perf_counter() - t0) / n * 1e6:6.0f} us wall per transaction (3 round trips, 1 WAL flush)")
        rows = [(f"b{i}", "y" * 100, i) for i in range(20000)]
        c0, t0 = cpu(pid), time.perf_counter()
        for j in range(0, len(rows), 200):
            async with c.transaction():
                await c.executemany("INSERT INTO bench_pg_costs VALUES ($1, $2, $3)", rows[j:j + 200])
        print(f"batched INSERT row:    {(cpu(pid) - c0) / len(rows) * 1e6:6.1f} us backend CPU, "
              f"{(time.perf_counter() - t0) / len(rows) * 1e6:6.0f} us wall per row (200 per transaction)")
        print("synchronous_commit", await c.fetchval("SHOW synchronous_commit"),
              "| max_connections", await c.fetchval("SHOW max_connections"), "| load average", os.getloadavg())
    finally:
        await c.execute("DROP TABLE IF EXISTS bench_pg_costs")
        await c.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(ap.parse_args().dsn))
