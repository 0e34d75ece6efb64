"""The Restcomm SMS Messages API over real HTTP: validation codes, durability, shapes, filters, routing
outcomes that need no application (no route, hosted number without an app)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.support.server import Server, Tenant, make_tenant
from tests.support.sms_app import (
    add_number,
    messages,
    send,
    unique_number,
    wait_notification,
    wait_status,
)


@pytest.fixture
def numbers(tenant: Tenant) -> tuple[str, str]:
    a, b = unique_number(), unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, a)
        add_number(c, tenant.sid, b)
    return a, b


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": "+15551234567", "Body": "hi"}, 21603),
        ({"From": "{a}", "Body": "hi"}, 21604),
        ({"From": "{a}", "To": "+15551234567"}, 21602),
        ({"From": "{a}", "To": "+15551234567", "Body": ""}, 21602),
        ({"From": "{a}", "To": "not a number", "Body": "hi"}, 21211),
        ({"From": "{a}", "To": "+15551234567", "Body": "x" * 1601}, 21617),
        ({"From": "+15550000000", "To": "+15551234567", "Body": "hi"}, 21606),
        ({"From": "{a}", "To": "+15551234567", "Body": "hi", "StatusCallback": "ftp://x"}, 21609),
    ],
)
def test_send_is_validated_with_twilio_codes(tenant: Tenant, numbers: tuple[str, str], form: dict[str, str],
                                             code: int) -> None:
    a, _ = numbers
    data = {k: v.replace("{a}", a) for k, v in form.items()}
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/SMS/Messages.json", data=data)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == code
        assert messages(c, tenant.sid) == []  # nothing was stored


def test_accepted_message_is_committed_before_the_answer(tenant: Tenant, numbers: tuple[str, str]) -> None:
    a, _ = numbers
    to = "+15551230000"  # not hosted, no carrier: it fails, but it was accepted first
    with tenant.client() as c:
        r = send(c, tenant.sid, a, to, "Hello €uro [x]")
        assert r.status_code == 200, r.text
        sent = r.json()
        assert sent["status"] == "queued" and sent["direction"] == "outbound-api"
        assert sent["sid"].startswith("SM") and len(sent["sid"]) == 34
        # GSM-7 with two extension characters (€ and [ ]): still one segment, still GSM-7.
        assert (sent["encoding"], sent["num_segments"]) == ("GSM-7", 1)
        assert sent["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/SMS/Messages/{sent['sid']}.json"
        # Readable at once: the answer came after the commit.
        got = c.get(f"/Accounts/{tenant.sid}/SMS/Messages/{sent['sid']}.json")
        assert got.status_code == 200 and got.json()["body"] == "Hello €uro [x]"
        final = wait_status(c, tenant.sid, sent["sid"], {"failed"})
        assert final["error_code"] == 21612
        note = wait_notification(c, tenant.sid, 21612)
        assert sent["sid"] in note["message_text"] and to in note["message_text"]


def test_encoding_and_segments(tenant: Tenant, numbers: tuple[str, str]) -> None:
    a, _ = numbers
    with tenant.client() as c:
        cases = [("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),
                 ("é" * 160, "GSM-7", 1), ("ж" * 70, "UCS-2", 1), ("ж" * 71, "UCS-2", 2), ("😀" * 35, "UCS-2", 1)]
        for body, encoding, segments in cases:
            r = send(c, tenant.sid, a, "+15551230001", body)
            assert r.status_code == 200, r.text
            assert (r.json()["encoding"], r.json()["num_segments"]) == (encoding, segments), body[:3]
        forced = send(c, tenant.sid, a, "+15551230001", "plain", Encoding="UCS-2").json()
        assert (forced["encoding"], forced["num_segments"]) == ("UCS-2", 1)


def test_internal_route_to_a_number_without_an_app(tenant: Tenant, numbers: tuple[str, str]) -> None:
    a, b = numbers
    with tenant.client() as c:
        sent = send(c, tenant.sid, a, b, "to my other number").json()
        final = wait_status(c, tenant.sid, sent["sid"], {"delivered"})
        assert final["date_sent"].endswith("Z")
        inbound = [m for m in messages(c, tenant.sid, To=b) if m["direction"] == "inbound"]
        assert len(inbound) == 1
        assert inbound[0]["status"] == "received" and inbound[0]["from"] == a and inbound[0]["body"] == "to my other number"


def test_alphanumeric_sender_allowed_by_config(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = send(c, tenant.sid, "ACME Corp", "+15551230002", "sender id")
        assert r.status_code == 200, r.text
        assert r.json()["from"] == "ACME Corp"
        bad = send(c, tenant.sid, "Way too long sender", "+15551230002", "x")
        assert bad.status_code == 400 and bad.json()["code"] == 21212


def test_xml_shape_and_list_filters(tenant: Tenant, numbers: tuple[str, str]) -> None:
    a, b = numbers
    with tenant.client() as c:
        first = send(c, tenant.sid, a, "+15551239999", "first").json()
        second = send(c, tenant.sid, a, b, "second").json()
        wait_status(c, tenant.sid, second["sid"], {"delivered"})
        r = c.get(f"/Accounts/{tenant.sid}/SMS/Messages/{first['sid']}", headers={"Accept": "application/xml"})
        assert r.status_code == 200
        doc = ET.fromstring(r.text)
        assert doc.tag == "RestcommResponse" and doc[0].tag == "SMSMessage"
        assert doc.find("SMSMessage/Sid").text == first["sid"]  # type: ignore[union-attr]
        assert doc.find("SMSMessage/Direction").text == "outbound-api"  # type: ignore[union-attr]
        # Restcomm matches To/From by suffix.
        assert [m["sid"] for m in messages(c, tenant.sid, To="239999")] == [first["sid"]]
        assert {m["sid"] for m in messages(c, tenant.sid, Status="delivered")} == {second["sid"]}
        assert {m["sid"] for m in messages(c, tenant.sid, Body="seco")} >= {second["sid"]}
        today = second["date_created"]
        assert today
        page = c.get(f"/Accounts/{tenant.sid}/SMS/Messages.json", params={"PageSize": 1}).json()
        assert page["page_size"] == 1 and page["total"] >= 3 and len(page["messages"]) == 1
        nxt = c.get(page["next_page_uri"].removeprefix("/restcomm/2012-04-24"), headers={"Accept": "application/json"})
        assert nxt.status_code == 200 and nxt.json()["page"] == 1
        bad = c.get(f"/Accounts/{tenant.sid}/SMS/Messages.json", params={"Status": "bogus"})
        assert bad.status_code == 400


def test_tenancy(server: Server, tenant: Tenant, numbers: tuple[str, str]) -> None:
    a, _ = numbers
    sibling = make_tenant(server)
    with tenant.client() as c:
        sent = send(c, tenant.sid, a, "+15551230003", "private").json()
    with sibling.client() as s:
        assert s.get(f"/Accounts/{tenant.sid}/SMS/Messages/{sent['sid']}.json").status_code == 403
        assert send(s, tenant.sid, a, "+15551230003", "x").status_code == 403
        # A number of another account is not a sender this one may use.
        r = send(s, sibling.sid, a, "+15551230003", "x")
        assert r.status_code == 400 and r.json()["code"] == 21606
        assert s.get(f"/Accounts/{sibling.sid}/SMS/Messages/{sent['sid']}.json").status_code in (403, 404)
    with server.admin() as admin:  # the parent may read and send for its child
        assert admin.get(f"/Accounts/{tenant.sid}/SMS/Messages/{sent['sid']}.json").status_code == 200
        assert send(admin, tenant.sid, a, "+15551230003", "on behalf").status_code == 200
