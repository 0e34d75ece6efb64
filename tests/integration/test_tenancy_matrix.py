"""The tenancy matrix over every operation the server publishes.

An owner account provisions one of each resource. Every operation under /Accounts/{AccountSid} is
then called on the owner's account and resources by a sibling and by the owner's child: each must
be refused (403, or 404 where existence must not leak) and change nothing. The owner's parent must
get through the tenancy check (no 403). Operations are read from the OpenAPI description, so a new
resource is covered the day it is registered.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.support.server import Server, Tenant, make_tenant

REFUSED = (403, 404)


def _provision(owner: Tenant) -> dict[str, str]:
    """One of each resource; returns path-parameter name -> SID."""
    sids: dict[str, str] = {"AccountSid": owner.sid}
    with owner.client() as c:
        r = c.post(f"/Accounts/{owner.sid}/Applications.json", data={"FriendlyName": "matrix app"})
        if r.status_code == 200:
            sids["ApplicationSid"] = r.json()["sid"]
        r = c.post(f"/Accounts/{owner.sid}/Clients.json", data={"Login": f"m{owner.sid[-8:]}", "Password": "Cl1ent-Passw0rd!"})
        if r.status_code == 200:
            sids["ClientSid"] = r.json()["sid"]
        r = c.post(
            f"/Accounts/{owner.sid}/IncomingPhoneNumbers.json",
            data={"PhoneNumber": f"+1999{owner.sid[-7:]}", "isSIP": "true"},
        )
        if r.status_code == 200:
            sids["IncomingPhoneNumberSid"] = sids["PhoneNumberSid"] = r.json()["sid"]
            r = c.post(f"/Accounts/{owner.sid}/Calls.json",
                       data={"From": r.json()["phone_number"], "To": "+15550001234", "Url": "http://127.0.0.1:9/r"})
            if r.status_code == 200:
                sids["CallSid"] = r.json()["sid"]
        r = c.post(f"/Accounts/{owner.sid}/OutgoingCallerIds.json", data={"PhoneNumber": "+14155550123"})
        if r.status_code == 200:
            sids["OutgoingCallerIdSid"] = sids["CallerIdSid"] = r.json()["sid"]
        r = c.post(f"/Accounts/{owner.sid}/Keys.json", data={"FriendlyName": "matrix key"})
        if r.status_code in (200, 201):
            sids["KeySid"] = sids["ApiKeySid"] = r.json()["sid"]
        r = c.post(f"/Accounts/{owner.sid}/Users.json",
                   data={"Email": f"u{uuid.uuid4().hex[:10]}@example.com", "Password": "Us3r-Passw0rd!x"})
        if r.status_code == 200:
            sids["UserSid"] = r.json()["sid"]
        r = c.post(f"/Accounts/{owner.sid}/Tags.json", data={"ResourceSid": owner.sid, "Key": "matrix", "Value": "v"})
        if r.status_code == 200:
            sids["TagSid"] = r.json()["sid"]
    return sids


def _operations(server: Server) -> list[tuple[str, str]]:
    doc = httpx.get(server.base_url + "/restcomm/openapi.json", timeout=10).json()
    ops = []
    for path, methods in doc["paths"].items():
        if "{AccountSid}" not in path or not path.startswith("/restcomm/"):
            continue
        for method in methods:
            ops.append((method.upper(), path.removeprefix("/restcomm/2012-04-24")))
    return ops


def _fill(path: str, sids: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in sids:
            return sids[name]
        for key, value in sids.items():  # e.g. {Sid} or another spelling of the resource's SID
            if key.lower().startswith(name.lower().removesuffix("sid")) and name != "AccountSid":
                return value
        return {"IsoCountryCode": "US"}.get(name, "XX" + "0" * 32)

    return re.sub(r"{([A-Za-z]+)}", sub, path)


def _request(c: httpx.Client, method: str, path: str) -> httpx.Response:
    data: dict[str, Any] | None = {"FriendlyName": "intruder"} if method in ("POST", "PUT") else None
    return c.request(method, path, data=data)


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, Any]:
    """owner and sibling are children of the administrator (owner's parent); child is owner's."""
    owner = make_tenant(server, name="owner")
    sibling = make_tenant(server, name="sibling")
    child = owner.sub("child")
    return {"owner": owner, "sibling": sibling, "child": child, "sids": _provision(owner)}


def test_matrix_covers_the_resources(server: Server, world: dict[str, Any]) -> None:
    paths = {p for _, p in _operations(server)}
    for resource in ("Clients", "Applications", "IncomingPhoneNumbers", "AuditLog", "Tags", "Users"):
        assert any(resource in p for p in paths), resource


@pytest.mark.parametrize("who", ["sibling", "child"])
def test_others_are_refused_everywhere(server: Server, world: dict[str, Any], who: str) -> None:
    intruder, target_sids = world[who], world["sids"]
    failures = []
    with intruder.client() as c:
        for method, path in _operations(server):
            if method == "DELETE" and path == "/Accounts/{AccountSid}.json":
                continue  # 405 for everyone
            url = _fill(path, target_sids)
            r = _request(c, method, url)
            if r.status_code not in REFUSED:
                failures.append(f"{method} {url} -> {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_parent_passes_the_tenancy_check(server: Server, world: dict[str, Any]) -> None:
    failures = []
    with server.admin() as c:
        for method, path in _operations(server):
            if method != "GET":
                continue
            url = _fill(path, world["sids"])
            r = c.get(url)
            if r.status_code == 403:
                failures.append(f"GET {url} -> 403 {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_owner_resources_unchanged_by_intruders(server: Server, world: dict[str, Any]) -> None:
    owner: Tenant = world["owner"]
    with owner.client() as c:
        assert c.get(f"/Accounts/{owner.sid}.json").json()["friendly_name"] != "intruder"
        if "ClientSid" in world["sids"]:
            r = c.get(f"/Accounts/{owner.sid}/Clients/{world['sids']['ClientSid']}.json")
            assert r.status_code == 200 and r.json()["friendly_name"] != "intruder"
        if "ApplicationSid" in world["sids"]:
            r = c.get(f"/Accounts/{owner.sid}/Applications/{world['sids']['ApplicationSid']}.json")
            assert r.status_code == 200 and r.json()["friendly_name"] != "intruder"


# -- numbers: patterns and spellings ---------------------------------------------------------------

SIBLING_PATTERNS = ("*", ".*", "+1555.*", "+44.*", "[0-9+]*")


def _spellings(e164: str) -> list[str]:
    n = e164[2:]
    return [e164, e164[1:], f"+1 {n[:3]} {n[3:6]} {n[6:]}", f"+1-{n[:3]}-{n[3:6]}-{n[6:]}", f"1 ({n[:3]}) {n[3:6]}-{n[6:]}"]


def test_a_siblings_patterns_and_spellings_take_nothing_from_the_owner(server: Server, world: dict[str, Any]) -> None:
    """The sibling holds every pattern that could match the owner's traffic and tries every spelling
    of the owner's number: the owner's outbound messages stay the owner's (delivered to the exact
    number or failed for lack of a route), and the owner's number cannot be taken twice."""
    from tests.support.sms_app import add_number, messages, send, unique_number, wait_status

    owner: Tenant = world["owner"]
    sibling: Tenant = world["sibling"]
    with owner.client() as oc:
        mine, other = unique_number(), unique_number()
        add_number(oc, owner.sid, mine)
        add_number(oc, owner.sid, other)
    created: list[str] = []
    try:
        with sibling.client() as sc:
            for pattern in SIBLING_PATTERNS:
                r = sc.post(f"/Accounts/{sibling.sid}/IncomingPhoneNumbers.json",
                            data={"PhoneNumber": pattern, "isSIP": "true"})
                assert r.status_code == 200, r.text
                created.append(r.json()["sid"])
            for spelling in _spellings(mine):
                r = sc.post(f"/Accounts/{sibling.sid}/IncomingPhoneNumbers.json",
                            data={"PhoneNumber": spelling, "isSIP": "true"})
                assert r.status_code == 400 and r.json()["code"] == 21452, (spelling, r.text)
        with owner.client() as oc:
            outside = send(oc, owner.sid, mine, "+447700900999", "secret 1").json()["sid"]
            inside = [send(oc, owner.sid, mine, spelling, f"secret {i}").json()["sid"]
                      for i, spelling in enumerate(_spellings(other), start=2)]
            final = wait_status(oc, owner.sid, outside, {"failed", "delivered"})
            assert final["status"] == "failed" and final["error_code"] == 21612, final
            for sid in inside:
                assert wait_status(oc, owner.sid, sid, {"failed", "delivered"})["status"] == "delivered"
            received = [m for m in messages(oc, owner.sid, To=other) if m["direction"] == "inbound"]
            assert len(received) == len(inside)
        with sibling.client() as sc:
            assert not [m for m in messages(sc, sibling.sid) if m["body"].startswith("secret")]
            assert sc.get(f"/Accounts/{owner.sid}/SMS/Messages/{outside}.json").status_code in REFUSED
    finally:
        with sibling.client() as sc:
            for sid in created:  # the organization's patterns would catch other modules' carrier traffic
                sc.delete(f"/Accounts/{sibling.sid}/IncomingPhoneNumbers/{sid}.json")


# -- the role dimension ----------------------------------------------------------------------------

ALL = frozenset({"Create", "Read", "Modify", "Delete"})
# Restcomm's Developer role (restcomm-api.md §2.5) by OpenAPI tag, plus Tags; anything absent is refused.
DEVELOPER_MAY = {
    "Accounts": ALL, "Applications": ALL, "AvailablePhoneNumbers": {"Read"}, "Calls": ALL, "Twilio Calls": ALL,
    "Clients": ALL, "Email": ALL, "IncomingPhoneNumbers": ALL, "Notifications": {"Read"}, "OutgoingCallerIds": ALL,
    "Recordings": {"Read", "Delete"}, "Twilio Recordings": {"Read", "Delete"}, "SMS Messages": {"Read"},
    "Twilio Messages": {"Read"}, "Tags": ALL, "Usage": ALL,
}  # not Users, Keys, AuthTokens, AuditLog, Gateways, Carriers
ROLE_REFUSAL = "role does not have the permission"


def _tagged_operations(server: Server) -> list[tuple[str, str, str]]:
    doc = httpx.get(server.base_url + "/restcomm/openapi.json", timeout=10).json()
    ops = []
    for path, methods in doc["paths"].items():
        if "{AccountSid}" not in path or not path.startswith("/restcomm/"):
            continue
        for method, spec in methods.items():
            ops.append((method.upper(), path.removeprefix("/restcomm/2012-04-24"), spec["tags"][0]))
    return ops


def _action(method: str, path: str) -> str:
    if method == "GET":
        return "Read"
    if method == "DELETE":
        return "Delete"
    return "Modify" if path.removesuffix(".json").endswith("}") else "Create"


def _account_with_role(server: Server, role: str) -> Tenant:
    email = f"{role.lower()}-{uuid.uuid4().hex[:10]}@example.com"
    with server.admin() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": "Str0ng-Passw0rd!", "Role": role})
    assert r.status_code == 200 and r.json()["role"] == role, r.text
    return Tenant(r.json()["sid"], r.json()["auth_token"], email, "Str0ng-Passw0rd!", server)


class _Person(Tenant):
    """An IAM user of an Administrator account: it signs in with its email and password."""

    def client(self, **kw: Any) -> httpx.Client:
        return self.server.client(self.email, self.password, **kw)


def _developer_user(server: Server) -> Tenant:
    account = _account_with_role(server, "Administrator")
    email = f"person-{uuid.uuid4().hex[:10]}@example.com"
    with account.client() as c:
        r = c.post(f"/Accounts/{account.sid}/Users.json", data={"Email": email, "Password": "Us3r-Passw0rd!x"})
    assert r.status_code == 200 and r.json()["role"] == "Developer", r.text
    return _Person(account.sid, "", email, "Us3r-Passw0rd!x", server)


@pytest.mark.parametrize("role", ["Developer", "Administrator", "Billing", "Developer user"])
def test_roles_are_enforced_on_every_operation(server: Server, role: str) -> None:
    """Every operation on the account's own resources: a Developer (an account, or a person
    signed in to an Administrator account as a Developer user) is refused exactly what its role
    lacks (403, code 20006), an Administrator nothing, and a role that is not one of the set
    (stored when Role was a free string) nothing either, as before roles were enforced."""
    me = _developer_user(server) if role == "Developer user" else _account_with_role(server, role)
    role = role.removesuffix(" user")
    sids = _provision(me)
    wrong, refusals = [], 0
    with me.client() as c:
        for method, path, tag in _tagged_operations(server):
            may = role != "Developer" or _action(method, path) in DEVELOPER_MAY.get(tag, ())
            if may and "/AuthTokens/" in path:
                continue  # would rotate the credentials this test uses
            url = _fill(path, sids)
            r = _request(c, method, url)
            refused = r.status_code == 403 and ROLE_REFUSAL in r.text
            refusals += refused
            if refused == may or (refused and r.json()["code"] != 20006):
                wrong.append(f"{role} {method} {url} ({tag}) -> {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
    # Keys (5), AuthTokens (3), AuditLog (2), Gateways (5), Carriers, SMS and Twilio sends, Notification delete...
    assert (refusals >= 18) if role == "Developer" else refusals == 0, refusals


def test_developer_refusals_hold_for_its_api_keys_and_lowercase_roles(server: Server) -> None:
    dev = _account_with_role(server, "developer")  # stored as given, enforced as Developer
    with dev.client() as c:
        r = c.post(f"/Accounts/{dev.sid}/SMS/Messages.json", data={"From": "+15550001", "To": "+15550002", "Body": "x"})
        assert r.status_code == 403 and ROLE_REFUSAL in r.text
        assert c.get(f"/Accounts/{dev.sid}/SMS/Messages.json").status_code == 200
        assert c.get(f"/Accounts/{dev.sid}/Keys.json").status_code == 403
    with server.admin() as admin:  # the administrator makes it a key; the key has the account's role
        key = admin.post(f"/Accounts/{dev.sid}/Keys.json", data={"FriendlyName": "dev key"}).json()
    with server.client(key["sid"], key["secret"]) as k:
        assert k.get(f"/Accounts/{dev.sid}/Clients.json").status_code == 200
        r = k.post(f"/Accounts/{dev.sid}/SMS/Messages.json", data={"From": "+15550001", "To": "+15550002", "Body": "x"})
        assert r.status_code == 403 and ROLE_REFUSAL in r.text
    with server.admin() as admin:  # raising the role lifts the refusals at once
        assert admin.post(f"/Accounts/{dev.sid}.json", data={"Role": "Administrator"}).status_code == 200
    with dev.client() as c:
        assert c.get(f"/Accounts/{dev.sid}/Keys.json").status_code == 200


# -- platform resources outside any account: Profiles ----------------------------------------------------


def _platform_operations(server: Server, prefix: str) -> list[tuple[str, str]]:
    doc = httpx.get(server.base_url + "/restcomm/openapi.json", timeout=10).json()
    ops = [(method.upper(), path.removeprefix("/restcomm/2012-04-24")) for path, methods in doc["paths"].items()
           if path.startswith("/restcomm/2012-04-24" + prefix) for method in methods]
    return sorted(ops, key=lambda op: op[0] == "DELETE")  # deletes last: they remove what the others use


@pytest.mark.parametrize("who", ["Developer", "Administrator", "Developer user", "SuperAdmin"])
def test_profiles_by_role(server: Server, who: str) -> None:
    """Every Profiles operation: the SuperAdmin may do each (no 403); any other account or person
    is refused (403, code 20006) everything but the schema and its own effective profile, and
    changes nothing."""
    with server.admin() as admin:
        r = admin.post("/Profiles", content=b'{"matrix": true}', headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text
        profile = r.headers["location"].rsplit("/", 1)[-1]
    if who == "SuperAdmin":
        client = server.admin()
    else:
        me = _developer_user(server) if who == "Developer user" else _account_with_role(server, who)
        client = me.client()
    ops = _platform_operations(server, "/Profiles")
    assert {m for m, _ in ops} == {"GET", "POST", "PUT", "DELETE"} and len(ops) >= 7
    wrong = []
    with client as c:
        for method, path in ops:
            url = path.replace("{Profile}", profile)
            r = c.request(method, url, data={"FriendlyName": "intruder"} if method in ("POST", "PUT") else None)
            may = who == "SuperAdmin" or (method == "GET" and "/schemas/" in path)
            if may == (r.status_code == 403) or (r.status_code == 403 and r.json()["code"] != 20006):
                wrong.append(f"{who} {method} {url} -> {r.status_code} {r.text[:120]}")
        if who != "SuperAdmin":  # its own effective profile (the default, unlinked): readable
            default = "PRae6e420f425248d6a26948c17a9e2acf"
            r = c.get(f"/Profiles/{default}")
            if r.status_code != 200:
                wrong.append(f"{who} GET its effective profile -> {r.status_code}")
    assert not wrong, "\n".join(wrong)
    if who != "SuperAdmin":
        with server.admin() as admin:
            r = admin.get(f"/Profiles/{profile}")
            assert r.status_code == 200 and r.json() == {"matrix": True}
