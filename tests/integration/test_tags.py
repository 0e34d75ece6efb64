"""Tags: create, list (paged, filtered), read, update, delete labels on an account's resources; the
?Tag= filter on the lists of accounts, clients, applications and incoming numbers; tags follow
their resources (deleted with them) and stay within the account tree."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from tests.support.server import Server, Tenant, make_tenant


def _tag(c: httpx.Client, account: str, resource: str, key: str, value: str = "") -> dict[str, Any]:
    r = c.post(f"/Accounts/{account}/Tags.json", data={"ResourceSid": resource, "Key": key, "Value": value})
    assert r.status_code == 200, r.text
    return r.json()


def _resources(c: httpx.Client, account: str) -> dict[str, str]:
    """One client, application and number of ``account``, by resource type."""
    client = c.post(f"/Accounts/{account}/Clients.json",
                    data={"Login": f"t{uuid.uuid4().hex[:10]}", "Password": "Cl1ent-Passw0rd!"})
    app = c.post(f"/Accounts/{account}/Applications.json", data={"FriendlyName": "tagged app"})
    number = c.post(f"/Accounts/{account}/IncomingPhoneNumbers.json",
                    data={"PhoneNumber": f"+1888{uuid.uuid4().int % 10**7:07d}", "isSIP": "true"})
    for r in (client, app, number):
        assert r.status_code == 200, r.text
    return {"Clients": client.json()["sid"], "Applications": app.json()["sid"],
            "IncomingPhoneNumbers": number.json()["sid"]}


def test_crud(tenant: Tenant) -> None:
    with tenant.client() as c:
        tag = _tag(c, tenant.sid, tenant.sid, "env", "prod")
        assert tag["sid"].startswith("TG") and len(tag["sid"]) == 34
        assert (tag["resource_type"], tag["resource_sid"], tag["key"], tag["value"]) == (
            "Accounts", tenant.sid, "env", "prod")
        assert tag["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Tags/{tag['sid']}.json"
        path = f"/Accounts/{tenant.sid}/Tags/{tag['sid']}"
        assert c.get(path + ".json").json() == tag
        xml = c.get(path, headers={"Accept": "application/xml"})
        assert ET.fromstring(xml.text).findtext("Tag/Value") == "prod"
        r = c.post(path + ".json", data={"Value": "staging"})
        assert r.status_code == 200 and r.json()["value"] == "staging" and r.json()["key"] == "env"
        r = c.put(path + ".json", data={"Key": "stage"})
        assert r.status_code == 200 and r.json()["key"] == "stage"
        assert c.get(path + ".json").json()["key"] == "stage"
        assert c.post(path + ".json", data={"Other": "x"}).json()["value"] == "staging"  # nothing to change
        r = c.delete(path + ".json")
        assert r.status_code == 204 and r.content == b""
        assert c.get(path + ".json").status_code == 404
        assert c.delete(path + ".json").status_code == 404
        assert c.post(f"/Accounts/{tenant.sid}/Tags/TG{uuid.uuid4().hex}.json", data={"Value": "x"}).status_code == 404
        events = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Tag"}).json()["audit_events"]
    assert sorted(e["action"] for e in events) == ["create", "delete", "update", "update"]


def test_validation(tenant: Tenant) -> None:
    with tenant.client() as c:
        base = f"/Accounts/{tenant.sid}/Tags.json"
        assert c.post(base, data={"Key": "k"}).status_code == 400
        assert c.post(base, data={"ResourceSid": tenant.sid}).status_code == 400
        for bad in ("a:b", " ", "x" * 129, "tab\there"):
            r = c.post(base, data={"ResourceSid": tenant.sid, "Key": bad})
            assert r.status_code == 400, (bad, r.text)
        assert c.post(base, data={"ResourceSid": tenant.sid, "Key": "k", "Value": "v" * 257}).status_code == 400
        r = c.post(base, data={"ResourceSid": f"MM{uuid.uuid4().hex}", "Key": "k"})
        assert r.status_code == 400
        for missing in (f"CL{uuid.uuid4().hex}", f"AP{uuid.uuid4().hex}", f"PN{uuid.uuid4().hex}"):
            assert c.post(base, data={"ResourceSid": missing, "Key": "k"}).status_code == 404
        first = _tag(c, tenant.sid, tenant.sid, "dup", "1")
        r = c.post(base, data={"ResourceSid": tenant.sid, "Key": "dup", "Value": "2"})
        assert r.status_code == 409 and r.json()["code"] == 20010
        other = _tag(c, tenant.sid, tenant.sid, "other")
        r = c.post(f"/Accounts/{tenant.sid}/Tags/{other['sid']}.json", data={"Key": "dup"})
        assert r.status_code == 409
        assert c.get(f"/Accounts/{tenant.sid}/Tags/{first['sid']}.json").json()["value"] == "1"
        assert _tag(c, tenant.sid, tenant.sid, "empty")["value"] == ""


def test_list_is_paged_and_filtered(tenant: Tenant) -> None:
    with tenant.client() as c:
        res = _resources(c, tenant.sid)
        made = [_tag(c, tenant.sid, sid, "team", kind) for kind, sid in res.items()]
        made.append(_tag(c, tenant.sid, tenant.sid, "team", "all"))
        base = f"/Accounts/{tenant.sid}/Tags.json"
        first = c.get(base, params={"PageSize": 3}).json()
        assert first["total"] == 4 and len(first["tags"]) == 3 and first["next_page_uri"]
        second = c.get(base, params={"PageSize": 3, "Page": 1}).json()
        assert {t["sid"] for t in first["tags"] + second["tags"]} == {t["sid"] for t in made}
        one = c.get(base, params={"ResourceSid": res["Clients"]}).json()["tags"]
        assert [t["resource_type"] for t in one] == ["Clients"]
        assert c.get(base, params={"Key": "team", "Value": "all"}).json()["total"] == 1
        assert c.get(base, params={"Key": "nope"}).json()["total"] == 0
        xml = c.get(f"/Accounts/{tenant.sid}/Tags", headers={"Accept": "application/xml"})
        assert len(ET.fromstring(xml.text).findall("Tags/Tag")) == 4


def test_tag_filter_on_resource_lists(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        tagged, untagged = _resources(c, tenant.sid), _resources(c, tenant.sid)
        for kind, sid in tagged.items():
            _tag(c, tenant.sid, sid, "env", "prod")
            _tag(c, tenant.sid, untagged[kind], "env", "dev")
        a = f"/Accounts/{tenant.sid}"
        clients = c.get(f"{a}/Clients.json", params={"Tag": "env:prod"}).json()
        assert [x["sid"] for x in clients] == [tagged["Clients"]]
        apps = c.get(f"{a}/Applications.json", params={"Tag": "env:dev"}).json()
        assert [x["sid"] for x in apps] == [untagged["Applications"]]
        numbers = c.get(f"{a}/IncomingPhoneNumbers.json", params={"Tag": "env:prod"}).json()
        assert numbers["total"] == 1 and numbers["incomingPhoneNumbers"][0]["sid"] == tagged["IncomingPhoneNumbers"]
        assert "Tag=env%3Aprod" in numbers["first_page_uri"]  # the page links keep the filter
        assert c.get(f"{a}/IncomingPhoneNumbers.json", params={"Tag": "env"}).json()["total"] == 2  # any value
        assert c.get(f"{a}/Clients.json", params={"Tag": "env:qa"}).json() == []
        assert len(c.get(f"{a}/Clients.json").json()) >= 2  # no filter: everything
        assert c.get(f"{a}/Clients.json", params={"Tag": ":x"}).status_code == 400
        # Sub-accounts are tagged under their own path, and GET /Accounts filters on them.
        kids = [tenant.sub("kid"), tenant.sub("kid")]
        _tag(c, kids[0].sid, kids[0].sid, "tier", "gold")
        accounts = c.get("/Accounts.json", params={"Tag": "tier:gold"}).json()
        assert [x["sid"] for x in accounts] == [kids[0].sid]
        assert len(c.get("/Accounts.json").json()) == 2
        # An account is tagged only under its own path (a parent uses the child's).
        r = c.post(f"{a}/Tags.json", data={"ResourceSid": kids[1].sid, "Key": "k"})
        assert r.status_code == 404


def test_deleting_a_resource_deletes_its_tags(tenant: Tenant) -> None:
    with tenant.client() as c:
        res = _resources(c, tenant.sid)
        tags = {kind: _tag(c, tenant.sid, sid, "doomed")["sid"] for kind, sid in res.items()}
        for kind, sid in res.items():
            assert c.delete(f"/Accounts/{tenant.sid}/{kind}/{sid}.json").status_code in (200, 204)
        for sid in tags.values():
            assert c.get(f"/Accounts/{tenant.sid}/Tags/{sid}.json").status_code == 404
        assert c.get(f"/Accounts/{tenant.sid}/Tags.json").json()["total"] == 0


def test_closing_an_account_deletes_its_tags(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        tag = _tag(c, tenant.sid, tenant.sid, "k", "v")
    with server.admin() as admin:
        assert admin.post(f"/Accounts/{tenant.sid}.json", data={"Status": "closed"}).status_code == 200
        assert admin.get(f"/Accounts/{tenant.sid}/Tags/{tag['sid']}.json").status_code == 404
        assert admin.get("/Accounts.json", params={"Tag": "k:v"}).json() == []


@pytest.mark.parametrize("who", ["sibling", "child"])
def test_tags_stay_in_the_account_tree(server: Server, tenant: Tenant, who: str) -> None:
    other = make_tenant(server, name="sibling") if who == "sibling" else tenant.sub("child")
    with tenant.client() as c:
        res = _resources(c, tenant.sid)
        tag = _tag(c, tenant.sid, res["Clients"], "secret", "v")
    with other.client() as o:
        path = f"/Accounts/{tenant.sid}/Tags/{tag['sid']}.json"
        for r in (o.get(f"/Accounts/{tenant.sid}/Tags.json"), o.get(path), o.post(path, data={"Value": "x"}),
                  o.delete(path), o.post(f"/Accounts/{tenant.sid}/Tags.json", data={"ResourceSid": tenant.sid, "Key": "x"})):
            assert r.status_code == 403, r.text
        # Its own path does not reach the owner's resources or tags either.
        assert o.post(f"/Accounts/{other.sid}/Tags.json", data={"ResourceSid": res["Clients"], "Key": "x"}).status_code == 404
        assert o.get(f"/Accounts/{other.sid}/Tags/{tag['sid']}.json").status_code in (403, 404)
        assert o.get(f"/Accounts/{other.sid}/Tags.json").json()["total"] == 0
    with tenant.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}/Tags/{tag['sid']}.json").json()["value"] == "v"
    with server.admin() as admin:  # the parent reads them
        assert admin.get(f"/Accounts/{tenant.sid}/Tags/{tag['sid']}.json").status_code == 200
