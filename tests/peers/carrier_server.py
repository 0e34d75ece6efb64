"""A real ``restcomm serve`` process configured with ``[[carriers]]``, for the carrier tests.

The shared ``server`` fixture has no carriers, so these tests run their own server per module and
backend (SQLite, PostgreSQL), pointed at SMSC peers the module starts (tests/peers/smsc.py).
Timeouts in the carrier settings are short so the failure paths (response timeouts, reconnects,
throttling backoff, failover) take milliseconds to a second, never the production defaults.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.support.postgres import pg_create_database, pg_drop_database
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    base_env,
    start_server,
    stop_server,
)
from tests.support.sms_app import AppServer, Seen

# Per-carrier settings for tests (the operator-facing keys plus quick timers).
FAST: dict[str, Any] = {
    "system_id": "restcomm",
    "password": "secret",
    "binds": 2,
    "window": 10,
    "max_tps": 0,
    "response_timeout": 1.5,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.3,
    "throttle_initial": 0.01,
    "throttle_max": 0.1,
    "submit_timeout": 10.0,
    "drain_timeout": 2.0,
    "unbind_timeout": 1.0,
    "mo_reassembly_timeout": 0.5,
    "bind_wait": 1.0,
}

SMS = """
[sms]
poll_interval = 0.2
alphanumeric_senders = true
callback_backoff = 0.05
callback_backoff_max = 0.2
lease_seconds = 2.0
"""

FINAL = {"delivered", "undelivered", "failed"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def carriers_toml(carriers: Iterable[dict[str, Any]]) -> str:
    out = []
    for c in carriers:
        entry = {**FAST, "host": "127.0.0.1", **c}
        out.append("[[carriers]]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in entry.items()))
    return "\n\n".join(out) + "\n"


@dataclass
class CarrierServer:
    backend: str
    data_dir: Path
    config: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    port: int | None = None
    admin_sid: str = ""
    admin_token: str = ""
    db_name: str | None = None

    def start(self) -> CarrierServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "restcomm.toml"
        path.write_text(self.config)
        if not self.env:
            database_url = None
            if self.backend == "postgres":
                self.db_name, database_url = pg_create_database(migrated=True)
            self.env = base_env(self.data_dir, database_url, path)
        self.proc, self.base_url, _ = start_server(self.env, self.data_dir, port=self.port)
        self.port = int(self.base_url.rsplit(":", 1)[1])
        if not self.admin_sid:
            r = httpx.get(f"{self.base_url}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD),
                          timeout=10)
            r.raise_for_status()
            self.admin_sid, self.admin_token = r.json()["sid"], r.json()["auth_token"]
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None

    def crash(self) -> None:
        """kill -9: no shutdown, no unbind, nothing flushed."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.db_name:
            pg_drop_database(self.db_name)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url + API, auth=(self.admin_sid, self.admin_token), timeout=30)

    def log(self) -> str:
        logs = sorted(self.data_dir.glob("server-*.log"))
        return "\n".join(p.read_text()[-3000:] for p in logs)


@dataclass
class Outcome:
    sid: str
    statuses: list[str]
    error_code: str | None

    @property
    def final(self) -> str | None:
        return next((s for s in reversed(self.statuses) if s in FINAL), None)


def callbacks_by_sid(apps: AppServer, path: str) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for s in apps.requests(path):
        sid = s.params["MessageSid"]
        o = out.setdefault(sid, Outcome(sid, [], None))
        o.statuses.append(s.params["MessageStatus"])
        if "ErrorCode" in s.params:
            o.error_code = s.params["ErrorCode"]
    return out


def wait_final(apps: AppServer, path: str, sids: Iterable[str], timeout: float = 20.0) -> dict[str, Outcome]:
    """Block until every message in ``sids`` had a final status callback (an event wait on the app)."""
    wanted = set(sids)

    def done() -> bool:
        got = callbacks_by_sid(apps, path)
        return all(sid in got and got[sid].final for sid in wanted)

    with apps._cond:
        apps._cond.wait_for(done, timeout=timeout)
    got = callbacks_by_sid(apps, path)
    missing = [sid for sid in wanted if sid not in got or not got[sid].final]
    assert not missing, f"{len(missing)} of {len(wanted)} messages without a final status callback, e.g. " \
                        f"{[got.get(s) for s in missing[:3]]}"
    return {sid: got[sid] for sid in wanted}


def wait_requests(apps: AppServer, path: str, count: int, timeout: float = 20.0) -> list[Seen]:
    return apps.wait(path, count, timeout)


def send(c: httpx.Client, account: str, frm: str, to: str, body: str, callback: str | None = None) -> dict[str, Any]:
    data = {"From": frm, "To": to, "Body": body}
    if callback:
        data["StatusCallback"] = callback
    r = c.post(f"/Accounts/{account}/SMS/Messages.json", data=data)
    assert r.status_code in (200, 201), r.text
    return r.json()


def send_many(srv: CarrierServer, frm: str, to: list[str], bodies: list[str], callback: str | None = None,
              threads: int = 8) -> list[dict[str, Any]]:
    """Send through the API from several threads (a burst, as clients do)."""
    results: list[dict[str, Any] | None] = [None] * len(bodies)
    index = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        with srv.client() as c:
            while True:
                with lock:
                    i = next(index, None)
                if i is None:
                    return
                results[i] = send(c, srv.admin_sid, frm, to[i % len(to)], bodies[i], callback)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def app_server() -> Iterator[AppServer]:
    apps = AppServer().start()
    yield apps
    apps.stop()
