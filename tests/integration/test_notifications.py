"""Notifications: written by the platform (restcomm.notify), read, filtered, paged and deleted over HTTP."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest

from restcomm.notify import write_notification
from tests.support.sdk.store import write_notifications
from tests.support.server import API, Server, Tenant, make_tenant

NO_SID = re.compile(r"^NO[0-9a-f]{32}$")
ISO_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def note(tenant: Tenant, **kw: object) -> dict[str, object]:
    spec: dict[str, object] = {"account_sid": tenant.sid, "error_code": 11200, "log": 0,
                               "message_text": "HTTP retrieval failure"}
    spec.update(kw)
    return spec


def follow(client: httpx.Client, uri: str) -> httpx.Response:
    """Paging URIs are server-relative (/restcomm/...) and carry no .json, so ask for JSON."""
    parts = urlsplit(uri)
    path = parts.path.removeprefix(API)
    return client.get(path + ("?" + parts.query if parts.query else ""), headers={"Accept": "application/json"})


# -- the representation ---------------------------------------------------------------------


def test_every_field_of_a_notification(server: Server, tenant: Tenant) -> None:
    body = "é" * 3000  # 6000 UTF-8 bytes: must be cut to an excerpt without splitting a character
    message_sid = "SM" + uuid.uuid4().hex
    [sid] = write_notifications(server.env, note(
        tenant,
        request_url="http://app.example.com/sms?x=1",
        request_method="post",
        request_variables={"From": "+15551230000", "Body": "hi & bye"},
        response_headers={"Content-Type": "text/plain", "X-Trace": "abc"},
        response_body=body,
        message_sid=message_sid,
        at=datetime(2024, 3, 5, 7, 8, 9, 123456),
    ))
    assert NO_SID.match(sid)
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Notifications/{sid}.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    n = r.json()
    assert n["sid"] == sid
    assert n["account_sid"] == tenant.sid
    assert n["api_version"] == "2012-04-24"
    assert n["log"] == 0 and n["error_code"] == 11200  # integers, not strings
    assert n["more_info"] == "/restcomm/errors/11200.html"
    assert n["message_text"] == "HTTP retrieval failure"
    assert n["message_date"] == "2024-03-05T07:08:09.123Z"
    assert n["date_created"] == "Tue, 5 Mar 2024 07:08:09 +0000"
    assert RFC2822.match(n["date_updated"])
    assert n["request_url"] == "http://app.example.com/sms?x=1"
    assert n["request_method"] == "POST"
    assert n["request_variables"] == "From=%2B15551230000&Body=hi+%26+bye"
    assert n["response_headers"] == "Content-Type: text/plain\nX-Trace: abc"
    excerpt = n["response_body"]
    assert len(excerpt.encode()) <= 4096 and excerpt.endswith("…") and set(excerpt[:-1]) == {"é"}
    assert n["message_sid"] == message_sid
    assert "call_sid" not in n  # null keys are omitted, as Restcomm does
    assert n["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Notifications/{sid}.json"


def test_xml_representation(server: Server, tenant: Tenant) -> None:
    call_sid = "ID" + uuid.uuid4().hex + "-CA" + uuid.uuid4().hex
    [sid] = write_notifications(server.env, note(tenant, error_code=14104, log=1, call_sid=call_sid,
                                                 message_text="Invalid method, using POST <&>"))
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Notifications/{sid}", headers={"Accept": "application/xml"})
        lst = c.get(f"/Accounts/{tenant.sid}/Notifications", headers={"Accept": "application/xml"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
    root = ET.fromstring(r.text)
    assert root.tag == "RestcommResponse"
    item = root.find("Notification")
    assert item is not None
    assert item.findtext("Sid") == sid
    assert item.findtext("Log") == "1" and item.findtext("ErrorCode") == "14104"
    assert item.findtext("CallSid") == call_sid
    assert item.findtext("MessageText") == "Invalid method, using POST <&>"
    assert item.findtext("MoreInfo") == "/restcomm/errors/14104.html"
    assert item.findtext("Uri") == f"/2012-04-24/Accounts/{tenant.sid}/Notifications/{sid}"
    assert ET.fromstring(lst.text).find("Notifications/Notification/Sid").text == sid  # type: ignore[union-attr]


def test_write_notification_rejects_an_unknown_log_level() -> None:
    import asyncio

    with pytest.raises(ValueError, match="log must be 0"):
        asyncio.run(write_notification(None, account_sid="AC" + "0" * 32, error_code=1, log=2,  # type: ignore[arg-type]
                                       message_text="x"))


# -- lists, filters, paging -----------------------------------------------------------------


@pytest.fixture
def history(server: Server, tenant: Tenant) -> tuple[Tenant, list[str]]:
    """Five notifications over three days, oldest first."""
    sids = write_notifications(
        server.env,
        note(tenant, at=datetime(2024, 1, 10, 9, 0), request_url="http://a.example.com/sms"),
        note(tenant, at=datetime(2024, 1, 10, 23, 59, 59), error_code=12100, message_text="Document parse failure",
             request_url="http://b.example.com/reply"),
        note(tenant, at=datetime(2024, 1, 11, 0, 0), error_code=14104, log=1,
             message_text="Invalid method, using POST", request_url="http://a.example.com/other"),
        note(tenant, at=datetime(2024, 1, 12, 12, 0), error_code=11200, message_text="100% wrong_answer"),
        note(tenant, at=datetime(2024, 1, 13, 0, 0), error_code=13001, message_text="SMPP send error"),
    )
    return tenant, sids


def listed(client: httpx.Client, sid: str, **params: object) -> list[str]:
    r = client.get(f"/Accounts/{sid}/Notifications.json", params=params)
    assert r.status_code == 200, r.text
    return [n["sid"] for n in r.json()["notifications"]]


def test_list_is_newest_first(history: tuple[Tenant, list[str]]) -> None:
    tenant, sids = history
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Notifications.json")
    body = r.json()
    assert body["total"] == 5 and body["page"] == 0 and body["page_size"] == 50
    assert [n["sid"] for n in body["notifications"]] == sids[::-1]
    assert body["uri"] == f"{API}/Accounts/{tenant.sid}/Notifications.json"  # the request path, as sent


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"ErrorCode": "11200"}, [0, 3]),
        ({"Log": "1"}, [2]),
        ({"Log": "0"}, [0, 1, 3, 4]),
        ({"StartTime": "2024-01-11"}, [2, 3, 4]),
        ({"EndTime": "2024-01-10"}, [0, 1]),  # a bare date covers that whole day
        ({"StartTime": "2024-01-11", "EndTime": "2024-01-12"}, [2, 3]),
        ({"EndTime": "2024-01-11T00:00:00Z"}, [0, 1, 2]),  # a timestamp is an inclusive bound
        ({"RequestUrl": "a.example.com"}, [0, 2]),
        ({"MessageText": "parse"}, [1]),
        ({"MessageText": "100%"}, [3]),  # % and _ are literal characters, not wildcards
        ({"MessageText": "%"}, [3]),
        ({"MessageText": "g_a"}, [3]),
        ({"MessageText": "o_u"}, []),
        ({"ErrorCode": "11200", "StartTime": "2024-01-11"}, [3]),
        ({"ErrorCode": "99999"}, []),
    ],
)
def test_filters(history: tuple[Tenant, list[str]], params: dict[str, str], expected: list[int]) -> None:
    tenant, sids = history
    with tenant.client() as c:
        got = listed(c, tenant.sid, **params)
    assert sorted(got) == sorted(sids[i] for i in expected)


def test_sort_by(history: tuple[Tenant, list[str]]) -> None:
    tenant, sids = history
    with tenant.client() as c:
        codes = [c.get(f"/Accounts/{tenant.sid}/Notifications/{s}.json").json()["error_code"]
                 for s in listed(c, tenant.sid, SortBy="ErrorCode:desc")]
        assert codes == sorted(codes, reverse=True)
        assert listed(c, tenant.sid, SortBy="DateCreated:asc") == sids
        assert listed(c, tenant.sid, SortBy="DateCreated") == sids  # the direction defaults to asc
        assert listed(c, tenant.sid, SortBy="NoSuchField") == sids[::-1]  # unknown fields are ignored
        r = c.get(f"/Accounts/{tenant.sid}/Notifications.json", params={"SortBy": "Log:sideways"})
        assert r.status_code == 400 and r.json()["code"] == 20001


@pytest.mark.parametrize(
    "params",
    [{"ErrorCode": "abc"}, {"Log": "2"}, {"StartTime": "yesterday"}, {"EndTime": "2024-02-30"},
     {"Page": "-1"}, {"PageSize": "0"}, {"SubAccounts": "maybe"}],
)
def test_invalid_filters_are_400(tenant: Tenant, params: dict[str, str]) -> None:
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Notifications.json", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] in (20001, 20007)


def test_paging_walks_every_notification_once(server: Server, tenant: Tenant) -> None:
    sids = write_notifications(server.env, *[
        note(tenant, at=datetime(2024, 5, 1, 12, i), error_code=11200 if i % 2 else 12100) for i in range(7)
    ])
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Notifications.json", params={"PageSize": 3})
        first = r.json()
        assert first["total"] == 7 and first["page_size"] == 3 and len(first["notifications"]) == 3
        assert first["previous_page_uri"] is None
        seen: list[str] = []
        page = first
        while True:
            seen += [n["sid"] for n in page["notifications"]]
            if page["next_page_uri"] is None:
                break
            page = follow(c, page["next_page_uri"]).json()
        assert seen == sids[::-1]
        assert page["page"] == 2 and len(page["notifications"]) == 1

        # Filters survive in the page links, so the next page is the next page of the same list.
        r = c.get(f"/Accounts/{tenant.sid}/Notifications.json", params={"PageSize": 2, "ErrorCode": 11200})
        odd = r.json()
        assert odd["total"] == 3
        nxt = follow(c, odd["next_page_uri"]).json()
        assert [n["sid"] for n in odd["notifications"] + nxt["notifications"]] == [sids[5], sids[3], sids[1]]


def test_sub_accounts_filter_includes_descendants(server: Server, tenant: Tenant) -> None:
    # The tenant is itself a child of the administrator, so its children are the deepest level.
    first, second = tenant.sub("first"), tenant.sub("second")
    sibling = make_tenant(server, name="sibling")
    mine, firsts, seconds, _ = write_notifications(
        server.env, note(tenant), note(first), note(second), note(sibling)
    )
    with tenant.client() as c:
        assert listed(c, tenant.sid) == [mine]
        assert sorted(listed(c, tenant.sid, SubAccounts="true")) == sorted([mine, firsts, seconds])
        assert listed(c, tenant.sid, SubAccounts="false") == [mine]
    with first.client() as c:
        assert listed(c, first.sid, SubAccounts="true") == [firsts]


# -- tenancy --------------------------------------------------------------------------------


def test_tenancy(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    sibling = make_tenant(server, name="sibling")
    parent_note, child_note = write_notifications(server.env, note(tenant), note(child))
    with child.client() as c:
        assert c.get(f"/Accounts/{child.sid}/Notifications/{child_note}.json").status_code == 200
        # A child sees neither its parent's list nor its parent's notifications.
        assert c.get(f"/Accounts/{tenant.sid}/Notifications.json").status_code == 403
        assert c.get(f"/Accounts/{tenant.sid}/Notifications/{parent_note}.json").status_code == 403
        # Someone else's notification addressed under one's own account does not exist for them.
        assert c.get(f"/Accounts/{child.sid}/Notifications/{parent_note}.json").status_code == 404
    with tenant.client() as c:
        # The parent reads its child's notifications under the child's account...
        assert listed(c, child.sid) == [child_note]
        assert c.get(f"/Accounts/{child.sid}/Notifications/{child_note}.json").status_code == 200
        # ...but not under its own: the notification belongs to the child.
        assert c.get(f"/Accounts/{tenant.sid}/Notifications/{child_note}.json").status_code == 403
    with sibling.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}/Notifications.json").status_code == 403
        assert c.get(f"/Accounts/{tenant.sid}/Notifications/{parent_note}.json").status_code == 403
        assert c.delete(f"/Accounts/{tenant.sid}/Notifications/{parent_note}.json").status_code == 403
        assert c.get(f"/Accounts/{sibling.sid}/Notifications/{parent_note}.json").status_code == 404
    with tenant.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}/Notifications/{parent_note}.json").status_code == 200


def test_unknown_notification_is_404(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Notifications/NO{uuid.uuid4().hex}.json")
        assert r.status_code == 404 and r.json()["code"] == 20404
        assert c.get(f"/Accounts/{tenant.sid}/Notifications/not-a-sid.json").status_code == 404


# -- delete ---------------------------------------------------------------------------------


def test_delete(server: Server, tenant: Tenant) -> None:
    keep, gone = write_notifications(server.env, note(tenant), note(tenant, error_code=12100))
    with tenant.client() as c:
        r = c.delete(f"/Accounts/{tenant.sid}/Notifications/{gone}.json")
        assert r.status_code == 200 and r.content == b""
        assert c.get(f"/Accounts/{tenant.sid}/Notifications/{gone}.json").status_code == 404
        assert c.delete(f"/Accounts/{tenant.sid}/Notifications/{gone}.json").status_code == 404
        assert c.delete(f"/Accounts/{tenant.sid}/Notifications/NO{uuid.uuid4().hex}").status_code == 404
        assert listed(c, tenant.sid) == [keep]
        audit = c.get(f"/Accounts/{tenant.sid}/AuditLog.json", params={"ResourceType": "Notification"}).json()
    [event] = audit["audit_events"]
    assert (event["action"], event["resource_sid"], event["actor_sid"]) == ("delete", gone, tenant.sid)


def test_parent_deletes_a_childs_notification(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    [sid] = write_notifications(server.env, note(child))
    with tenant.client() as c:
        assert c.delete(f"/Accounts/{child.sid}/Notifications/{sid}").status_code == 200
    with child.client() as c:
        assert c.get(f"/Accounts/{child.sid}/Notifications/{sid}.json").status_code == 404


def test_more_info_links_lead_to_a_description(server: Server, tenant: Tenant) -> None:
    sids = write_notifications(server.env, note(tenant, error_code=11200), note(tenant, error_code=14101))
    with tenant.client() as c:
        links = [c.get(f"/Accounts/{tenant.sid}/Notifications/{s}.json").json()["more_info"] for s in sids]
    pages = [httpx.get(server.base_url + link) for link in links]
    assert [p.status_code for p in pages] == [200, 200]
    assert "HTTP retrieval failure" in pages[0].text
    assert "Invalid &#x27;to&#x27; phone number" in pages[1].text and "&lt;Sms&gt;" in pages[1].text
