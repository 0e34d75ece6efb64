"""A throwaway PostgreSQL server of a test's own, which the test may stop, restart or crash.

The machine's shared PostgreSQL (5432) is never touched: ``initdb`` makes a fresh cluster in a
temporary directory, started on a free loopback port with trust authentication, and removed at the
end. ``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(``runuser -u postgres --``). Outside CI a missing PostgreSQL installation skips the test with the
reason; in CI (CI=true) it is a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.postgres import IN_CI


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"a throwaway PostgreSQL cluster is required in CI but cannot be made: {why}")
    pytest.skip(f"throwaway PostgreSQL cluster unavailable ({why}); PostgreSQL restart tests skipped")


def _bindir() -> Path | None:
    found = os.environ.get("RESTCOMM_TEST_PG_BINDIR")
    if found:
        return Path(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
                        if p.split("/")[4].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Cluster:
    bindir: Path
    data: Path
    port: int
    run_as: list[str]  # prefix that runs a command as the cluster's owner
    log: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str, timeout: float = 60) -> None:
        cmd = [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {out.stdout}\n{out.stderr}\n{self.log_tail()}")

    def start(self) -> None:
        self.ctl("-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-w", "-t", "30", "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self.ctl("-w", "-t", "30", "-m", mode, "restart")

    def psql(self, sql: str) -> None:
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def log_tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A running PostgreSQL cluster on its own port, removed afterwards."""
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        _unavailable("initdb not found (set RESTCOMM_TEST_PG_BINDIR)")
    assert bindir is not None
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="restcomm-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            shutil.rmtree(base, ignore_errors=True)
            _unavailable("running as root without runuser or a postgres user")
        assert owner is not None and runuser is not None
        os.chown(base, owner.pw_uid, owner.pw_gid)
        run_as = [runuser, "-u", "postgres", "--"]
    data = base / "data"
    cluster = Cluster(bindir, data, free_port(), run_as, base / "postgres.log")
    try:
        out = subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )
        if out.returncode != 0:
            _unavailable(f"initdb failed: {out.stderr.strip()[-500:]}")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {cluster.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 100\nshared_buffers = 32MB\n"
            )
        cluster.start()
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            try:
                cluster.stop("immediate")
            except Exception:
                pass
        deadline = time.monotonic() + 10
        while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(base, ignore_errors=True)
