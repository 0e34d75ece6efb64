"""PostgreSQL for the tests: 127.0.0.1:5432 (or RESTCOMM_TEST_PG), throwaway databases.

Without a reachable server the PostgreSQL tests are skipped with the reason, except in CI
(CI=true), where a missing server is a failure: a CI run must not pass by skipping them.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
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


def _url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name


def _create(name: str, template: str | None = None) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        finally:
            await conn.close()

    asyncio.run(run())


# One database per test process migrated to head by the real `restcomm db upgrade` (every migration,
# on every run), then copied for each test that needs a migrated database: a copy takes a fraction of
# a second where starting Python and running the migrations again took seconds each time.
_template: str | None = None
_template_lock = threading.Lock()


def _migrated_template() -> str:
    global _template
    with _template_lock:
        if _template is None:
            name = "restcomm_test_" + uuid.uuid4().hex[:12] + "_tmpl"
            _create(name)
            atexit.register(_drop_at_exit, name)  # also when the migration below fails
            env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
            env["RESTCOMM_DATABASE_URL"] = _url(name)
            env["RESTCOMM_DATA_DIR"] = where = tempfile.mkdtemp(prefix="restcomm-template-")
            out = subprocess.run([sys.executable, "-m", "restcomm", "db", "upgrade"], env=env, cwd=where,
                                 capture_output=True, text=True, timeout=120)
            shutil.rmtree(where, ignore_errors=True)
            if out.returncode != 0:
                raise RuntimeError(f"db upgrade of the template database failed: {out.stdout}\n{out.stderr}")
            _template = name
        return _template


def _drop_at_exit(name: str) -> None:
    try:
        pg_drop_database(name)
    except Exception as exc:  # the test run's result stands; say what was left behind
        print(f"could not drop the template database {name}: {exc}", file=sys.stderr)


def pg_create_database(*, migrated: bool = False) -> tuple[str, str]:
    """A throwaway database (name, SQLAlchemy URL): empty, or with ``migrated`` at the schema's head
    (a copy of this process's migrated template database)."""
    name = "restcomm_test_" + uuid.uuid4().hex[:12]
    _create(name, _migrated_template() if migrated else None)
    return name, _url(name)


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
