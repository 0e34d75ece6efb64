"""Two server processes on one database share the SMS work without doing anything twice; a SIGTERM
lets a node finish what it holds before it exits; and when one of two is killed mid-burst, the other
takes over what it held once its leases run out."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import or_, select, text
from twilio.twiml.messaging_response import MessagingResponse

from restcomm.store.schema import messages
from tests.support.sdk.store import read_rows
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    database_env,
    start_server,
    stop_server,
)
from tests.support.sms_app import Answer, AppServer, add_number, wait_statuses, wait_until

CONFIG = """
[sms]
poll_interval = 0.1
lease_seconds = 2.0
app_concurrency = 16
"""


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    config = data_dir / "restcomm.toml"
    config.write_text(CONFIG)
    with database_env(request.param, data_dir, config) as env:
        yield env, data_dir


def _credentials(base: str) -> tuple[str, str]:
    me = httpx.get(f"{base}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=10).json()
    return me["sid"], me["auth_token"]


def _all_messages(c: httpx.Client, account: str) -> list[dict[str, object]]:
    return c.get(f"/Accounts/{account}/SMS/Messages.json", params={"PageSize": 1000}).json()["messages"]


def test_two_nodes_share_the_work_once(env: tuple[dict[str, str], Path]) -> None:
    environment, data_dir = env
    apps = AppServer().start()
    node1, base1, _ = start_server(environment, data_dir / "n1")
    node2, base2, _ = start_server(environment, data_dir / "n2")
    try:
        account, token = _credentials(base1)
        reply = MessagingResponse()
        reply.message("ack")
        with httpx.Client(base_url=base1 + API, auth=(account, token), timeout=10) as c:
            add_number(c, account, "+15558880001", SmsUrl=apps.route("/a", Answer(str(reply)), token=token))
            add_number(c, account, "+15558880002", SmsUrl=apps.route("/b", Answer("<Response/>"), token=token))
        sent: list[str] = []
        lock = threading.Lock()

        def sender(base: str, start: int) -> None:
            with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as s:
                for i in range(start, 120, 2):
                    r = s.post(f"/Accounts/{account}/SMS/Messages.json",
                               data={"From": "+15558880002", "To": "+15558880001", "Body": f"m{i}"})
                    assert r.status_code == 200, r.text
                    with lock:
                        sent.append(r.json()["sid"])

        threads = [threading.Thread(target=sender, args=(b, n)) for n, b in enumerate((base1, base2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(sent) == 120
        apps.wait("/b", 120, timeout=60)  # every reply reached B's application
        with httpx.Client(base_url=base2 + API, auth=(account, token), timeout=10) as c:
            everything = wait_until(lambda: _all_messages(c, account),
                                    lambda ms: sum(m["direction"] == "inbound" for m in ms) >= 240, timeout=30,
                                    what="all arrivals")
        by_direction = Counter(m["direction"] for m in everything)
        assert by_direction == {"outbound-api": 120, "inbound": 240, "outbound-reply": 120}
        assert all(m["status"] in ("delivered", "received") for m in everything)
        for path in ("/a", "/b"):
            counts = Counter(s.form["MessageSid"] for s in apps.requests(path))
            assert len(counts) == 120 and max(counts.values()) == 1, f"{path}: a message was run twice"
    finally:
        stop_server(node1)
        stop_server(node2)
        apps.stop()


def test_sigterm_finishes_the_work_in_hand(env: tuple[dict[str, str], Path]) -> None:
    environment, data_dir = env
    apps = AppServer().start()
    proc, base, _ = start_server(environment, data_dir / "n1")
    try:
        account, token = _credentials(base)
        reply = MessagingResponse()
        reply.message("finished")
        with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as c:
            slow = apps.route("/slow", Answer(str(reply), delay=0.5), token=token)
            add_number(c, account, "+15558880011", SmsUrl=slow)
            add_number(c, account, "+15558880012", SmsUrl=apps.route("/sink", Answer("<Response/>"), token=token))
            for i in range(8):
                r = c.post(f"/Accounts/{account}/SMS/Messages.json",
                           data={"From": "+15558880012", "To": "+15558880011", "Body": f"slow {i}"})
                assert r.status_code == 200
        apps.wait("/slow", 8)  # eight sessions are waiting for the slow application
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its shutdown
        # Every session the node held finished before it exited: nothing is left claimed or running,
        # no lease is held, and the eight replies were committed.
        held = read_rows(environment, select(messages.c.sid, messages.c.app_state, messages.c.status)
                         .where(or_(messages.c.lease_owner.is_not(None),
                                    messages.c.app_state.in_(("claimed", "running")))))
        assert held == []
        replies = read_rows(environment, select(messages.c.sid).where(messages.c.direction == "outbound-reply"))
        assert len(replies) == 8
        proc, base, _ = start_server(environment, data_dir / "n1")
        apps.wait("/sink", 8)  # the replies' arrivals, stored 'pending' during the drain, run now
        assert len(apps.requests("/slow")) == 8
    finally:
        stop_server(proc)
        apps.stop()


KILL_BURST = 160
KILL_AFTER = 60  # accepted answers (both nodes together, at least 15 by node 2) before node 2 is killed


def test_kill_9_one_of_two_nodes_mid_burst(env: tuple[dict[str, str], Path]) -> None:
    """Node 2 dies (SIGKILL) with messages accepted, sessions running and callbacks leased. Node 1
    is never restarted nor told: it takes over the dead node's work when the leases (2 s) expire.
    Every accepted message is delivered once; each application saw each message at most once, and
    a session that was in flight on the dead node is reported as interrupted, never run again."""
    environment, data_dir = env
    apps = AppServer().start()
    node1, base1, _ = start_server(environment, data_dir / "n1")
    node2, base2, _ = start_server(environment, data_dir / "n2")
    try:
        account, token = _credentials(base1)
        reply = MessagingResponse()
        reply.message("ack")
        with httpx.Client(base_url=base1 + API, auth=(account, token), timeout=10) as c:
            # A slowish application, so sessions are in flight on node 2 when it dies.
            add_number(c, account, "+15558880021",
                       SmsUrl=apps.route("/ka", Answer(str(reply), delay=0.2), token=token))
            add_number(c, account, "+15558880022", SmsUrl=apps.route("/kb", Answer("<Response/>"), token=token))
        callback = apps.route("/kcb", Answer("", content_type="text/plain"), token=token)
        accepted: dict[str, str] = {}  # sid -> body
        by_node: Counter[int] = Counter()
        lock = threading.Lock()
        killed = threading.Event()
        killed_at: list[float] = []

        def sender(node: int, base: str, start: int) -> None:
            with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as s:
                for i in range(start, KILL_BURST, 4):
                    if node == 2 and killed.is_set():
                        return
                    try:
                        r = s.post(f"/Accounts/{account}/SMS/Messages.json",
                                   data={"From": "+15558880022", "To": "+15558880021", "Body": f"k{i}",
                                         "StatusCallback": callback})
                    except httpx.HTTPError:
                        assert node == 2, "the surviving node failed a request"
                        return  # node 2 is gone: this one may or may not have been stored
                    assert r.status_code == 200, r.text
                    with lock:
                        accepted[r.json()["sid"]] = f"k{i}"
                        by_node[node] += 1
                        if len(accepted) >= KILL_AFTER and by_node[2] >= 15 and not killed.is_set():
                            killed.set()
                            os.kill(node2.pid, signal.SIGKILL)
                            killed_at.append(time.time())

        threads = [threading.Thread(target=sender, args=(1 + n % 2, (base1, base2)[n % 2], n)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        node2.wait(10)
        assert killed.is_set()
        if "RESTCOMM_DATABASE_URL" in environment:
            # A COMMIT the dead node sent just before it died is still applied by its PostgreSQL
            # backend: look only once every transaction open at the kill has ended.
            open_at_kill = text("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                                f"AND xact_start <= to_timestamp({killed_at[0]!r})")
            wait_until(lambda: read_rows(environment, open_at_kill)[0]["n"], lambda n: n == 0, timeout=15,
                       what="the dead node's transactions to end")
        # The sessions the dead node had in hand (its request may have reached the application):
        # still 'running' under its lease, or (on a loaded machine the 2 s lease may already have
        # run out) already taken over as 'interrupted', which only a takeover does, and never of
        # the survivor's own sessions (those are excluded by the claim).
        held = {r["sid"] for r in read_rows(environment, select(messages.c.sid).where(or_(
            (messages.c.app_state == "running") & messages.c.lease_owner.like(f"%:{node2.pid}:%"),
            messages.c.app_state == "interrupted")))}
        with httpx.Client(base_url=base1 + API, auth=(account, token), timeout=10) as c:
            final = wait_statuses(c, account, accepted, lambda st: set(st.values()) == {"delivered"}, timeout=30,
                                  what="every accepted message delivered by the surviving node")
            assert len(final) == len(accepted)
            # Delivered exactly once: one arrival at A per accepted message, none for anything else.
            arrivals = [m for m in _all_messages(c, account)
                        if m["direction"] == "inbound" and m["to"] == "+15558880021"]
            bodies = Counter(str(m["body"]) for m in arrivals)
            assert max(bodies.values()) == 1, {b: n for b, n in bodies.items() if n > 1}
            assert set(accepted.values()) <= set(bodies)

            # Each arrival at A was given to its application once, or (its session in flight on the
            # dead node) reported as interrupted once the lease ran out: never both, never twice.
            def unaccounted() -> list[str]:
                seen = {s.form["MessageSid"] for s in apps.requests("/ka")}
                interrupted = _interrupted(c, account)
                return [str(m["sid"]) for m in arrivals if m["sid"] not in seen and m["sid"] not in interrupted]

            wait_until(unaccounted, lambda left: not left, timeout=30,
                       what="every arrival run by its application or reported as interrupted")
            for path in ("/ka", "/kb"):
                counts = Counter(s.form["MessageSid"] for s in apps.requests(path))
                assert not counts or max(counts.values()) == 1, f"{path}: a message was run twice"
            # Exactly the sessions the dead node held are reported as interrupted (the survivor's
            # own finish normally); whatever was merely queued or pending was run by the survivor.
            interrupted = wait_until(lambda: _interrupted(c, account), lambda got: held <= got, timeout=30,
                                     what="the dead node's sessions to be reported as interrupted")
            assert interrupted == held
            never_run = interrupted - {s.form["MessageSid"] for s in apps.requests("/ka")}
            # Every accepted message's 'delivered' status callback arrived (at least once: delivery
            # is at-least-once, and one the dead node sent but had not recorded is sent again).
            wait_until(lambda: {s.form["MessageSid"] for s in apps.requests("/kcb")
                                if s.form.get("MessageStatus") == "delivered"},
                       lambda got: set(accepted) <= got, timeout=30, what="a delivered callback per message")
            print(f"accepted {len(accepted)} (node 1: {by_node[1]}, node 2: {by_node[2]}), "
                  f"sessions held by the dead node {len(held)}, interrupted {len(interrupted)} (never run {len(never_run)}), "
                  f"app sessions {len(apps.requests('/ka'))}")
    finally:
        stop_server(node1)
        stop_server(node2)
        apps.stop()


def _interrupted(c: httpx.Client, account: str) -> set[str]:
    notes = c.get(f"/Accounts/{account}/Notifications.json", params={"PageSize": 1000}).json()["notifications"]
    return {str(n["message_sid"]) for n in notes if "server stopped" in str(n["message_text"])}
