"""PostgreSQL for the tests: 127.0.0.1:5432 (or RESTCOMM_TEST_PG), throwaway databases.

Without a reachable server the PostgreSQL tests are skipped with the reason, except in CI
(CI=true), where a missing server is a failure: a CI run must not pass by skipping them.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("RESTCOMM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pg_reachable() -> str | None:
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    return None


def pg_create_database() -> tuple[str, str]:
    import asyncpg

    name = "restcomm_test_" + uuid.uuid4().hex[:12]

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name


def pg_drop_database(name: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


def require_postgres() -> None:
    """Skip when PostgreSQL cannot be reached, except in CI, where that is a failure."""
    why = pg_reachable()
    if why:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI but not reachable: {why}")
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} not reachable ({why}); PostgreSQL tests skipped")
