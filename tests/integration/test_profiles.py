"""Profiles over real HTTP: the SuperAdmin creates, reads, replaces, links, unlinks and deletes
them; every account's effective profile (own link, then ancestors, then organization, then the
default) is named by GET /Accounts/{sid}; featureEnablement refuses SMS and calls to destinations
it does not enable (with a notification, sending nothing); sessionThrottling sets the account's
API rate limit.

No test links a profile to the administrator's account or to the instance's organization: every
other test's account descends from the one and belongs to the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.server import Server, Tenant, make_tenant
from tests.support.sms_app import Answer, AppServer, add_number, messages, notifications, send, unique_number
from tests.support.waiting import wait_until

DEFAULT = "PRae6e420f425248d6a26948c17a9e2acf"
JSON = {"Content-Type": "application/instance+json"}


def _create(c: httpx.Client, doc: dict[str, Any]) -> str:
    r = c.post("/Profiles", content=orjson.dumps(doc), headers=JSON)
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[-1]


def _link(c: httpx.Client, server: Server, profile: str, target: str, method: str = "LINK") -> httpx.Response:
    kind = "Accounts" if target.startswith("AC") else "Organizations"
    return c.request(method, f"/Profiles/{profile}", headers={"Link": f'<{server.api}/{kind}/{target}>; rel="related"'})


def _effective(server: Server, tenant: Tenant) -> str:
    with server.admin() as admin:
        r = admin.get(f"/Accounts/{tenant.sid}.json")
    assert r.status_code == 200, r.text
    link = r.headers["link"]
    assert link.endswith('>; rel="related"; title="Profiles"'), link
    return link.split(">", 1)[0].rsplit("/", 1)[-1]


def _account_in(server: Server, organization: str) -> Tenant:
    email = f"org-member-{uuid.uuid4().hex[:10]}@example.com"
    with server.admin() as admin:
        r = admin.post("/Accounts.json", data={"EmailAddress": email, "Password": "Str0ng-Passw0rd!",
                                               "OrganizationSid": organization})
    assert r.status_code == 200, r.text
    return Tenant(r.json()["sid"], r.json()["auth_token"], email, "Str0ng-Passw0rd!", server)


@pytest.fixture
def organization(server: Server) -> str:
    with server.admin() as admin:
        r = admin.post("/Organizations.json", data={"DomainName": f"prof-{uuid.uuid4().hex[:10]}.example.com"})
    assert r.status_code == 200, r.text
    return str(r.json()["sid"])


# -- CRUD ------------------------------------------------------------------------------------------


def test_create_read_update_delete(server: Server) -> None:
    doc = {"featureEnablement": {"outboundSMS": {}, "destinations": {"allowedPrefixes": ["+1"]}},
           "sessionThrottling": {"PSTNCallsPerTime": {"events": 300, "time": 30, "timeUnit": "days"}},
           "anythingElse": {"kept": True}}
    body = orjson.dumps(doc)
    with server.admin() as admin:
        r = admin.post("/Profiles", content=body, headers=JSON)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith("application/instance+json")
        assert r.content == body  # the document as sent
        sid = r.headers["location"].rsplit("/", 1)[-1]
        assert sid.startswith("PR") and r.headers["location"].startswith(server.api + "/Profiles/")
        assert 'rel="describedby"' in r.headers["link"]

        one = admin.get(f"/Profiles/{sid}")
        assert one.status_code == 200 and orjson.loads(one.content) == doc
        assert one.headers["content-type"].startswith("application/instance+json")
        assert one.headers["last-modified"].endswith("GMT")
        assert f"<{server.api}/Profiles/schemas/rc-profile-schema.json>" in one.headers["link"]

        plain = admin.post("/Profiles", content=b"{}", headers={"Content-Type": "application/json"})
        assert plain.status_code == 201

        new = {"featureEnablement": {}}
        put = admin.put(f"/Profiles/{sid}", content=orjson.dumps(new), headers=JSON)
        assert put.status_code == 200 and orjson.loads(put.content) == new
        assert orjson.loads(admin.get(f"/Profiles/{sid}").content) == new

        assert admin.delete(f"/Profiles/{sid}").status_code == 200
        gone = admin.get(f"/Profiles/{sid}")
        assert gone.status_code == 404 and gone.json()["code"] == 20404
        assert admin.delete(f"/Profiles/{sid}").status_code == 404
        assert admin.put(f"/Profiles/{sid}", content=b"{}", headers=JSON).status_code == 404


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'"text"', b'{"featureEnablement": []}',
    b'{"featureEnablement": {"destinations": {"allowedPrefixes": ["US"]}}}',
    b'{"featureEnablement": {"outboundSMS": {"unknown": 1}}}',
    b'{"sessionThrottling": {"APIRequestsPerTime": {"events": 0, "time": 1, "timeUnit": "seconds"}}}',
    b'{"sessionThrottling": {"APIRequestsPerTime": {"events": 1, "time": 1, "timeUnit": "fortnights"}}}',
])
def test_documents_that_fail_the_schema_change_nothing(server: Server, body: bytes) -> None:
    with server.admin() as admin:
        before = admin.get("/Profiles", params={"PageSize": 1}).json()["total"]
        r = admin.post("/Profiles", content=body, headers=JSON)
        assert r.status_code == 400 and r.json()["code"] == 20001, r.text
        assert admin.get("/Profiles", params={"PageSize": 1}).json()["total"] == before
        form = admin.post("/Profiles", data={"a": "b"})
        assert form.status_code == 415


def test_the_default_profile_is_fixed(server: Server) -> None:
    with server.admin() as admin:
        r = admin.get(f"/Profiles/{DEFAULT}")
        assert r.status_code == 200 and "outboundSMS" in orjson.loads(r.content)["featureEnablement"]
        assert admin.put(f"/Profiles/{DEFAULT}", content=b"{}", headers=JSON).status_code == 403
        assert admin.delete(f"/Profiles/{DEFAULT}").status_code == 403
        assert admin.get(f"/Profiles/{DEFAULT}").content == r.content
        bad = admin.get("/Profiles/not-a-profile")
        assert bad.status_code == 400
        assert admin.get("/Profiles/PR" + "0" * 32).status_code == 404


def test_list_pages_filters_and_includes_documents(server: Server, tenant: Tenant) -> None:
    with server.admin() as admin:
        made = [_create(admin, {"n": i}) for i in range(3)]
        page = admin.get("/Profiles", params={"PageSize": 2})
        assert page.status_code == 200
        env = page.json()
        assert env["page_size"] == 2 and env["total"] >= 4 and len(env["profiles"]) == 2
        assert env["next_page_uri"] and env["profiles"][0]["sid"] == DEFAULT  # the oldest first
        item = env["profiles"][0]
        assert set(item) == {"sid", "uri", "dateCreated", "dateUpdated"}
        assert item["uri"] == f"/2012-04-24/Profiles/{DEFAULT}"
        last = admin.get("/Profiles", params={"PageSize": 2, "Page": env["num_pages"] - 1}).json()
        assert last["next_page_uri"] is None

        assert _link(admin, server, made[1], tenant.sid).status_code == 200
        linked = admin.get("/Profiles", params={"LinkedTo": tenant.sid, "IncludeDocument": "true"}).json()
        assert [p["sid"] for p in linked["profiles"]] == [made[1]]
        assert linked["profiles"][0]["profileDocument"] == {"n": 1}
        assert admin.get("/Profiles", params={"PageSize": 0}).status_code == 400


# -- links -----------------------------------------------------------------------------------------


def test_link_unlink_an_account_and_its_relationships(server: Server, tenant: Tenant) -> None:
    with server.admin() as admin:
        sid = _create(admin, {"featureEnablement": {"outboundSMS": {}}})
        assert _effective(server, tenant) == DEFAULT
        assert _link(admin, server, sid, tenant.sid).status_code == 200
        assert _effective(server, tenant) == sid
        one = admin.get(f"/Profiles/{sid}")
        assert f'<{server.api}/Accounts/{tenant.sid}>; rel="related"; title="Accounts"' in one.headers["link"]
        assoc = admin.get(f"/Profiles/{sid}/Associations").json()
        assert [(a["target_sid"], a["target_type"]) for a in assoc] == [(tenant.sid, "Account")]
        assert assoc[0]["uri"] == f"/2012-04-24/Accounts/{tenant.sid}"

        assert _link(admin, server, sid, tenant.sid, "UNLINK").status_code == 200
        assert _effective(server, tenant) == DEFAULT
        assert admin.get(f"/Profiles/{sid}/Associations").json() == []
        again = _link(admin, server, sid, tenant.sid, "UNLINK")
        assert again.status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_method_override(server: Server, tenant: Tenant, method: str) -> None:
    with server.admin() as admin:
        sid = _create(admin, {})
        link = {"Link": f'<{server.api}/Accounts/{tenant.sid}.json>; rel="related"'}
        r = admin.request(method, f"/Profiles/{sid}", headers={**link, "X-HTTP-Method-Override": "LINK"})
        assert r.status_code == 200, r.text
        assert _effective(server, tenant) == sid
        r = admin.request(method, f"/Profiles/{sid}", headers={**link, "X-HTTP-Method-Override": "UNLINK"})
        assert r.status_code == 200, r.text
        assert _effective(server, tenant) == DEFAULT
        # POST without the override is not a link
        assert admin.post(f"/Profiles/{sid}", headers=link).status_code == 400


def test_link_errors(server: Server, tenant: Tenant) -> None:
    with server.admin() as admin:
        sid = _create(admin, {})
        api = server.api

        def link(value: str | None, profile: str = sid) -> httpx.Response:
            return admin.request("LINK", f"/Profiles/{profile}", headers={"Link": value} if value else {})

        r = link(f'<{api}/Accounts/{tenant.sid}>; rel="related", <{api}/Accounts/{tenant.sid}>; rel="related"')
        assert r.status_code == 400 and r.json()["message"] == "Only one Link supported"
        r = link(f'<{api}/Accounts/{tenant.sid}>; rel="alternate"')
        assert r.status_code == 400 and r.json()["message"] == "Only related rel type supported"
        assert link(None).status_code == 400
        assert link("garbage").status_code == 400
        r = link(f'<{api}/Accounts/AC{"0" * 32}>; rel="related"')
        assert r.status_code == 404 and r.json()["message"] == "Account not found"
        r = link(f'<{api}/Organizations/OR{"0" * 32}>; rel="related"')
        assert r.status_code == 404 and r.json()["message"] == "Organization not found"
        r = link(f'<{api}/Clients/CL{"0" * 32}>; rel="related"')
        assert r.status_code == 404 and r.json()["message"] == "Link not supported"
        assert link(f'<{api}/Accounts/{tenant.sid}>; rel="related"', "PR" + "0" * 32).status_code == 404
        assert _effective(server, tenant) == DEFAULT


def test_deleting_a_profile_removes_its_links(server: Server, tenant: Tenant) -> None:
    with server.admin() as admin:
        sid = _create(admin, {})
        assert _link(admin, server, sid, tenant.sid).status_code == 200
        assert _effective(server, tenant) == sid
        assert admin.delete(f"/Profiles/{sid}").status_code == 200
    assert _effective(server, tenant) == DEFAULT


def test_resolution_order(server: Server, organization: str) -> None:
    """account, then parent accounts, then organization, then the default (the tree is at most
    three deep and its root is the administrator, never linked here: the unit tests order longer
    chains)."""
    parent = _account_in(server, organization)
    child = parent.sub("child")
    with server.admin() as admin:
        p_org, p_parent, p_self = (_create(admin, {"name": n}) for n in ("org", "parent", "self"))
        for profile, target in ((p_org, organization), (p_parent, parent.sid), (p_self, child.sid)):
            assert _link(admin, server, profile, target).status_code == 200
        org = admin.get(f"/Organizations/{organization}.json")
        assert f"/Profiles/{p_org}>" in org.headers["link"]
        assert _effective(server, child) == p_self
        assert _effective(server, parent) == p_parent
        assert _link(admin, server, p_self, child.sid, "UNLINK").status_code == 200
        assert _effective(server, child) == p_parent
        assert _link(admin, server, p_parent, parent.sid, "UNLINK").status_code == 200
        assert _effective(server, child) == p_org
        assert _effective(server, parent) == p_org
        assert _link(admin, server, p_org, organization, "UNLINK").status_code == 200
        assert _effective(server, child) == DEFAULT
        org = admin.get(f"/Organizations/{organization}.json")
        assert f"/Profiles/{DEFAULT}>" in org.headers["link"]
        # linking another profile to a target replaces its link
        assert _link(admin, server, p_org, child.sid).status_code == 200
        assert _link(admin, server, p_self, child.sid).status_code == 200
        assert _effective(server, child) == p_self
    with child.client() as c:  # the account itself sees the same Link
        assert f"/Profiles/{p_self}>" in c.get(f"/Accounts/{child.sid}.json").headers["link"]


# -- who may --------------------------------------------------------------------------------------


def _with_role(server: Server, role: str) -> Tenant:
    email = f"{role.lower()}-{uuid.uuid4().hex[:10]}@example.com"
    with server.admin() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": "Str0ng-Passw0rd!", "Role": role})
    assert r.status_code == 200, r.text
    return Tenant(r.json()["sid"], r.json()["auth_token"], email, "Str0ng-Passw0rd!", server)


@pytest.mark.parametrize("role", ["Developer", "Administrator"])
def test_others_read_only_their_effective_profile(server: Server, role: str) -> None:
    me = _with_role(server, role)
    with server.admin() as admin:
        other = _create(admin, {"other": True})
        mine = _create(admin, {"mine": True})
    with me.client() as c:
        assert c.get(f"/Profiles/{DEFAULT}").status_code == 200  # the default is everyone's, unlinked
        r = c.get(f"/Profiles/{other}")
        assert r.status_code == 403 and r.json()["message"] == "Profile not linked"
        assert c.get("/Profiles/schemas/rc-profile-schema.json").status_code == 200
        assert c.get("/Profiles").status_code == 403
        assert c.post("/Profiles", content=b"{}", headers=JSON).status_code == 403
        assert c.put(f"/Profiles/{mine}", content=b"{}", headers=JSON).status_code == 403
        assert c.delete(f"/Profiles/{mine}").status_code == 403
        assert _link(c, server, mine, me.sid).status_code == 403
    with server.admin() as admin:
        assert _link(admin, server, mine, me.sid).status_code == 200
    with me.client() as c:
        assert c.get(f"/Profiles/{mine}").status_code == 200
        assert c.get(f"/Profiles/{DEFAULT}").status_code == 403
    with server.admin() as admin:  # nothing the others tried changed anything
        assert orjson.loads(admin.get(f"/Profiles/{mine}").content) == {"mine": True}


def test_schema_is_served(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.get("/Profiles/schemas/rc-profile-schema.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/schema+json")
    schema = r.json()
    assert {"featureEnablement", "sessionThrottling"} <= set(schema["properties"])
    assert schema["additionalProperties"] is True


# -- what profiles do ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    server = AppServer().start()
    yield server
    server.stop()


def test_feature_enablement_refuses_sms_with_a_notification(server: Server, tenant: Tenant, apps: AppServer) -> None:
    """Only +1555 destinations: the API refuses +44 with 21408 and a notification, and so does an
    application's reply; +1555 still goes."""
    with server.admin() as admin:
        sid = _create(admin, {"featureEnablement": {"outboundSMS": {"blockedPrefixes": ["+1555999"]},
                                                    "destinations": {"allowedPrefixes": ["+1555"]}}})
        assert _link(admin, server, sid, tenant.sid).status_code == 200
    with tenant.client() as c:
        here, there = unique_number(), unique_number()
        add_number(c, tenant.sid, here)
        path = apps.new_path("profile")
        url = apps.route(path, Answer('<Response><Sms to="+447700900123">abroad</Sms>'
                                      f'<Sms to="{here}">home</Sms></Response>'), token=tenant.token)
        add_number(c, tenant.sid, there, SmsUrl=url)

        r = send(c, tenant.sid, here, "+447700900123", "abroad")
        assert r.status_code == 400 and r.json()["code"] == 21408, r.text
        r = send(c, tenant.sid, here, "+15559990000", "blocked prefix")
        assert r.status_code == 400 and r.json()["code"] == 21408, r.text
        noted = notifications(c, tenant.sid, ErrorCode="21408")
        assert len(noted) == 2 and all(n["log"] == 0 for n in noted), noted

        assert send(c, tenant.sid, here, there, "to the app").status_code == 200
        apps.wait(path)
        wait_until(lambda: notifications(c, tenant.sid, ErrorCode="21408"), lambda n: len(n) == 3,
                   what="the reply's notification")
        wait_until(lambda: [m for m in messages(c, tenant.sid, To=here) if m["body"] == "home"], bool,
                   what="the allowed reply")
        assert not [m for m in messages(c, tenant.sid) if m["to"].startswith("+44")]

    with server.admin() as admin:  # unlinked: the default profile enables everything again
        assert _link(admin, server, sid, tenant.sid, "UNLINK").status_code == 200
    with tenant.client() as c:
        assert send(c, tenant.sid, here, "+447700900123", "now allowed").status_code == 200


def test_feature_enablement_without_outbound_sms_or_pstn(server: Server, tenant: Tenant) -> None:
    with server.admin() as admin:
        sid = _create(admin, {"featureEnablement": {"inboundSMS": {}}})
        assert _link(admin, server, sid, tenant.sid).status_code == 200
    with tenant.client() as c:
        here = unique_number()
        add_number(c, tenant.sid, here)
        r = send(c, tenant.sid, here, unique_number(), "x")
        assert r.status_code == 400 and r.json()["code"] == 21408
        r = c.post(f"/Accounts/{tenant.sid}/Calls.json", data={"From": here, "To": "+15550001234",
                                                                "Url": "http://127.0.0.1:9/rcml"})
        assert r.status_code == 400 and r.json()["code"] == 21215, r.text
        assert notifications(c, tenant.sid, ErrorCode="21215")
        assert c.get(f"/Accounts/{tenant.sid}/Calls.json").json()["calls"] == []
        # client: and sip: destinations are not the PSTN
        r = c.post(f"/Accounts/{tenant.sid}/Calls.json", data={"From": here, "To": "client:alice",
                                                                "Url": "http://127.0.0.1:9/rcml"})
        assert r.status_code != 400 or r.json()["code"] != 21215


def test_session_throttling_sets_the_api_rate(server: Server) -> None:
    throttled, free = make_tenant(server), make_tenant(server)
    with server.admin() as admin:
        sid = _create(admin, {"sessionThrottling": {"APIRequestsPerTime": {"events": 3, "time": 1, "timeUnit": "hours"}}})
        assert _link(admin, server, sid, throttled.sid).status_code == 200
    with throttled.client() as c:
        codes = [c.get(f"/Accounts/{throttled.sid}.json").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429], codes
        r = c.get(f"/Accounts/{throttled.sid}.json")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 60
    with free.client() as c:
        assert all(c.get(f"/Accounts/{free.sid}.json").status_code == 200 for _ in range(6))
    with server.admin() as admin:
        assert _link(admin, server, sid, throttled.sid, "UNLINK").status_code == 200
    with throttled.client() as c:
        assert c.get(f"/Accounts/{throttled.sid}.json").status_code == 200
