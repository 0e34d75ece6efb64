"""OutgoingCallerIds over real HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from tests.support.server import Server, Tenant, make_tenant

PN = re.compile(r"^PN[0-9a-f]{32}$")
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
FIELDS = ["sid", "account_sid", "friendly_name", "phone_number", "date_created", "date_updated", "uri"]


def url(account: str, sid: str = "") -> str:
    return f"/Accounts/{account}/OutgoingCallerIds" + (f"/{sid}" if sid else "") + ".json"


def listed(c: httpx.Client, account: str, **params: str) -> list[dict[str, Any]]:
    r = c.get(url(account), params=params)
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list)
    return r.json()


def audit_actions(c: httpx.Client, account: str, sid: str) -> list[str]:
    r = c.get(f"/Accounts/{account}/AuditLog.json", params={"ResourceType": "OutgoingCallerId", "PageSize": 200})
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["audit_events"] if e["resource_sid"] == sid]


@pytest.mark.parametrize(
    ("given", "e164", "national"),
    [
        ("+14155550123", "+14155550123", "(415) 555-0123"),
        ("(415) 555-0124", "+14155550124", "(415) 555-0124"),
        ("14155550125", "+14155550125", "(415) 555-0125"),
        ("+442071234567", "+442071234567", "020 7123 4567"),
    ],
)
def test_create_normalizes_and_defaults_the_friendly_name(tenant: Tenant, given: str, e164: str, national: str) -> None:
    with tenant.client() as c:
        r = c.post(url(tenant.sid), data={"PhoneNumber": given})
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body) == FIELDS
        assert PN.match(body["sid"]) and body["account_sid"] == tenant.sid
        assert body["phone_number"] == e164 and body["friendly_name"] == national
        assert RFC2822.match(body["date_created"]) and body["date_created"] == body["date_updated"]
        assert body["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/OutgoingCallerIds/{body['sid']}.json"
        assert c.get(url(tenant.sid, body["sid"])).json() == body
        assert listed(c, tenant.sid) == [body]
        assert audit_actions(c, tenant.sid, body["sid"]) == ["create"]


@pytest.mark.parametrize("bad", ["abc", "+1234", "12", "555-0123", "+1 (415) 555-01234567", "*67", "x" * 65])
def test_invalid_number_is_400_21401_and_creates_nothing(tenant: Tenant, bad: str) -> None:
    with tenant.client() as c:
        r = c.post(url(tenant.sid), data={"PhoneNumber": bad, "FriendlyName": "bad"})
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 21401
        assert listed(c, tenant.sid) == []


def test_missing_number_is_400(tenant: Tenant) -> None:
    with tenant.client() as c:
        for data in ({}, {"PhoneNumber": ""}, {"FriendlyName": "no number"}):
            r = c.post(url(tenant.sid), data=data)
            assert r.status_code == 400, r.text
        assert listed(c, tenant.sid) == []


def test_list_get_update_with_post_and_put_delete(tenant: Tenant) -> None:
    with tenant.client() as c:
        a = c.post(url(tenant.sid), data={"PhoneNumber": "+14155550123", "FriendlyName": "Office"}).json()
        b = c.post(url(tenant.sid), data={"PhoneNumber": "+14155550199"}).json()
        assert a["friendly_name"] == "Office"
        assert [x["sid"] for x in listed(c, tenant.sid)] == [a["sid"], b["sid"]]
        assert [x["sid"] for x in listed(c, tenant.sid, PhoneNumber="(415) 555-0199")] == [b["sid"]]
        assert [x["sid"] for x in listed(c, tenant.sid, FriendlyName="Office")] == [a["sid"]]
        r = c.post(url(tenant.sid, a["sid"]), data={"FriendlyName": "Front desk", "PhoneNumber": "+19999999999"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "Front desk"
        assert r.json()["phone_number"] == "+14155550123"
        r = c.put(url(tenant.sid, a["sid"]), data={"FriendlyName": "Reception"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "Reception"
        assert c.get(url(tenant.sid, a["sid"])).json() == r.json()
        r = c.post(url(tenant.sid, a["sid"]), data={"FriendlyName": "x" * 256})
        assert r.status_code == 400
        assert c.get(url(tenant.sid, a["sid"])).json()["friendly_name"] == "Reception"
        r = c.delete(url(tenant.sid, a["sid"]))
        assert r.status_code == 200 and r.content == b""
        assert c.get(url(tenant.sid, a["sid"])).status_code == 404
        # Restcomm answers 200 for an unknown id; here it is 404.
        assert c.delete(url(tenant.sid, a["sid"])).status_code == 404
        assert c.delete(url(tenant.sid, "PN" + "0" * 32)).status_code == 404
        assert c.post(url(tenant.sid, a["sid"]), data={"FriendlyName": "ghost"}).status_code == 404
        assert [x["sid"] for x in listed(c, tenant.sid)] == [b["sid"]]
        assert audit_actions(c, tenant.sid, a["sid"]) == ["delete", "update", "update", "create"]


def test_xml_shapes(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/OutgoingCallerIds", data={"PhoneNumber": "+14155550123"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
        item = ET.fromstring(r.text).find("OutgoingCallerId")
        assert item is not None
        assert [e.tag for e in item] == ["Sid", "AccountSid", "FriendlyName", "PhoneNumber", "DateCreated",
                                         "DateUpdated", "Uri"]
        assert item.findtext("Uri") == f"/2012-04-24/Accounts/{tenant.sid}/OutgoingCallerIds/{item.findtext('Sid')}"
        root = ET.fromstring(c.get(f"/Accounts/{tenant.sid}/OutgoingCallerIds").text)
        ids = root.find("OutgoingCallerIds")
        assert ids is not None and [e.findtext("PhoneNumber") for e in ids] == ["+14155550123"]
        bad = c.post(f"/Accounts/{tenant.sid}/OutgoingCallerIds", data={"PhoneNumber": "nope"})
        assert bad.status_code == 400 and ET.fromstring(bad.text).findtext("RestException/Code") == "21401"


def test_tenancy_owner_and_parent_allowed_sibling_and_child_refused(server: Server) -> None:
    owner = make_tenant(server, name="owner")
    child, sibling = owner.sub("child"), make_tenant(server, name="sibling")
    with owner.client() as c:
        sid = c.post(url(owner.sid), data={"PhoneNumber": "+14155550123"}).json()["sid"]
    for intruder in (sibling, child):
        with intruder.client() as c:
            assert c.get(url(owner.sid)).status_code == 403
            assert c.post(url(owner.sid), data={"PhoneNumber": "+14155550100"}).status_code == 403
            assert c.get(url(owner.sid, sid)).status_code == 403
            assert c.post(url(owner.sid, sid), data={"FriendlyName": "pwned"}).status_code == 403
            assert c.delete(url(owner.sid, sid)).status_code == 403
            assert c.get(url(intruder.sid, sid)).status_code in (403, 404)
            assert c.delete(url(intruder.sid, sid)).status_code in (403, 404)
    with owner.client() as c:
        assert [(x["sid"], x["friendly_name"]) for x in listed(c, owner.sid)] == [(sid, "(415) 555-0123")]
    with server.admin() as admin:
        assert admin.put(url(owner.sid, sid), data={"FriendlyName": "parent"}).json()["friendly_name"] == "parent"
        r = admin.post(url(owner.sid), data={"PhoneNumber": "+14155550111"})
        assert r.status_code == 200 and r.json()["account_sid"] == owner.sid
        assert admin.delete(url(owner.sid, sid)).status_code == 200
    with owner.client() as c:
        assert c.post(url(child.sid), data={"PhoneNumber": "+14155550112"}).json()["account_sid"] == child.sid
