"""PostgreSQL stopped and started again under a running server, mid-burst.

A throwaway cluster of the test's own (tests/support/pg_cluster.py) is stopped while four
clients keep sending SMS to a hosted number with an application and a status callback, then started
again. The server is not restarted. What must hold:

* every send answered 200 reaches ``delivered``; its application ran at most once (a session the
  outage cut is reported as a notification, never re-run) and its ``delivered`` callback arrived;
* sends during the outage answer a clean 503 in the API's JSON error format, within a bound;
* ``/ready`` answers 503 while the database is down and 200 again once it is back, and sends are
  accepted again: the pool's pre-ping and the workers' retries reconnect on their own.

``fast`` stops the database as an operator would (connections terminated, then a clean shutdown);
``immediate`` kills it (crash recovery at the next start).

Also here: a real deadlock between the group-commit writer and another transaction (on the shared
PostgreSQL, a throwaway database), after which the writer re-runs its batch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select, text
from twilio.twiml.messaging_response import MessagingResponse

from restcomm.config import load_settings
from restcomm.messaging.writer import GroupCommitWriter
from restcomm.store import db
from tests.support.pg_cluster import Cluster, throwaway_cluster
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    base_env,
    database_env,
    migrate,
    start_server,
    stop_server,
)
from tests.support.sms_app import Answer, AppServer, add_number, wait_statuses, wait_until

CONFIG = """
[sms]
poll_interval = 0.2
lease_seconds = 3.0
app_timeout = 5.0
callback_backoff = 0.05
callback_backoff_max = 0.5
callback_max_attempts = 30
"""
BEFORE = 40  # accepted sends before the database goes down
DURING = 6  # refused sends to see while it is down
AFTER = 40  # accepted sends after it is back
REQUEST_BOUND = 10.0  # seconds: no send may take longer, outage or not
FINAL = {"delivered", "undelivered", "failed"}
A, B = "+15557710001", "+15557710002"


@dataclass
class Outcome:
    body: str
    status: int | None  # None: no HTTP answer at all
    payload: dict[str, object] | None
    seconds: float
    started: float


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as c:
        c.psql('CREATE DATABASE "restcomm"')
        yield c


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_restart_mid_burst(cluster: Cluster, mode: str, tmp_path: Path) -> None:
    config = tmp_path / "restcomm.toml"
    config.write_text(CONFIG)
    env = base_env(tmp_path, cluster.url("restcomm"), config)
    migrate(env)
    apps = AppServer().start()
    proc, base, log_path = start_server(env, tmp_path)
    try:
        me = httpx.get(f"{base}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=10)
        account, token = me.json()["sid"], me.json()["auth_token"]
        reply = MessagingResponse()
        reply.message("ack")
        with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as c:
            add_number(c, account, A, SmsUrl=apps.route("/a", Answer(str(reply)), token=token))
            add_number(c, account, B)
        callback = apps.route("/cb", Answer("", content_type="text/plain"), token=token)

        outcomes: list[Outcome] = []
        lock = threading.Lock()
        stop = threading.Event()
        down = threading.Event()

        def sender(worker: int) -> None:
            n = 0
            with httpx.Client(base_url=base + API, auth=(account, token), timeout=REQUEST_BOUND + 5) as s:
                while not stop.is_set():
                    body = f"w{worker} m{n}"
                    n += 1
                    started = time.monotonic()
                    try:
                        r = s.post(f"/Accounts/{account}/SMS/Messages.json",
                                   data={"From": B, "To": A, "Body": body, "StatusCallback": callback})
                        status, payload = r.status_code, r.json()
                    except (httpx.HTTPError, ValueError):
                        status, payload = None, None
                    with lock:
                        outcomes.append(Outcome(body, status, payload, time.monotonic() - started, started))
                    if down.is_set() and status != 200:
                        time.sleep(0.02)  # pacing while refused: no busy loop against the dead database

        def count(pred: object) -> int:
            with lock:
                return sum(1 for o in outcomes if pred(o))  # type: ignore[operator]

        threads = [threading.Thread(target=sender, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: count(lambda o: o.status == 200), lambda n: n >= BEFORE, timeout=30,
                   what="sends accepted before the outage")

        cluster.stop(mode)
        down.set()
        stopped_at = time.monotonic()
        # While the database is down: sends are refused cleanly, the node says it is not ready.
        wait_until(lambda: count(lambda o: o.started > stopped_at and o.status is not None and o.status != 200),
                   lambda n: n >= DURING, timeout=30, what="refused sends during the outage")
        ready = httpx.get(base + "/ready", timeout=REQUEST_BOUND)
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["database"].startswith("failed")

        cluster.start()
        down.clear()
        started_at = time.monotonic()
        wait_until(lambda: httpx.get(base + "/ready", timeout=REQUEST_BOUND).status_code, lambda s: s == 200,
                   timeout=30, what="/ready to answer 200 again")
        wait_until(lambda: count(lambda o: o.started > started_at and o.status == 200), lambda n: n >= AFTER,
                   timeout=30, what="sends accepted after the database came back")
        stop.set()
        for t in threads:
            t.join(REQUEST_BOUND + 10)
        assert proc.poll() is None, "the server died"

        # Every answer came within the bound, and every refusal is a clean API error.
        assert all(o.status is not None for o in outcomes), [o for o in outcomes if o.status is None][:3]
        slowest = max(o.seconds for o in outcomes)
        assert slowest < REQUEST_BOUND, slowest
        refused = [o for o in outcomes if o.status != 200]
        assert refused
        for o in refused:
            assert o.status == 503, o
            assert o.payload is not None and o.payload["status"] == 503 and o.payload["code"] == 20503, o
            assert "database" in str(o.payload["message"]).lower(), o
        accepted = {o.payload["sid"]: o.body for o in outcomes if o.status == 200 and o.payload}  # type: ignore[misc]

        with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as c:
            final = wait_statuses(c, account, accepted, lambda st: set(st.values()) <= FINAL, timeout=60,
                                  what="every accepted message to reach a final status")
            assert set(final.values()) == {"delivered"}, Counter(final.values())

            # Each accepted message's 'delivered' callback arrived.
            def delivered_callbacks() -> Counter[str]:
                return Counter(s.form.get("MessageSid", "") for s in apps.requests("/cb")
                               if s.form.get("MessageStatus") == "delivered")

            got = wait_until(delivered_callbacks, lambda cb: set(accepted) <= set(cb), timeout=60,
                             what="a delivered callback for every accepted message")
            assert all(s.signature_valid for s in apps.requests("/cb"))

            # The application saw no message twice; each accepted message reached it, or (a session
            # the outage cut short) was reported as interrupted and not run again.
            def unaccounted() -> list[str]:
                seen = {s.form.get("Body") for s in apps.requests("/a")}
                interrupted = _interrupted(c, account)
                return [body for sid, body in accepted.items() if body not in seen
                        and _inbound_sid(c, account, body) not in interrupted]

            wait_until(unaccounted, lambda left: not left, timeout=30,
                       what="every accepted message run by its application or reported")
            per_body = Counter(s.form.get("Body") for s in apps.requests("/a"))
            assert max(per_body.values()) == 1, {b: n for b, n in per_body.items() if n > 1}
            log = log_path.read_text()
            duplicates = sum(n - 1 for n in got.values())
            print(f"[{mode}] accepted {len(accepted)}, refused {len(refused)} (503), slowest answer "
                  f"{slowest:.2f}s, app sessions {sum(per_body.values())}, interrupted "
                  f"{len(_interrupted(c, account))}, duplicate delivered callbacks {duplicates}, "
                  f"tracebacks in the log {log.count('Traceback')}")
    finally:
        stop_server(proc)
        apps.stop()


def _interrupted(c: httpx.Client, account: str) -> set[str]:
    notes = c.get(f"/Accounts/{account}/Notifications.json", params={"PageSize": 1000}).json()["notifications"]
    return {str(n["message_sid"]) for n in notes if "server stopped" in str(n["message_text"])}


def _inbound_sid(c: httpx.Client, account: str, body: str) -> str | None:
    found = c.get(f"/Accounts/{account}/SMS/Messages.json", params={"To": A, "PageSize": 1000}).json()["messages"]
    for m in found:
        if m["direction"] == "inbound" and m["body"] == body:
            return str(m["sid"])
    return None


def test_writer_reruns_a_batch_whose_transaction_was_a_deadlock_victim(tmp_path: Path) -> None:
    """A real deadlock between the group-commit writer and another transaction: PostgreSQL rolls the
    writer's transaction back (40P01), and the writer runs the batch again in a fresh one. Inserts
    and ``retry=True`` jobs succeed on the re-run; a plain job gets the deadlock error."""
    probe = Table("deadlock_probe", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))

    async def run(url: str) -> None:
        engine = db.create_engine(load_settings(env={"RESTCOMM_DATABASE_URL": url,
                                                     "RESTCOMM_DATA_DIR": str(tmp_path)}))
        other = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE deadlock_probe (id integer PRIMARY KEY, n integer)"))
                await conn.execute(text("INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)"))
            writer = GroupCommitWriter(engine, concurrency=1)
            await writer.start()
            # The other transaction holds row 2 and will wait for row 1; it is never the victim.
            await other.execute("SET deadlock_timeout = '10s'")
            tx = other.transaction()
            await tx.start()
            await other.execute("UPDATE deadlock_probe SET n = n + 1 WHERE id = 2")
            holding = asyncio.Event()
            attempts = 0

            async def crossing(conn: Any) -> str:
                nonlocal attempts
                attempts += 1
                await conn.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
                await conn.execute(text("UPDATE deadlock_probe SET n = n + 1 WHERE id = 1"))
                holding.set()
                await conn.execute(text("UPDATE deadlock_probe SET n = n + 1 WHERE id = 2"))
                return "done"

            async def plain(conn: Any) -> str:
                return "plain"

            jobs = asyncio.gather(writer.insert((probe, [{"id": 3, "n": 0}])), writer.run(crossing, retry=True),
                                  writer.run(plain), return_exceptions=True)
            await asyncio.wait_for(holding.wait(), 10)
            # Row 1 is the writer's: this waits, PostgreSQL finds the cycle and rolls the writer back.
            await asyncio.wait_for(other.execute("UPDATE deadlock_probe SET n = n + 1 WHERE id = 1"), 10)
            await tx.commit()
            inserted, crossed, plain_result = await asyncio.wait_for(jobs, 10)
            assert inserted is None and crossed == "done", (inserted, crossed)
            assert isinstance(plain_result, Exception) and db.transaction_conflict(plain_result), plain_result
            assert attempts == 2 and writer.retries == 1
            async with engine.connect() as conn:
                rows = dict((await conn.execute(select(probe.c.id, probe.c.n).order_by(probe.c.id))).all())
            assert rows == {1: 2, 2: 2, 3: 0}  # each update applied once: the victim's first run left nothing
            await writer.stop()
        finally:
            await other.close()
            await engine.dispose()

    with database_env("postgres", tmp_path) as env:
        asyncio.run(run(env["RESTCOMM_DATABASE_URL"]))
