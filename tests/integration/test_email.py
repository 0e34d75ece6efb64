"""The Email API and the SMTP outbox, over real HTTP and against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from restcomm.config import load_settings
from restcomm.messaging.email import queue_email
from restcomm.store.db import create_engine
from tests.support.ports import free_port
from tests.support.postgres import pg_create_database, pg_drop_database
from tests.support.server import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Server,
    SmtpSink,
    Tenant,
    base_env,
    make_tenant,
    smtp_section,
    start_server,
    stop_server,
)
from tests.support.waiting import poll

EM_SID = re.compile(r"^EM[0-9a-f]{32}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def tag() -> str:
    return uuid.uuid4().hex[:10]


def send(client: httpx.Client, account_sid: str, **params: str) -> httpx.Response:
    return client.post(f"/Accounts/{account_sid}/Email/Messages.json", data=params)


def wait_email(client: httpx.Client, account_sid: str, sid: str, done: Callable[[dict[str, Any]], bool],
               timeout: float = 20) -> dict[str, Any]:
    """Poll the email until ``done`` holds (bounded); return its last representation."""

    def fetch() -> dict[str, Any]:
        r = client.get(f"/Accounts/{account_sid}/Email/Messages/{sid}.json")
        assert r.status_code == 200, r.text
        return r.json()

    return poll(fetch, done, timeout)


def final(body: dict[str, Any]) -> bool:
    return body["status"] in ("sent", "failed")


def notifications_for(client: httpx.Client, account_sid: str) -> list[dict[str, Any]]:
    r = client.get(f"/Accounts/{account_sid}/Notifications.json")
    assert r.status_code == 200, r.text
    return r.json()["notifications"]


# -- delivery --------------------------------------------------------------------------------


def test_email_arrives_with_headers_body_cc_and_bcc(server: Server, smtp_sink: SmtpSink, tenant: Tenant) -> None:
    subject = f"Order shipped {tag()}"
    with tenant.client() as c:
        r = send(c, tenant.sid, From="shop@example.com", To="Ann@Example.COM, bob@example.org",
                 CC="carol@example.net", BCC="dave@example.com,erin@example.com", Subject=subject,
                 Body="Your order is on its way.\nThanks!")
        assert r.status_code == 200, r.text
        queued = r.json()
        assert EM_SID.match(queued["sid"])
        assert queued["status"] in ("queued", "sending", "sent")
        assert queued["account_sid"] == tenant.sid
        assert queued["from"] == "shop@example.com"
        assert queued["to"] == "Ann@example.com, bob@example.org"
        assert queued["subject"] == subject and queued["type"] == "text/plain"
        assert queued["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Email/Messages/{queued['sid']}.json"

        (mail,) = smtp_sink.wait_for(lambda m: m.message["Subject"] == subject)
        msg = mail.message
        assert mail.mail_from == "shop@example.com"
        assert sorted(a.lower() for a in mail.rcpt_tos) == [
            "ann@example.com", "bob@example.org", "carol@example.net", "dave@example.com", "erin@example.com"]
        assert msg["From"] == "shop@example.com"
        assert msg["To"] == "Ann@example.com, bob@example.org"
        assert msg["Cc"] == "carol@example.net"
        assert msg["Bcc"] is None  # blind copies are envelope recipients only
        assert queued["sid"] in msg["Message-ID"]
        assert msg["Date"].datetime.utcoffset() == timedelta(0)
        assert msg.get_content_type() == "text/plain"
        assert msg.get_content_charset() == "utf-8"
        assert msg.get_content().replace("\r\n", "\n").rstrip("\n") == "Your order is on its way.\nThanks!"

        sent = wait_email(c, tenant.sid, queued["sid"], final)
        assert sent["status"] == "sent", sent
        assert ISO.match(sent["date_sent"]) and sent["attempts"] == 1
        assert "error_message" not in sent


def test_html_body_and_unicode_subject(server: Server, smtp_sink: SmtpSink, tenant: Tenant) -> None:
    subject = f"Café ☕ {tag()}"
    with tenant.client() as c:
        r = send(c, tenant.sid, From="news@example.com", To="reader@example.com", Subject=subject,
                 Body="<p>Grüße <b>aus</b> Köln</p>", Type="text/html")
        assert r.status_code == 200, r.text
        (mail,) = smtp_sink.wait_for(lambda m: m.message["Subject"] == subject)
        assert mail.message.get_content_type() == "text/html"
        assert "<p>Grüße <b>aus</b> Köln</p>" in mail.message.get_content()
        assert wait_email(c, tenant.sid, r.json()["sid"], final)["status"] == "sent"


def test_long_subject_is_truncated_to_160_and_kept_on_one_line(
    server: Server, smtp_sink: SmtpSink, tenant: Tenant
) -> None:
    marker = tag()
    subject = marker + "\r\nBcc: victim@example.com " + "x" * 300
    with tenant.client() as c:
        r = send(c, tenant.sid, From="a@example.com", To="b@example.com", Subject=subject, Body="hi")
        assert r.status_code == 200, r.text
        stored = r.json()["subject"]
        assert len(stored) == 160 and "\r" not in stored and "\n" not in stored
        (mail,) = smtp_sink.wait_for(lambda m: (m.message["Subject"] or "").startswith(marker))
        assert mail.message["Bcc"] is None
        assert [a.lower() for a in mail.rcpt_tos] == ["b@example.com"]  # no header injection


def test_xml_representation(server: Server, smtp_sink: SmtpSink, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Email/Messages", data={
            "From": "a@example.com", "To": "b@example.com", "Subject": f"xml {tag()}", "Body": "b"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(r.text)
        assert root.tag == "RestcommResponse"
        em = root.find("EmailMessage")
        assert em is not None and EM_SID.match(em.findtext("Sid") or "")
        assert em.findtext("From") == "a@example.com" and em.findtext("To") == "b@example.com"
        r = c.get(f"/Accounts/{tenant.sid}/Email/Messages")
        assert r.status_code == 200
        assert ET.fromstring(r.text).find("EmailMessages/EmailMessage/Sid") is not None


# -- validation ------------------------------------------------------------------------------


VALID = {"From": "a@example.com", "To": "b@example.com", "Subject": "s", "Body": "b"}


@pytest.mark.parametrize("name", ["From", "To", "Subject", "Body"])
def test_missing_required_parameter_is_400(server: Server, tenant: Tenant, name: str) -> None:
    blank = [{**VALID, name: " \t"}] if name != "Body" else []
    for params in [{k: v for k, v in VALID.items() if k != name}, {**VALID, name: ""}, *blank]:
        with tenant.client() as c:
            r = send(c, tenant.sid, **params)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 20002
        assert r.json()["message"] == f"{name} can not be null."


@pytest.mark.parametrize(
    "name,value",
    [
        ("From", "not-an-address"),
        ("From", "a@b@example.com"),
        ("To", "b@example.com, nope"),
        ("To", "b@example.com\r\nBcc: x@example.com"),
        ("CC", "carol at example.net"),
        ("BCC", "dave@"),
        ("Type", "image/png"),
    ],
)
def test_invalid_values_are_400_and_queue_nothing(server: Server, tenant: Tenant, name: str, value: str) -> None:
    with tenant.client() as c:
        r = send(c, tenant.sid, **{**VALID, name: value})
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["code"] == 20001 and name in body["message"]
        assert c.get(f"/Accounts/{tenant.sid}/Email/Messages.json").json()["total"] == 0


# -- tenancy and reading back ---------------------------------------------------------------


def test_tenancy_and_listing(server: Server, smtp_sink: SmtpSink) -> None:
    parent = make_tenant(server, name="mailer")
    child = parent.sub("mailchild")
    sibling = make_tenant(server, name="mailsibling")
    with child.client() as c:
        sid = send(c, child.sid, **{**VALID, "Subject": f"mine {tag()}"}).json()["sid"]
    with parent.client() as p:
        # A parent reads and sends for its sub-account.
        assert p.get(f"/Accounts/{child.sid}/Email/Messages/{sid}.json").status_code == 200
        assert send(p, child.sid, **VALID).status_code == 200
        assert p.get(f"/Accounts/{parent.sid}/Email/Messages.json").json()["total"] == 0
        # An email is addressed under its own account only.
        assert p.get(f"/Accounts/{parent.sid}/Email/Messages/{sid}.json").status_code in (403, 404)
        listing = p.get(f"/Accounts/{child.sid}/Email/Messages.json?PageSize=1").json()
        assert listing["total"] == 2 and len(listing["email_messages"]) == 1 and listing["next_page_uri"]
    with sibling.client() as s:
        assert s.get(f"/Accounts/{child.sid}/Email/Messages/{sid}.json").status_code == 403
        assert s.get(f"/Accounts/{child.sid}/Email/Messages.json").status_code == 403
        assert send(s, child.sid, **VALID).status_code == 403
        assert s.get(f"/Accounts/{sibling.sid}/Email/Messages/EM{'0' * 32}.json").status_code == 404
    with child.client() as c:
        assert c.get(f"/Accounts/{parent.sid}/Email/Messages.json").status_code == 403
        wait_email(c, child.sid, sid, final)
        sent = c.get(f"/Accounts/{child.sid}/Email/Messages.json?Status=sent").json()
        assert sid in [e["sid"] for e in sent["email_messages"]]


# -- failures: refusals, retries, SMTP down ----------------------------------------------------


def test_permanent_refusal_fails_at_once_with_a_notification(
    server: Server, smtp_sink: SmtpSink, tenant: Tenant
) -> None:
    victim = f"gone-{tag()}@example.com"
    smtp_sink.reject[victim] = "550 5.1.1 mailbox unavailable"
    with tenant.client() as c:
        sid = send(c, tenant.sid, **{**VALID, "To": victim}).json()["sid"]
        body = wait_email(c, tenant.sid, sid, final)
        notes = notifications_for(c, tenant.sid)
    assert body["status"] == "failed" and body["attempts"] == 1, body
    assert "550" in body["error_message"]
    (note,) = notes
    assert note["error_code"] == 19001 and note["log"] == 0
    assert sid in note["message_text"] and "550" in note["message_text"]
    assert note["more_info"].endswith("/19001.html")


def test_temporary_refusal_is_retried_then_fails_with_a_notification(
    server: Server, smtp_sink: SmtpSink, tenant: Tenant
) -> None:
    busy = f"busy-{tag()}@example.com"
    smtp_sink.reject[busy] = "451 4.3.0 try again later"
    with tenant.client() as c:
        sid = send(c, tenant.sid, **{**VALID, "To": busy}).json()["sid"]
        body = wait_email(c, tenant.sid, sid, final)
        notes = notifications_for(c, tenant.sid)
    assert body["status"] == "failed" and body["attempts"] == 3, body  # max_attempts in the test config
    (note,) = notes
    assert note["error_code"] == 19001 and "after 3 attempts" in note["message_text"]


def test_smtp_down_retries_then_fails_and_recovers_when_back(
    server: Server, smtp_sink: SmtpSink, tenant: Tenant
) -> None:
    smtp_sink.stop()
    try:
        with tenant.client() as c:
            sid = send(c, tenant.sid, **{**VALID, "Subject": f"down {tag()}"}).json()["sid"]
            body = wait_email(c, tenant.sid, sid, final)
            notes = notifications_for(c, tenant.sid)
        assert body["status"] == "failed" and body["attempts"] == 3, body
        assert "unreachable" in body["error_message"]
        (note,) = notes
        assert note["error_code"] == 19001
    finally:
        smtp_sink.start()
    subject = f"back {tag()}"
    with tenant.client() as c:
        sid = send(c, tenant.sid, **{**VALID, "Subject": subject}).json()["sid"]
        smtp_sink.wait_for(lambda m: m.message["Subject"] == subject)
        assert wait_email(c, tenant.sid, sid, final)["status"] == "sent"


# -- durability: a server killed with emails in its outbox --------------------------------------


def _node_env(server: Server, tmp_path: Any, config: Any) -> tuple[str | None, dict[str, str]]:
    """A node of the test's own: its environment, on SQLite under ``tmp_path`` or on a throwaway
    PostgreSQL database at the schema's head (its name returned; the caller drops it)."""
    db_name = database_url = None
    if server.backend == "postgres":
        db_name, database_url = pg_create_database(migrated=True)
    return db_name, base_env(tmp_path / "data", database_url, config)


def test_queued_emails_survive_a_crash_and_are_sent_after_restart(server: Server, tmp_path: Any) -> None:
    """SMTP down, emails accepted, server killed -9; SMTP back, server restarted: each arrives once."""
    smtp_port = free_port()
    config = tmp_path / "restcomm.toml"
    # Retries forever (for this test) with a short lease, so the restarted server takes over at once.
    config.write_text(smtp_section(smtp_port, max_attempts=1000, retry_base_seconds=0.05, retry_max_seconds=0.2,
                                   lease_seconds=1))
    db_name, env = _node_env(server, tmp_path, config)
    sink = SmtpSink(smtp_port)
    proc = None
    try:
        proc, base, _ = start_server(env, tmp_path)
        auth = ("admin@example.com", "Adm1n-Pa55word!")
        marker = tag()
        with httpx.Client(base_url=base + "/restcomm/2012-04-24", auth=auth, timeout=30) as c:
            admin_sid = c.get("/Accounts/admin@example.com.json").json()["sid"]
            sids = []
            for i in range(5):
                r = send(c, admin_sid, **{**VALID, "Subject": f"{marker} #{i}"})
                assert r.status_code == 200, r.text
                sids.append(r.json()["sid"])
            # Every one has been tried (and failed: nothing listens) before the crash.
            for sid in sids:
                assert wait_email(c, admin_sid, sid, lambda b: b["attempts"] >= 1)["status"] in ("queued", "sending")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sink.start()
        proc, base, _ = start_server(env, tmp_path)
        got = sink.wait_for(lambda m: (m.message["Subject"] or "").startswith(marker), count=5)
        with httpx.Client(base_url=base + "/restcomm/2012-04-24", auth=auth, timeout=30) as c:
            for sid in sids:
                assert wait_email(c, admin_sid, sid, final)["status"] == "sent"
        assert sorted(m.message["Subject"] for m in got) == sorted(f"{marker} #{i}" for i in range(5))
        assert len({m.message["Message-ID"] for m in got}) == 5
    finally:
        if proc is not None:
            stop_server(proc)
        sink.stop()
        if db_name:
            pg_drop_database(db_name)


def test_without_smtp_configured_the_api_says_so(server: Server, tmp_path: Any) -> None:
    if server.backend != "sqlite":
        pytest.skip("configuration behaviour; the database backend does not matter")
    proc, base, _ = start_server(base_env(tmp_path / "data"), tmp_path)
    try:
        with httpx.Client(base_url=base + "/restcomm/2012-04-24", auth=("admin@example.com", "Adm1n-Pa55word!")) as c:
            admin_sid = c.get("/Accounts/admin@example.com.json").json()["sid"]
            r = send(c, admin_sid, **VALID)
            assert r.status_code == 503 and r.json()["code"] == 20503
            assert "SMTP" in r.json()["message"]
            assert c.get(f"/Accounts/{admin_sid}/Email/Messages.json").json()["total"] == 0
    finally:
        stop_server(proc)


def test_two_server_processes_share_the_outbox_without_sending_twice(server: Server, tmp_path: Any) -> None:
    """Two processes on one database drain the same outbox: every email arrives exactly once."""
    smtp_port = free_port()
    config = tmp_path / "restcomm.toml"
    config.write_text(smtp_section(smtp_port, batch=3))
    db_name, env = _node_env(server, tmp_path, config)
    sink = SmtpSink(smtp_port)
    sink.start()
    procs = []
    try:
        for _ in range(2):
            procs.append(start_server(env, tmp_path))
        auth = ("admin@example.com", "Adm1n-Pa55word!")
        marker = tag()
        clients = [httpx.Client(base_url=base + "/restcomm/2012-04-24", auth=auth, timeout=30) for _, base, _ in procs]
        try:
            admin_sid = clients[0].get("/Accounts/admin@example.com.json").json()["sid"]
            for i in range(30):  # alternate the two processes, so both senders are woken
                r = send(clients[i % 2], admin_sid, **{**VALID, "Subject": f"{marker} #{i}"})
                assert r.status_code == 200, r.text
            got = sink.wait_for(lambda m: (m.message["Subject"] or "").startswith(marker), count=30)
            deadline = time.monotonic() + 15  # the SMTP server has them; wait (bounded) for the records
            while True:
                listing = clients[1].get(f"/Accounts/{admin_sid}/Email/Messages.json?PageSize=100&Status=sent").json()
                if listing["total"] >= 30 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            for c in clients:
                c.close()
        assert sorted(m.message["Subject"] for m in got) == sorted(f"{marker} #{i}" for i in range(30))
        assert listing["total"] == 30
        assert {e["attempts"] for e in listing["email_messages"]} == {1}
    finally:
        for proc, _, _ in procs:
            stop_server(proc)
        sink.stop()
        if db_name:
            pg_drop_database(db_name)


def _queue_backlog(env: dict[str, str], account_sid: str, marker: str, count: int) -> None:
    """``count`` emails queued for ``account_sid`` straight into the store, a minute old (so older
    than anything sent through the API afterwards), the way the API queues them."""

    async def run() -> None:
        engine = create_engine(load_settings(env=dict(env)))
        past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
        try:
            async with engine.begin() as conn:
                for i in range(count):
                    await queue_email(conn, account_sid=account_sid, from_addr=None, to="a@example.com",
                                      subject=f"{marker} #{i}", body="backlog", clock=lambda: past)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_one_accounts_backlog_does_not_hold_back_another_accounts_email(server: Server, tmp_path: Any) -> None:
    """Account A has thousands of emails queued, older than anything else; account B's email is sent
    within a bound all the same (the outbox is claimed fairly between accounts, not oldest first)."""
    backlog, bound = 4000, 5.0
    smtp_port = free_port()
    config = tmp_path / "restcomm.toml"
    config.write_text(smtp_section(smtp_port))
    db_name, env = _node_env(server, tmp_path, config)
    sink = SmtpSink(smtp_port)
    proc = None
    try:
        proc, base, _ = start_server(env, tmp_path)
        own = Server(server.backend, base, env, tmp_path, proc)
        me = httpx.get(f"{own.api}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=30).json()
        own.admin_sid, own.admin_token = me["sid"], me["auth_token"]
        other = make_tenant(own, name="other")
        flood, mine = tag(), tag()
        _queue_backlog(env, own.admin_sid, flood, backlog)
        sink.start()
        sink.wait_for(lambda m: (m.message["Subject"] or "").startswith(flood), count=20)  # A's are flowing
        with other.client() as c:
            start = time.monotonic()
            r = send(c, other.sid, **{**VALID, "Subject": mine})
            assert r.status_code == 200, r.text
            sink.wait_for(lambda m: m.message["Subject"] == mine, timeout=3 * bound)
            waited = time.monotonic() - start
        sent_for_a = len([m for m in sink.received if (m.message["Subject"] or "").startswith(flood)])
        print(f"B's email after {waited:.3f} s, {sent_for_a} of A's {backlog} sent by then")  # with -s: the numbers
        assert sent_for_a < backlog, "A's backlog drained first: the test shows nothing"
        assert waited < bound, f"B's email waited {waited:.2f} s behind A's backlog ({sent_for_a} of A's sent)"
    finally:
        if proc is not None:
            stop_server(proc)
        sink.stop()
        if db_name:
            pg_drop_database(db_name)
