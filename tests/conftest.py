"""Shared fixtures: a real server process per database backend, reached over real HTTP.

`server` is parametrized over SQLite (embedded default) and PostgreSQL (127.0.0.1:5432, a
throwaway database created here and dropped afterwards). Without a reachable PostgreSQL the
PostgreSQL runs are skipped with a clear message, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    SMS_SECTION,
    TEST_CONFIG,
    Server,
    SmtpSink,
    Tenant,
    database_env,
    make_tenant,
    smtp_section,
    start_server,
    stop_server,
)


@pytest.fixture(scope="session")
def smtp_sink(server: Server) -> Iterator[SmtpSink]:
    """The SMTP server the shared `server` is configured to send email to."""
    sink = SmtpSink(server.extra["smtp_port"])
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend: str = request.param
    data_dir = tmp_path_factory.mktemp(f"server-{backend}")
    config = data_dir / "restcomm.toml"
    smtp_port = free_port()  # the `smtp_sink` fixture listens here when a test needs mail
    config.write_text(TEST_CONFIG + smtp_section(smtp_port) + SMS_SECTION)
    with database_env(backend, data_dir, config) as env:
        proc, base, log_path = start_server(env, data_dir)
        srv = Server(backend, base, env, data_dir, proc, log_path=log_path)
        srv.extra["smtp_port"] = smtp_port
        if "RESTCOMM_DATABASE_URL" in env:
            srv.extra["database_url"] = env["RESTCOMM_DATABASE_URL"]
        r = httpx.get(f"{srv.api}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=10)
        r.raise_for_status()
        srv.admin_sid, srv.admin_token = r.json()["sid"], r.json()["auth_token"]
        yield srv
        stop_server(proc)


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return make_tenant(server)
