"""IncomingPhoneNumbers over real HTTP (SQLite and PostgreSQL), and inbound number matching
(restcomm.routing) against the database of a server whose numbers were provisioned through the API.

The inventory numbers of area code 312 and +1 888 (tests/conftest.py) are reserved for these tests;
each test releases what it provisions.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from restcomm.config import load_settings
from restcomm.phone import normalize
from restcomm.routing import find_incoming_number
from restcomm.store import db
from restcomm.store.schema import incoming_phone_numbers
from tests.support.postgres import pg_create_database, pg_drop_database
from tests.support.server import (
    TEST_CONFIG,
    Server,
    Tenant,
    base_env,
    make_tenant,
    start_server,
    stop_server,
)

PN = re.compile(r"^PN[0-9a-f]{32}$")
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")

FIELDS = [
    "sid", "account_sid", "friendly_name", "phone_number",
    "voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method", "status_callback",
    "status_callback_method", "voice_caller_id_lookup", "voice_application_sid",
    "date_created", "date_updated",
    "sms_url", "sms_method", "sms_fallback_url", "sms_fallback_method", "sms_application_sid",
    "ussd_url", "ussd_method", "ussd_fallback_url", "ussd_fallback_method", "ussd_application_sid",
    "refer_url", "refer_method", "refer_application_sid",
    "capabilities", "api_version", "uri",
]  # fmt: skip
METHODS = ["voice_method", "voice_fallback_method", "status_callback_method", "sms_method", "sms_fallback_method",
           "ussd_method", "ussd_fallback_method", "refer_method"]


def sip_number() -> str:
    """A pure-SIP number no other test (nor the fuzzer) will use."""
    return "+1999" + str(uuid.uuid4().int)[:9]


def numbers_url(account: str, suffix: str = "") -> str:
    return f"/Accounts/{account}/IncomingPhoneNumbers{suffix}.json"


def create(c: httpx.Client, account: str, suffix: str = "", **data: str) -> httpx.Response:
    return c.post(numbers_url(account, suffix), data=data)


def audit_events(c: httpx.Client, account: str, sid: str) -> list[dict[str, Any]]:
    r = c.get(f"/Accounts/{account}/AuditLog.json", params={"PageSize": 200})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["audit_events"] if e["resource_sid"] == sid]


def all_numbers(c: httpx.Client, account: str) -> list[dict[str, Any]]:
    r = c.get(numbers_url(account), params={"PageSize": 1000})
    assert r.status_code == 200, r.text
    return r.json()["incomingPhoneNumbers"]


# -- create and read ------------------------------------------------------------------------


def test_sip_number_json_shape_with_explicit_nulls_in_restcomm_order(tenant: Tenant) -> None:
    number = sip_number()
    with tenant.client() as c:
        r = create(c, tenant.sid, isSIP="true", PhoneNumber=number)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert list(body) == FIELDS
        assert PN.match(body["sid"])
        assert body["account_sid"] == tenant.sid
        assert body["phone_number"] == number and body["friendly_name"] == number
        assert all(body[m] == "POST" for m in METHODS)
        for key in ("voice_url", "voice_fallback_url", "status_callback", "sms_url", "sms_fallback_url", "ussd_url",
                    "ussd_fallback_url", "refer_url", "voice_application_sid", "sms_application_sid",
                    "ussd_application_sid", "refer_application_sid"):
            assert body[key] is None, key
        assert body["voice_caller_id_lookup"] is False
        assert body["capabilities"] == {"voice_capable": True, "sms_capable": True, "mms_capable": False,
                                        "fax_capable": False}
        assert body["api_version"] == "2012-04-24"
        assert body["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/IncomingPhoneNumbers/{body['sid']}.json"
        assert RFC2822.match(body["date_created"]) and RFC2822.match(body["date_updated"])
        got = c.get(numbers_url(tenant.sid, "/" + body["sid"]))
        assert got.status_code == 200 and got.json() == body
        assert [e["action"] for e in audit_events(c, tenant.sid, body["sid"])] == ["create"]


def test_xml_shape(tenant: Tenant) -> None:
    number = sip_number()
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/IncomingPhoneNumbers", data={
            "isSIP": "true", "PhoneNumber": number, "VoiceUrl": "http://example.com/voice", "SmsMethod": "get"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/xml"
        root = ET.fromstring(r.text)
        assert root.tag == "RestcommResponse"
        item = root.find("IncomingPhoneNumber")
        assert item is not None
        tags = [e.tag for e in item]
        # Null URLs and application SIDs are left out; null-able methods and the rest are present.
        assert tags == [
            "Sid", "AccountSid", "FriendlyName", "PhoneNumber", "VoiceUrl", "VoiceMethod", "VoiceFallbackMethod",
            "StatusCallbackMethod", "VoiceCallerIdLookup", "DateCreated", "DateUpdated", "SmsMethod",
            "SmsFallbackMethod", "UssdMethod", "UssdFallbackMethod", "ReferMethod", "Capabilities", "ApiVersion",
            "Uri",
        ]  # fmt: skip
        assert item.findtext("VoiceUrl") == "http://example.com/voice"
        assert item.findtext("SmsMethod") == "GET"
        assert item.findtext("VoiceCallerIdLookup") == "false"
        caps = item.find("Capabilities")
        assert caps is not None and [(e.tag, e.text) for e in caps] == [
            ("Voice", "true"), ("Sms", "true"), ("Mms", "false"), ("Fax", "false")]
        sid = item.findtext("Sid")
        assert item.findtext("Uri") == f"/2012-04-24/Accounts/{tenant.sid}/IncomingPhoneNumbers/{sid}"
        listing = ET.fromstring(c.get(f"/Accounts/{tenant.sid}/IncomingPhoneNumbers").text)
        numbers = listing.find("IncomingPhoneNumbers")
        assert numbers is not None and numbers.get("total") == "1" and numbers.get("page") == "0"
        assert [n.findtext("Sid") for n in numbers] == [sid]


def test_inventory_number_normalized_to_e164_with_inventory_details(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = create(c, tenant.sid, PhoneNumber="(312) 555-0140")
        assert r.status_code == 200, r.text
        body = r.json()
        try:
            assert body["phone_number"] == "+13125550140"
            assert body["friendly_name"] == "(312) 555-0140"  # the inventory's national format
            assert body["capabilities"] == {"voice_capable": True, "sms_capable": True, "mms_capable": True,
                                            "fax_capable": False}
            # Held by someone: unavailable in any format, to anyone.
            for again in ("+13125550140", "13125550140", "3125550140"):
                r2 = create(c, tenant.sid, PhoneNumber=again)
                assert r2.status_code == 400 and r2.json()["code"] == 21452, r2.text
        finally:
            assert c.delete(numbers_url(tenant.sid, "/" + body["sid"])).status_code == 204
        # Released: it can be taken again, with an explicit friendly name and capabilities.
        r = create(c, tenant.sid, PhoneNumber="+13125550140", FriendlyName="Chicago", MmsCapable="false")
        assert r.status_code == 200, r.text
        assert r.json()["friendly_name"] == "Chicago" and r.json()["capabilities"]["mms_capable"] is False
        assert c.delete(numbers_url(tenant.sid, "/" + r.json()["sid"])).status_code == 204


def test_another_tenant_cannot_take_a_held_inventory_number(server: Server) -> None:
    first, second = make_tenant(server), make_tenant(server)
    with first.client() as a, second.client() as b:
        r = create(a, first.sid, PhoneNumber="+13125557328")
        assert r.status_code == 200, r.text
        try:
            r2 = create(b, second.sid, PhoneNumber="+13125557328")
            assert r2.status_code == 400 and r2.json()["code"] == 21452
            assert all_numbers(b, second.sid) == []
        finally:
            assert a.delete(numbers_url(first.sid, "/" + r.json()["sid"])).status_code == 204


@pytest.mark.parametrize("number", ["+15005550006", "+1234", "not-a-number", "+447911123456"])
def test_number_outside_the_inventory_is_unavailable_and_nothing_is_created(tenant: Tenant, number: str) -> None:
    with tenant.client() as c:
        r = create(c, tenant.sid, PhoneNumber=number)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 21452 and "isSIP" in r.json()["message"]
        assert all_numbers(c, tenant.sid) == []


def test_area_code_takes_the_first_free_number_of_the_area(tenant: Tenant) -> None:
    with tenant.client() as c:
        taken = []
        try:
            for expected in ("+13125550140", "+13125550142", "+13125557328"):
                r = create(c, tenant.sid, AreaCode="312")
                assert r.status_code == 200, r.text
                taken.append(r.json()["sid"])
                assert r.json()["phone_number"] == expected
            r = create(c, tenant.sid, AreaCode="312")
            assert r.status_code == 400 and r.json()["code"] == 21452
        finally:
            for sid in taken:
                assert c.delete(numbers_url(tenant.sid, "/" + sid)).status_code == 204
        # The area code must fit the endpoint's type: 312 has no toll-free numbers.
        r = create(c, tenant.sid, "/TollFree", AreaCode="312")
        assert r.status_code == 400 and r.json()["code"] == 21452
        for bad in ("31", "3120", "abc"):
            r = create(c, tenant.sid, AreaCode=bad)
            assert r.status_code == 400 and r.json()["code"] == 21401, (bad, r.text)
        r = create(c, tenant.sid, AreaCode="312", isSIP="true")  # a SIP number needs PhoneNumber
        assert r.status_code == 400
        assert all_numbers(c, tenant.sid) == []


def test_missing_phone_number_is_400(tenant: Tenant) -> None:
    with tenant.client() as c:
        for data in ({}, {"PhoneNumber": ""}, {"PhoneNumber": "  ", "isSIP": "true"}, {"FriendlyName": "x"}):
            r = c.post(numbers_url(tenant.sid), data=data)
            assert r.status_code == 400, (data, r.text)
        assert all_numbers(c, tenant.sid) == []


# -- types ----------------------------------------------------------------------------------


def test_typed_endpoints_set_and_filter_the_type(tenant: Tenant) -> None:
    with tenant.client() as c:
        local = create(c, tenant.sid, "/Local", isSIP="true", PhoneNumber=sip_number()).json()
        mobile = create(c, tenant.sid, "/Mobile", isSIP="true", PhoneNumber=sip_number()).json()
        tollfree = create(c, tenant.sid, "/TollFree", PhoneNumber="+18885550140")
        assert tollfree.status_code == 200, tollfree.text
        tollfree_sid = tollfree.json()["sid"]
        try:
            # A local inventory number cannot be bought as toll-free, nor the reverse.
            r = create(c, tenant.sid, "/TollFree", PhoneNumber="+13125550140")
            assert r.status_code == 400 and r.json()["code"] == 21452
            r = create(c, tenant.sid, "/Local", PhoneNumber="+18005550123")
            assert r.status_code == 400 and r.json()["code"] == 21452

            def listed(suffix: str) -> list[str]:
                r = c.get(numbers_url(tenant.sid, suffix))
                assert r.status_code == 200, r.text
                return sorted(n["sid"] for n in r.json()["incomingPhoneNumbers"])

            assert listed("/Local") == [local["sid"]]
            assert listed("/Mobile") == [mobile["sid"]]
            assert listed("/TollFree") == [tollfree_sid]
            assert listed("") == sorted([local["sid"], mobile["sid"], tollfree_sid])
            # The typed item is the same resource as the untyped one.
            assert c.get(numbers_url(tenant.sid, "/" + mobile["sid"])).json() == mobile
        finally:
            assert c.delete(numbers_url(tenant.sid, "/" + tollfree_sid)).status_code == 204


def test_available_countries(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.get(numbers_url(tenant.sid, "/AvailableCountries"))
        assert r.status_code == 200 and r.json() == ["GB", "US"]
        r = c.get(f"/Accounts/{tenant.sid}/IncomingPhoneNumbers/AvailableCountries")
        assert r.headers["content-type"] == "application/xml"
        root = ET.fromstring(r.text)
        assert [e.text for e in root.find("AvailableCountries")] == ["GB", "US"]  # type: ignore[union-attr]


# -- SIP numbers and patterns ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "[0-9]*", ".*", "\\d{3}"])
def test_sip_numbers_and_patterns_stored_as_given(tenant: Tenant, suffix: str) -> None:
    """Patterns are stored as given; a plain number in its E.164 form (one number, one owner)."""
    number = "5" + str(uuid.uuid4().int)[:8] + suffix
    stored = number if suffix else normalize(number)
    with tenant.client() as c:
        r = create(c, tenant.sid, isSIP="true", PhoneNumber=number, FriendlyName="")
        assert r.status_code == 200, r.text
        assert r.json()["phone_number"] == stored and r.json()["friendly_name"] == stored
        again = create(c, tenant.sid, isSIP="true", PhoneNumber=number)
        assert again.status_code == 400 and again.json()["code"] == 21452


@pytest.mark.parametrize("pattern", ["555[0-9", "+1(555", "(1+)+", "1*1*1*1*1*2", "(?=1)1", "12\t34"])
def test_invalid_or_dangerous_patterns_are_refused(tenant: Tenant, pattern: str) -> None:
    with tenant.client() as c:
        r = create(c, tenant.sid, isSIP="true", PhoneNumber=pattern)
        assert r.status_code == 400 and r.json()["code"] == 21401, r.text
        assert all_numbers(c, tenant.sid) == []


def test_sip_numbers_are_unique_across_accounts_of_the_organization(server: Server) -> None:
    number = sip_number()
    first, second = make_tenant(server), make_tenant(server)
    with first.client() as a, second.client() as b:
        assert create(a, first.sid, isSIP="true", PhoneNumber=number).status_code == 200
        r = create(b, second.sid, isSIP="true", PhoneNumber=number)
        assert r.status_code == 400 and r.json()["code"] == 21452
        assert all_numbers(b, second.sid) == []


def test_fifty_parallel_creations_of_one_number_yield_exactly_one(server: Server) -> None:
    tenants = [make_tenant(server) for _ in range(5)]
    for data in ({"isSIP": "true", "PhoneNumber": sip_number()}, {"PhoneNumber": "+13125550142"}):

        def attempt(i: int, data: dict[str, str] = data) -> httpx.Response:
            t = tenants[i % len(tenants)]
            with t.client() as c:
                return c.post(numbers_url(t.sid), data=data)

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(attempt, range(50)))
        ok = [r for r in results if r.status_code == 200]
        assert len(ok) == 1, [(r.status_code, r.text[:100]) for r in results if r.status_code != 400]
        assert all(r.status_code == 400 and r.json()["code"] == 21452 for r in results if r.status_code != 200)
        winner = ok[0].json()
        held = [n for t in tenants for n in all_numbers(t.client(), t.sid)
                if n["phone_number"] == winner["phone_number"]]
        assert [n["sid"] for n in held] == [winner["sid"]]
        owner = next(t for t in tenants if t.sid == winner["account_sid"])
        with owner.client() as c:
            assert c.delete(numbers_url(owner.sid, "/" + winner["sid"])).status_code == 204


# -- update ---------------------------------------------------------------------------------


def test_update_with_post_and_put_and_clearing(tenant: Tenant) -> None:
    with tenant.client() as c:
        sid = create(c, tenant.sid, isSIP="true", PhoneNumber=sip_number()).json()["sid"]
        url = numbers_url(tenant.sid, "/" + sid)
        r = c.post(url, data={
            "FriendlyName": "Front desk", "VoiceUrl": "https://example.com/voice", "VoiceMethod": "GET",
            "SmsUrl": "/relative/sms.xml", "SmsFallbackUrl": "http://example.com/fb", "StatusCallback": "http://e.com/s",
            "UssdUrl": "http://example.com/ussd", "ReferUrl": "http://example.com/refer", "ReferMethod": "get",
            "VoiceCallerIdLookup": "TRUE", "FaxCapable": "true", "SmsCapable": "false", "PhoneNumber": "+1000",
        })  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["friendly_name"] == "Front desk"
        assert body["voice_url"] == "https://example.com/voice" and body["voice_method"] == "GET"
        assert body["sms_url"] == "/relative/sms.xml" and body["sms_method"] == "POST"
        assert body["refer_method"] == "GET" and body["voice_caller_id_lookup"] is True
        assert body["capabilities"]["fax_capable"] is True and body["capabilities"]["sms_capable"] is False
        assert body["phone_number"] != "+1000"  # the number itself cannot change
        r = c.put(url, data={"VoiceUrl": "", "SmsFallbackUrl": ""})
        assert r.status_code == 200, r.text
        assert r.json()["voice_url"] is None and r.json()["sms_fallback_url"] is None
        assert r.json()["voice_method"] == "GET" and r.json()["friendly_name"] == "Front desk"
        assert c.get(url).json() == r.json()
        assert [e["action"] for e in audit_events(c, tenant.sid, sid)] == ["update", "update", "create"]


@pytest.mark.parametrize(
    "data",
    [
        {"VoiceUrl": "ftp://example.com/x", "FriendlyName": "changed"},
        {"VoiceMethod": "DELETE", "FriendlyName": "changed"},
        {"SmsCapable": "maybe", "FriendlyName": "changed"},
        {"VoiceApplicationSid": "AP" + "0" * 32, "FriendlyName": "changed"},
        {"FriendlyName": "x" * 256},
    ],
)
def test_invalid_update_changes_nothing(tenant: Tenant, data: dict[str, str]) -> None:
    with tenant.client() as c:
        before = create(c, tenant.sid, isSIP="true", PhoneNumber=sip_number()).json()
        url = numbers_url(tenant.sid, "/" + before["sid"])
        r = c.post(url, data=data)
        assert r.status_code == 400, r.text
        assert c.get(url).json() == before
        assert [e["action"] for e in audit_events(c, tenant.sid, before["sid"])] == ["create"]


def test_applications_bind_by_sid_with_names_and_clear(tenant: Tenant) -> None:
    with tenant.client() as c:
        voice = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "IVR"})
        sms = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "Bot", "Kind": "sms"})
        assert voice.status_code == 200 and sms.status_code == 200, (voice.text, sms.text)
        r = create(c, tenant.sid, isSIP="true", PhoneNumber=sip_number(), VoiceApplicationSid=voice.json()["sid"],
                   SmsApplicationSid=sms.json()["sid"], ReferApplicationSid="")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["voice_application_sid"] == voice.json()["sid"] and body["voice_application_name"] == "IVR"
        assert body["sms_application_sid"] == sms.json()["sid"] and body["sms_application_name"] == "Bot"
        assert list(body).index("voice_application_name") == list(body).index("voice_application_sid") + 1
        assert list(body).index("sms_application_name") == list(body).index("sms_application_sid") + 1
        assert "ussd_application_name" not in body and "refer_application_name" not in body
        assert body["refer_application_sid"] is None
        url = numbers_url(tenant.sid, "/" + body["sid"])
        xml = ET.fromstring(c.get(url[: -len(".json")]).text).find("IncomingPhoneNumber")
        assert xml is not None and xml.findtext("VoiceApplicationName") == "IVR"
        listed = c.get(numbers_url(tenant.sid)).json()["incomingPhoneNumbers"]
        assert listed[0]["sms_application_name"] == "Bot"
        r = c.post(url, data={"VoiceApplicationSid": ""})
        assert r.status_code == 200
        assert r.json()["voice_application_sid"] is None and "voice_application_name" not in r.json()
        assert r.json()["sms_application_name"] == "Bot"
        # Another account's application is refused, even the parent's.
        foreign = make_tenant(tenant.server)
        with foreign.client() as fc:
            app = fc.post(f"/Accounts/{foreign.sid}/Applications.json", data={"FriendlyName": "theirs"}).json()["sid"]
        for data in ({"UssdApplicationSid": app}, {"VoiceApplicationSid": "not-a-sid"}):
            r = c.post(url, data=data)
            assert r.status_code == 400, r.text
            assert "ussd_application_sid" in c.get(url).json() and c.get(url).json()["ussd_application_sid"] is None
        r = create(c, tenant.sid, isSIP="true", PhoneNumber=sip_number(), VoiceApplicationSid=app)
        assert r.status_code == 400
        assert len(all_numbers(c, tenant.sid)) == 1


# -- list -----------------------------------------------------------------------------------


def test_list_paging_order_and_filters(tenant: Tenant) -> None:
    base = "+1998" + str(uuid.uuid4().int)[:6]
    with tenant.client() as c:
        made = []
        for i, name in enumerate(["Zulu 100%", "alpha", "Mike_1", "bravo 100%", "Echo"]):
            r = create(c, tenant.sid, isSIP="true", PhoneNumber=f"{base}{i}", FriendlyName=name)
            assert r.status_code == 200
            made.append(r.json())
        r = c.get(numbers_url(tenant.sid), params={"PageSize": 2})
        page = r.json()
        assert list(page)[:11] == ["page", "num_pages", "page_size", "total", "start", "end", "uri",
                                   "first_page_uri", "previous_page_uri", "next_page_uri", "last_page_uri"]
        assert list(page)[-1] == "incomingPhoneNumbers"
        assert page["total"] == 5 and page["page_size"] == 2
        assert [n["phone_number"] for n in page["incomingPhoneNumbers"]] == [f"{base}0", f"{base}1"]
        seen = []
        url: str | None = numbers_url(tenant.sid) + "?PageSize=2"
        while url:
            r = c.get(url.removeprefix("/restcomm/2012-04-24"), headers={"Accept": "application/json"})
            assert r.status_code == 200, r.text
            seen += [n["phone_number"] for n in r.json()["incomingPhoneNumbers"]]
            url = r.json()["next_page_uri"]
        assert seen == [f"{base}{i}" for i in range(5)]

        def names(**params: str) -> list[str]:
            r = c.get(numbers_url(tenant.sid), params=params)
            assert r.status_code == 200, r.text
            return [n["friendly_name"] for n in r.json()["incomingPhoneNumbers"]]

        assert names(FriendlyName="100%") == ["Zulu 100%", "bravo 100%"]
        assert names(FriendlyName="_") == ["Mike_1"]  # LIKE wildcards are literal
        assert names(PhoneNumber=f"{base[-4:]}3") == ["bravo 100%"]
        assert names(PhoneNumber="+1997") == []
        assert names(SortBy="FriendlyName") == sorted(["Zulu 100%", "alpha", "Mike_1", "bravo 100%", "Echo"])
        assert names(SortBy="FriendlyName:desc")[0] == "bravo 100%"
        assert names(Reverse="true")[0] == "Echo"
        assert c.get(numbers_url(tenant.sid), params={"SortBy": "FriendlyName:sideways"}).status_code == 400
        assert c.get(numbers_url(tenant.sid), params={"PageSize": 0}).status_code == 400


def test_delete_is_204_then_404(tenant: Tenant) -> None:
    with tenant.client() as c:
        sid = create(c, tenant.sid, isSIP="true", PhoneNumber=sip_number()).json()["sid"]
        url = numbers_url(tenant.sid, "/" + sid)
        r = c.delete(url)
        assert r.status_code == 204 and r.content == b""
        assert c.get(url).status_code == 404
        assert c.delete(url).status_code == 404
        assert c.post(url, data={"FriendlyName": "x"}).status_code == 404
        assert [e["action"] for e in audit_events(c, tenant.sid, sid)] == ["delete", "create"]


# -- tenancy --------------------------------------------------------------------------------


def test_tenancy_owner_and_parent_allowed_sibling_and_child_refused(server: Server) -> None:
    owner = make_tenant(server, name="owner")
    child = owner.sub("child")
    sibling = make_tenant(server, name="sibling")
    with owner.client() as c:
        sid = create(c, owner.sid, isSIP="true", PhoneNumber=sip_number()).json()["sid"]
    item = numbers_url(owner.sid, "/" + sid)

    for intruder in (sibling, child):
        with intruder.client() as c:
            assert c.get(numbers_url(owner.sid)).status_code == 403
            assert c.get(item).status_code == 403
            assert c.post(item, data={"FriendlyName": "pwned"}).status_code == 403
            assert c.delete(item).status_code == 403
            assert create(c, owner.sid, isSIP="true", PhoneNumber=sip_number()).status_code == 403
            # Addressed under the intruder's own account, the number is not found there.
            assert c.get(numbers_url(intruder.sid, "/" + sid)).status_code in (403, 404)
            assert c.delete(numbers_url(intruder.sid, "/" + sid)).status_code in (403, 404)

    with owner.client() as c:
        assert c.get(item).json()["friendly_name"] != "pwned"
        assert [n["sid"] for n in all_numbers(c, owner.sid)] == [sid]

    # The parent (the administrator) manages the owner's numbers; the child's too for the owner.
    with server.admin() as admin:
        assert admin.post(item, data={"FriendlyName": "by parent"}).json()["friendly_name"] == "by parent"
        r = create(admin, owner.sid, isSIP="true", PhoneNumber=sip_number())
        assert r.status_code == 200 and r.json()["account_sid"] == owner.sid
        events = audit_events(admin, owner.sid, r.json()["sid"])
        assert events[0]["actor_sid"] == server.admin_sid and events[0]["account_sid"] == owner.sid
        assert admin.delete(numbers_url(owner.sid, "/" + r.json()["sid"])).status_code == 204
    with owner.client() as c:
        r = create(c, child.sid, isSIP="true", PhoneNumber=sip_number())
        assert r.status_code == 200 and r.json()["account_sid"] == child.sid
        assert c.get(numbers_url(child.sid, "/" + r.json()["sid"])).status_code == 200
        assert c.delete(item).status_code == 204


# -- inbound routing against the server's database ------------------------------------------


@pytest.fixture(scope="module")
def routing_server(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own (same backend), so that no other test's pattern numbers interfere."""
    data_dir = tmp_path_factory.mktemp(f"routing-{server.backend}")
    config = data_dir / "restcomm.toml"
    config.write_text(TEST_CONFIG)
    db_name = database_url = None
    if server.backend == "postgres":
        db_name, database_url = pg_create_database(migrated=True)
    env = base_env(data_dir, database_url, config)
    try:
        proc, base, log_path = start_server(env, data_dir)
        srv = Server(server.backend, base, env, data_dir, proc, log_path=log_path)
        srv.extra["database_url"] = database_url
        from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD

        r = httpx.get(f"{srv.api}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=10)
        srv.admin_sid, srv.admin_token = r.json()["sid"], r.json()["auth_token"]
        srv.extra["organization_sid"] = r.json()["organization"]
        yield srv
        stop_server(proc)
    finally:
        if db_name:
            pg_drop_database(db_name)


class Lookup:
    """find_incoming_number on the server's own database, counting the queries it runs."""

    def __init__(self, srv: Server):
        env = {"RESTCOMM_DATA_DIR": str(srv.data_dir)}
        if srv.extra.get("database_url"):
            env["RESTCOMM_DATABASE_URL"] = srv.extra["database_url"]
        self.settings = load_settings(env=env)
        self.org = srv.extra["organization_sid"]
        self.statements = 0

    def __call__(self, number: str, org: str | None = None) -> tuple[str | None, int]:
        async def run() -> tuple[str | None, int]:
            engine = db.create_engine(self.settings)

            def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
                if statement.lstrip().upper().startswith("SELECT"):
                    self.statements += 1

            try:
                async with engine.connect() as conn:
                    event.listen(engine.sync_engine, "before_cursor_execute", count)
                    self.statements = 0
                    row = await find_incoming_number(conn, org or self.org, number)
                    return (row["phone_number"] if row else None), self.statements
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def is_pattern(self, sid: str) -> bool:
        async def run() -> bool:
            engine = db.create_engine(self.settings)
            try:
                async with engine.connect() as conn:
                    row = (await conn.execute(select(incoming_phone_numbers.c.is_pattern).where(
                        incoming_phone_numbers.c.sid == sid))).scalar_one()
                    return bool(row)
            finally:
                await engine.dispose()

        return asyncio.run(run())


def test_inbound_matching_exact_then_patterns_longest_first_then_catch_all(routing_server: Server) -> None:
    a, b = make_tenant(routing_server), make_tenant(routing_server)
    lookup = Lookup(routing_server)
    with a.client() as ca, b.client() as cb:
        sids = {}
        for client, tenant, number in [
            (ca, a, "+15550001111"),
            (ca, a, "+1555.*"),
            (cb, b, "1555000.*"),
            (cb, b, "555[0-9]*"),
            (ca, a, "+13125550142"),
        ]:
            data = {"PhoneNumber": number} if number == "+13125550142" else {"PhoneNumber": number, "isSIP": "true"}
            r = create(client, tenant.sid, **data)
            assert r.status_code == 200, r.text
            sids[number] = r.json()["sid"]
        assert lookup.is_pattern(sids["+1555.*"]) and lookup.is_pattern(sids["555[0-9]*"])
        assert not lookup.is_pattern(sids["+15550001111"]) and not lookup.is_pattern(sids["+13125550142"])

        # Exact matches in any of the candidate forms: one indexed query.
        for received in ("+15550001111", "15550001111"):
            assert lookup(received) == ("+15550001111", 1)
        for received in ("+13125550142", "13125550142", "3125550142"):
            assert lookup(received) == ("+13125550142", 1)
        # Patterns: full match, longest first, across accounts of the organization: two queries.
        assert lookup("+15550002222") == ("1555000.*", 2)
        assert lookup("+15559999999") == ("+1555.*", 2)
        assert lookup("5551234") == ("555[0-9]*", 2)
        assert lookup("+5551234") == ("555[0-9]*", 2)
        assert lookup("4445551234")[0] is None  # '555' inside is not a full match
        assert lookup("+1555abc")[0] is None  # not number-like: no patterns
        assert lookup("+15550002222", org="OR" + "0" * 32)[0] is None  # another organization

        # The catch-all is tried last, and only for number-like destinations.
        star = create(ca, a.sid, isSIP="true", PhoneNumber="*")
        assert star.status_code == 200, star.text
        assert lookup.is_pattern(star.json()["sid"])
        assert lookup("+4477009")[0] == "*"
        assert lookup("*123#")[0] == "*"
        assert lookup("+15550002222")[0] == "1555000.*"
        assert lookup("+15550001111") == ("+15550001111", 1)
        assert lookup("alice")[0] is None
        assert create(cb, b.sid, isSIP="true", PhoneNumber="*").json()["code"] == 21452  # one per organization

        # Deleting through the API takes effect at once.
        assert ca.delete(numbers_url(a.sid, "/" + star.json()["sid"])).status_code == 204
        assert lookup("+4477009")[0] is None
        assert cb.delete(numbers_url(b.sid, "/" + sids["1555000.*"])).status_code == 204
        assert lookup("+15550002222")[0] == "+1555.*"
