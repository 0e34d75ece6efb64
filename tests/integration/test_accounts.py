"""Accounts and the API conventions, over real HTTP against a running server (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, Server, Tenant, make_tenant

SID = re.compile(r"^AC[0-9a-f]{32}$")
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


# -- authentication -------------------------------------------------------------------------


def test_missing_credentials_is_401_with_challenge(server: Server) -> None:
    r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}.json")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="Restcomm realm"'
    body = r.json()
    assert body["status"] == 401 and body["code"] == 20003 and body["message"]
    assert body["more_info"].endswith("/20003.html")


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64",
        "Bearer abc",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ],
)
def test_malformed_authorization_is_401(server: Server, header: str) -> None:
    r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}.json", headers={"Authorization": header})
    assert r.status_code == 401


def test_wrong_password_is_401(server: Server) -> None:
    r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}.json", auth=(server.admin_sid, "wrong"))
    assert r.status_code == 401


def test_login_by_sid_or_email_with_token_or_password(server: Server) -> None:
    for user, pw in [
        (server.admin_sid, server.admin_token),
        (ADMIN_EMAIL, server.admin_token),
        (server.admin_sid, ADMIN_PASSWORD),
        (ADMIN_EMAIL.upper(), ADMIN_PASSWORD),
    ]:
        r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}.json", auth=(user, pw))
        assert r.status_code == 200, (user, r.text)
        assert r.json()["sid"] == server.admin_sid


def test_password_with_colon_and_unicode(server: Server) -> None:
    password = "Pa:ss-w0rd-ünï:cödé!"
    email = f"colon-{uuid.uuid4().hex[:8]}@example.com"
    with server.admin() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": password})
        assert r.status_code == 200, r.text
    r = httpx.get(f"{server.api}/Accounts/{email}.json", auth=(email, password))
    assert r.status_code == 200


# -- formats --------------------------------------------------------------------------------


def test_json_suffix_on_any_segment_and_trailing_slash(server: Server) -> None:
    auth = (server.admin_sid, server.admin_token)
    for path in [
        f"/Accounts/{server.admin_sid}.json",
        f"/Accounts.json/{server.admin_sid}",
        f"/Accounts.json/{server.admin_sid}/",
        f"/Accounts/{server.admin_sid}.json/",
    ]:
        r = httpx.get(server.api + path, auth=auth)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["sid"] == server.admin_sid


def test_xml_suffix_and_accept_header(server: Server) -> None:
    auth = (server.admin_sid, server.admin_token)
    r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}.xml", auth=auth)
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "RestcommResponse"
    assert root.find("Account/Sid").text == server.admin_sid
    assert root.find("Account/SubresourceUris/SMSMessages").text.endswith("/SMS/Messages")
    # No suffix: Accept decides; anything without "json" (including */*) is XML.
    r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}", auth=auth, headers={"Accept": "*/*"})
    assert r.headers["content-type"].startswith("application/xml")
    r = httpx.get(f"{server.api}/Accounts/{server.admin_sid}", auth=auth, headers={"Accept": "application/json"})
    assert r.json()["sid"] == server.admin_sid


def test_account_representation(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        body = c.get(f"/Accounts/{tenant.sid}.json").json()
    assert SID.match(body["sid"])
    assert body["email_address"] == tenant.email
    assert body["status"] == "active" and body["type"] == "Full"
    assert RFC2822.match(body["date_created"]) and RFC2822.match(body["date_updated"])
    assert body["uri"] == f"/2012-04-24/Accounts/{tenant.sid}.json"
    assert body["subresource_uris"]["sms_messages"] == f"/2012-04-24/Accounts/{tenant.sid}/SMS/Messages.json"
    assert body["parent_sid"] == server.admin_sid
    assert re.match(r"^[0-9a-f]{32}$", body["auth_token"])
    assert body["organization"].startswith("OR")


def test_errors_in_xml(server: Server) -> None:
    r = httpx.get(f"{server.api}/Accounts/AC{'0' * 32}.xml", auth=(server.admin_sid, server.admin_token))
    assert r.status_code == 404
    root = ET.fromstring(r.content)
    assert root.find("RestException/Code").text == "20404"
    assert root.find("RestException/Status").text == "404"


def test_unknown_path_and_method(server: Server) -> None:
    auth = (server.admin_sid, server.admin_token)
    r = httpx.get(f"{server.api}/NoSuchThing.json", auth=auth)
    assert r.status_code == 404 and r.json()["code"] == 20404
    r = httpx.delete(f"{server.api}/Accounts/{server.admin_sid}.json", auth=auth)
    assert r.status_code == 405


def test_error_dictionary_page(server: Server) -> None:
    r = httpx.get(f"{server.base_url}/restcomm/errors/20003.html")
    assert r.status_code == 200 and "Authentication failed" in r.text


# -- sub-accounts ---------------------------------------------------------------------------


def test_create_sub_account_and_list(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    with tenant.client() as c:
        listed = c.get("/Accounts.json").json()
        assert [a["sid"] for a in listed] == [child.sid]
        r = c.get("/Accounts.json/")
        assert r.status_code == 200
        # The SIP client created alongside the account carries the email's local part.
        xml = c.get("/Accounts").content
        assert ET.fromstring(xml).find("Accounts/Account/Sid").text == child.sid
    with child.client() as c:
        assert c.get("/Accounts.json").json() == []


def test_create_validation_changes_nothing(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        cases = [
            ({"Password": "Str0ng-Passw0rd!"}, 400, 20002),
            ({"EmailAddress": "x@example.com"}, 400, 20002),
            ({"EmailAddress": "not-an-email", "Password": "Str0ng-Passw0rd!"}, 400, 20001),
            ({"EmailAddress": f"w{uuid.uuid4().hex[:6]}@example.com", "Password": "password"}, 400, 22001),
            ({"EmailAddress": "a@example.com", "Password": "Str0ng-Passw0rd!", "Status": "bogus"}, 400, 20001),
        ]
        for data, status, code in cases:
            r = c.post("/Accounts.json", data=data)
            assert r.status_code == status, (data, r.text)
            assert r.json()["code"] == code, (data, r.text)
        assert c.get("/Accounts.json").json() == []


def test_duplicate_email_is_409(server: Server, tenant: Tenant) -> None:
    with server.admin() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": tenant.email, "Password": "Str0ng-Passw0rd!"})
    assert r.status_code == 409


def test_depth_is_limited_to_three_levels(server: Server, tenant: Tenant) -> None:
    # The administrator is level 1, the tenant level 2, its child level 3: the last level.
    grandchild = tenant.sub("c")
    with grandchild.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": "deep@example.com", "Password": "Str0ng-Passw0rd!"})
    assert r.status_code == 400 and r.json()["code"] == 22002


def test_only_administrators_set_roles(server: Server, tenant: Tenant) -> None:
    with server.admin() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"Role": "Developer"})
        assert r.status_code == 200 and r.json()["role"] == "Developer"
    with tenant.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": "r@example.com", "Password": "Str0ng-Passw0rd!",
                                           "Role": "Administrator"})
        assert r.status_code == 403


# -- updates --------------------------------------------------------------------------------


def test_update_friendly_name_post_and_put(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": "Via POST"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "Via POST"
        r = c.put(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": "Via PUT"})
        assert r.status_code == 200 and r.json()["friendly_name"] == "Via PUT"
        assert c.get(f"/Accounts/{tenant.sid}.json").json()["friendly_name"] == "Via PUT"


def test_password_change_is_honoured_immediately(server: Server, tenant: Tenant) -> None:
    new = "An0ther-Str0ng-Pass!"
    with tenant.client() as c:
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Password": new}).status_code == 200
    assert httpx.get(f"{server.api}/Accounts/{tenant.sid}.json", auth=(tenant.email, tenant.password)).status_code == 401
    assert httpx.get(f"{server.api}/Accounts/{tenant.sid}.json", auth=(tenant.email, new)).status_code == 200
    # The AuthToken is independent of the password.
    assert httpx.get(f"{server.api}/Accounts/{tenant.sid}.json", auth=(tenant.sid, tenant.token)).status_code == 200


def test_weak_password_update_changes_nothing(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"Password": "weak", "FriendlyName": "never"})
        assert r.status_code == 400 and r.json()["code"] == 22001
        assert c.get(f"/Accounts/{tenant.sid}.json").json()["friendly_name"] != "never"


def test_suspend_cascades_and_locks_credentials(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("c")
    with server.admin() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"Status": "suspended"})
        assert r.status_code == 200 and r.json()["status"] == "suspended"
        assert c.get(f"/Accounts/{child.sid}.json").json()["status"] == "suspended"
    for t in (tenant, child):
        with t.client() as c:
            r = c.get(f"/Accounts/{t.sid}.json")
            assert r.status_code == 403 and r.json()["code"] == 20005
    with server.admin() as c:
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Status": "active"}).status_code == 200
    with tenant.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}.json").status_code == 200


def test_close_is_final_and_purges(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("c")
    with tenant.client() as c:
        r = c.post(f"/Accounts/{child.sid}.json", data={"Status": "closed"})
        assert r.status_code == 200 and r.json()["status"] == "closed"
        r = c.post(f"/Accounts/{child.sid}.json", data={"Status": "active"})
        assert r.status_code == 400 and r.json()["code"] == 22003
        assert c.get(f"/Accounts/{child.sid}.json").json()["status"] == "closed"
    with child.client() as c:
        assert c.get(f"/Accounts/{child.sid}.json").status_code == 403
    r = httpx.get(f"{server.api}/Accounts/{child.sid}.json", auth=(child.email, child.password))
    assert r.status_code == 403


def test_cannot_change_own_status(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Status": "closed"}).status_code == 403
        assert c.get(f"/Accounts/{tenant.sid}.json").json()["status"] == "active"


# -- tenancy --------------------------------------------------------------------------------


def test_account_tenancy_matrix(server: Server) -> None:
    a = make_tenant(server, name="a")
    b = make_tenant(server, name="b")
    a_child = a.sub("achild")
    a_child2 = a.sub("achild2")
    cases = [
        (a, a.sid, 200),
        (a, a_child.sid, 200),
        (a_child, a.sid, 403),  # child touching its parent
        (b, a.sid, 403),  # sibling
        (b, a_child.sid, 403),  # sibling's child
        (a_child2, a_child.sid, 403),  # sibling under the same parent
    ]
    with server.admin() as c:  # the administrator reaches its grandchildren
        assert c.get(f"/Accounts/{a_child.sid}.json").status_code == 200
    for who, target, expected in cases:
        with who.client() as c:
            assert c.get(f"/Accounts/{target}.json").status_code == expected, (who.email, target)
            r = c.post(f"/Accounts/{target}.json", data={"FriendlyName": "x"})
            assert r.status_code == expected, (who.email, target, r.text)
    # Addressed by email, someone else's account is indistinguishable from a missing one.
    with b.client() as c:
        assert c.get(f"/Accounts/{a.email}.json").status_code == 404
    with a.client() as c:
        assert c.get(f"/Accounts/{a_child.email}.json").json()["sid"] == a_child.sid


def test_missing_account_is_404_not_500(server: Server) -> None:
    with server.admin() as c:
        assert c.get(f"/Accounts/AC{'f' * 32}.json").status_code == 404
        assert c.get("/Accounts/nobody@example.com.json").status_code == 404
        assert c.get("/Accounts/garbage/Clients.json").status_code in (403, 404)


def test_unknown_parameters_are_ignored(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": "ok", "Bogus": "1", "AuthToken": "x"})
        assert r.status_code == 200 and r.json()["auth_token"] == tenant.token


def test_invalid_utf8_and_wrong_content_type(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", content=b"FriendlyName=%ff%fe",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400
        r = c.post(f"/Accounts/{tenant.sid}.json", content=b'{"FriendlyName": "x"}',
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 415


def test_oversized_body_is_413(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": "x" * 1_100_000})
        assert r.status_code == 413


def test_audit_log_records_account_changes(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        c.post(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": "Audited", "Password": "Audit3d-Pass!"})
        body = c.get(f"/Accounts/{tenant.sid}/AuditLog.json").json()
    events = body["audit_events"]
    assert events[0]["action"] == "update" and events[0]["resource_type"] == "Account"
    assert events[0]["actor_sid"] == tenant.sid
    assert "FriendlyName" in events[0]["changed_parameters"]
    assert "Audit3d" not in str(body)
