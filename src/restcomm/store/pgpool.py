"""PostgreSQL point reads straight on asyncpg: the per-request reads of the hot path.

Every API request authenticates (one account read) and every send makes two checks (From owned,
To opted out). Through SQLAlchemy's async engine each of these was a pool checkout with its
liveness ping (a round trip), a greenlet switch, statement compilation from the cache, an
execution context and a result object, then the return to the pool: profiled under the SMS
pipeline bench, the auth read and the two checks took ~18 % of a PostgreSQL node's CPU, and six
round trips per send. Here each is one round trip on an asyncpg pool: a fixed SQL text (a named
prepared statement in asyncpg's per-connection cache, so parsed and planned once per connection),
no ping, no reset query when the connection goes back (these reads change no session state).

A connection the server dropped (restart, failover) is noticed by asyncpg when its socket closes
and replaced at the next acquire; a read that still meets a dead connection runs once more on a
fresh one (a read may always run twice), so a restarted database costs no request an error once
it is back. While it is down, the driver's error (an ``OSError`` or a SQLSTATE 08xxx) reaches the
API's error handler, which answers 503 (``store.db.database_unavailable``).

One pool per process, shared by its users (the account reader, the send checks) and closed when
the last of them closes; at most ``db_pool_size`` connections (opened as needed).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from restcomm.store import trips

# The errors of a connection that is gone or unusable (not of the statement): retried once on
# another. ``InternalClientError`` is what asyncpg raises on a connection whose protocol state the
# server's unsolicited FATAL (an operator's "fast" shutdown, 57P01) left behind.
_LOST = ("ConnectionDoesNotExistError", "InterfaceError", "ConnectionFailureError", "InternalClientError")


class DatabaseUnavailable(ConnectionError):
    """A read met a lost connection twice: the database is going or gone (the API answers 503)."""


def _lost(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, OSError)):
        return True
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith("08"):
        return True
    return type(exc).__name__ in _LOST


async def _no_reset(_conn: Any) -> None:
    """Nothing to reset: the pool's users run single read statements in autocommit mode."""


def asyncpg_dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgPool:
    """A lazily created asyncpg pool (made in the running loop at first use)."""

    def __init__(self, dsn: str, max_size: int, key: str | None = None):
        self.dsn = dsn
        self.key = key or dsn
        self.max_size = max(1, max_size)
        self.users = 0
        self._pool: Any = None
        self._creating: asyncio.Future[Any] | None = None

    async def _get(self) -> Any:
        if self._pool is not None:
            return self._pool
        if self._creating is None:
            import asyncpg

            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._creating = fut
            try:
                # More prepared statements cached per connection than asyncpg's 100: the API's and
                # the pipeline's statement shapes exceed that.
                pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=self.max_size, reset=_no_reset,
                                                 statement_cache_size=STATEMENT_CACHE_SIZE)
            except BaseException as exc:
                self._creating = None
                fut.set_exception(exc)
                fut.exception()  # retrieved: nobody else may be waiting
                raise
            self._pool = pool
            fut.set_result(pool)
            return pool
        return await asyncio.shield(self._creating)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows of one read statement (``$1``-style parameters), retried once on a lost connection."""
        pool = await self._get()
        for attempt in (0, 1):
            trips.note()
            try:
                async with pool.acquire() as conn:
                    try:
                        return list(await conn.fetch(sql, *args))
                    except Exception as exc:
                        if _lost(exc):
                            conn.terminate()  # never handed out again: the pool connects afresh
                        raise
            except Exception as exc:
                if not _lost(exc):
                    raise
                if attempt:
                    raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    async def acquire(self) -> Any:
        """A connection of the pool for the caller's own use (``store/session.py``); give it back
        with ``give_back``."""
        pool = await self._get()
        return await pool.acquire()

    async def give_back(self, conn: Any) -> None:
        pool = self._pool
        if pool is None:  # the pool was closed meanwhile (the process is stopping)
            conn.terminate()
            return
        await pool.release(conn)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    def release(self) -> None:
        """One user is done; the last one closes the pool (at once: the process is stopping)."""
        self.users -= 1
        if self.users > 0:
            return
        if _POOLS.get(self.key) is self:
            del _POOLS[self.key]
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()


_POOLS: dict[str, PgPool] = {}
STATEMENT_CACHE_SIZE = 1000


def shared_pool(engine: AsyncEngine) -> PgPool:
    """The process's pool for this engine's database (each caller must ``release()`` it)."""
    dsn = asyncpg_dsn(engine)
    pool = _POOLS.get(dsn)
    if pool is None:
        # store.db.create_engine sizes the engine's pool at 2 x db_pool_size; this one gets db_pool_size.
        size = engine.pool.size() // 2 if hasattr(engine.pool, "size") else 5
        pool = _POOLS[dsn] = PgPool(dsn, size)
    pool.users += 1
    return pool


def session_pool(engine: AsyncEngine) -> PgPool:
    """The process's pool for API requests' sessions (``store/session.py`` ``EngineSession``): apart
    from ``shared_pool``, since a request holds its session's connection while authentication and
    the send checks take theirs (one pool for both deadlocked under load: every connection held by a
    request waiting for another). At most 2 x ``db_pool_size`` connections, opened as needed; each
    caller must ``release()`` it."""
    dsn = asyncpg_dsn(engine)
    key = "sessions " + dsn
    pool = _POOLS.get(key)
    if pool is None:
        size = engine.pool.size() if hasattr(engine.pool, "size") else 10
        pool = _POOLS[key] = PgPool(dsn, size, key)
    pool.users += 1
    return pool


def writer_pool(engine: AsyncEngine, size: int) -> PgPool:
    """The message writer's own pool (``messaging/writer.py``; one connection per concurrent batch):
    apart from the sessions' pool, since API requests wait for the writer's commits while holding
    their session's connection. Each caller must ``release()`` it."""
    dsn = asyncpg_dsn(engine)
    key = "writer " + dsn
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = PgPool(dsn, size, key)
    pool.users += 1
    return pool
