"""The two reads every send makes (does the account own From? did To opt out?), made cheap.

They run on every accepted message, so on SQLite they use a plain read-only sqlite3 connection in the
event-loop thread: an indexed point read takes microseconds, while handing each query to the async
driver's worker thread costs a thread round trip plus a pool checkout and a transaction. Nothing is
cached, so a number released or an opt-out recorded is seen by the very next send. On PostgreSQL they
run straight on an asyncpg pool (``store/pgpool.py``): one round trip each, no engine checkout.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from restcomm.messaging import store
from restcomm.store import trips


class SendChecks:
    async def owns_number(self, account: Any, number: str) -> bool:
        """True when ``number`` (in any of its forms) is a literal number of ``account``."""
        raise NotImplementedError

    async def opted_out(self, sender: str, recipient: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass


class EngineChecks(SendChecks):
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    # Autocommit: a read needs no BEGIN and ROLLBACK around it (two round trips fewer each).
    async def owns_number(self, account: Any, number: str) -> bool:
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await store.owned_number(conn, account, number) is not None

    async def opted_out(self, sender: str, recipient: str) -> bool:
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await store.opted_out(conn, sender, recipient)


def _placeholders(values: list[str]) -> str:
    return ",".join("?" * len(values))


class SqliteChecks(SendChecks):
    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA query_only=ON")

    async def owns_number(self, account: Any, number: str) -> bool:
        forms = store.number_forms(number)
        trips.note()
        rows = self.conn.execute(
            "SELECT account_sid, is_pattern FROM incoming_phone_numbers WHERE organization_sid = ? "
            f"AND phone_number IN ({_placeholders(forms)})",
            (account["organization_sid"], *forms),
        ).fetchall()
        return any(sid == account["sid"] and not pattern for sid, pattern in rows)

    async def opted_out(self, sender: str, recipient: str) -> bool:
        senders, recipients = store.number_forms(sender), store.number_forms(recipient)
        trips.note()
        row: Any = self.conn.execute(
            f"SELECT 1 FROM opt_outs WHERE sender IN ({_placeholders(senders)}) "
            f"AND recipient IN ({_placeholders(recipients)}) LIMIT 1",
            (*senders, *recipients),
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self.conn.close()


class PgChecks(SendChecks):
    """PostgreSQL: the same two reads as ``SqliteChecks``, one round trip each on the process's
    asyncpg pool (``store/pgpool.py``) instead of an engine checkout (ping + statement) each."""

    _OWNED = ("SELECT account_sid, is_pattern FROM incoming_phone_numbers "
              "WHERE organization_sid = $1 AND phone_number = ANY($2::varchar[])")
    _OPTED_OUT = "SELECT 1 FROM opt_outs WHERE sender = ANY($1::varchar[]) AND recipient = ANY($2::varchar[]) LIMIT 1"

    def __init__(self, engine: AsyncEngine):
        from restcomm.store.pgpool import shared_pool

        self.pool = shared_pool(engine)

    async def owns_number(self, account: Any, number: str) -> bool:
        rows = await self.pool.fetch(self._OWNED, account["organization_sid"], store.number_forms(number))
        return any(sid == account["sid"] and not pattern for sid, pattern in rows)

    async def opted_out(self, sender: str, recipient: str) -> bool:
        row = await self.pool.fetchrow(self._OPTED_OUT, store.number_forms(sender), store.number_forms(recipient))
        return row is not None

    def close(self) -> None:
        self.pool.release()


def make_checks(engine: AsyncEngine) -> SendChecks:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return SqliteChecks(url.database)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return PgChecks(engine)
    return EngineChecks(engine)
