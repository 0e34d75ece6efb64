"""The SMS pipeline's observability and abuse-resistance hooks, against real servers:

* ``restcomm_messages_total`` counts every status a message reaches (internal delivery, an
  application's reply, a real SMPP carrier with receipts, a failure without route), and
  ``restcomm_webhook_*`` every application fetch, fallback and status callback, by outcome;
* log lines written while an application or a status callback fails carry the message's SID
  (JSON logs);
* with ``webhook_block_private = true`` an application, its fallback and status callbacks on
  loopback are refused without a request reaching them, with a notification saying why, and the
  callbacks are not retried.

Each backend gets two servers of its own (exact metric deltas need a server nobody else uses): one
with the guard off and an SMPP carrier (our simulator) for +44 numbers, one with the guard on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from twilio.twiml.messaging_response import MessagingResponse

from tests.peers.carrier_server import carriers_toml
from tests.peers.smsc import Smsc
from tests.support.hardened_server import Hardened, launch, new_account
from tests.support.metrics import metrics
from tests.support.ports import free_port
from tests.support.postgres import require_postgres
from tests.support.sms_app import (
    Answer,
    AppServer,
    add_number,
    message,
    notifications,
    send,
    unique_number,
    wait_until,
)

SMS = """
[sms]
poll_interval = 0.2
app_timeout = 3.0
callback_backoff = 0.05
callback_backoff_max = 0.2
callback_max_attempts = 3
"""
FINAL = {"delivered", "undelivered", "failed", "received"}


def _reply(text: str) -> str:
    r = MessagingResponse()
    r.message(text)
    return str(r)


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    server = AppServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_postgres()
    return str(request.param)


@pytest.fixture(scope="module")
def plain(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hardened, Smsc]]:
    smsc = Smsc.simulator(port=free_port()).start()
    config = carriers_toml([{"name": "acme", "port": smsc.port, "binds": 1, "prefixes": ["+44"]}]) + SMS
    srv = launch(tmp_path_factory.mktemp(f"hooks-{backend}"), backend=backend, config=config,
                 env={"RESTCOMM_LOG_FORMAT": "json", "RESTCOMM_LOG_LEVEL": "INFO"})
    try:
        wait_until(lambda: metrics(srv.base_url).get('restcomm_smpp_binds{carrier="acme",state="bound"}'),
                   lambda bound: bound == 1, what="the carrier to bind")
        yield srv, smsc
    finally:
        srv.close()
        smsc.kill()


@pytest.fixture(scope="module")
def guarded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    srv = launch(tmp_path_factory.mktemp(f"guarded-{backend}"), backend=backend, config="webhook_block_private = true\n" + SMS,
                 env={"RESTCOMM_LOG_FORMAT": "json", "RESTCOMM_LOG_LEVEL": "INFO"})
    yield srv
    srv.close()


def wait_final(c: Any, account: str, sids: list[str]) -> dict[str, dict[str, Any]]:
    return wait_until(lambda: {sid: message(c, account, sid) for sid in sids},
                      lambda found: all(m["status"] in FINAL for m in found.values()), what="final statuses")


def deltas(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after if k.startswith(prefix) and after[k] != before.get(k, 0)}


def log_lines(srv: Hardened) -> list[dict[str, Any]]:
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]


def test_messages_and_webhooks_are_counted(plain: tuple[Hardened, Smsc], apps: AppServer) -> None:
    srv, smsc = plain
    sid, token, _, _ = new_account(srv, "metrics")
    app = apps.route(apps.new_path("app"), Answer(_reply("auto reply")), token=token)
    broken = apps.route(apps.new_path("broken"), Answer("down", 500, "text/plain"), token=token)
    rescue = apps.route(apps.new_path("rescue"), Answer("<Response/>"), token=token)
    cb_path = apps.new_path("cb")
    callback = apps.route(cb_path, Answer("", 204, "text/plain"), token=token)
    a, b, f = unique_number(), unique_number(), unique_number()
    before = metrics(srv.base_url)
    with srv.client(sid, token) as c:
        add_number(c, sid, a, SmsUrl=app)
        add_number(c, sid, b)
        add_number(c, sid, f, SmsUrl=broken, SmsFallbackUrl=rescue)
        sent = [
            send(c, sid, b, a, "to the app", StatusCallback=callback).json()["sid"],  # internal; app replies
            send(c, sid, b, f, "to the broken app").json()["sid"],  # internal; app fails, fallback answers
            send(c, sid, b, "+447700900" + str(uuid.uuid4().int)[:3], "by carrier").json()["sid"],
            send(c, sid, b, "+15550000000", "no route").json()["sid"],  # 21612
        ]
        final = wait_final(c, sid, sent)
        assert [final[s]["status"] for s in sent] == ["delivered", "delivered", "delivered", "failed"]
        smsc.set("undelivered_ratio", 1.0)
        try:
            undelivered = send(c, sid, b, "+447700900" + str(uuid.uuid4().int)[:3], "never arrives").json()["sid"]
            assert wait_final(c, sid, [undelivered])[undelivered]["status"] == "undelivered"
        finally:
            smsc.set("undelivered_ratio", 0.0)
        # The app's reply to b, and the two messages a and f received: all settled.
        wait_until(lambda: [m for m in c.get(f"/Accounts/{sid}/SMS/Messages.json").json()["messages"]],
                   lambda ms: len(ms) == 9 and all(m["status"] in FINAL for m in ms), what="the reply to settle")
        apps.wait(cb_path, 3)

    expected = {
        'restcomm_messages_total{direction="outbound-api",status="queued"}': 5,
        'restcomm_messages_total{direction="outbound-api",status="sending"}': 5,
        'restcomm_messages_total{direction="outbound-api",status="sent"}': 4,  # 2 internal, 2 by the carrier
        'restcomm_messages_total{direction="outbound-api",status="delivered"}': 3,
        'restcomm_messages_total{direction="outbound-api",status="undelivered"}': 1,
        'restcomm_messages_total{direction="outbound-api",status="failed"}': 1,
        'restcomm_messages_total{direction="outbound-reply",status="queued"}': 1,
        'restcomm_messages_total{direction="outbound-reply",status="sending"}': 1,
        'restcomm_messages_total{direction="outbound-reply",status="sent"}': 1,
        'restcomm_messages_total{direction="outbound-reply",status="delivered"}': 1,
        'restcomm_messages_total{direction="inbound",status="received"}': 3,
    }
    wait_until(lambda: deltas(before, metrics(srv.base_url), "restcomm_messages_total"), lambda d: d == expected,
               what="message counters")
    webhooks = {
        'restcomm_webhook_duration_seconds_count{kind="app",outcome="ok"}': 1,
        'restcomm_webhook_duration_seconds_count{kind="app",outcome="http-error"}': 1,
        'restcomm_webhook_failures_total{kind="app",reason="http-error"}': 1,
        'restcomm_webhook_duration_seconds_count{kind="fallback",outcome="ok"}': 1,
        'restcomm_webhook_duration_seconds_count{kind="status_callback",outcome="ok"}': 3,
    }
    got = wait_until(lambda: deltas(before, metrics(srv.base_url), "restcomm_webhook_"),
                     lambda d: all(d.get(k) == v for k, v in webhooks.items()), what="webhook metrics")
    assert {k for k in got if "_count{" in k or "_total{" in k} == set(webhooks)  # nothing else happened


def test_a_failing_app_and_a_failing_callback_log_the_message_sid(plain: tuple[Hardened, Smsc], apps: AppServer) -> None:
    srv, _ = plain
    sid, token, _, _ = new_account(srv, "logs")
    broken = apps.route(apps.new_path("broken"), Answer("down", 503, "text/plain"), token=token)
    gone = apps.route(apps.new_path("gone"), Answer("gone", 404, "text/plain"), token=token)
    a, b = unique_number(), unique_number()
    with srv.client(sid, token) as c:
        add_number(c, sid, a, SmsUrl=broken)
        add_number(c, sid, b)
        out = send(c, sid, b, a, "hello", StatusCallback=gone).json()["sid"]
        wait_final(c, sid, [out])
        inbound = wait_until(lambda: c.get(f"/Accounts/{sid}/SMS/Messages.json", params={"To": a}).json()["messages"],
                             lambda ms: any(m["direction"] == "inbound" for m in ms), what="the inbound message")
        inbound_sid = next(m["sid"] for m in inbound if m["direction"] == "inbound")
    app_line = wait_until(lambda: [line for line in log_lines(srv) if "SMS application request failed" in line["message"]
                                   and broken in line["message"]], bool, what="the application's failure logged")
    assert app_line[0]["message_sid"] == inbound_sid and app_line[0]["level"] == "WARNING"
    callback_lines = wait_until(lambda: [line for line in log_lines(srv) if "given up" in line["message"]
                                         and gone in line["message"]], lambda lines: len(lines) == 3,
                                what="the three callbacks given up")
    assert {line["message_sid"] for line in callback_lines} == {out}


def test_guard_refuses_loopback_apps_and_callbacks(guarded: Hardened, apps: AppServer) -> None:
    sid, token, _, _ = new_account(guarded, "guard")
    app_path, fallback_path, cb_path = apps.new_path("app"), apps.new_path("fallback"), apps.new_path("cb")
    app = apps.route(app_path, Answer(_reply("should never run")), token=token)
    # The fallback by host name: refused by the resolver of the HTTP client, not by the URL check.
    fallback = apps.route(fallback_path, Answer("<Response/>"), token=token).replace("127.0.0.1", "localhost")
    callback = apps.route(cb_path, Answer("", 204, "text/plain"), token=token)
    a, b = unique_number(), unique_number()
    before = metrics(guarded.base_url)
    with guarded.client(sid, token) as c:
        add_number(c, sid, a, SmsUrl=app, SmsFallbackUrl=fallback)
        add_number(c, sid, b)
        out = send(c, sid, b, a, "hello", StatusCallback=callback).json()["sid"]
        assert wait_final(c, sid, [out])[out]["status"] == "delivered"  # the pipeline itself is unaffected
        notes = wait_until(lambda: notifications(c, sid, ErrorCode="11205"), lambda n: len(n) == 5,
                           what="two refused fetches and three refused callbacks")
    texts = [n["message_text"] for n in notes]
    assert sum(app in t and "127.0.0.1" in t and "loopback" in t for t in texts) == 1
    assert sum(fallback in t and "'localhost'" in t and "loopback" in t for t in texts) == 1
    refused_callbacks = [t for t in texts if callback in t]
    assert len(refused_callbacks) == 3
    assert all("after 1 attempt(s)" in t and "not retried" in t and "loopback" in t for t in refused_callbacks)
    assert [s for s in apps.seen if s.path in (app_path, fallback_path, cb_path)] == []  # nothing reached them
    expected = {
        'restcomm_webhook_failures_total{kind="app",reason="refused"}': 1,
        'restcomm_webhook_failures_total{kind="fallback",reason="refused"}': 1,
        'restcomm_webhook_failures_total{kind="status_callback",reason="refused"}': 3,
    }
    got = wait_until(lambda: deltas(before, metrics(guarded.base_url), "restcomm_webhook_failures_total"),
                     lambda d: d == expected, what="refusals counted")
    assert got == expected
    lines = [line for line in log_lines(guarded) if "given up" in line["message"] and callback in line["message"]]
    assert len(lines) == 3 and all(line["message_sid"] == out for line in lines)
