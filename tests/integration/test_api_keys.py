"""API Keys: create (secret shown once), list, read, rename, delete; a key authenticates like the
account's AuthToken until it is deleted or its account is closed."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest
from sqlalchemy import select

from restcomm.security import hash_secret
from restcomm.store.schema import api_keys
from tests.support.sdk.store import read_rows
from tests.support.server import Server, Tenant, make_tenant

SK_SID = re.compile(r"^SK[0-9a-f]{32}$")


def create_key(client: httpx.Client, account_sid: str, name: str = "deploy") -> dict[str, str]:
    r = client.post(f"/Accounts/{account_sid}/Keys.json", data={"FriendlyName": name})
    assert r.status_code == 201, r.text
    return r.json()


def as_key(server: Server, key: dict[str, str]) -> httpx.Client:
    return server.client(key["sid"], key["secret"])


def test_create_shows_the_secret_once_and_stores_only_its_hash(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        key = create_key(c, tenant.sid, "ci runner")
        assert SK_SID.match(key["sid"])
        assert key["friendly_name"] == "ci runner"
        assert key["account_sid"] == tenant.sid
        assert len(key["secret"]) >= 32
        assert key["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Keys/{key['sid']}.json"
        one = c.get(f"/Accounts/{tenant.sid}/Keys/{key['sid']}.json")
        many = c.get(f"/Accounts/{tenant.sid}/Keys.json")
        xml = c.get(f"/Accounts/{tenant.sid}/Keys/{key['sid']}", headers={"Accept": "application/xml"})
    assert one.status_code == 200 and "secret" not in one.json()
    assert one.json()["friendly_name"] == "ci runner"
    assert many.status_code == 200 and [k["sid"] for k in many.json()["keys"]] == [key["sid"]]
    for r in (one, many, xml):
        assert key["secret"] not in r.text
    assert ET.fromstring(xml.text).findtext("Key/Sid") == key["sid"]
    [row] = read_rows(server.env, select(api_keys).where(api_keys.c.sid == key["sid"]))
    assert row["secret_hash"] == hash_secret(key["secret"])
    assert key["secret"] not in [str(v) for v in row.values()]


def test_create_in_xml_carries_the_secret(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Keys", data={"FriendlyName": "x"}, headers={"Accept": "application/xml"})
    assert r.status_code == 201
    item = ET.fromstring(r.text).find("Key")
    assert item is not None and SK_SID.match(item.findtext("Sid") or "") and item.findtext("Secret")


def test_friendly_name_is_optional_and_bounded(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Keys.json")
        assert r.status_code == 201 and SK_SID.match(r.json()["sid"])
        r = c.post(f"/Accounts/{tenant.sid}/Keys.json", data={"FriendlyName": "x" * 256})
        assert r.status_code == 400 and r.json()["code"] == 20001


def test_a_key_authenticates_like_the_auth_token(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    sibling = make_tenant(server, name="sibling")
    with tenant.client() as c:
        key = create_key(c, tenant.sid)
    with as_key(server, key) as k:
        me = k.get(f"/Accounts/{tenant.sid}.json")
        assert me.status_code == 200 and me.json()["sid"] == tenant.sid
        # It acts on the account's descendants...
        assert k.get(f"/Accounts/{child.sid}.json").status_code == 200
        r = k.post(f"/Accounts/{child.sid}.json", data={"FriendlyName": "renamed by key"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "renamed by key"
        assert [a["sid"] for a in k.get("/Accounts.json").json()] == [child.sid]
        # ...and on nothing else.
        assert k.get(f"/Accounts/{sibling.sid}.json").status_code == 403
        assert k.get(f"/Accounts/{server.admin_sid}.json").status_code == 403
    wrong = server.client(key["sid"], key["secret"] + "x")
    assert wrong.get(f"/Accounts/{tenant.sid}.json").status_code == 401
    unknown = server.client("SK" + uuid.uuid4().hex, key["secret"])
    assert unknown.get(f"/Accounts/{tenant.sid}.json").status_code == 401
    # A key SID is not an account: its secret is no password for anything else.
    assert server.client(tenant.sid, key["secret"]).get(f"/Accounts/{tenant.sid}.json").status_code == 401


def test_a_parents_key_works_on_its_child(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    with tenant.client() as c:
        key = create_key(c, child.sid, "made by parent")
        assert key["account_sid"] == child.sid
        assert [k["sid"] for k in c.get(f"/Accounts/{child.sid}/Keys.json").json()["keys"]] == [key["sid"]]
        assert c.get(f"/Accounts/{tenant.sid}/Keys.json").json()["keys"] == []
    with as_key(server, key) as k:
        assert k.get(f"/Accounts/{child.sid}.json").json()["sid"] == child.sid
        assert k.get(f"/Accounts/{tenant.sid}.json").status_code == 403


def test_keys_are_private_to_their_account_tree(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    sibling = make_tenant(server, name="sibling")
    with tenant.client() as c:
        key = create_key(c, tenant.sid)
    path = f"/Accounts/{tenant.sid}/Keys/{key['sid']}.json"
    with sibling.client() as s:
        assert s.get(f"/Accounts/{tenant.sid}/Keys.json").status_code == 403
        assert s.post(f"/Accounts/{tenant.sid}/Keys.json", data={"FriendlyName": "x"}).status_code == 403
        assert s.get(path).status_code == 403
        assert s.post(path, data={"FriendlyName": "stolen"}).status_code == 403
        assert s.delete(path).status_code == 403
        assert s.get(f"/Accounts/{sibling.sid}/Keys/{key['sid']}.json").status_code == 404
    with child.client() as ch:
        assert ch.get(path).status_code == 403
        assert ch.get(f"/Accounts/{child.sid}/Keys/{key['sid']}.json").status_code == 404
    with tenant.client() as c:
        assert c.get(path).json()["friendly_name"] == "deploy"


def test_a_key_cannot_manage_keys(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        key = create_key(c, tenant.sid)
    path = f"/Accounts/{tenant.sid}/Keys"
    with as_key(server, key) as k:
        for r in (
            k.post(f"{path}.json", data={"FriendlyName": "child of a key"}),
            k.get(f"{path}.json"),
            k.get(f"{path}/{key['sid']}.json"),
            k.post(f"{path}/{key['sid']}.json", data={"FriendlyName": "x"}),
            k.delete(f"{path}/{key['sid']}.json"),
        ):
            assert r.status_code == 403, r.text
            assert r.json()["code"] == 20006
    with tenant.client() as c:
        assert len(c.get(f"{path}.json").json()["keys"]) == 1


def test_rename_with_post_and_put(tenant: Tenant) -> None:
    with tenant.client() as c:
        key = create_key(c, tenant.sid, "old")
        path = f"/Accounts/{tenant.sid}/Keys/{key['sid']}.json"
        r = c.post(path, data={"FriendlyName": "new"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "new" and "secret" not in r.json()
        r = c.put(path, data={"FriendlyName": "newer"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "newer"
        assert c.get(path).json()["friendly_name"] == "newer"
        # Nothing to change: the key comes back as it is.
        assert c.post(path, data={"Other": "x"}).json()["friendly_name"] == "newer"
        missing = f"/Accounts/{tenant.sid}/Keys/SK{uuid.uuid4().hex}.json"
        assert c.post(missing, data={"FriendlyName": "x"}).status_code == 404


def test_delete_revokes_the_key(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        doomed, kept = create_key(c, tenant.sid, "doomed"), create_key(c, tenant.sid, "kept")
    with as_key(server, doomed) as k:
        assert k.get(f"/Accounts/{tenant.sid}.json").status_code == 200
    with tenant.client() as c:
        r = c.delete(f"/Accounts/{tenant.sid}/Keys/{doomed['sid']}.json")
        assert r.status_code == 204 and r.content == b""
        assert c.get(f"/Accounts/{tenant.sid}/Keys/{doomed['sid']}.json").status_code == 404
        assert c.delete(f"/Accounts/{tenant.sid}/Keys/{doomed['sid']}.json").status_code == 404
        assert [k["sid"] for k in c.get(f"/Accounts/{tenant.sid}/Keys.json").json()["keys"]] == [kept["sid"]]
    with as_key(server, doomed) as k:
        assert k.get(f"/Accounts/{tenant.sid}.json").status_code == 401
    with as_key(server, kept) as k:
        assert k.get(f"/Accounts/{tenant.sid}.json").status_code == 200


def test_keys_follow_the_account_status(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        key = create_key(c, tenant.sid)
    me = f"/Accounts/{tenant.sid}.json"
    with server.admin() as admin, as_key(server, key) as k:
        assert admin.post(me, data={"Status": "suspended"}).status_code == 200
        r = k.get(me)
        assert r.status_code == 403 and r.json()["code"] == 20005
        assert admin.post(me, data={"Status": "active"}).status_code == 200
        assert k.get(me).status_code == 200
        assert admin.post(me, data={"Status": "closed"}).status_code == 200
        # Closing an account deletes its keys: the key no longer exists at all.
        assert k.get(me).status_code == 401
    assert read_rows(server.env, select(api_keys).where(api_keys.c.account_sid == tenant.sid)) == []


def test_closing_a_parent_revokes_its_childrens_keys(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    with child.client() as c:
        key = create_key(c, child.sid)
    with server.admin() as admin:
        assert admin.post(f"/Accounts/{tenant.sid}.json", data={"Status": "closed"}).status_code == 200
    with as_key(server, key) as k:
        assert k.get(f"/Accounts/{child.sid}.json").status_code == 401


def test_list_is_paged(tenant: Tenant) -> None:
    with tenant.client() as c:
        made = [create_key(c, tenant.sid, f"k{i}")["sid"] for i in range(3)]
        first = c.get(f"/Accounts/{tenant.sid}/Keys.json", params={"PageSize": 2}).json()
        assert first["total"] == 3 and len(first["keys"]) == 2 and first["next_page_uri"]
        second = c.get(f"/Accounts/{tenant.sid}/Keys.json", params={"PageSize": 2, "Page": 1}).json()
        assert len(second["keys"]) == 1 and second["next_page_uri"] is None
    assert sorted(k["sid"] for k in first["keys"] + second["keys"]) == sorted(made)


def test_audit_entries_made_with_a_key_name_the_key(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    with tenant.client() as c:
        key = create_key(c, tenant.sid)
    with as_key(server, key) as k:
        assert k.post(f"/Accounts/{child.sid}.json", data={"FriendlyName": "via key"}).status_code == 200
    with tenant.client() as c:
        events = c.get(f"/Accounts/{child.sid}/AuditLog.json", params={"Action": "update"}).json()["audit_events"]
        key_events = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Key"}).json()
    [event] = events
    assert event["credential_sid"] == key["sid"]
    assert event["actor_sid"] == tenant.sid
    assert event["resource_sid"] == child.sid
    assert event["changed_parameters"] == "FriendlyName"
    [created] = key_events["audit_events"]
    assert (created["action"], created["resource_sid"], created["credential_sid"]) == ("create", key["sid"], tenant.sid)
    assert key["secret"] not in str(key_events)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_keys_of_an_unknown_account(tenant: Tenant, method: str) -> None:
    with tenant.client() as c:
        r = c.request(method, f"/Accounts/AC{uuid.uuid4().hex}/Keys.json")
    assert r.status_code == 404 and r.json()["code"] == 20404
