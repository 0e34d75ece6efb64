"""Point reads on the authentication hot path.

Every request reads its account from the database (nothing is cached, so a password change or a
suspension made on any node is honoured at once by all). On SQLite that read goes through a plain
sqlite3 connection in the event-loop thread: a primary-key lookup takes microseconds, far less
than handing the query to a worker thread as the async driver does. On PostgreSQL the same reads
run straight on an asyncpg pool (``store/pgpool.py``): one round trip each, no engine checkout.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from restcomm.store import trips
from restcomm.store.schema import accounts, api_keys, users

_ACCOUNT_COLUMNS = [c.name for c in accounts.columns]
_DATE_COLUMNS = {"date_created", "date_updated"}
# An IAM user's columns, beside its account's in the row ``Reader.user`` returns.
_USER_COLUMNS = ["user_sid", "user_role", "user_status", "user_password_hash"]


def _account_row(values: tuple[Any, ...], columns: list[str]) -> dict[str, Any]:
    row = dict(zip(columns, values, strict=True))
    for key in _DATE_COLUMNS & row.keys():
        if isinstance(row[key], str):
            row[key] = datetime.fromisoformat(row[key])
    return row


def _statements(param: str) -> tuple[str, str, str, str]:
    """The readers' four statements (account by sid, by email; API key; user), with the driver's
    placeholder for their one parameter."""
    cols = ", ".join(_ACCOUNT_COLUMNS)
    acols = ", ".join(f"a.{c}" for c in _ACCOUNT_COLUMNS)
    return (f"SELECT {cols} FROM accounts WHERE sid = {param}",
            f"SELECT {cols} FROM accounts WHERE email = {param}",
            f"SELECT k.secret_hash, {acols} FROM api_keys k JOIN accounts a ON a.sid = k.account_sid WHERE k.sid = {param}",
            f"SELECT u.sid, u.role, u.status, u.password_hash, {acols} FROM users u "
            f"JOIN accounts a ON a.sid = u.account_sid WHERE u.email = {param}")


class Reader:
    async def account(self, *, sid: str | None = None, email: str | None = None) -> dict[str, Any] | None:
        raise NotImplementedError

    async def api_key(self, sid: str) -> dict[str, Any] | None:
        """The key's secret_hash joined with its account's columns."""
        raise NotImplementedError

    async def user(self, email: str) -> dict[str, Any] | None:
        """The IAM user's sid, role, status and password hash (``user_*``) joined with its account's columns."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class EngineReader(Reader):
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def _first(self, stmt: Any) -> dict[str, Any] | None:
        # A checkout of its own, given back at once: the request may never need another, and one
        # held for the whole request would be held while the send path checks out more (with every
        # pooled connection so held, those wait for ever). Autocommit: no BEGIN/ROLLBACK round trips.
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            row = (await conn.execute(stmt)).mappings().first()
        return dict(row) if row else None

    async def account(self, *, sid: str | None = None, email: str | None = None) -> dict[str, Any] | None:
        cond = accounts.c.sid == sid if sid is not None else accounts.c.email == email
        return await self._first(select(accounts).where(cond))

    async def api_key(self, sid: str) -> dict[str, Any] | None:
        stmt = (
            select(api_keys.c.secret_hash, accounts)
            .join(accounts, accounts.c.sid == api_keys.c.account_sid)
            .where(api_keys.c.sid == sid)
        )
        return await self._first(stmt)

    async def user(self, email: str) -> dict[str, Any] | None:
        stmt = (
            select(users.c.sid.label("user_sid"), users.c.role.label("user_role"),
                   users.c.status.label("user_status"), users.c.password_hash.label("user_password_hash"), accounts)
            .join(accounts, accounts.c.sid == users.c.account_sid)
            .where(users.c.email == email)
        )
        return await self._first(stmt)


class PgReader(Reader):
    """PostgreSQL: the same three reads as ``SqliteReader``, one round trip each on the process's
    asyncpg pool (``store/pgpool.py``), instead of a checkout of the async engine each."""

    def __init__(self, engine: AsyncEngine):
        from restcomm.store.pgpool import shared_pool

        self.pool = shared_pool(engine)
        self._by_sid, self._by_email, self._key, self._user = _statements("$1")

    async def account(self, *, sid: str | None = None, email: str | None = None) -> dict[str, Any] | None:
        query, arg = (self._by_sid, sid) if sid is not None else (self._by_email, email)
        values = await self.pool.fetchrow(query, arg)
        return _account_row(tuple(values), _ACCOUNT_COLUMNS) if values else None

    async def api_key(self, sid: str) -> dict[str, Any] | None:
        values = await self.pool.fetchrow(self._key, sid)
        return _account_row(tuple(values), ["secret_hash", *_ACCOUNT_COLUMNS]) if values else None

    async def user(self, email: str) -> dict[str, Any] | None:
        values = await self.pool.fetchrow(self._user, email)
        return _account_row(tuple(values), [*_USER_COLUMNS, *_ACCOUNT_COLUMNS]) if values else None

    def close(self) -> None:
        self.pool.release()


class SqliteReader(Reader):
    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA query_only=ON")
        self._by_sid, self._by_email, self._key, self._user = _statements("?")

    async def account(self, *, sid: str | None = None, email: str | None = None) -> dict[str, Any] | None:
        query, arg = (self._by_sid, sid) if sid is not None else (self._by_email, email)
        trips.note()
        values = self.conn.execute(query, (arg,)).fetchone()
        return _account_row(values, _ACCOUNT_COLUMNS) if values else None

    async def api_key(self, sid: str) -> dict[str, Any] | None:
        trips.note()
        values = self.conn.execute(self._key, (sid,)).fetchone()
        return _account_row(values, ["secret_hash", *_ACCOUNT_COLUMNS]) if values else None

    async def user(self, email: str) -> dict[str, Any] | None:
        trips.note()
        values = self.conn.execute(self._user, (email,)).fetchone()
        return _account_row(values, [*_USER_COLUMNS, *_ACCOUNT_COLUMNS]) if values else None

    def close(self) -> None:
        self.conn.close()


def make_reader(engine: AsyncEngine) -> Reader:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return SqliteReader(url.database)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return PgReader(engine)
    return EngineReader(engine)
