"""How API requests reach the database: one ``Database`` per process, one ``Session`` per request.

A ``Session`` offers the slice of SQLAlchemy's ``AsyncConnection`` the API uses (``execute`` of
Core statements, ``begin``, ``in_transaction``, ``commit``, ``close``, ``dialect``), so handlers
and the helpers they call (audit, notifications, the voice store) are unchanged; what changes is
how each statement is carried out.

SQLite: the statements run right here in the event-loop thread on plain (synchronous) sqlite3
connections through SQLAlchemy's synchronous engine (its compiled-statement cache makes the
statement cost a few tens of microseconds). Handing each statement to the async driver's worker
thread cost far more (a thread round trip per statement and the GIL traffic that comes with it).

* Reads share one connection in autocommit mode: every statement sees the latest commit (WAL),
  never waits for a writer and leaves no transaction open between statements.
* Writes (``begin()``) share one write connection and are group-committed: the first body opens a
  transaction (``BEGIN IMMEDIATE`` under a zero busy timeout, retried asynchronously while another
  process or this process's message writer holds SQLite's lock: nobody sleeps in the busy handler),
  each body runs in a SAVEPOINT (a failing one is rolled back alone), and one COMMIT ends the bodies
  that ran before it got the connection; each caller returns only after that COMMIT. Bodies run one
  at a time; their statements cost microseconds. The COMMIT (its fsync) runs in the loop thread
  while it is quick (``INLINE_COMMIT_SECONDS``, an average of the commits measured): a worker
  thread's round trip cost far more than a fast disk's fsync once the loop is busy (the thread waits
  for the GIL and the loop to come round: 29 ms at the median, 140 ms at p90, under the mixed load,
  for a ~0.5 ms fsync). A slow disk's commits go to a worker thread, with one in the loop thread
  now and then (``INLINE_PROBE_SECONDS``) to notice when the disk is quick again. SQLite's automatic
  checkpoint (copying the WAL into the database file and an fsync of that file, run by the COMMIT
  that crosses 1,000 WAL pages) is turned off on this connection, so it never runs in the loop
  thread: a worker thread runs a PASSIVE checkpoint on a connection of its own every
  ``CHECKPOINT_EVERY_COMMITS`` commits.

PostgreSQL: an asyncpg connection of the sessions' pool (taken on the first statement and kept for
the rest of the request), the statements run on it straight through asyncpg (``store/pgdirect.py``).

Every statement and transaction boundary sent is counted (``store/trips.py``); a test pins the
count per API request.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from restcomm.store import trips
from restcomm.store.compiled import Query
from restcomm.store.db import sqlite_pragmas
from restcomm.store.pgdirect import Compiler, PgConnection, discard, give_back

log = logging.getLogger("restcomm.store")

# SQLite COMMITs run in the loop thread while their average (an exponential moving average of the
# ones measured) is under this; above it, in a worker thread, with one in the loop thread at most
# every INLINE_PROBE_SECONDS to measure the disk again.
INLINE_COMMIT_SECONDS = 0.002
INLINE_PROBE_SECONDS = 1.0
# A PASSIVE checkpoint in a worker thread after this many shared commits (instead of SQLite's
# automatic one, which would run inside a COMMIT made in the loop thread).
CHECKPOINT_EVERY_COMMITS = 100


class Database:
    """One process's way to the database for API requests."""

    def __init__(self, engine: AsyncEngine, *, sqlite_synchronous: str = "FULL"):
        self.engine = engine
        self.lock_waits = 0  # SQLite: BEGIN IMMEDIATE refused because another connection wrote
        self.commits = 0  # SQLite: shared write transactions committed
        self.commit_seconds = 0.0  # SQLite: moving average of a COMMIT's duration (see the module docstring)
        self.thread_commits = 0  # SQLite: COMMITs handed to a worker thread (the disk was slow)
        self._probed = 0.0  # SQLite: when a COMMIT last ran in the loop thread
        self.checkpoints = 0  # SQLite: checkpoints run (worker thread)
        self._uncheckpointed = 0  # SQLite: commits since the last checkpoint started
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self.sqlite = engine.url.get_backend_name() == "sqlite" and engine.url.database not in (None, "", ":memory:")
        self._sync: Engine | None = None
        self._read: Connection | None = None
        self._write: Connection | None = None
        self._busy = False  # SQLite: a request body or the COMMIT is using the write connection
        self._free: asyncio.Event | None = None  # set when it stops being busy (wakes every waiter)
        # SQLite: the waiters of the open write transaction (each resolved by its COMMIT).
        self._batch: list[asyncio.Future[None]] | None = None
        if self.sqlite:
            self._sync = loop_engine(engine, sqlite_synchronous)
        self._pg_pool: Any = None  # PostgreSQL: the sessions' asyncpg pool (store/pgpool.py), on first use
        self._pg_compiler: Compiler | None = None

    def pg_sessions(self) -> Any:
        if self._pg_pool is None:
            from restcomm.store.pgpool import session_pool

            self._pg_pool = session_pool(self.engine)
        return self._pg_pool

    def pg_compiler(self) -> Compiler:
        if self._pg_compiler is None:
            self._pg_compiler = Compiler(self.engine.dialect)
        return self._pg_compiler

    @property
    def dialect(self) -> Any:
        return self.engine.dialect

    def session(self) -> Session:
        return SqliteSession(self) if self.sqlite else EngineSession(self)

    # -- SQLite connections (made on first use, in the loop thread) --------------------------------

    def read_connection(self) -> Connection:
        if self._read is None:
            assert self._sync is not None
            self._read = self._sync.connect()
            self._read.connection.driver_connection.execute("PRAGMA query_only=ON")  # type: ignore[union-attr]
        return self._read

    def write_connection(self) -> Connection:
        if self._write is None:
            assert self._sync is not None
            self._write = self._sync.connect()
            # No automatic checkpoint inside our COMMITs (they may run in the loop thread): see _checkpoint.
            self._write.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
        return self._write

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database file (PASSIVE: never waits for readers or writers), in a
        worker thread on a connection of its own."""
        if self._checkpointer is None:
            assert self.engine.url.database is not None
            self._checkpointer = sqlite3.connect(self.engine.url.database, isolation_level=None,
                                                 check_same_thread=False)
        try:
            await asyncio.to_thread(self._checkpointer.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except Exception:
            log.warning("WAL checkpoint failed (retried after the next commits)", exc_info=True)
        finally:
            self._checkpointing = None

    @asynccontextmanager
    async def write_batch(self, savepoint: str = "api") -> AsyncIterator[Connection]:
        """SQLite: run the block on the write connection, inside the shared transaction and a
        SAVEPOINT of its own (an exception rolls back the block alone and propagates); return once
        the COMMIT that ends it is durable (or raise its error). Blocks run one at a time."""
        await self._enter()
        try:
            batch = self._batch
            if batch is None:
                batch = await self._open_batch()
            # A future of its own (the COMMIT resolves each): a cancelled caller cancels only its
            # wait, and the caller wakes one turn of the loop sooner than through a shared one.
            mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            batch.append(mine)
            conn = self.write_connection()
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute(f"SAVEPOINT {savepoint}")
            trips.note()
            try:
                yield conn
            except BaseException:
                raw.execute(f"ROLLBACK TO {savepoint}")
                raw.execute(f"RELEASE {savepoint}")
                trips.note(2)
                raise
            raw.execute(f"RELEASE {savepoint}")
            trips.note()
        finally:
            self._leave()
        await mine

    async def _open_batch(self) -> list[asyncio.Future[None]]:
        """Take SQLite's write lock (called holding the write connection) and open the transaction that the
        request bodies queued until its COMMIT share: many writes, one fsync."""
        conn = self.write_connection()
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        delay = 0.0005
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                self.lock_waits += 1
                await asyncio.sleep(delay)  # whoever holds it (maybe on this loop) finishes
                delay = min(delay * 2, 0.002)
        trips.note()
        batch: list[asyncio.Future[None]] = []
        self._batch = batch
        # The COMMIT waits for the bodies that run before it gets the connection: they join this batch.
        asyncio.get_running_loop().create_task(self._commit(batch))
        return batch

    async def _enter(self) -> None:
        """Wait until the write connection is free and take it. Free (the common case: bodies run
        their statements without yielding): no suspension at all. Busy: every waiter is woken at
        once when it frees, so the queued bodies all run in the same turn of the loop (a FIFO lock
        would hand it on one waiter per turn)."""
        while self._busy:
            if self._free is None:
                self._free = asyncio.Event()
            await self._free.wait()
        self._busy = True

    def _leave(self) -> None:
        self._busy = False
        if self._free is not None:
            self._free.set()
            self._free = None

    async def _commit(self, batch: list[asyncio.Future[None]]) -> None:
        await self._enter()
        try:
            self._batch = None
            raw: sqlite3.Connection = self.write_connection().connection.driver_connection  # type: ignore[assignment]
            trips.note()
            try:
                now = time.monotonic()
                if self.commit_seconds < INLINE_COMMIT_SECONDS or now - self._probed >= INLINE_PROBE_SECONDS:
                    self._probed = now
                    took = _timed_commit(raw)  # in the loop thread: quick (see the module docstring)
                else:
                    self.thread_commits += 1
                    took = await asyncio.to_thread(_timed_commit, raw)  # the fsync, off the loop
                self.commit_seconds += (took - self.commit_seconds) * 0.2
            except BaseException as exc:
                try:
                    raw.rollback()
                except Exception:  # noqa: S110 - the commit's own error is what the callers get
                    pass
                error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
                for waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(error)
                if not isinstance(exc, Exception):
                    raise
                return
            self.commits += 1
            self._uncheckpointed += 1
            if self._uncheckpointed >= CHECKPOINT_EVERY_COMMITS and self._checkpointing is None:
                self._uncheckpointed = 0
                self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())
            for waiter in batch:
                if not waiter.done():
                    waiter.set_result(None)
        finally:
            self._leave()

    def close(self) -> None:
        if self._pg_pool is not None:
            pool, self._pg_pool = self._pg_pool, None
            pool.release()
        for conn in (self._read, self._write):
            if conn is not None:
                conn.close()
        self._read = self._write = None
        if self._checkpointer is not None and self._checkpointing is None:  # (one in flight finishes alone)
            self._checkpointer.close()
        self._checkpointer = None
        if self._sync is not None:
            self._sync.dispose()


def _timed_commit(raw: sqlite3.Connection) -> float:
    started = time.perf_counter()
    raw.commit()
    return time.perf_counter() - started


def loop_engine(engine: AsyncEngine, synchronous: str) -> Engine:
    """A synchronous engine on the same SQLite file, used from the event-loop thread. It never
    issues BEGIN itself (statements outside ``Session.begin`` run in autocommit mode) and never
    waits in SQLite's busy handler (which would block the loop)."""
    sync = create_engine(engine.url.set(drivername="sqlite"), connect_args={"check_same_thread": False})

    @event.listens_for(sync, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        sqlite_pragmas(dbapi_conn, synchronous, busy_timeout_ms=0)

    trips.instrument(sync, boundaries=False)  # BEGIN IMMEDIATE and COMMIT are counted where sent
    return sync


class Session:
    """One request's database access (see the module docstring)."""

    def __init__(self, db: Database):
        self.db = db

    @property
    def dialect(self) -> Any:
        return self.db.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        raise NotImplementedError

    def begin(self) -> Any:
        """``async with session.begin():`` a write transaction, committed on success."""
        raise NotImplementedError

    def in_transaction(self) -> bool:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def execution_options(self, **_options: Any) -> Session:
        return self

    # Constant statements (``store/compiled.py``): on SQLite straight on the sqlite3 connection;
    # elsewhere through ``execute``.

    async def rows(self, query: Query, parameters: Mapping[str, Any] | None = None) -> list[Any]:
        """The query's rows, as mappings."""
        return list((await self.execute(query.statement, parameters)).mappings().all())

    async def first(self, query: Query, parameters: Mapping[str, Any] | None = None) -> Any | None:
        """The query's first row (a mapping), or None."""
        return (await self.execute(query.statement, parameters)).mappings().first()

    async def run(self, query: Query, parameters: Mapping[str, Any] | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE; the number of rows it matched."""
        return (await self.execute(query.statement, parameters)).rowcount


class SqliteSession(Session):
    def __init__(self, db: Database):
        super().__init__(db)
        self._tx: Connection | None = None

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if self._tx is not None:
            return self._tx.execute(statement, parameters)
        return self.db.read_connection().execute(statement, parameters)

    def _raw(self) -> sqlite3.Connection:
        conn = self._tx if self._tx is not None else self.db.read_connection()
        return conn.connection.driver_connection  # type: ignore[return-value]

    async def rows(self, query: Query, parameters: Mapping[str, Any] | None = None) -> list[Any]:
        return query.sqlite_rows(self._raw(), self.db.dialect, parameters)

    async def first(self, query: Query, parameters: Mapping[str, Any] | None = None) -> Any | None:
        rows = query.sqlite_rows(self._raw(), self.db.dialect, parameters, first=True)
        return rows[0] if rows else None

    async def run(self, query: Query, parameters: Mapping[str, Any] | None = None) -> int:
        return query.sqlite_run(self._raw(), self.db.dialect, parameters)

    def in_transaction(self) -> bool:
        return self._tx is not None

    async def commit(self) -> None:
        pass  # reads are autocommit; a write transaction commits at the end of ``begin``

    async def close(self) -> None:
        pass

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Session]:
        if self._tx is not None:
            raise RuntimeError("a write transaction is already open in this request")
        async with self.db.write_batch() as conn:
            self._tx = conn
            try:
                yield self
            finally:
                self._tx = None


class EngineSession(Session):
    """PostgreSQL: one connection of the sessions' asyncpg pool (``store/pgpool.py``) for the whole
    request, taken at its first statement; statements run on it straight through asyncpg
    (``store/pgdirect.py``: compiled once per shape, asyncpg's prepared-statement cache, no greenlet,
    no execution context, no liveness ping at checkout). Reads run in autocommit mode: no BEGIN and
    no ROLLBACK round trips around them (each statement sees the latest commit, as on SQLite);
    ``begin`` opens a real transaction (READ COMMITTED) and commits it at the end of the block.

    A read outside a transaction, or the BEGIN, that meets a connection the server dropped (restart,
    failover) runs once more on a fresh connection (nothing was done on the dead one); a second
    failure propagates, and the API answers 503 (``store.db.database_unavailable``)."""

    def __init__(self, db: Database):
        super().__init__(db)
        self._conn: PgConnection | None = None
        self._tx = False
        self._busy = False  # a statement in flight (a cancelled request leaves the connection unusable)

    async def _connection(self) -> PgConnection:
        if self._conn is None:
            raw = await self.db.pg_sessions().acquire()
            self._conn = PgConnection(raw, self.db.pg_compiler())
        return self._conn

    async def _discard(self) -> None:
        """Drop the connection (lost, or in an unknown state): never handed out again."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await discard(self.db.pg_sessions(), conn.raw)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        conn = self._conn or await self._connection()
        self._busy = True
        try:
            return await conn.execute(statement, parameters)
        except Exception as exc:
            if self._tx or not _lost(exc) or not getattr(statement, "is_select", False):
                if _lost(exc):
                    self._busy = False
                    await self._discard()
                raise
            await self._discard()
            conn = await self._connection()
            return await conn.execute(statement, parameters)
        finally:
            self._busy = False

    def in_transaction(self) -> bool:
        return self._tx

    async def commit(self) -> None:
        pass  # reads are autocommit; a write transaction commits at the end of ``begin``

    async def close(self) -> None:
        if self._conn is not None:
            if self._busy or self._tx:  # cancelled mid-statement: the connection's state is unknown
                await self._discard()
                return
            conn, self._conn = self._conn, None
            await give_back(self.db.pg_sessions(), conn.raw)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Session]:
        if self._tx:
            raise RuntimeError("a write transaction is already open in this request")
        conn = await self._connection()
        try:
            await conn.run_sql(_BEGIN)
        except Exception as exc:
            if not _lost(exc):
                raise
            await self._discard()
            conn = await self._connection()
            await conn.run_sql(_BEGIN)
        self._tx = True
        try:
            yield self
        except BaseException:
            try:
                await conn.run_sql("ROLLBACK")
            except BaseException:
                await self._discard()
            raise
        else:
            try:
                await conn.run_sql("COMMIT")
            except BaseException:
                await self._discard()  # in doubt, or the connection is gone: never reused
                raise
        finally:
            self._tx = False


_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"


def _lost(exc: BaseException) -> bool:
    from restcomm.store.db import database_unavailable
    from restcomm.store.pgpool import _lost as pool_lost

    return pool_lost(exc) or database_unavailable(exc)
