"""Nodes on one PostgreSQL database wake each other with LISTEN/NOTIFY (store/wakeups.py).

Two real server processes, both polling only every 30 s, each with ONE application slot. A slow
application holds node A's slot; a message for another application then arrives through node A,
which stores its session 'pending' (no slot here) and publishes the wake: node B, with its slot
free, runs it. Only the notification can explain B starting it well within its 30 s poll.

The listener's connection is killed (``pg_terminate_backend``, over and over for a few seconds, so
that work is committed while B is not listening): B connects again with backoff and, on
reconnecting, looks for what it missed, still long before its poll.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PG_ADMIN_URL
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    database_env,
    start_server,
    stop_server,
)
from tests.support.sms_app import Answer, AppServer, add_number
from tests.support.waiting import wait_until

POLL = 30.0  # every poll of both nodes: only a wake-up explains a pickup well before it
BOUND = 8.0  # seconds a pickup may take (observed: tens of milliseconds)
CONFIG = f"""
[sms]
poll_interval = {POLL}
app_concurrency = 1
app_timeout = 120
"""


class Pair:
    """Two nodes on one PostgreSQL database, an SMS application server and the account's numbers."""

    def __init__(self, env: dict[str, str], data_dir: Path):
        self.env = env
        self.apps = AppServer().start()
        self.a, self.base_a, _ = start_server(env, data_dir / "a")
        self.b, self.base_b, _ = start_server(env, data_dir / "b")
        me = httpx.get(f"{self.base_a}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD),
                       timeout=10).json()
        self.account, self.token = me["sid"], me["auth_token"]
        self.client = httpx.Client(base_url=self.base_a + API, auth=(self.account, self.token), timeout=10)
        self.slow = self.apps.new_path("slow")
        self.fast = self.apps.new_path("fast")
        add_number(self.client, self.account, "+15557770001",
                   SmsUrl=self.apps.route(self.slow, Answer(delay=60), token=self.token))
        add_number(self.client, self.account, "+15557770002",
                   SmsUrl=self.apps.route(self.fast, Answer(), token=self.token))
        add_number(self.client, self.account, "+15557770003")
        self.busy = self.apps.new_path("busy")  # answers after 3 s
        add_number(self.client, self.account, "+15557770004",
                   SmsUrl=self.apps.route(self.busy, Answer(delay=3), token=self.token))

    def send(self, to: str) -> None:
        r = self.client.post(f"/Accounts/{self.account}/SMS/Messages.json",
                             data={"From": "+15557770003", "To": to, "Body": "hi"})
        assert r.status_code == 200, r.text

    def hold_a_slot(self) -> None:
        """A's one application slot busy with the slow application (A's dispatcher delivers what A
        accepted: outbound wakes go to other nodes only when this one cannot claim)."""
        self.send("+15557770001")
        self.apps.wait(self.slow, 1, timeout=BOUND)

    def pickup(self, count: int, timeout: float = BOUND) -> float:
        """Send the ``count``-th message for the fast application through A; seconds until it runs."""
        start = time.monotonic()
        self.send("+15557770002")
        seen = self.apps.wait(self.fast, count, timeout=timeout)
        return seen[count - 1].at - start

    def close(self) -> None:
        self.client.close()
        stop_server(self.b)
        self.a.kill()  # it holds the slow application's session for a minute: a graceful stop waits for it
        self.a.wait()
        self.apps.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    config = tmp_path / "restcomm.toml"
    config.write_text(CONFIG)
    with database_env("postgres", tmp_path, config) as env:
        nodes = Pair(env, tmp_path)
        try:
            yield nodes
        finally:
            nodes.close()


def _listeners(env: dict[str, str], pid: int) -> list[int]:
    """Backend pids of server process ``pid``'s LISTEN connection(s)."""
    import asyncpg

    database = env["RESTCOMM_DATABASE_URL"].rsplit("/", 1)[1]

    async def run() -> list[int]:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                                    database, f"restcomm-wake:{pid}")
            return [r["pid"] for r in rows]
        finally:
            await conn.close()

    return asyncio.run(run())


def _terminate(env: dict[str, str], pid: int) -> int:
    import asyncpg

    async def run() -> int:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            return int(await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                f"restcomm-wake:{pid}"))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_work_only_another_node_can_take_is_taken_before_its_poll(pair: Pair) -> None:
    assert wait_until(lambda: _listeners(pair.env, pair.b.pid), timeout=BOUND, what="B listening")
    pair.hold_a_slot()
    for i in range(1, 4):  # A's slot stays busy: each one is B's
        latency = pair.pickup(i)
        assert latency < BOUND < POLL, latency


def test_the_listener_reconnects_and_catches_up_on_what_it_missed(pair: Pair) -> None:
    first = wait_until(lambda: _listeners(pair.env, pair.b.pid), timeout=BOUND, what="B listening")
    pair.hold_a_slot()
    assert pair.pickup(1) < BOUND
    # Kill B's LISTEN connection again and again for a while: B's reconnections back off, and a
    # message arrives meanwhile (its wake-up lost, unless B happens to be listening between kills).
    stop = threading.Event()
    killed: list[int] = []

    def hammer() -> None:
        while not stop.is_set():
            killed.append(_terminate(pair.env, pair.b.pid))
            stop.wait(0.02)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        wait_until(lambda: not _listeners(pair.env, pair.b.pid), timeout=BOUND, what="B's listener gone")
        start = time.monotonic()
        pair.send("+15557770002")
        stop.wait(3.0)
    finally:
        stop.set()
        thread.join(5)
    assert sum(killed) >= 1
    # B reconnects (backoff at most 5 s) and, reconnected, claims what was committed meanwhile.
    seen = pair.apps.wait(pair.fast, 2, timeout=3 * BOUND)
    assert seen[1].at - start < 3 * BOUND < POLL
    again = wait_until(lambda: _listeners(pair.env, pair.b.pid), timeout=BOUND, what="B listening again")
    assert set(again).isdisjoint(first)
    # Listening again: prompt pickups as before.
    assert pair.pickup(3) < BOUND


def test_a_wake_while_every_slot_is_busy_is_acted_on_when_one_frees(pair: Pair) -> None:
    """B is woken while its one slot is busy: the session that finishes there claims the pending
    work at once (it used to wait for B's poll)."""
    wait_until(lambda: _listeners(pair.env, pair.b.pid), timeout=BOUND, what="B listening")
    pair.hold_a_slot()
    pair.send("+15557770004")
    pair.apps.wait(pair.busy, 1, timeout=BOUND)  # B's slot: busy for 3 s from now
    assert pair.pickup(1) < BOUND < POLL
