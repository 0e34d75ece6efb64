"""Group commit: many small writes share one transaction, and each caller waits for its commit.

Why: with SQLite every commit is an fsync of the WAL, and only one transaction writes at a time. A
request that opened its own transaction per message would be capped at the disk's fsync rate and
would queue on the write lock behind the dispatcher. Instead every messaging write (a message
accepted by the API, a dispatcher claim, an internal delivery, a callback result) is a *job* handed
to this writer. The writer takes whatever jobs are waiting, runs them one after another inside ONE
transaction, commits, and only then tells each caller "done". A caller therefore still learns of its
own commit before it answers (the API's durability promise), but a thousand callers cost one fsync.

Two kinds of job:

* ``insert(table, rows)``: the fast path (executemany per table per batch).
* ``run(fn)``: ``await fn(conn)`` inside a SAVEPOINT, so a job that fails is rolled back alone and
  its caller gets the exception; the rest of the batch commits.

A batch whose transaction is lost before its COMMIT was sent (PostgreSQL dropped the connection,
restarted, or chose it as a deadlock or serialization victim) committed nothing, so it is run again
in a fresh transaction, a few times with a short backoff: inserts, and ``run(fn, retry=True)`` jobs
whose function may safely run twice (it changes nothing outside the database). Other jobs get the
error. A COMMIT that got no answer is in doubt and is never re-run.

SQLite: one writer, and it runs in the event-loop thread on a plain (synchronous) sqlite3
connection wrapped to look like an ``AsyncConnection`` (``LoopConnection``). SQLite statements take
microseconds; handing each one to the async driver's worker thread cost far more (a thread round
trip per statement, and the GIL traffic that comes with it), and the pipeline makes dozens per
message. The one wait that could block the loop is the write lock held by another connection (the
API's own transactions, another process), whose owner may need this very loop to finish: so the
lock is taken with ``BEGIN IMMEDIATE`` under a zero busy timeout, retried asynchronously until free.

With the API's writes (``shared``: the process's one write transaction, ``store.session.Database``)
the writer runs two tasks: while one waits for the COMMIT of its batch (the fsync), the other takes
the jobs queued meanwhile and waits for the write connection, so its batch joins the very next
transaction, opened the moment that COMMIT ends (with the API write bodies that waited for it).
With one task, those jobs waited for the commit in flight, then for the writer to come round again,
by which time the API's writes had opened the next transaction and its COMMIT had taken the
connection: a third commit's wait for every send under mixed load. Batches still commit in order
(one transaction at a time); a job is only ever submitted after what it depends on committed.

PostgreSQL: several batches at once on separate pooled async connections (``concurrency``), since
its row locks let them overlap.

On both databases a batch of a single job runs without a SAVEPOINT of its own (two statements, on
PostgreSQL two round trips, fewer; nothing else in its transaction needs protecting from its
failure: on SQLite with ``shared`` the batch already has the shared transaction's savepoint).

``run(fn, within=seconds)`` (SQLite): a job that may wait that long for a batch to join, so that it
costs no transaction (and no fsync) of its own while other work flows (a dispatcher round, the end
of an application session); alone, it is committed once the time is up. On PostgreSQL it is
submitted at once, as any job (concurrent batches: joining would hold row locks longer).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from restcomm.store import trips
from restcomm.store.db import database_unavailable, sqlite_pragmas, transaction_conflict

log = logging.getLogger("restcomm.messaging.writer")

JobFn = Callable[[Any], Awaitable[Any]]

# What the jobs of the transaction being written asked to run once it commits (after_commit); set
# in the writer task's own context, so concurrent batches (PostgreSQL) keep theirs apart.
_on_commit: ContextVar[list[tuple[Callable[[Any], Any], Any]] | None] = ContextVar("restcomm_on_commit", default=None)


def after_commit(fn: Callable[[Any], Any], arg: Any) -> None:
    """Call ``fn(arg)`` once the transaction running the current job has committed (at once outside
    a group-commit job); forgotten if the job or the commit fails. For effects that must count only
    what is durable, such as metrics: cheap (one append), so call it once per batch, not per row."""
    pending = _on_commit.get()
    if pending is None:
        fn(arg)
    else:
        pending.append((fn, arg))


class LoopConnection:
    """The slice of ``AsyncConnection`` the pipeline uses, over a synchronous connection.

    Statements run right here in the event-loop thread; results are the same buffered
    ``CursorResult`` objects an ``AsyncConnection`` returns.
    """

    def __init__(self, conn: Connection):
        self.sync = conn
        self._depth = 0

    @property
    def dialect(self) -> Any:
        return self.sync.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        fast = _FAST.get(id(statement))
        if fast is not None:
            result = fast.run(self.sync, parameters)
            if result is not None:
                return result
        return self.sync.execute(statement, parameters)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        # Plain SAVEPOINT statements on the driver's connection: SQLAlchemy's nested-transaction
        # objects, and even its ``exec_driver_sql``, cost several times more than the statements.
        self._depth += 1
        name = f"job{self._depth}"
        raw = self.sync.connection.driver_connection
        raw.execute(f"SAVEPOINT {name}")
        trips.note()
        try:
            yield
        except BaseException:
            raw.execute(f"ROLLBACK TO {name}")
            raw.execute(f"RELEASE {name}")
            trips.note(2)
            raise
        else:
            raw.execute(f"RELEASE {name}")
            trips.note()
        finally:
            self._depth -= 1


# ---------------------------------------------------------------------------------------------
# Pre-compiled statements on the loop-thread SQLite connection
#
# SQLAlchemy's execution of a cached statement (parameter processing, execution context, result
# object) costs several times what SQLite takes to run an indexed point statement, and the pipeline
# runs dozens of them per message. The statements registered with ``precompiled`` (module-level
# constants, run for every message) are compiled once for SQLite and then sent straight to the
# driver's cursor by ``LoopConnection``, with the same bind and result type processing. Anything a
# plain compile cannot express (expanding IN lists, Python-side column defaults to fill in,
# RETURNING, rows with differing keys) goes through SQLAlchemy as before. PostgreSQL is untouched.


class _Compiled:
    """One registered statement compiled for SQLite, per set of INSERT column keys."""

    __slots__ = ("statement", "_forms", "_expanding")

    def __init__(self, statement: Any):
        self.statement = statement  # held: the registry is keyed by id()
        self._forms: dict[Any, Any] = {}
        self._expanding = tuple(sorted(
            b.key for b in statement._get_embedded_bindparams() if getattr(b, "expanding", False)
        )) if hasattr(statement, "_get_embedded_bindparams") else ()

    def run(self, conn: Connection, parameters: Any) -> Any:
        """The result, or None when this call must go through SQLAlchemy."""
        many = isinstance(parameters, list)
        if many:
            if not parameters:
                return None
            first = parameters[0]
        else:
            first = parameters or {}
        if self.statement.is_insert:
            key: Any = tuple(first)
        elif self._expanding:  # one form per length of each IN list
            try:
                key = tuple(len(first[name]) for name in self._expanding)
            except (KeyError, TypeError):
                return None
        else:
            key = None
        form = self._forms.get(key, _MISSING)
        if form is _MISSING:
            if len(self._forms) >= 64:
                return None  # IN lists of many lengths: not worth a form each
            form = self._forms[key] = _compile(self.statement, conn.dialect, key, first, self._expanding)
        if form is None:
            return None
        sql, order, result = form
        raw = conn.connection.driver_connection
        try:
            if many:
                if key is not None and any(len(p) != len(key) for p in parameters):
                    return None
                rows = [_bind(order, p) for p in parameters]
                trips.note()
                cursor = raw.executemany(sql, rows)
            else:
                values = _bind(order, first)
                trips.note()
                cursor = raw.execute(sql, values)
        except KeyError:
            return None  # a parameter is missing: SQLAlchemy raises its own error for it
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc  # as SQLAlchemy would
        if result is None:
            return _Done(cursor.rowcount)
        keys, procs = result
        if keys is None:
            keys = [d[0] for d in cursor.description or ()]
        fetched = cursor.fetchall()
        if procs:
            fetched = [tuple(p(v) if p is not None else v for p, v in zip(procs, row, strict=True)) for row in fetched]
        return IteratorResult(SimpleResultMetaData(keys), iter(fetched))


_MISSING = object()
_FAST: dict[int, _Compiled] = {}


def precompiled(*statements: Any) -> None:
    """Register module-level statements for ``LoopConnection``'s direct path (see above)."""
    for statement in statements:
        _FAST.setdefault(id(statement), _Compiled(statement))


def _bind(order: list[tuple[str, int | None, Any, Any]], params: Any) -> tuple[Any, ...]:
    out = []
    for name, item, proc, default in order:
        value = params[name] if default is _MISSING else params.get(name, default)
        if item is not None:
            value = value[item]  # the item-th value of an IN list
        out.append(proc(value) if proc is not None and value is not None else value)
    return tuple(out)


def _compile(statement: Any, dialect: Any, keys: Any, sample: Any, expanding: tuple[str, ...]) -> Any:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if statement.is_insert else None)
    if compiled.positiontup is None:
        return None
    string, positions = compiled.string, list(compiled.positiontup)
    items: dict[str, tuple[str, int]] = {}  # an IN list's expanded bind -> (its parameter, index)
    if expanding:
        if any(not sample[name] for name in expanding):
            return None  # an empty IN list renders differently
        try:
            state = compiled.construct_expanded_state(dict(sample))
        except Exception:
            return None  # a parameter is missing: SQLAlchemy's path raises its own error
        string, positions = state.statement, list(state.positiontup or ())
        for name, expanded in state.parameter_expansion.items():
            items.update({e: (name, i) for i, e in enumerate(expanded)})
    if (
        "POSTCOMPILE" in string
        or any(b.literal_execute or (b.expanding and b.key not in expanding) for b in compiled.binds.values())
        or any(getattr(compiled, attr, None) for attr in ("insert_prefetch", "update_prefetch", "postfetch",
                                                         "effective_returning"))
    ):
        return None
    procs = compiled._bind_processors
    order: list[tuple[str, int | None, Any, Any]] = []
    for position in positions:
        name, item = items.get(position, (position, None))
        bind = compiled.binds[name]
        fixed = not bind.required and (bind.value is not None or bind.callable is not None)
        proc = procs.get(name)
        if item is not None and proc is None:
            proc = bind.type._cached_bind_processor(dialect)
        order.append((name, item, proc, bind.effective_value if fixed else _MISSING))
    if compiled.isinsert or compiled.isupdate or compiled.isdelete:
        return string, order, None
    columns = compiled._result_columns
    if not columns:  # text() without declared columns: the cursor's names, values as the driver gives them
        return string, order, (None, None)
    rprocs = [c.type._cached_result_processor(dialect, None) for c in columns]
    return string, order, ([c.keyname for c in columns], rprocs if any(rprocs) else None)


class _Done:
    """The result of a statement that returns no rows."""

    __slots__ = ("rowcount",)

    def __init__(self, rowcount: int):
        self.rowcount = rowcount

    def close(self) -> None:
        pass


def sqlite_sync_engine(engine: AsyncEngine, synchronous: str) -> Engine:
    """A synchronous engine on the same SQLite file, for the writer and the pipeline's reads."""
    url = engine.url.set(drivername="sqlite")
    sync = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(sync, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        sqlite_pragmas(dbapi_conn, synchronous, busy_timeout_ms=0)  # never block the loop on another writer

    @event.listens_for(sync, "begin")
    def _begin(conn: Connection) -> None:
        if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            return  # the writer took the write lock itself (GroupCommitWriter._transaction)
        options = conn.get_execution_options()
        if options.get("autocommit_reads"):
            return  # each read is its own snapshot (Messaging.read), as on PostgreSQL: no BEGIN, no ROLLBACK
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    trips.instrument(sync, boundaries=False)  # the writer's own BEGIN IMMEDIATE and COMMIT counted where sent
    return sync


@dataclass
class _Job:
    future: asyncio.Future[Any]
    fn: JobFn | None = None
    inserts: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    retry: bool = False  # may run again after a transaction lost before its commit

    @property
    def rerunnable(self) -> bool:
        return self.retry or self.fn is None


class WriterStopped(RuntimeError):
    """The writer is shutting down and takes no more jobs."""


class GroupCommitWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sync_engine: Engine | None = None,
        max_batch: int = 2000,
        concurrency: int = 4,
        shared: Any = None,
    ):
        self.engine = engine
        # SQLite: the process's shared write transaction (store.session.Database.write_batch), if given.
        self.shared = shared
        self.sync_engine = sync_engine  # SQLite: the loop-thread path
        self.max_batch = max_batch
        # SQLite: one batch writes at a time; with ``shared``, a second task queues the next batch
        # behind the commit in flight (module docstring).
        self.concurrency = (2 if shared is not None else 1) if sync_engine is not None else concurrency
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._sync_conn: Connection | None = None
        # PostgreSQL: the writer's own asyncpg pool and compiled statements (store/pgdirect.py).
        self._pg: Any = None
        self._pg_compiler: Any = None
        # Jobs that join the next batch (``run(..., within=...)``), and the timer that queues them
        # when no batch comes in time.
        self._lazy: list[_Job] = []
        self._lazy_timer: asyncio.TimerHandle | None = None
        # Statistics, read by the bench and tests.
        self.batches = 0
        self.jobs = 0
        self.lock_waits = 0
        self.retries = 0  # batches run again after a lost transaction

    # -- public ---------------------------------------------------------------------------------

    async def insert(self, *items: tuple[Table, list[dict[str, Any]]]) -> None:
        """Insert rows (several tables allowed, inserted in the order given); returns after commit."""
        job = _Job(self._future(), inserts=[(table, rows) for table, rows in items if rows])
        await self._submit(job)

    async def run(self, fn: JobFn, *, retry: bool = False, within: float | None = None) -> Any:
        """Run ``fn(conn)`` in the next batch's transaction; returns its result after the commit.

        ``retry=True``: ``fn`` only reads and writes the database, so when the transaction is lost
        before its commit (see the module docstring) it is simply run again in the next one.
        ``within``: the job need not start a batch of its own; it joins the next batch that other
        jobs start, or starts one after that many seconds."""
        job = _Job(self._future(), fn=fn, retry=retry)
        if within is None or self.sync_engine is None:
            # PostgreSQL: at once, as before. Its batches run concurrently and lock rows, so a job
            # joining another's transaction would hold its locks longer and risk more deadlocks.
            return await self._submit(job)
        if self._closed or not self._tasks:
            raise WriterStopped("the message writer is not running")
        self._lazy.append(job)
        loop = asyncio.get_running_loop()
        due = loop.time() + within
        if self._lazy_timer is None or due < self._lazy_timer.when():  # the earliest deadline of those waiting
            if self._lazy_timer is not None:
                self._lazy_timer.cancel()
            self._lazy_timer = loop.call_at(due, self._promote_lazy)
        return await job.future

    async def start(self) -> None:
        self._closed = False
        if self.sync_engine is not None and self.shared is None:
            self._sync_conn = self.sync_engine.connect().execution_options(write=True)
        if self.sync_engine is None and self.shared is None and self.engine.dialect.name == "postgresql":
            from restcomm.store.pgdirect import Compiler
            from restcomm.store.pgpool import writer_pool

            self._pg = writer_pool(self.engine, self.concurrency)
            self._pg_compiler = Compiler(self.engine.dialect)
        for i in range(self.concurrency):
            self._tasks.append(asyncio.create_task(self._loop(), name=f"group-commit-{i}"))

    async def stop(self) -> None:
        """Refuse new jobs, finish the queued ones, then stop."""
        self._closed = True
        self._promote_lazy()
        for _ in self._tasks:
            self._queue.put_nowait(_Job(self._future()))  # sentinel: fn None, no inserts
        for task in self._tasks:
            try:
                await task
            except Exception:
                log.exception("group-commit task failed")
        self._tasks.clear()
        if self._sync_conn is not None:
            self._sync_conn.close()
            self._sync_conn = None
        if self._pg is not None:
            pool, self._pg = self._pg, None
            pool.release()

    # -- internals ------------------------------------------------------------------------------

    def _promote_lazy(self) -> None:
        """Queue the waiting ``within`` jobs as a batch of their own (no other batch came in time)."""
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        lazy, self._lazy = self._lazy, []
        for job in lazy:
            self._queue.put_nowait(job)

    def _take_lazy(self, batch: list[_Job]) -> None:
        """A batch is about to run: the ``within`` jobs waiting join it."""
        if not self._lazy:
            return
        room = self.max_batch - len(batch)
        if room <= 0:
            return
        batch.extend(self._lazy[:room])
        del self._lazy[:room]
        if not self._lazy and self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, job: _Job) -> Any:
        if self._closed or not self._tasks:
            raise WriterStopped("the message writer is not running")
        self._queue.put_nowait(job)
        # The job's own future, awaited directly (no shield: one turn of the loop sooner). A caller
        # cancelled meanwhile cancels only its wait: the job still runs, and a done future is skipped.
        return await job.future

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
            self._take_lazy(batch)
            await self._commit(batch)
            if stop_after:
                return

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        if self.shared is not None:
            # SQLite, with the API's writes: one write connection and one COMMIT per process for both.
            async with self.shared.write_batch("messages") as conn:
                yield LoopConnection(conn)
            return
        if self._sync_conn is not None:
            conn = self._sync_conn
            raw = conn.connection.driver_connection  # the sqlite3 connection
            delay = 0.0005
            while True:
                # Take the write lock on the driver's connection: a refusal costs a few microseconds
                # there, several times that through SQLAlchemy, and another process holding the lock
                # may refuse many attempts in a row. ``begin()`` then finds the transaction open.
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    trips.note()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc  # as SQLAlchemy would
                    self.lock_waits += 1
                    await asyncio.sleep(delay)  # let whoever holds the lock (maybe on this loop) finish
                    delay = min(delay * 2, 0.002)
            tx = conn.begin()
            try:
                yield LoopConnection(conn)
            except BaseException:
                tx.rollback()
                raise
            # The fsync happens off the loop; nothing else touches this connection meanwhile (the
            # writer is the only user, and it waits for this commit).
            trips.note()
            try:
                await asyncio.to_thread(tx.commit)
            except BaseException:
                # A refused COMMIT (disk full, I/O error) may leave the transaction open; end it, or
                # every later batch would fail to begin ("cannot start a transaction within a transaction").
                _abandon(tx, raw)
                raise
            return
        if self._pg is not None:
            async with self._pg_transaction() as pconn:
                yield pconn
            return
        async with self.engine.connect() as aconn:
            async with aconn.begin():
                yield aconn

    @asynccontextmanager
    async def _pg_transaction(self) -> AsyncIterator[Any]:
        """PostgreSQL: a READ COMMITTED transaction on a connection of the writer's asyncpg pool, its
        statements run straight through asyncpg (``store/pgdirect.py``). A connection whose
        transaction could not be ended cleanly (lost, or a failed ROLLBACK) is never reused."""
        from restcomm.store.pgdirect import PgConnection, discard, give_back, reusable

        pool = self._pg
        raw = await pool.acquire()
        conn = PgConnection(raw, self._pg_compiler)
        clean = False
        try:
            await conn.run_sql("BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                yield conn
            except BaseException:
                try:
                    await conn.run_sql("ROLLBACK")
                except Exception:  # noqa: S110 - the body's error is what the caller gets
                    pass
                else:
                    clean = True
                raise
            await conn.run_sql("COMMIT")
            clean = True
        finally:
            if clean and reusable(raw):
                await give_back(pool, raw)
            else:
                await discard(pool, raw)

    async def _commit(self, batch: list[_Job]) -> None:
        if self._pg is not None and await self._pg_one_statement(batch):
            return
        attempt = 0
        while True:
            results: list[tuple[_Job, Any, BaseException | None]] = []
            on_commit: list[tuple[Callable[[Any], Any], Any]] = []
            _on_commit.set(on_commit)  # the writer task's context; replaced for each attempt
            committing = False
            try:
                async with self._transaction() as conn:
                    if len(batch) == 1:
                        results.append(await self._alone(conn, batch[0]))
                    else:
                        await self._inserts(conn, [j for j in batch if j.inserts], results)
                        for job in batch:
                            if job.fn is not None:
                                results.append(await self._savepoint(conn, job))
                    lost = next((e for _, _, e in results if e is not None and _lost(e)), None)
                    if lost is not None:  # a job's statement lost the connection or the transaction
                        raise lost
                    committing = True
            except _JobFailed as failed:  # a batch of one job, which failed: nothing else to commit
                job = batch[0]
                if not job.future.done():
                    job.future.set_exception(failed.error)
                return
            except Exception as exc:
                if committing or attempt >= RETRY_ATTEMPTS or not _lost(exc):
                    self._failed(batch, exc)
                    return
                # Nothing was committed: run the batch again (the jobs that may run twice).
                attempt += 1
                self.retries += 1
                again = [job for job in batch if job.rerunnable and not job.future.done()]
                self._failed([job for job in batch if not job.rerunnable], exc, logged=False)
                log.warning("group commit of %d jobs lost its transaction (%s); running %d again (attempt %d)",
                            len(batch), _brief(exc), len(again), attempt + 1)
                if not again:
                    return
                batch = again
                await asyncio.sleep(RETRY_DELAY * 4 ** (attempt - 1))
                continue
            except BaseException as exc:
                self._failed(batch, exc)
                raise
            break
        self.batches += 1
        self.jobs += len(batch)
        for fn, arg in on_commit:
            try:
                fn(arg)
            except Exception:
                log.exception("after-commit hook %r failed", fn)
        for job, value, error in results:
            if job.future.done():
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

    async def _pg_one_statement(self, batch: list[_Job]) -> bool:
        """PostgreSQL, a batch of row inserts into one table (the API's sends below and at
        saturation): one statement in autocommit mode, atomic on its own (asyncpg's executemany
        sends all of its rows before one Sync: one implicit transaction), so no BEGIN and no COMMIT
        round trips. True when done (every job answered). False when it must take the usual path
        instead: other kinds of job, several tables, or a row that conflicts (nothing was written:
        the usual path inserts job by job so only the offender fails). A connection lost under the
        statement leaves it in doubt (it may have committed): the jobs get the error and are not
        run again, as for a COMMIT that got no answer."""
        table = None
        rows: list[dict[str, Any]] = []
        for job in batch:
            if job.fn is not None:
                return False
            for t, r in job.inserts:
                if table is None:
                    table = t
                elif t is not table:
                    return False
                rows.extend(r)
        if table is None:
            return False
        from restcomm.store.pgdirect import PgConnection, discard, give_back, reusable

        pool = self._pg
        try:
            raw = await pool.acquire()
        except Exception as exc:
            if not _lost(exc):
                raise
            return False  # not sent: the usual path retries
        clean = False
        try:
            await PgConnection(raw, self._pg_compiler).execute(insert(table), rows)
            clean = True
        except IntegrityError:
            clean = True
            return False
        except Exception as exc:
            self._failed(batch, exc)
            return True
        finally:
            if clean and reusable(raw):
                await give_back(pool, raw)
            else:
                await discard(pool, raw)
        self.batches += 1
        self.jobs += len(batch)
        for job in batch:
            if not job.future.done():
                job.future.set_result(None)
        return True

    def _failed(self, batch: list[_Job], exc: BaseException, logged: bool = True) -> None:
        """The transaction failed: nobody's work is durable."""
        for job in batch:
            if not job.future.done():
                job.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
        if logged and isinstance(exc, Exception) and batch:
            if database_unavailable(exc):  # an outage: one line, not a traceback per batch
                log.error("group commit of %d jobs failed: database unavailable (%s)", len(batch), _brief(exc))
            else:
                log.exception("group commit of %d jobs failed", len(batch), exc_info=exc)

    async def _inserts(
        self, conn: Any, jobs: list[_Job], results: list[tuple[_Job, Any, BaseException | None]]
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

    async def _alone(self, conn: Any, job: _Job) -> tuple[_Job, Any, BaseException | None]:
        """A batch of one job (the common case below saturation): no SAVEPOINT and RELEASE around
        it, since there is nothing else in the transaction to keep. If it fails, the whole
        transaction is rolled back (``_JobFailed``; on SQLite with the API's writes, the shared
        transaction's own savepoint for this batch) and the caller gets its error, as it would from
        its rolled-back savepoint; a lost connection or transaction takes the batch's usual way
        (run again when the job may run twice)."""
        try:
            if job.fn is not None:
                return job, await job.fn(conn), None
            for table, rows in job.inserts:
                await conn.execute(insert(table), rows)
            return job, None, None
        except Exception as exc:
            if _lost(exc):
                raise
            raise _JobFailed(exc) from exc

    async def _savepoint(self, conn: Any, job: _Job) -> tuple[_Job, Any, BaseException | None]:
        assert job.fn is not None
        pending = _on_commit.get()
        mark = len(pending) if pending is not None else 0
        try:
            async with conn.begin_nested():
                value = await job.fn(conn)
        except Exception as exc:
            if pending is not None:
                del pending[mark:]  # rolled back: what it asked for never happened
            return job, None, exc
        return job, value, None


class _JobFailed(Exception):
    """The one job of a batch failed (``GroupCommitWriter._alone``): roll back, and give it its error."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


RETRY_ATTEMPTS = 3  # re-runs of a batch whose transaction was lost before its commit
RETRY_DELAY = 0.05  # seconds before the first re-run, times 4 for each next one


def _lost(exc: BaseException) -> bool:
    """The transaction is gone and took nothing with it: the connection dropped or PostgreSQL
    rolled it back as a deadlock or serialization victim."""
    return database_unavailable(exc) or transaction_conflict(exc)


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def _abandon(tx: Any, raw: sqlite3.Connection) -> None:
    for end in (tx.rollback, raw.rollback):
        try:
            end()
        except Exception:
            log.debug("rollback after a failed commit", exc_info=True)


def _inserter(items: list[tuple[Table, list[dict[str, Any]]]]) -> JobFn:
    async def fn(conn: AsyncConnection) -> None:
        for table, rows in items:
            await conn.execute(insert(table), rows)

    return fn
