"""Clients over real HTTP, on SQLite and PostgreSQL: shapes, validation, duplicate logins, races,
delete semantics, tenancy and the audit trail."""

from __future__ import annotations

import hashlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from restcomm.store.schema import clients
from tests.support.resources import DATE, STRONG, family, in_order, sql, xml
from tests.support.server import Server, Tenant, make_tenant

OTHER_STRONG = "RestCom1233@"
WEAK = "weak1"
DOMAIN = "default.restcomm.com"  # the test server runs with the default organization domain

JSON_KEYS = [
    "sid", "date_created", "date_updated", "account_sid", "api_version", "friendly_name", "login",
    "password_algorithm", "status", "voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method",
    "voice_application_sid", "uri", "push_client_identity",
]
XML_ELEMENTS = [
    "Sid", "DateCreated", "DateUpdated", "AccountSid", "ApiVersion", "FriendlyName", "Login", "Password_Algorithm",
    "Status", "VoiceUrl", "VoiceMethod", "VoiceFallbackUrl", "VoiceFallbackMethod", "VoiceApplicationSid", "Uri",
    "PushClientIdentity",
]


def new_login(prefix: str = "alice") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"






def db_client(server: Server, sid: str) -> Any:
    """The stored row (the API never shows the password hash)."""
    (row,) = sql(server, select(clients).where(clients.c.sid == sid))
    return row


def create(c: httpx.Client, account: str, **params: str) -> httpx.Response:
    data = {"Login": new_login(), "Password": STRONG, **params}
    return c.post(f"/Accounts/{account}/Clients.json", data=data)


def make_client(t: Tenant, **params: str) -> dict[str, Any]:
    with t.client() as c:
        r = create(c, t.sid, **params)
    assert r.status_code == 200, r.text
    return r.json()


def logins(c: httpx.Client, account: str) -> list[str]:
    r = c.get(f"/Accounts/{account}/Clients.json")
    assert r.status_code == 200, r.text
    return [x["login"] for x in r.json()]




# ---------------------------------------------------------------------------------------------
# Shapes


def test_create_and_read_json(tenant: Tenant) -> None:
    login = new_login()
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={"Login": login, "Password": STRONG})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert in_order(list(body), JSON_KEYS), list(body)
        assert body["sid"].startswith("CL") and len(body["sid"]) == 34
        assert body["account_sid"] == tenant.sid
        assert body["api_version"] == "2012-04-24"
        assert body["login"] == login and body["friendly_name"] == login
        assert body["status"] == "1"  # a string, as Restcomm writes it
        assert body["password_algorithm"] == "MD5"
        assert "password" not in body
        assert body["voice_method"] == "POST" and body["voice_fallback_method"] == "POST"
        for absent in ("voice_url", "voice_fallback_url", "voice_application_sid", "push_client_identity"):
            assert absent not in body
        assert DATE.match(body["date_created"]) and DATE.match(body["date_updated"])
        assert body["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Clients/{body['sid']}.json"
        # .json on a middle segment and on the last one; a trailing slash is tolerated
        for path in (
            f"/Accounts.json/{tenant.sid}/Clients.json/{body['sid']}",
            f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json",
            f"/Accounts/{tenant.sid}/Clients.json/{body['sid']}/",
        ):
            got = c.get(path)
            assert got.status_code == 200, (path, got.text)
            assert got.json() == body
        listed = c.get(f"/Accounts.json/{tenant.sid}/Clients.json")
        assert listed.status_code == 200
        assert isinstance(listed.json(), list)
        assert body in listed.json()


def test_password_is_stored_as_ha1_and_never_shown(server: Server, tenant: Tenant) -> None:
    body = make_client(tenant, Login=(login := new_login()))
    row = db_client(server, body["sid"])
    assert row["password"] == hashlib.md5(f"{login}:{DOMAIN}:{STRONG}".encode()).hexdigest()
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Clients/{body['sid']}")  # XML by default
        assert xml(r).find("Client/Password") is None
        assert row["password"] not in r.text
        assert row["password"] not in c.get(f"/Accounts/{tenant.sid}/Clients.json").text


def test_xml_shapes(tenant: Tenant) -> None:
    login = new_login()
    with tenant.client() as c:
        r = c.post(
            f"/Accounts/{tenant.sid}/Clients",
            data={"Login": login, "Password": STRONG, "VoiceUrl": "https://app.example.com/rcml?a=1&b=2"},
        )
        assert r.status_code == 200, r.text
        client = xml(r).find("Client")
        assert client is not None
        tags = [e.tag for e in client]
        assert in_order(tags, XML_ELEMENTS), tags
        assert client.findtext("Login") == login
        assert client.findtext("Status") == "1"
        assert client.findtext("Password_Algorithm") == "MD5"
        assert client.findtext("VoiceUrl") == "https://app.example.com/rcml?a=1&b=2"
        sid = client.findtext("Sid")
        assert client.findtext("Uri") == f"/2012-04-24/Accounts/{tenant.sid}/Clients/{sid}"
        # JSON by Accept header, XML otherwise (even for */*)
        assert c.get(f"/Accounts/{tenant.sid}/Clients/{sid}", headers={"Accept": "application/json"}).json()["sid"] == sid
        lst = xml(c.get(f"/Accounts/{tenant.sid}/Clients", headers={"Accept": "*/*"})).find("Clients")
        assert lst is not None
        assert sid in [x.findtext("Sid") for x in lst.findall("Client")]


# ---------------------------------------------------------------------------------------------
# Validation


INVALID = [
    ({"Login": None}, 20002, "Login can not be null."),
    ({"Login": ""}, 20002, "Login can not be null."),
    ({"Password": None}, 20002, "Password can not be null."),
    ({"Login": "bob?x"}, 20001, "invalid character"),
    ({"Login": "bob=x"}, 20001, "invalid character"),
    ({"Login": "bob@example.com"}, 20001, "invalid character"),
    ({"Login": "bob smith"}, 20001, "invalid character"),
    ({"Password": WEAK}, 22001, "Password too weak"),
    ({"Status": "2"}, 20001, "Status"),
    ({"Status": "enabled"}, 20001, "Status"),
    ({"VoiceUrl": "ftp://example.com/x"}, 20001, "VoiceUrl"),
    ({"VoiceMethod": "PUT"}, 20001, "VoiceMethod"),
    ({"IsPushEnabled": "maybe"}, 20001, "IsPushEnabled"),
    ({"VoiceApplicationSid": "AP" + "0" * 32}, 20001, "VoiceApplicationSid"),
]


@pytest.mark.parametrize(("change", "code", "message"), INVALID, ids=[str(x[0]) for x in INVALID])
def test_create_validation(tenant: Tenant, change: dict[str, str | None], code: int, message: str) -> None:
    login = new_login("invalid")
    data = {"Login": login, "Password": STRONG, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with tenant.client() as c:
        before = logins(c, tenant.sid)
        r = c.post(f"/Accounts/{tenant.sid}/Clients.json", data=data)
        assert r.status_code == 400, r.text
        err = r.json()
        assert err["status"] == 400 and err["code"] == code, err
        assert message in err["message"], err
        assert err["more_info"].endswith(f"/{code}.html")
        assert logins(c, tenant.sid) == before
        # the same error as XML
        r = c.post(f"/Accounts/{tenant.sid}/Clients", data=data)
        assert r.status_code == 400
        exc = xml(r).find("RestException")
        assert exc is not None and exc.findtext("Code") == str(code) and exc.findtext("Status") == "400"


def test_voice_application_must_belong_to_the_account(server: Server, tenant: Tenant) -> None:
    other = make_tenant(server)
    with other.client() as c:
        foreign_app = c.post(f"/Accounts/{other.sid}/Applications.json", data={"FriendlyName": "theirs"}).json()["sid"]
    with tenant.client() as c:
        own_app = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "mine"}).json()["sid"]
        before = logins(c, tenant.sid)
        r = create(c, tenant.sid, VoiceApplicationSid=foreign_app)
        assert r.status_code == 400 and r.json()["code"] == 20001, r.text
        assert logins(c, tenant.sid) == before
        r = create(c, tenant.sid, VoiceApplicationSid=own_app)
        assert r.status_code == 200, r.text
        assert r.json()["voice_application_sid"] == own_app
        sid = r.json()["sid"]
        r = c.post(f"/Accounts/{tenant.sid}/Clients.json/{sid}", data={"VoiceApplicationSid": foreign_app})
        assert r.status_code == 400, r.text
        assert c.get(f"/Accounts/{tenant.sid}/Clients.json/{sid}").json()["voice_application_sid"] == own_app


# ---------------------------------------------------------------------------------------------
# Duplicates and races


def test_duplicate_login_same_account_returns_the_existing_client_unchanged(tenant: Tenant) -> None:
    first = make_client(tenant, Login=(login := new_login()), FriendlyName="First")
    with tenant.client() as c:
        r = c.post(
            f"/Accounts/{tenant.sid}/Clients.json",
            data={"Login": login, "Password": OTHER_STRONG, "FriendlyName": "Second", "Status": "0"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == first
        assert logins(c, tenant.sid).count(login) == 1


def test_duplicate_login_other_account_is_a_conflict(server: Server, tenant: Tenant) -> None:
    make_client(tenant, Login=(login := new_login()))
    other = make_tenant(server)
    with other.client() as c:
        r = c.post(f"/Accounts/{other.sid}/Clients.json", data={"Login": login, "Password": STRONG})
        assert r.status_code == 409, r.text
        assert r.json()["code"] == 20010 and r.json()["status"] == 409
        assert login not in logins(c, other.sid)


def _parallel_posts(server: Server, requests: list[tuple[Tenant, str]], login: str) -> list[httpx.Response]:
    """All requests leave together: each thread opens its connection first, then waits for the rest."""
    ready = threading.Barrier(len(requests))

    def post(job: tuple[Tenant, str]) -> httpx.Response:
        who, password = job
        with server.client(who.sid, who.token) as c:
            assert c.get(f"/Accounts/{who.sid}.json").status_code == 200
            ready.wait(timeout=60)
            return c.post(f"/Accounts/{who.sid}/Clients.json", data={"Login": login, "Password": password})

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(post, requests))


def test_fifty_parallel_creates_of_one_login_make_one_client(server: Server, tenant: Tenant) -> None:
    login = new_login("race")
    # Different passwords: every request that did not insert must get the winner back unchanged.
    responses = _parallel_posts(server, [(tenant, f"{STRONG}{i}") for i in range(50)], login)
    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["sid"] for r in responses}) == 1
    assert len({r.json()["date_created"] for r in responses}) == 1
    with tenant.client() as c:
        assert logins(c, tenant.sid).count(login) == 1


def test_parallel_creates_from_two_accounts_one_wins_the_other_conflicts(server: Server, tenant: Tenant) -> None:
    login = new_login("race")
    other = make_tenant(server)
    jobs = [(tenant if i % 2 else other, STRONG) for i in range(50)]
    responses = _parallel_posts(server, jobs, login)
    winner = {r.json()["account_sid"] for r in responses if r.status_code == 200}
    assert len(winner) == 1, [r.text for r in responses]
    (owner,) = winner
    for (who, _), r in zip(jobs, responses, strict=True):
        assert r.status_code == (200 if who.sid == owner else 409), r.text
    with server.admin() as c:
        assert logins(c, tenant.sid).count(login) + logins(c, other.sid).count(login) == 1


# ---------------------------------------------------------------------------------------------
# Update and delete


def test_update_with_post_and_put(server: Server, tenant: Tenant) -> None:
    body = make_client(tenant, Login=(login := new_login()))
    url = f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json"
    with tenant.client() as c:
        app = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "app"}).json()["sid"]
        r = c.post(url, data={
            "FriendlyName": "Alice", "Status": "0", "VoiceUrl": "/rcml/hello.xml", "VoiceMethod": "get",
            "VoiceFallbackUrl": "https://fallback.example.com/x", "VoiceApplicationSid": app,
            "IsPushEnabled": "true", "Login": "renamed",
        })
        assert r.status_code == 200, r.text
        got = r.json()
        assert in_order(list(got), JSON_KEYS)
        assert got["friendly_name"] == "Alice" and got["status"] == "0" and got["login"] == login
        assert got["voice_url"] == "/rcml/hello.xml" and got["voice_method"] == "GET"
        assert got["voice_fallback_url"] == "https://fallback.example.com/x"
        assert got["voice_application_sid"] == app
        assert got["push_client_identity"] == body["sid"]
        assert c.get(url).json() == got
        # PUT is the same operation; empty values clear; IsPushEnabled=false clears the identity
        r = c.put(url, data={"VoiceUrl": "", "VoiceApplicationSid": "", "IsPushEnabled": "false", "Status": "1"})
        assert r.status_code == 200, r.text
        got = r.json()
        for cleared in ("voice_url", "voice_application_sid", "push_client_identity"):
            assert cleared not in got
        assert got["status"] == "1" and got["voice_fallback_url"] == "https://fallback.example.com/x"
        # a new password is stored as HA1 of the unchanged login
        assert c.post(url, data={"Password": OTHER_STRONG}).status_code == 200
    assert db_client(server, body["sid"])["password"] == hashlib.md5(f"{login}:{DOMAIN}:{OTHER_STRONG}".encode()).hexdigest()


def test_invalid_update_changes_nothing(server: Server, tenant: Tenant) -> None:
    body = make_client(tenant)
    url = f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json"
    stored = db_client(server, body["sid"])
    with tenant.client() as c:
        for data, code in (
            ({"Password": WEAK, "FriendlyName": "changed"}, 22001),
            ({"Status": "7", "FriendlyName": "changed"}, 20001),
            ({"VoiceFallbackUrl": "javascript:alert(1)", "FriendlyName": "changed"}, 20001),
        ):
            r = c.post(url, data=data)
            assert r.status_code == 400 and r.json()["code"] == code, r.text
        assert c.get(url).json() == body
    assert db_client(server, body["sid"]) == stored


def test_missing_clients_are_404(tenant: Tenant) -> None:
    missing = "CL" + uuid.uuid4().hex
    with tenant.client() as c:
        for method in ("GET", "POST", "PUT", "DELETE"):
            for sid in (missing, "not-a-sid", "CL%00"):
                r = c.request(method, f"/Accounts/{tenant.sid}/Clients/{sid}.json", data={"FriendlyName": "x"}
                              if method in ("POST", "PUT") else None)
                assert r.status_code == 404, (method, sid, r.text)
                assert r.json()["code"] == 20404
        # a NUL in the account part is an unknown account, not a database error (PostgreSQL)
        for account in ("AC%00", "a%00@example.com"):
            r = c.get(f"/Accounts/{account}/Clients.json")
            assert r.status_code == 404 and r.json()["code"] == 20404, r.text


def test_delete(tenant: Tenant) -> None:
    body = make_client(tenant)
    with tenant.client() as c:
        r = c.delete(f"/Accounts.json/{tenant.sid}/Clients.json/{body['sid']}")
        assert r.status_code == 200 and r.content == b""
        assert c.get(f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json").status_code == 404
        assert body["login"] not in logins(c, tenant.sid)
        assert c.delete(f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json").status_code == 404
        # the login is free again
        again = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={"Login": body["login"], "Password": STRONG})
        assert again.status_code == 200 and again.json()["sid"] != body["sid"]


# ---------------------------------------------------------------------------------------------
# Tenancy




@pytest.mark.parametrize("actor", ["owner", "parent", "sibling", "child"])
def test_tenancy(server: Server, tenant: Tenant, actor: str) -> None:
    credentials = family(server, tenant)[actor]
    allowed = actor in ("owner", "parent")
    body = make_client(tenant)
    item = f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json"
    collection = f"/Accounts/{tenant.sid}/Clients.json"
    with server.client(*credentials) as c:
        r = c.get(item)
        assert r.status_code == (200 if allowed else 403), r.text
        if allowed:
            assert r.json() == body
        r = c.get(collection)
        assert r.status_code == (200 if allowed else 403), r.text
        r = c.post(item, data={"FriendlyName": f"by {actor}"})
        assert r.status_code == (200 if allowed else 403), r.text
        r = c.post(collection, data={"Login": (login := new_login(actor)), "Password": STRONG})
        assert r.status_code == (200 if allowed else 403), r.text
        if allowed:
            assert r.json()["account_sid"] == tenant.sid
        r = c.delete(item)
        assert r.status_code == (200 if allowed else 403), r.text
    with tenant.client() as c:
        now = c.get(item)
        present = logins(c, tenant.sid)
    if allowed:
        assert now.status_code == 404 and login in present
    else:
        assert now.status_code == 200 and now.json() == body and login not in present


def test_resource_addressed_under_the_wrong_account(server: Server, tenant: Tenant) -> None:
    body = make_client(tenant)
    sibling = make_tenant(server)
    # The parent can see the client, but it does not belong to the parent's own account: 403.
    with server.admin() as c:
        assert c.get(f"/Accounts/{server.admin_sid}/Clients/{body['sid']}.json").status_code == 403
        assert c.delete(f"/Accounts/{server.admin_sid}/Clients/{body['sid']}.json").status_code == 403
    # A sibling may not even learn that it exists: 404.
    with sibling.client() as c:
        assert c.get(f"/Accounts/{sibling.sid}/Clients/{body['sid']}.json").status_code == 404
        assert c.delete(f"/Accounts/{sibling.sid}/Clients/{body['sid']}.json").status_code == 404
    with tenant.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json").json() == body


# ---------------------------------------------------------------------------------------------
# Audit


def test_writes_are_audited(server: Server, tenant: Tenant) -> None:
    body = make_client(tenant, Login=new_login(), FriendlyName="Audited")
    url = f"/Accounts/{tenant.sid}/Clients/{body['sid']}.json"
    with server.admin() as c:  # the parent acts on the tenant's client
        assert c.post(url, data={"Password": OTHER_STRONG, "VoiceUrl": "https://a.example.com/"}).status_code == 200
        assert c.delete(url).status_code == 200
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Client"})
        assert r.status_code == 200, r.text
        events = [e for e in r.json()["audit_events"] if e["resource_sid"] == body["sid"]]
    by_action = {e["action"]: e for e in events}
    assert sorted(by_action) == ["create", "delete", "update"], events
    assert all(e["account_sid"] == tenant.sid for e in events)
    assert by_action["create"]["actor_sid"] == tenant.sid
    assert set(by_action["create"]["changed_parameters"].split(",")) == {"FriendlyName", "Login", "Password"}
    assert by_action["update"]["actor_sid"] == server.admin_sid
    assert set(by_action["update"]["changed_parameters"].split(",")) == {"Password", "VoiceUrl"}
    assert by_action["delete"]["actor_sid"] == server.admin_sid
    text = r.text
    assert STRONG not in text and OTHER_STRONG not in text


def test_refused_writes_are_not_audited(tenant: Tenant) -> None:
    with tenant.client() as c:
        assert create(c, tenant.sid, Password=WEAK).status_code == 400
        r = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Client"})
        assert r.status_code == 200
        assert r.json()["audit_events"] == []
