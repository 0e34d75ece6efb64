"""Engine creation and the schema-migration entry points.

SQLite gets WAL, a busy timeout and the configured synchronous level on every connection, so
that a committed row survives a crash of the process (FULL: also of the machine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from restcomm.config import ConfigError, Settings
from restcomm.store import trips

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# How long the server's own connections wait for SQLite's write lock before failing.
SERVER_BUSY_TIMEOUT_S = 30


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if settings.is_sqlite:
        if not settings.database_url:
            check_data_dir(settings.data_dir)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        sync_level = settings.sqlite_synchronous.upper()

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_conn, sync_level, busy_timeout_ms=SERVER_BUSY_TIMEOUT_S * 1000)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            # A transaction that will write takes the write lock up front: a deferred transaction
            # that reads first and writes later can fail with SQLITE_BUSY instead of waiting.
            if conn.get_execution_options().get("sqlite_immediate"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        trips.instrument(engine.sync_engine, boundaries=False)
        return engine
    if url.startswith("postgresql"):
        # All 2 x db_pool_size connections are kept once opened (no overflow connections closed
        # after each burst and opened again: a fresh connection costs a TLS attempt and startup,
        # and starts with an empty prepared-statement cache); more statements cached per connection
        # than the driver's 100, since the API's and the pipeline's statement shapes exceed that.
        engine = create_async_engine(url, pool_size=2 * settings.db_pool_size, max_overflow=0,
                                     connect_args={"prepared_statement_cache_size": 1000})
        event.listen(engine.sync_engine.pool, "checkout", _ping)
        trips.instrument(engine.sync_engine)
        return engine
    raise ConfigError(f"unsupported database URL {url!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://")


def _ping(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """The pool's liveness check at checkout, in ONE round trip: SQLAlchemy's own pre-ping wraps its
    ``;`` in BEGIN and ROLLBACK (three round trips, and ~15 % of a node's CPU on the send path). A
    connection that does not answer is replaced (the pool retries the checkout on a fresh one), so a
    restarted database costs no request an error once it is back."""
    from sqlalchemy.util.concurrency import await_

    trips.note()
    try:
        await_(dbapi_conn._connection.fetchrow(";"))  # the asyncpg connection under SQLAlchemy's adapter
    except Exception as exc:
        raise DisconnectionError(f"connection failed its liveness check: {exc}") from exc


# SQLSTATEs of a transaction that can simply run again: PostgreSQL rolled it back whole.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, the driver's error it wraps, and what those were raised from (a short chain;
    ``__context__`` is not followed: an error merely raised while handling another is not caused by it)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 8:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__]
    return seen


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (restarted, shutting down,
    failed over, network gone): nothing about the request itself is wrong, it may be retried."""
    for e in _causes(exc):
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, OSError):  # refused, reset, unreachable, connect timeout
            return True
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300")):
            return True  # connection exception; admin shutdown, crash shutdown, cannot connect now, too many clients
        if type(e).__name__ == "InterfaceError" and "connection" in str(e) and "closed" in str(e):
            return True  # asyncpg: "connection is closed"
    return False


def transaction_conflict(exc: BaseException) -> bool:
    """A deadlock victim or a serialization failure: the transaction was rolled back as a whole."""
    return any(getattr(e, "sqlstate", None) in _CONFLICT_SQLSTATES for e in _causes(exc))


def check_data_dir(path: Path) -> None:
    """Fail at start, with a clear message, when the data directory cannot hold the database."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"data directory {path} cannot be created: {exc.strerror}") from exc
    probe = path / f".write-probe-{os.getpid()}"  # one per process: workers start side by side
    try:
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"data directory {path} is not writable: {exc.strerror}") from exc


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


# SQLite result codes (the low byte of an extended code) and PostgreSQL SQLSTATEs that mean the
# database cannot store anything right now: the disk is full, or writes fail.
_SQLITE_STORAGE = {8, 10, 13}  # SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL
_PG_STORAGE = ("53100", "58030")  # disk_full, io_error
_OS_STORAGE = {28, 27, 30, 122}  # ENOSPC, EFBIG, EROFS, EDQUOT


def storage_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the database's storage is full or failing."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_STORAGE:
            return True
        if str(getattr(err, "sqlstate", "") or "") in _PG_STORAGE:
            return True
        if isinstance(err, OSError) and err.errno in _OS_STORAGE:
            return True
        orig = getattr(err, "orig", None)
        todo.extend([orig if isinstance(orig, BaseException) else None, err.__cause__, err.__context__])
    return False


def sqlite_pragmas(dbapi_conn: Any, synchronous: str, *, busy_timeout_ms: int) -> None:
    """Every SQLite connection of the server: WAL, the configured ``synchronous``, foreign keys, and
    no BEGIN from the driver (we issue BEGIN ourselves). ``busy_timeout_ms`` 0 for connections used
    from the event loop (never wait in SQLite's busy handler there)."""
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
