"""The audit log: who changed what, and when, for every management change; readable by the account
it concerns and its ancestors only; never a secret in it."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from restcomm.store.schema import audit_log
from tests.support.sdk.store import read_rows
from tests.support.server import Server, Tenant, make_tenant

STRONG = "Tr0ub4dor&3"


def events(client: httpx.Client, account_sid: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/Accounts/{account_sid}/AuditLog.json", params=params)
    assert r.status_code == 200, r.text
    return r.json()["audit_events"]


def only(client: httpx.Client, account_sid: str, resource_sid: str) -> list[tuple[str, str, str]]:
    """(action, resource_type, changed_parameters) of the events about one resource, oldest first."""
    return [
        (e["action"], e["resource_type"], e.get("changed_parameters", ""))
        for e in reversed(events(client, account_sid, PageSize=1000))
        if e.get("resource_sid") == resource_sid
    ]


def now() -> datetime:
    return datetime.now(UTC)


# -- who, what, when ------------------------------------------------------------------------


def test_account_create_names_who_what_and_when(server: Server, tenant: Tenant) -> None:
    email = f"audited-{uuid.uuid4().hex[:8]}@example.com"
    request_id = uuid.uuid4().hex
    before = now().replace(microsecond=0)
    with tenant.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": STRONG, "FriendlyName": "Audited"},
                   headers={"X-Request-Id": request_id})
        assert r.status_code == 200, r.text
        child = r.json()["sid"]
        [event] = events(c, child)
    after = now()
    assert event["action"] == "create"
    assert event["resource_type"] == "Account"
    assert event["resource_sid"] == child
    assert event["account_sid"] == child
    assert event["actor_sid"] == tenant.sid
    assert event["credential_sid"] == tenant.sid
    assert event["changed_parameters"] == "EmailAddress,FriendlyName"  # never Password
    assert event["remote_addr"] == "127.0.0.1"
    assert event["request_id"] == request_id
    assert before <= parsedate_to_datetime(event["date_created"]) <= after + timedelta(seconds=1)
    assert event["sid"].startswith("AL") and len(event["sid"]) == 34


def test_account_updates(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    with child.client() as c:
        assert c.post(f"/Accounts/{child.sid}.json", data={"FriendlyName": "mine now"}).status_code == 200
    with tenant.client() as c:
        assert c.post(f"/Accounts/{child.sid}.json", data={"Password": STRONG}).status_code == 200
        assert c.post(f"/Accounts/{child.sid}.json", data={"Status": "suspended"}).status_code == 200
        history = events(c, child.sid)
    assert [(e["action"], e.get("changed_parameters"), e["actor_sid"]) for e in history] == [
        ("update", "Status", tenant.sid),
        ("update", "Password", tenant.sid),
        ("update", "FriendlyName", child.sid),
        ("create", "EmailAddress,FriendlyName", tenant.sid),
    ]


def test_refused_changes_leave_no_trace(tenant: Tenant) -> None:
    with tenant.client() as c:
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Password": "weak"}).status_code == 400
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Status": "nonsense"}).status_code == 400
        assert c.get(f"/Accounts/{tenant.sid}.json").status_code == 200
        assert [e["action"] for e in events(c, tenant.sid)] == ["create"]


def test_filters_and_xml(tenant: Tenant) -> None:
    with tenant.client() as c:
        for name in ("one", "two"):
            assert c.post(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": name}).status_code == 200
        updates = events(c, tenant.sid, Action="update")
        assert len(updates) == 2 and {e["action"] for e in updates} == {"update"}
        assert [e["action"] for e in events(c, tenant.sid, ResourceType="Account", Action="create")] == ["create"]
        assert events(c, tenant.sid, ResourceType="Client", Action="update") == []
        today = now().date()
        assert len(events(c, tenant.sid, StartTime=str(today))) == 3
        assert events(c, tenant.sid, StartTime=str(today + timedelta(days=1))) == []
        assert c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"StartTime": "soon"}).status_code == 400
        page = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"PageSize": 2}).json()
        assert page["total"] == 3 and len(page["audit_events"]) == 2 and page["next_page_uri"]
        r = c.get(f"/Accounts/{tenant.sid}/AuditLog", headers={"Accept": "application/xml"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
    items = ET.fromstring(r.text).findall("AuditEvents/AuditEvent")
    assert [i.findtext("Action") for i in items] == ["update", "update", "create"]
    assert items[0].findtext("ActorSid") == tenant.sid


def test_event_uri_leads_to_the_event(tenant: Tenant) -> None:
    with tenant.client() as c:
        [event] = events(c, tenant.sid)
        r = c.get(event["uri"].removeprefix("/2012-04-24"))
    assert r.status_code == 200 and r.json()["sid"] == event["sid"]


# -- who may read it ------------------------------------------------------------------------


def test_who_may_read_an_audit_log(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    sibling = make_tenant(server, name="sibling")
    path = f"/Accounts/{child.sid}/AuditLog.json"
    with child.client() as c:
        assert c.get(path).status_code == 200
        assert c.get(f"/Accounts/{tenant.sid}/AuditLog.json").status_code == 403  # not the parent's
    with tenant.client() as c:
        assert c.get(path).status_code == 200  # a parent reads its child's
    with server.admin() as c:
        assert c.get(path).status_code == 200  # and so does every ancestor
    with sibling.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/AuditLog.json")
        assert r.status_code == 403 and r.json()["code"] == 20006
        assert c.get(path).status_code == 403
    r = httpx.get(f"{server.api}{path}")
    assert r.status_code == 401


# -- other resources as they record changes -------------------------------------------------


def _client() -> dict[str, str]:
    return {"Login": f"audit-{uuid.uuid4().hex[:8]}", "Password": STRONG}


def _application() -> dict[str, str]:
    return {"FriendlyName": "app", "Kind": "sms"}


def _number() -> dict[str, str]:
    return {"PhoneNumber": "+1555" + str(uuid.uuid4().int)[:7], "isSIP": "true", "VoiceUrl": "http://127.0.0.1/v"}


@pytest.mark.parametrize(
    ("collection", "create", "change", "deleted", "resource_type", "created_with"),
    [
        ("Clients", _client, {"FriendlyName": "Al"}, 200, "Client", "Login,Password"),
        ("Applications", _application, {"RcmlUrl": "http://127.0.0.1/app"}, 200, "Application", "FriendlyName,Kind"),
        ("IncomingPhoneNumbers", _number, {"SmsUrl": "http://127.0.0.1/sms"}, 204, "IncomingPhoneNumber",
         "PhoneNumber,VoiceUrl,isSIP"),
    ],
)
def test_other_resources_are_audited(
    tenant: Tenant, collection: str, create: Any, change: dict[str, str], deleted: int, resource_type: str,
    created_with: str,
) -> None:
    base = f"/Accounts/{tenant.sid}/{collection}"
    with tenant.client() as c:
        r = c.post(f"{base}.json", data=create())
        assert r.status_code == 200, r.text
        sid = r.json()["sid"]
        r = c.post(f"{base}/{sid}.json", data=change)
        assert r.status_code == 200, r.text
        assert c.delete(f"{base}/{sid}.json").status_code == deleted
        trail = only(c, tenant.sid, sid)
    assert trail == [
        ("create", resource_type, created_with),
        ("update", resource_type, ",".join(change)),
        ("delete", resource_type, ""),
    ]


# -- no secrets -----------------------------------------------------------------------------


def test_no_secret_ever_reaches_the_audit_log(server: Server, tenant: Tenant) -> None:
    secrets = {tenant.password, tenant.token}
    child_password = "Ch1ld-" + uuid.uuid4().hex + "!"
    new_password = "N3w-" + uuid.uuid4().hex + "!"
    client_password = "Cl1ent-" + uuid.uuid4().hex + "!"
    with tenant.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": f"s-{uuid.uuid4().hex[:8]}@example.com",
                                           "Password": child_password})
        child = r.json()
        secrets |= {child_password, child["auth_token"]}
        assert c.post(f"/Accounts/{child['sid']}.json", data={"Password": new_password}).status_code == 200
        secrets.add(new_password)
        key = c.post(f"/Accounts/{tenant.sid}/Keys.json", data={"FriendlyName": "k"}).json()
        secrets.add(key["secret"])
        login = f"s-{uuid.uuid4().hex[:8]}"
        r = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={"Login": login, "Password": client_password})
        assert r.status_code == 200, r.text
        secrets.add(client_password)
        documents = [
            c.get(f"/Accounts/{sid}/AuditLog{suffix}", headers=headers).text
            for sid in (tenant.sid, child["sid"])
            for suffix, headers in ((".json", {}), ("", {"Accept": "application/xml"}))
        ]
    assert all(s and s not in doc for s in secrets for doc in documents)
    # The stored rows too, not only what the API shows of them.
    rows = read_rows(server.env, select(audit_log).where(audit_log.c.account_sid.in_([tenant.sid, child["sid"]])))
    assert len(rows) >= 5
    stored = "\n".join(str(v) for row in rows for v in row.values())
    assert not [s for s in secrets if s in stored]
