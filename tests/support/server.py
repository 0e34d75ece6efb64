"""A real server process per database backend, reached over real HTTP: starting, waiting for it,
stopping it, its environment and configuration, tenants, and an SMTP sink. The fixtures that use
these live in tests/conftest.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.postgres import (
    pg_create_database,
    pg_drop_database,
    require_postgres,
)

ROOT = Path(__file__).resolve().parents[2]  # the repository
API = "/restcomm/2012-04-24"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Adm1n-Pa55word!"


@dataclass
class Server:
    backend: str
    base_url: str
    env: dict[str, str]
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    admin_sid: str = ""
    admin_token: str = ""
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.base_url + API

    def client(self, user: str | None = None, password: str | None = None, **kw: Any) -> httpx.Client:
        auth = (user or self.admin_sid, password or self.admin_token)
        return httpx.Client(base_url=self.api, auth=auth, timeout=30, **kw)

    def admin(self) -> httpx.Client:
        return self.client()


def start_server(env: dict[str, str], data_dir: Path, port: int | None = None, wait: bool = True) -> tuple[
    subprocess.Popen[bytes], str, Path
]:
    port = port or free_port()
    log_path = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "restcomm", "serve", "--port", str(port), "--drain-seconds", "5"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(data_dir),
    )
    base = f"http://127.0.0.1:{port}"
    if wait:
        wait_ready(proc, base, log_path)
    return proc, base, log_path


def wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()[-4000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def base_env(data_dir: Path, database_url: str | None = None, config: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(
        RESTCOMM_DATA_DIR=str(data_dir),
        RESTCOMM_ADMIN_EMAIL=ADMIN_EMAIL,
        RESTCOMM_ADMIN_PASSWORD=ADMIN_PASSWORD,
        RESTCOMM_LOG_LEVEL="WARNING",
        RESTCOMM_SIP_LISTEN="127.0.0.1:0",  # any free port: servers of parallel tests never collide on 5080
        # PostgreSQL: a node may open up to ~5.5 x db_pool_size connections (docs/performance.md); three
        # test processes, each with multi-node and multi-worker servers, share one max_connections = 100.
        RESTCOMM_DB_POOL_SIZE="5",
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["RESTCOMM_DATABASE_URL"] = database_url
    if config:
        env["RESTCOMM_CONFIG"] = str(config)
    return env


TEST_CONFIG = """
[[available_phone_numbers]]
phone_number = "+15105550100"
friendly_name = "(510) 555-0100"
region = "CA"
iso_country = "US"
type = "local"

[[available_phone_numbers]]
phone_number = "+15105552255"
friendly_name = "(510) 555-2255"
region = "CA"
iso_country = "US"
type = "local"

[[available_phone_numbers]]
phone_number = "+12125550199"
friendly_name = "(212) 555-0199"
region = "NY"
iso_country = "US"
type = "local"

[[available_phone_numbers]]
phone_number = "+18005550123"
friendly_name = "(800) 555-0123"
iso_country = "US"
type = "tollfree"

[[available_phone_numbers]]
phone_number = "+447700900123"
friendly_name = "07700 900123"
iso_country = "GB"
type = "mobile"

# Area code 312 and +1 888: reserved for tests/integration/test_numbers.py and
# test_available_numbers.py, which provision and release them (other tests: leave them alone).
[[available_phone_numbers]]
phone_number = "+13125550140"
region = "IL"
postal_code = "60601"
rate_center = "CHICAGO"
lata = 358
latitude = 41.88
longitude = -87.62
cost = "1.00"
iso_country = "US"
type = "local"
capabilities = ["voice", "sms", "mms"]

[[available_phone_numbers]]
phone_number = "+13125557328"
friendly_name = "(312) 555-SEAT"
region = "IL"
iso_country = "US"
type = "local"

[[available_phone_numbers]]
phone_number = "+13125550142"
region = "IL"
iso_country = "US"
type = "local"
capabilities = { voice = true, sms = false }

[[available_phone_numbers]]
phone_number = "+18885550140"
iso_country = "US"
type = "tollfree"
"""


# SMS pipeline settings for the shared server: quick polls and retries so tests finish fast, a low
# hop limit for the loop test, and sender IDs allowed (tests/integration/test_sms_*.py).
SMS_SECTION = """
[sms]
poll_interval = 0.2
app_timeout = 3.0
hop_limit = 4
max_documents = 6
alphanumeric_senders = true
callback_backoff = 0.05
callback_backoff_max = 0.2
callback_max_attempts = 4
help_reply = "Test help: reply STOP to stop."
"""


def smtp_section(port: int, **overrides: Any) -> str:
    """An [smtp] section for a loopback SMTP server, with retries fast enough for tests."""
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "from": "platform@example.com", "timeout_seconds": 5,
        "max_attempts": 3, "retry_base_seconds": 0.1, "retry_max_seconds": 0.5, "poll_seconds": 0.2,
    }
    values.update(overrides)
    lines = [f"{k} = {v!r}" if isinstance(v, int | float) and not isinstance(v, bool) else
             f"{k} = {str(v).lower()}" if isinstance(v, bool) else f'{k} = "{v}"' for k, v in values.items()]
    return "\n[smtp]\n" + "\n".join(lines) + "\n"


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: Any  # email.message.EmailMessage


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a loopback port that keeps every message it accepts.

    ``reject`` maps a recipient address to the SMTP reply it gets instead of 250 (e.g.
    "550 5.1.1 no such user" for a permanent refusal, "451 4.3.0 try later" for a temporary one).
    """

    def __init__(self, port: int):
        import threading

        self.port = port
        self.received: list[ReceivedMail] = []
        self.reject: dict[str, str] = {}
        self._cond = threading.Condition()
        self._controller: Any = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        reply = self.reject.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        import email.policy

        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._cond:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, predicate: Any, count: int = 1, timeout: float = 15) -> list[ReceivedMail]:
        """The received messages matching ``predicate`` once there are ``count`` of them (bounded wait)."""
        def matching() -> list[ReceivedMail]:
            return [m for m in self.received if predicate(m)]

        with self._cond:
            self._cond.wait_for(lambda: len(matching()) >= count, timeout=timeout)
            found = matching()
        assert len(found) >= count, f"expected {count} message(s), got {len(found)} of {len(self.received)}"
        return found


def migrate(env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "restcomm", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"db upgrade failed: {out.stdout}\n{out.stderr}")


@contextlib.contextmanager
def database_env(backend: str, data_dir: Path, config: Path | None = None) -> Iterator[dict[str, str]]:
    """A server environment on its own database: the SQLite file in data_dir, or a throwaway
    PostgreSQL database (a copy of one migrated by `restcomm db upgrade`, dropped afterwards)."""
    if backend == "sqlite":
        yield base_env(data_dir, None, config)
        return
    require_postgres()
    name, url = pg_create_database(migrated=True)
    try:
        yield base_env(data_dir, url, config)
    finally:
        pg_drop_database(name)


@dataclass
class Tenant:
    """A fresh account (a child of the admin) with its own credentials, for isolated tests."""

    sid: str
    token: str
    email: str
    password: str
    server: Server

    def client(self, **kw: Any) -> httpx.Client:
        return self.server.client(self.sid, self.token, **kw)

    def sub(self, name: str = "") -> Tenant:
        return make_tenant(self.server, parent=self, name=name)


def make_tenant(server: Server, parent: Tenant | None = None, name: str = "") -> Tenant:
    email = f"{name or 'tenant'}-{uuid.uuid4().hex[:10]}@example.com"
    password = "Str0ng-Passw0rd!"
    with (parent.client() if parent else server.admin()) as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": password, "FriendlyName": name or email})
        assert r.status_code == 200, r.text
        body = r.json()
    return Tenant(body["sid"], body["auth_token"], email, password, server)
