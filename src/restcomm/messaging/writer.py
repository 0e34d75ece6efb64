"""Group commit: many small writes share one transaction, and each caller waits for its commit.

Why: with SQLite every commit is an fsync of the WAL, and only one transaction writes at a time. A
request that opened its own transaction per message would be capped at the disk's fsync rate and
would queue on the write lock behind the dispatcher. Instead every messaging write (a message
accepted by the API, a dispatcher claim, an internal delivery, a callback result) is a *job* handed
to this writer. The writer takes whatever jobs are waiting, runs them one after another inside ONE
transaction, commits, and only then tells each caller "done". A caller therefore still learns of its
own commit before it answers (the API's durability promise), but a thousand callers cost one fsync.

Two kinds of job:

* ``insert(table, rows)``: the fast path (executemany per table per batch, no savepoint).
* ``run(fn)``: ``await fn(conn)`` inside a SAVEPOINT, so a job that fails is rolled back alone and
  its caller gets the exception; the rest of the batch commits.

SQLite has one writer task (its single write lock makes more pointless). PostgreSQL runs several
batches at once on separate connections (``concurrency``), since its row locks let them overlap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("restcomm.messaging.writer")

JobFn = Callable[[AsyncConnection], Awaitable[Any]]


@dataclass
class _Job:
    future: asyncio.Future[Any]
    fn: JobFn | None = None
    inserts: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)


class WriterStopped(RuntimeError):
    """The writer is shutting down and takes no more jobs."""


class GroupCommitWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        is_sqlite: bool,
        max_batch: int = 2000,
        concurrency: int | None = None,
        on_commit: Callable[[], None] | None = None,
    ):
        self.engine = engine
        self.is_sqlite = is_sqlite
        self.max_batch = max_batch
        self.concurrency = 1 if is_sqlite else (concurrency or 4)
        self.on_commit = on_commit
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        # Statistics, read by the bench and tests.
        self.batches = 0
        self.jobs = 0

    # -- public ---------------------------------------------------------------------------------

    async def insert(self, *items: tuple[Table, list[dict[str, Any]]]) -> None:
        """Insert rows (several tables allowed, inserted in the order given); returns after commit."""
        job = _Job(self._future(), inserts=[(table, rows) for table, rows in items if rows])
        await self._submit(job)

    async def run(self, fn: JobFn) -> Any:
        """Run ``fn(conn)`` in the next batch's transaction; returns its result after the commit."""
        return await self._submit(_Job(self._future(), fn=fn))

    async def start(self) -> None:
        self._closed = False
        for i in range(self.concurrency):
            self._tasks.append(asyncio.create_task(self._loop(), name=f"group-commit-{i}"))

    async def stop(self) -> None:
        """Refuse new jobs, finish the queued ones, then stop."""
        self._closed = True
        for _ in self._tasks:
            self._queue.put_nowait(_Job(self._future()))  # sentinel: fn None, no inserts
        for task in self._tasks:
            try:
                await task
            except Exception:
                log.exception("group-commit task failed")
        self._tasks.clear()

    # -- internals ------------------------------------------------------------------------------

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, job: _Job) -> Any:
        if self._closed or not self._tasks:
            raise WriterStopped("the message writer is not running")
        self._queue.put_nowait(job)
        return await asyncio.shield(job.future)

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first.fn is None and not first.inserts:
                first.future.set_result(None)
                return
            batch = [first]
            stop_after = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt.fn is None and not nxt.inserts:
                    nxt.future.set_result(None)
                    stop_after = True
                    break
                batch.append(nxt)
            await self._commit(batch)
            if stop_after:
                return

    async def _commit(self, batch: list[_Job]) -> None:
        results: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            async with self.engine.connect() as conn:
                if self.is_sqlite:
                    await conn.execution_options(sqlite_immediate=True)
                async with conn.begin():
                    await self._inserts(conn, [j for j in batch if j.inserts], results)
                    for job in batch:
                        if job.fn is not None:
                            results.append(await self._savepoint(conn, job))
        except BaseException as exc:  # the commit itself failed: nobody's work is durable
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            log.exception("group commit of %d jobs failed", len(batch))
            return
        self.batches += 1
        self.jobs += len(batch)
        for job, value, error in results:
            if job.future.done():
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)
        if self.on_commit is not None:
            self.on_commit()

    async def _inserts(
        self, conn: AsyncConnection, jobs: list[_Job], results: list[tuple[_Job, Any, BaseException | None]]
    ) -> None:
        if not jobs:
            return
        by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        for job in jobs:
            for table, rows in job.inserts:
                by_table.setdefault(table.name, (table, []))[1].extend(rows)
        try:
            async with conn.begin_nested():
                for table, rows in by_table.values():
                    await conn.execute(insert(table), rows)
        except IntegrityError:
            # One of them conflicts: insert job by job so only the offender fails.
            for job in jobs:
                results.append(await self._savepoint(conn, _Job(job.future, fn=_inserter(job.inserts))))
            return
        results.extend((job, None, None) for job in jobs)

    async def _savepoint(self, conn: AsyncConnection, job: _Job) -> tuple[_Job, Any, BaseException | None]:
        assert job.fn is not None
        try:
            async with conn.begin_nested():
                value = await job.fn(conn)
        except Exception as exc:
            return job, None, exc
        return job, value, None


def _inserter(items: list[tuple[Table, list[dict[str, Any]]]]) -> JobFn:
    async def fn(conn: AsyncConnection) -> None:
        for table, rows in items:
            await conn.execute(insert(table), rows)

    return fn
