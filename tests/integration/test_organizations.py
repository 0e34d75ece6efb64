"""Organizations: the SuperAdmin lists, creates (PUT by domain name, or POST) and reads them and
sees their accounts; an Administrator reads only its own organization and its own tree in it;
other roles are refused; accounts name their organization and Client logins are unique in it."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.support.server import Server, Tenant, make_tenant


def _domain() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


def _developer(server: Server, tenant: Tenant) -> Tenant:
    """A child of ``tenant`` whose role is Developer (tenants made by the administrator copy its role)."""
    email = f"dev-{uuid.uuid4().hex[:10]}@example.com"
    with tenant.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": "Str0ng-Passw0rd!", "Role": "Developer"})
    assert r.status_code == 200 and r.json()["role"] == "Developer", r.text
    return Tenant(r.json()["sid"], r.json()["auth_token"], email, "Str0ng-Passw0rd!", server)


def test_the_instance_organization_exists_with_the_configured_domain(server: Server) -> None:
    with server.admin() as admin:
        me = admin.get(f"/Accounts/{server.admin_sid}.json").json()
        orgs = admin.get("/Organizations.json")
        one = admin.get(f"/Organizations/{me['organization']}.json")
        xml = admin.get(f"/Organizations/{me['organization']}", headers={"Accept": "application/xml"})
    assert orgs.status_code == 200
    assert me["organization"] in [o["sid"] for o in orgs.json()]
    assert one.status_code == 200
    body = one.json()
    assert body["sid"] == me["organization"] and body["status"] == "active" and body["domain_name"]
    assert body["uri"] == f"/2012-04-24/Organizations/{body['sid']}.json"
    assert ET.fromstring(xml.text).findtext("Organization/DomainName") == body["domain_name"]
    with server.admin() as admin:  # by domain name too
        assert admin.get(f"/Organizations/{body['domain_name']}.json").json()["sid"] == body["sid"]


def test_superadmin_creates_with_put_and_post(server: Server) -> None:
    put_name, post_name = _domain(), _domain() + ".example.com"
    with server.admin() as admin:
        made = admin.put(f"/Organizations/{put_name}.json")
        assert made.status_code == 200, made.text
        assert made.json()["domain_name"] == put_name and made.json()["sid"].startswith("OR")
        posted = admin.post("/Organizations.json", data={"DomainName": post_name.upper()})
        assert posted.status_code == 200 and posted.json()["domain_name"] == post_name
        again = admin.put(f"/Organizations/{put_name}.json")
        assert again.status_code == 409 and again.json()["code"] == 20010
        assert admin.post("/Organizations.json", data={"DomainName": post_name}).status_code == 409
        for bad in ("a_b", "-lead", "dot..dot"):
            r = admin.post("/Organizations.json", data={"DomainName": bad})
            assert r.status_code == 400, (bad, r.text)
        assert admin.post("/Organizations.json").status_code == 400
        listed = [o["domain_name"] for o in admin.get("/Organizations.json").json()]
        assert put_name in listed and post_name in listed
        active = admin.get("/Organizations.json", params={"Status": "active"}).json()
        assert put_name in [o["domain_name"] for o in active]
        assert admin.get("/Organizations.json", params={"Status": "closed"}).json() == []
        assert admin.get(f"/Organizations/OR{uuid.uuid4().hex}.json").status_code == 404
        assert admin.get("/Organizations/no-such-domain.example.json").status_code == 404
        events = admin.get(f"/Accounts/{server.admin_sid}/AuditLog.json",
                           params={"ResourceType": "Organization"}).json()["audit_events"]
    assert made.json()["sid"] in [e["resource_sid"] for e in events]


def test_accounts_in_an_organization(server: Server) -> None:
    with server.admin() as admin:
        org = admin.put(f"/Organizations/{_domain()}.json").json()
        email = f"inorg-{uuid.uuid4().hex[:8]}@example.com"
        r = admin.post("/Accounts.json", data={"EmailAddress": email, "Password": "Str0ng-Passw0rd!",
                                                "OrganizationSid": org["sid"]})
        assert r.status_code == 200, r.text
        acct = r.json()
        assert acct["organization"] == org["sid"]
        assert admin.get(f"/Accounts/{acct['sid']}.json").json()["organization"] == org["sid"]
        page = admin.get(f"/Organizations/{org['sid']}/Accounts.json").json()
        assert page["total"] == 1 and [a["sid"] for a in page["accounts"]] == [acct["sid"]]
        assert "auth_token" not in page["accounts"][0]
        unknown = admin.post("/Accounts.json", data={"EmailAddress": f"x{uuid.uuid4().hex[:8]}@example.com",
                                                     "Password": "Str0ng-Passw0rd!",
                                                     "OrganizationSid": f"OR{uuid.uuid4().hex}"})
        assert unknown.status_code == 400
    # A sub-account is made in its creator's organization.
    child = Tenant(acct["sid"], acct["auth_token"], email, "Str0ng-Passw0rd!", server).sub("grandchild")
    with server.admin() as admin:
        assert admin.get(f"/Accounts/{child.sid}.json").json()["organization"] == org["sid"]
        sids = {a["sid"] for a in admin.get(f"/Organizations/{org['sid']}/Accounts.json").json()["accounts"]}
        # Restcomm's spelling: GET /Accounts?OrganizationSid= or ?DomainName= (the SuperAdmin only).
        by_sid = admin.get("/Accounts.json", params={"OrganizationSid": org["sid"]}).json()
        by_domain = admin.get("/Accounts.json", params={"DomainName": org["domain_name"].upper()}).json()
        assert admin.get("/Accounts.json", params={"DomainName": "nowhere.example"}).status_code == 404
    assert sids == {a["sid"] for a in by_sid} == {a["sid"] for a in by_domain} == {acct["sid"], child.sid}
    with child.client() as c:
        assert c.get("/Accounts.json", params={"OrganizationSid": org["sid"]}).status_code == 403


def test_client_logins_are_unique_per_organization(server: Server) -> None:
    with server.admin() as admin:
        org = admin.put(f"/Organizations/{_domain()}.json").json()
        r = admin.post("/Accounts.json", data={"EmailAddress": f"o{uuid.uuid4().hex[:8]}@example.com",
                                                "Password": "Str0ng-Passw0rd!", "OrganizationSid": org["sid"]})
        other = Tenant(r.json()["sid"], r.json()["auth_token"], "", "", server)
    here = make_tenant(server, name="here")
    login = f"alice{uuid.uuid4().hex[:6]}"
    form = {"Login": login, "Password": "Cl1ent-Passw0rd!"}
    with here.client() as c:
        assert c.post(f"/Accounts/{here.sid}/Clients.json", data=form).status_code == 200
    same_org = make_tenant(server, name="same")
    with same_org.client() as c:
        assert c.post(f"/Accounts/{same_org.sid}/Clients.json", data=form).status_code == 409
    with other.client() as c:  # another organization: the same login is free there
        r = c.post(f"/Accounts/{other.sid}/Clients.json", data=form)
        assert r.status_code == 200, r.text


def test_administrator_reads_only_its_own_organization(server: Server, tenant: Tenant) -> None:
    with server.admin() as admin:
        own = admin.get(f"/Accounts/{tenant.sid}.json").json()["organization"]
        foreign = admin.put(f"/Organizations/{_domain()}.json").json()["sid"]
    child = tenant.sub("child")
    sibling = make_tenant(server, name="sibling")
    with tenant.client() as c:  # tenants made by the administrator are Administrators
        assert c.get(f"/Organizations/{own}.json").status_code == 200
        accounts = c.get(f"/Organizations/{own}/Accounts.json").json()
        assert {a["sid"] for a in accounts["accounts"]} == {tenant.sid, child.sid}
        assert sibling.sid not in str(accounts)
        for r in (c.get(f"/Organizations/{foreign}.json"), c.get(f"/Organizations/{foreign}/Accounts.json"),
                  c.get(f"/Organizations/OR{uuid.uuid4().hex}.json"), c.get("/Organizations.json"),
                  c.put(f"/Organizations/{_domain()}.json"), c.post("/Organizations.json", data={"DomainName": _domain()}),
                  c.post("/Accounts.json", data={"EmailAddress": f"y{uuid.uuid4().hex[:8]}@example.com",
                                                 "Password": "Str0ng-Passw0rd!", "OrganizationSid": foreign})):
            assert r.status_code == 403, r.text


@pytest.mark.parametrize("path", ["/Organizations.json", "/Organizations/{org}.json", "/Organizations/{org}/Accounts.json"])
def test_other_roles_are_refused(server: Server, tenant: Tenant, path: str) -> None:
    dev = _developer(server, tenant)
    with dev.client() as c:
        org = c.get(f"/Accounts/{dev.sid}.json").json()["organization"]
        r = c.get(path.format(org=org))
    assert r.status_code == 403 and r.json()["code"] == 20006


def test_organizations_need_credentials(server: Server) -> None:
    assert httpx.get(f"{server.api}/Organizations.json", timeout=10).status_code == 401
    assert httpx.get(f"{server.api}/Organizations.json", auth=(server.admin_sid, "wrong"), timeout=10).status_code == 401
