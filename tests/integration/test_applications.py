"""Applications over real HTTP, on SQLite and PostgreSQL: shapes (with the bound numbers in lists),
validation, update, delete (404 when missing, unbinding numbers and clients), tenancy and audit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from restcomm.store.schema import incoming_phone_numbers
from restcomm.util import utcnow
from tests.support.resources import DATE, STRONG, family, in_order, sql, xml
from tests.support.server import Server, Tenant, make_tenant

JSON_KEYS = [
    "sid", "date_created", "date_updated", "friendly_name", "account_sid", "api_version", "voice_caller_id_lookup",
    "uri", "rcml_url", "kind", "numbers",
]
XML_ELEMENTS = [
    "Sid", "DateCreated", "DateUpdated", "FriendlyName", "AccountSid", "ApiVersion", "VoiceCallerIdLookup", "Uri",
    "RcmlUrl", "Kind", "Numbers",
]
NUMBER_KEYS = [
    "sid", "friendly_name", "phone_number", "voice_application_sid", "sms_application_sid", "ussd_application_sid",
    "refer_application_sid",
]


def make_app(t: Tenant, **params: str) -> dict[str, Any]:
    with t.client() as c:
        r = c.post(f"/Accounts/{t.sid}/Applications.json", data={"FriendlyName": "app", **params})
    assert r.status_code == 200, r.text
    return r.json()


def app_sids(c: httpx.Client, account: str) -> list[str]:
    r = c.get(f"/Accounts/{account}/Applications.json")
    assert r.status_code == 200, r.text
    return [a["sid"] for a in r.json()]


def add_number(server: Server, t: Tenant, phone: str, **bindings: str) -> str:
    """An incoming number of the tenant bound to applications, written to the server's database
    (IncomingPhoneNumbers is another resource; its table is what Applications reads)."""
    with t.client() as c:
        org = c.get(f"/Accounts/{t.sid}.json").json()["organization"]
    sid, now = "PN" + uuid.uuid4().hex, utcnow()
    sql(server, insert(incoming_phone_numbers).values(
        sid=sid, account_sid=t.sid, organization_sid=org, phone_number=phone, friendly_name=f"num {phone}",
        pure_sip=True, api_version="2012-04-24", date_created=now, date_updated=now, **bindings,
    ))
    return sid


def number_row(server: Server, sid: str) -> Any:
    (row,) = sql(server, select(incoming_phone_numbers).where(incoming_phone_numbers.c.sid == sid))
    return row


def unique_phone() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


# ---------------------------------------------------------------------------------------------
# Shapes


def test_create_and_read_json(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={
            "FriendlyName": "IVR", "VoiceCallerIdLookup": "true", "RcmlUrl": "https://app.example.com/ivr.xml",
            "Kind": "voice",
        })
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        app = r.json()
        assert in_order(list(app), JSON_KEYS), list(app)
        assert app["sid"].startswith("AP") and len(app["sid"]) == 34
        assert app["friendly_name"] == "IVR" and app["account_sid"] == tenant.sid
        assert app["api_version"] == "2012-04-24"
        assert app["voice_caller_id_lookup"] is True
        assert app["rcml_url"] == "https://app.example.com/ivr.xml" and app["kind"] == "voice"
        assert app["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Applications/{app['sid']}.json"
        assert DATE.match(app["date_created"]) and DATE.match(app["date_updated"])
        assert "numbers" not in app
        for path in (
            f"/Accounts.json/{tenant.sid}/Applications.json/{app['sid']}",
            f"/Accounts/{tenant.sid}/Applications/{app['sid']}.json",
            f"/Accounts/{tenant.sid}/Applications.json/{app['sid']}/",
        ):
            got = c.get(path)
            assert got.status_code == 200, (path, got.text)
            assert got.json() == app  # one application: no numbers array
        listed = c.get(f"/Accounts.json/{tenant.sid}/Applications.json/").json()
        assert listed == [{**app, "numbers": []}]


def test_defaults_and_relative_rcml_url(tenant: Tenant) -> None:
    app = make_app(tenant, RcmlUrl="/visual-designer/services/apps/APx/controller", ApiVersion="2010-04-01")
    assert app["voice_caller_id_lookup"] is False
    assert app["rcml_url"] == "/visual-designer/services/apps/APx/controller"
    assert "kind" not in app
    # the stored ApiVersion is shown, but the uri always names the version that serves it
    assert app["api_version"] == "2010-04-01"
    assert app["uri"].startswith("/2012-04-24/")


def test_xml_shapes(server: Server, tenant: Tenant) -> None:
    app = make_app(tenant, Kind="sms", RcmlUrl="https://app.example.com/sms?a=1&b=2")
    phone = unique_phone()
    number = add_number(server, tenant, phone, sms_application_sid=app["sid"])
    with tenant.client() as c:
        one = xml(c.get(f"/Accounts/{tenant.sid}/Applications/{app['sid']}")).find("Application")
        assert one is not None
        tags = [e.tag for e in one]
        assert in_order(tags, XML_ELEMENTS) and "Numbers" not in tags, tags
        assert one.findtext("VoiceCallerIdLookup") == "false"
        assert one.findtext("RcmlUrl") == "https://app.example.com/sms?a=1&b=2"
        assert one.findtext("Kind") == "sms"
        assert one.findtext("Uri") == f"/2012-04-24/Accounts/{tenant.sid}/Applications/{app['sid']}"
        apps = xml(c.get(f"/Accounts/{tenant.sid}/Applications")).find("Applications")
        assert apps is not None
        (listed,) = apps.findall("Application")
        assert [n.findtext("Sid") for n in listed.findall("Numbers/Number")] == [number]
        n = listed.find("Numbers/Number")
        assert n is not None
        assert [e.tag for e in n] == ["Sid", "FriendlyName", "PhoneNumber", "SmsApplicationSid"]
        assert n.findtext("PhoneNumber") == phone


def test_list_shows_the_numbers_bound_to_each_application(server: Server, tenant: Tenant) -> None:
    a, b, idle = make_app(tenant, FriendlyName="A"), make_app(tenant, FriendlyName="B"), make_app(tenant)
    p1, p2, p3, p4 = sorted(unique_phone() for _ in range(4))
    n1 = add_number(server, tenant, p1, voice_application_sid=a["sid"], sms_application_sid=b["sid"])
    n2 = add_number(server, tenant, p2, ussd_application_sid=a["sid"])
    n3 = add_number(server, tenant, p3, refer_application_sid=a["sid"])
    add_number(server, tenant, p4)  # bound to nothing
    other = make_tenant(server)
    add_number(server, other, unique_phone(), voice_application_sid=a["sid"])  # not this account's number
    with tenant.client() as c:
        listed = {x["sid"]: x for x in c.get(f"/Accounts/{tenant.sid}/Applications.json").json()}
    assert [n["sid"] for n in listed[a["sid"]]["numbers"]] == [n1, n2, n3]
    assert [n["sid"] for n in listed[b["sid"]]["numbers"]] == [n1]
    assert listed[idle["sid"]]["numbers"] == []
    first = listed[a["sid"]]["numbers"][0]
    assert in_order(list(first), NUMBER_KEYS)
    assert first == {"sid": n1, "friendly_name": f"num {p1}", "phone_number": p1,
                     "voice_application_sid": a["sid"], "sms_application_sid": b["sid"]}
    assert listed[a["sid"]]["numbers"][1] == {"sid": n2, "friendly_name": f"num {p2}", "phone_number": p2,
                                              "ussd_application_sid": a["sid"]}


# ---------------------------------------------------------------------------------------------
# Validation and update


INVALID = [
    ({"FriendlyName": None}, 20002, "FriendlyName can not be null."),
    ({"FriendlyName": ""}, 20002, "FriendlyName can not be null."),
    ({"Kind": "fax"}, 20001, "Kind"),
    ({"Kind": ""}, 20001, "Kind"),
    ({"VoiceCallerIdLookup": "yes"}, 20001, "VoiceCallerIdLookup"),
    ({"RcmlUrl": "ftp://example.com/app.xml"}, 20001, "RcmlUrl"),
    ({"RcmlUrl": "//example.com/app.xml"}, 20001, "RcmlUrl"),
    ({"FriendlyName": "x" * 256}, 20001, "FriendlyName"),
]


@pytest.mark.parametrize(("change", "code", "message"), INVALID, ids=[str(x[0])[:40] for x in INVALID])
def test_create_validation(tenant: Tenant, change: dict[str, str | None], code: int, message: str) -> None:
    data = {k: v for k, v in {"FriendlyName": "app", **change}.items() if v is not None}
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Applications.json", data=data)
        assert r.status_code == 400, r.text
        err = r.json()
        assert err["status"] == 400 and err["code"] == code and message in err["message"], err
        r = c.post(f"/Accounts/{tenant.sid}/Applications", data=data)
        exc = xml(r).find("RestException")
        assert r.status_code == 400 and exc is not None and exc.findtext("Code") == str(code)
        assert app_sids(c, tenant.sid) == []


def test_update_with_post_and_put(tenant: Tenant) -> None:
    app = make_app(tenant, RcmlUrl="https://app.example.com/a.xml", Kind="voice")
    url = f"/Accounts/{tenant.sid}/Applications/{app['sid']}.json"
    with tenant.client() as c:
        r = c.post(url, data={"FriendlyName": "Renamed", "VoiceCallerIdLookup": "true", "Kind": "USSD",
                              "ApiVersion": "2008-08-01"})
        assert r.status_code == 200, r.text
        got = r.json()
        assert in_order(list(got), JSON_KEYS) and "numbers" not in got
        assert got["friendly_name"] == "Renamed" and got["voice_caller_id_lookup"] is True
        assert got["kind"] == "ussd" and got["rcml_url"] == "https://app.example.com/a.xml"
        assert got["api_version"] == app["api_version"] and got["date_created"] == app["date_created"]
        assert c.get(url).json() == got
        r = c.put(url, data={"RcmlUrl": "", "VoiceCallerIdLookup": "false"})
        assert r.status_code == 200, r.text
        assert "rcml_url" not in r.json() and r.json()["voice_caller_id_lookup"] is False
        for data in ({"Kind": "fax", "FriendlyName": "x"}, {"FriendlyName": ""}, {"RcmlUrl": "mailto:a@b.c"}):
            bad = c.post(url, data=data)
            assert bad.status_code == 400, (data, bad.text)
        assert c.get(url).json() == r.json()


def test_missing_applications_are_404(tenant: Tenant) -> None:
    missing = "AP" + uuid.uuid4().hex
    with tenant.client() as c:
        for method in ("GET", "POST", "PUT", "DELETE"):
            for sid in (missing, "rvdSayVerbDemo", "AP%00"):
                data = {"FriendlyName": "x"} if method in ("POST", "PUT") else None
                r = c.request(method, f"/Accounts/{tenant.sid}/Applications/{sid}.json", data=data)
                assert r.status_code == 404, (method, sid, r.text)
                assert r.json()["code"] == 20404


# ---------------------------------------------------------------------------------------------
# Delete


def test_delete_unbinds_numbers_and_clients(server: Server, tenant: Tenant) -> None:
    doomed, kept = make_app(tenant, FriendlyName="doomed"), make_app(tenant, FriendlyName="kept")
    n1 = add_number(server, tenant, unique_phone(), voice_application_sid=doomed["sid"],
                    sms_application_sid=kept["sid"], ussd_application_sid=doomed["sid"],
                    refer_application_sid=doomed["sid"])
    with tenant.client() as c:
        cl = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={
            "Login": f"bound-{uuid.uuid4().hex[:8]}", "Password": STRONG, "VoiceApplicationSid": doomed["sid"]})
        other = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={
            "Login": f"kept-{uuid.uuid4().hex[:8]}", "Password": STRONG, "VoiceApplicationSid": kept["sid"]})
        assert cl.status_code == 200 and other.status_code == 200, (cl.text, other.text)
        r = c.delete(f"/Accounts.json/{tenant.sid}/Applications.json/{doomed['sid']}")
        assert r.status_code == 200 and r.content == b""
        assert c.get(f"/Accounts/{tenant.sid}/Applications/{doomed['sid']}.json").status_code == 404
        assert app_sids(c, tenant.sid) == [kept["sid"]]
        # Restcomm answers 200 for an application that does not exist; here it is a 404.
        again = c.delete(f"/Accounts/{tenant.sid}/Applications/{doomed['sid']}.json")
        assert again.status_code == 404 and again.json()["code"] == 20404
        client = c.get(f"/Accounts/{tenant.sid}/Clients/{cl.json()['sid']}.json").json()
        assert "voice_application_sid" not in client
        assert client["date_updated"] and client["login"] == cl.json()["login"]
        assert c.get(f"/Accounts/{tenant.sid}/Clients/{other.json()['sid']}.json").json()[
            "voice_application_sid"] == kept["sid"]
        listed = c.get(f"/Accounts/{tenant.sid}/Applications.json").json()
        assert [n["sid"] for n in listed[0]["numbers"]] == [n1]
    row = number_row(server, n1)
    assert row["voice_application_sid"] is None
    assert row["ussd_application_sid"] is None and row["refer_application_sid"] is None
    assert row["sms_application_sid"] == kept["sid"]


# ---------------------------------------------------------------------------------------------
# Tenancy


@pytest.mark.parametrize("actor", ["owner", "parent", "sibling", "child"])
def test_tenancy(server: Server, tenant: Tenant, actor: str) -> None:
    credentials = family(server, tenant)[actor]
    allowed = actor in ("owner", "parent")
    expected = 200 if allowed else 403
    app = make_app(tenant, FriendlyName="original")
    item = f"/Accounts/{tenant.sid}/Applications/{app['sid']}.json"
    collection = f"/Accounts/{tenant.sid}/Applications.json"
    with server.client(*credentials) as c:
        r = c.get(item)
        assert r.status_code == expected, r.text
        assert c.get(collection).status_code == expected
        r = c.post(item, data={"FriendlyName": f"by {actor}"})
        assert r.status_code == expected, r.text
        r = c.post(collection, data={"FriendlyName": f"created by {actor}"})
        assert r.status_code == expected, r.text
        created = r.json().get("sid")
        assert c.delete(item).status_code == expected
    with tenant.client() as c:
        now = c.get(item)
        sids = app_sids(c, tenant.sid)
    if allowed:
        assert now.status_code == 404 and sids == [created]
    else:
        assert now.status_code == 200 and now.json() == app and sids == [app["sid"]]


def test_resource_addressed_under_the_wrong_account(server: Server, tenant: Tenant) -> None:
    app = make_app(tenant)
    sibling = make_tenant(server)
    with server.admin() as c:  # visible to the parent, but not an application of the parent's account
        assert c.get(f"/Accounts/{server.admin_sid}/Applications/{app['sid']}.json").status_code == 403
        assert c.delete(f"/Accounts/{server.admin_sid}/Applications/{app['sid']}.json").status_code == 403
    with sibling.client() as c:  # invisible to a sibling
        assert c.get(f"/Accounts/{sibling.sid}/Applications/{app['sid']}.json").status_code == 404
        assert c.delete(f"/Accounts/{sibling.sid}/Applications/{app['sid']}.json").status_code == 404
    with tenant.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}/Applications/{app['sid']}.json").json() == app


# ---------------------------------------------------------------------------------------------
# Audit


def test_writes_are_audited(server: Server, tenant: Tenant) -> None:
    app = make_app(tenant, FriendlyName="audited", Kind="voice")
    url = f"/Accounts/{tenant.sid}/Applications/{app['sid']}.json"
    with server.admin() as c:
        assert c.post(url, data={"RcmlUrl": "https://a.example.com/x.xml", "Bogus": "1"}).status_code == 200
        assert c.delete(url).status_code == 200
    with tenant.client() as c:
        assert c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"Kind": "fax"}).status_code == 400
        r = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Application"})
        assert r.status_code == 200, r.text
        events = r.json()["audit_events"]
    assert {e["resource_sid"] for e in events} == {app["sid"]}  # the refused create left nothing
    by_action = {e["action"]: e for e in events}
    assert sorted(by_action) == ["create", "delete", "update"]
    assert all(e["account_sid"] == tenant.sid for e in events)
    assert by_action["create"]["actor_sid"] == tenant.sid
    assert set(by_action["create"]["changed_parameters"].split(",")) == {"FriendlyName", "Kind"}
    assert by_action["update"]["actor_sid"] == server.admin_sid
    assert by_action["update"]["changed_parameters"] == "RcmlUrl"
    assert by_action["delete"]["actor_sid"] == server.admin_sid
