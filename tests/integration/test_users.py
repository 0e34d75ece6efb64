"""IAM users: an Administrator creates, lists, reads, updates and deletes users; a user signs in
with its own email and password, acts as its account with its own role, and what it changes is
attributed to it in the audit log."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from tests.support.server import Server, Tenant, make_tenant

PASSWORD = "Us3r-Passw0rd!x"


def _email() -> str:
    return f"person-{uuid.uuid4().hex[:10]}@example.com"


def _user(c: httpx.Client, account: str, role: str = "Developer", **extra: str) -> dict[str, Any]:
    r = c.post(f"/Accounts/{account}/Users.json", data={"Email": _email(), "Password": PASSWORD, "Role": role, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _as(server: Server, user: dict[str, Any], password: str = PASSWORD) -> httpx.Client:
    return server.client(user["email"], password)


def test_crud(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        user = _user(c, tenant.sid, FriendlyName="Alice")
        assert user["sid"].startswith("US") and user["account_sid"] == tenant.sid
        assert (user["role"], user["status"], user["friendly_name"]) == ("Developer", "active", "Alice")
        assert not any("password" in k for k in user)
        path = f"/Accounts/{tenant.sid}/Users/{user['sid']}"
        assert c.get(path + ".json").json() == user
        xml = c.get(path, headers={"Accept": "application/xml"})
        assert ET.fromstring(xml.text).findtext("User/Email") == user["email"]
        page = c.get(f"/Accounts/{tenant.sid}/Users.json").json()
        assert page["total"] == 1 and page["users"][0]["sid"] == user["sid"]
        r = c.post(path + ".json", data={"FriendlyName": "Alice B", "Role": "administrator"})
        assert r.status_code == 200 and r.json()["role"] == "Administrator" and r.json()["friendly_name"] == "Alice B"
        assert c.put(path + ".json", data={"Status": "suspended"}).json()["status"] == "suspended"
        assert c.delete(path + ".json").status_code == 204
        assert c.get(path + ".json").status_code == 404
        assert c.delete(path + ".json").status_code == 404


def test_validation(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        base = f"/Accounts/{tenant.sid}/Users.json"
        assert c.post(base, data={"Email": _email()}).status_code == 400
        assert c.post(base, data={"Email": "not-an-email", "Password": PASSWORD}).status_code == 400
        r = c.post(base, data={"Email": _email(), "Password": "weak"})
        assert r.status_code == 400 and r.json()["code"] == 22001
        assert c.post(base, data={"Email": _email(), "Password": PASSWORD, "Role": "Owner"}).status_code == 400
        user = _user(c, tenant.sid)
        for taken in (user["email"], tenant.email, server_admin_email(c, server)):
            r = c.post(base, data={"Email": taken.upper(), "Password": PASSWORD})
            assert r.status_code == 409, (taken, r.text)
        # ...and an account cannot take a user's email either.
        r = c.post("/Accounts.json", data={"EmailAddress": user["email"], "Password": "Str0ng-Passw0rd!"})
        assert r.status_code == 409


def server_admin_email(c: httpx.Client, server: Server) -> str:
    with server.admin() as admin:
        return admin.get(f"/Accounts/{server.admin_sid}.json").json()["email_address"]


def test_a_user_signs_in_and_acts_as_its_account_with_its_role(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    sibling = make_tenant(server, name="sibling")
    with tenant.client() as c:
        dev, admin = _user(c, tenant.sid, "Developer"), _user(c, tenant.sid, "Administrator")
    with _as(server, dev) as d:
        assert d.get(f"/Accounts/{tenant.sid}.json").json()["sid"] == tenant.sid
        mine = d.get(f"/Accounts/{tenant.sid}.json").json()
        assert mine["role"] == "Administrator"  # the account's, shown as is
        # A person never receives the account's AuthToken (which would carry the account's role).
        assert "auth_token" not in mine and tenant.token not in d.get("/Accounts.json").text
        r = d.post("/Accounts.json", data={"EmailAddress": _email(), "Password": "Str0ng-Passw0rd!"})
        assert r.status_code == 200 and r.json()["role"] == "Developer" and "auth_token" not in r.json()
        assert d.get(f"/Accounts/{child.sid}.json").status_code == 200
        assert d.get(f"/Accounts/{sibling.sid}.json").status_code == 403
        assert d.post(f"/Accounts/{tenant.sid}/Clients.json",
                      data={"Login": f"u{uuid.uuid4().hex[:8]}", "Password": "Cl1ent-Passw0rd!"}).status_code == 200
        # The Developer role: no keys, no users, no SMS sends, no setting roles.
        for r in (d.get(f"/Accounts/{tenant.sid}/Keys.json"), d.get(f"/Accounts/{tenant.sid}/Users.json"),
                  d.post(f"/Accounts/{tenant.sid}/SMS/Messages.json", data={"From": "+1555", "To": "+1556", "Body": "x"}),
                  d.post(f"/Accounts/{child.sid}.json", data={"Role": "Administrator"})):
            assert r.status_code == 403, r.text
    with _as(server, admin) as a:
        assert a.get(f"/Accounts/{tenant.sid}/Users.json").json()["total"] == 2
        # An Administrator user manages users, but keys only with the account's own credentials.
        assert a.post(f"/Accounts/{tenant.sid}/Users/{dev['sid']}.json", data={"FriendlyName": "renamed"}).status_code == 200
        assert a.get(f"/Accounts/{tenant.sid}/Keys.json").status_code == 403
    # Wrong password, unknown user: 401.
    assert _as(server, dev, PASSWORD + "x").get(f"/Accounts/{tenant.sid}.json").status_code == 401
    assert server.client(_email(), PASSWORD).get(f"/Accounts/{tenant.sid}.json").status_code == 401
    # A user's password is not a password for the account.
    assert server.client(tenant.email, PASSWORD).get(f"/Accounts/{tenant.sid}.json").status_code == 401


def test_changes_by_a_user_are_attributed_to_it(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        user = _user(c, tenant.sid)
    with _as(server, user) as u:
        r = u.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "made by a person"})
        assert r.status_code == 200
        app = r.json()["sid"]
    with tenant.client() as c:
        events = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Application"}).json()
        [event] = [e for e in events["audit_events"] if e["resource_sid"] == app]
        users = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "User"}).json()
    assert (event["action"], event["credential_sid"], event["actor_sid"]) == ("create", user["sid"], tenant.sid)
    [created] = users["audit_events"]
    assert created["credential_sid"] == tenant.sid and "Password" not in (created["changed_parameters"] or "")


def test_suspension_password_change_and_deletion_take_effect_at_once(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        user = _user(c, tenant.sid)
    me = f"/Accounts/{tenant.sid}.json"
    path = f"/Accounts/{tenant.sid}/Users/{user['sid']}.json"
    with tenant.client() as c:
        assert c.post(path, data={"Status": "suspended"}).status_code == 200
        r = _as(server, user).get(me)
        assert r.status_code == 403 and r.json()["code"] == 20005
        assert c.post(path, data={"Status": "active", "Password": "N3w-Us3r-Passw0rd!"}).status_code == 200
        assert _as(server, user).get(me).status_code == 401
        assert _as(server, user, "N3w-Us3r-Passw0rd!").get(me).status_code == 200
        assert c.delete(path).status_code == 204
        assert _as(server, user, "N3w-Us3r-Passw0rd!").get(me).status_code == 401


def test_the_account_status_and_closing_apply_to_its_users(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        user = _user(c, tenant.sid, "Administrator")
    me = f"/Accounts/{tenant.sid}.json"
    with server.admin() as admin:
        assert admin.post(me, data={"Status": "suspended"}).status_code == 200
        assert _as(server, user).get(me).status_code == 403
        assert admin.post(me, data={"Status": "active"}).status_code == 200
        assert _as(server, user).get(me).status_code == 200
        assert admin.post(me, data={"Status": "closed"}).status_code == 200
    assert _as(server, user).get(me).status_code == 401  # closing deletes the account's users


def test_keys_and_strangers_cannot_manage_users(server: Server, tenant: Tenant) -> None:
    sibling = make_tenant(server, name="sibling")
    with tenant.client() as c:
        user = _user(c, tenant.sid)
        key = c.post(f"/Accounts/{tenant.sid}/Keys.json").json()
    path = f"/Accounts/{tenant.sid}/Users/{user['sid']}.json"
    with server.client(key["sid"], key["secret"]) as k:
        for r in (k.get(f"/Accounts/{tenant.sid}/Users.json"), k.get(path), k.post(path, data={"Role": "Administrator"}),
                  k.post(f"/Accounts/{tenant.sid}/Users.json", data={"Email": _email(), "Password": PASSWORD})):
            assert r.status_code == 403 and r.json()["code"] == 20006, r.text
    with sibling.client() as s:
        assert s.get(path).status_code == 403
        assert s.delete(path).status_code == 403
    with tenant.client() as c:
        assert c.get(path).json()["role"] == "Developer"
