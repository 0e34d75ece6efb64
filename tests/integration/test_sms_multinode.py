"""Two server processes on one database share the SMS work without doing anything twice, and a
SIGTERM lets a node finish what it holds before it exits."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import or_, select
from twilio.twiml.messaging_response import MessagingResponse

from restcomm.store.schema import messages
from tests.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    database_env,
    start_server,
    stop_server,
)
from tests.integration.sms_app import Answer, AppServer, add_number, wait_until
from tests.sdk.store import read_rows

CONFIG = """
[sms]
poll_interval = 0.1
lease_seconds = 2.0
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
