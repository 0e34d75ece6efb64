"""AvailablePhoneNumbers over real HTTP: the configured inventory (tests/conftest.py) minus the
numbers provisioned, filtered. Area code 312 and +1 888 are reserved for the numbers tests, so
their presence can be asserted exactly; other numbers may be held by other tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from restcomm.phone import matches_contains
from tests.support.server import Server, Tenant, make_tenant

KEYS = ["friendlyName", "phoneNumber", "lata", "rateCenter", "latitude", "longitude", "region", "postalCode",
        "isoCountry", "cost", "voiceCapable", "smsCapable", "mmsCapable", "faxCapable", "ussdCapable"]


def search(c: httpx.Client, account: str, country: str = "US", kind: str = "Local", **params: Any) -> list[dict]:
    r = c.get(f"/Accounts/{account}/AvailablePhoneNumbers/{country}/{kind}.json", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert isinstance(body, list)
    return body


def numbers(items: list[dict]) -> list[str]:
    return [n["phoneNumber"] for n in items]


def test_local_search_is_a_bare_camel_case_array_without_nulls(tenant: Tenant) -> None:
    with tenant.client() as c:
        found = search(c, tenant.sid, AreaCode="312")
    assert numbers(found) == ["+13125550140", "+13125550142", "+13125557328"]
    full, voice_only, seat = found
    assert list(full) == KEYS
    assert full == {
        "friendlyName": "(312) 555-0140", "phoneNumber": "+13125550140", "lata": 358, "rateCenter": "CHICAGO",
        "latitude": 41.88, "longitude": -87.62, "region": "IL", "postalCode": "60601", "isoCountry": "US",
        "cost": "1.00", "voiceCapable": True, "smsCapable": True, "mmsCapable": True, "faxCapable": False,
        "ussdCapable": False,
    }  # fmt: skip
    assert seat["friendlyName"] == "(312) 555-SEAT"
    assert "lata" not in seat and "postalCode" not in seat  # nulls are omitted
    assert voice_only["voiceCapable"] is True and voice_only["smsCapable"] is False
    assert all(None not in n.values() for n in found)


def test_every_result_is_local_us_and_free(tenant: Tenant) -> None:
    with tenant.client() as c:
        found = search(c, tenant.sid)
    assert found and all(n["isoCountry"] == "US" for n in found)
    assert "+18005550123" not in numbers(found) and "+18885550140" not in numbers(found)
    assert numbers(found) == sorted(numbers(found))


@pytest.mark.parametrize(
    ("params", "expected_312"),
    [
        ({"Contains": "SEAT"}, ["+13125557328"]),
        ({"Contains": "seat"}, ["+13125557328"]),
        ({"Contains": "555*328"}, ["+13125557328"]),
        ({"Contains": "0140"}, ["+13125550140"]),
        ({"Contains": "+1312"}, ["+13125550140", "+13125550142", "+13125557328"]),
        ({"Contains": "+312"}, []),
        ({"InRegion": "il"}, ["+13125550140", "+13125550142", "+13125557328"]),
        ({"InPostalCode": "60601"}, ["+13125550140"]),
        ({"InRateCenter": "Chicago"}, ["+13125550140"]),
        ({"InLata": "358"}, ["+13125550140"]),
        ({"SmsEnabled": "false"}, ["+13125550142"]),
        ({"SmsEnabled": "true", "MmsEnabled": "true"}, ["+13125550140"]),
        ({"VoiceEnabled": "false"}, []),
        ({"FaxEnabled": "true"}, []),
        ({"AreaCode": "312", "PageSize": "1"}, ["+13125550140"]),
    ],
)
def test_filters(tenant: Tenant, params: dict[str, str], expected_312: list[str]) -> None:
    with tenant.client() as c:
        found = search(c, tenant.sid, **params)
    assert [n for n in numbers(found) if n.startswith("+1312")] == expected_312
    if "Contains" in params:
        assert all(matches_contains(n, params["Contains"]) for n in numbers(found))
    if "InRegion" in params:
        assert {n["region"] for n in found} == {"IL"}
    if "PageSize" in params:
        assert len(found) <= int(params["PageSize"])


def test_toll_free_and_mobile_and_unknown_countries(tenant: Tenant) -> None:
    with tenant.client() as c:
        tollfree = numbers(search(c, tenant.sid, kind="TollFree"))
        assert "+18885550140" in tollfree and all(n.startswith(("+1800", "+1888")) for n in tollfree)
        assert numbers(search(c, tenant.sid, "GB", "Mobile")) in ([], ["+447700900123"])
        assert search(c, tenant.sid, "gb", "Local") == []
        for country in ("FR", "ZZ", "USA", "1"):
            assert search(c, tenant.sid, country) == []


@pytest.mark.parametrize(("number", "kind"), [("+13125557328", "Local"), ("+18885550140", "TollFree")])
def test_a_held_number_is_offered_to_nobody_until_released(server: Server, number: str, kind: str) -> None:
    holder, searcher = make_tenant(server), make_tenant(server)
    with holder.client() as h, searcher.client() as s:
        r = h.post(f"/Accounts/{holder.sid}/IncomingPhoneNumbers/{kind}.json", data={"PhoneNumber": number})
        assert r.status_code == 200, r.text
        try:
            for c, account in ((h, holder.sid), (s, searcher.sid)):
                assert number not in numbers(search(c, account, kind=kind))
        finally:
            assert h.delete(f"/Accounts/{holder.sid}/IncomingPhoneNumbers/{r.json()['sid']}").status_code == 204
        assert number in numbers(search(s, searcher.sid, kind=kind))


def test_xml_shape(tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/AvailablePhoneNumbers/US/Local", params={"Contains": "SEAT"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
    root = ET.fromstring(r.text)
    listing = root.find("AvailablePhoneNumbers")
    assert listing is not None
    seat = [n for n in listing if n.findtext("PhoneNumber") == "+13125557328"]
    assert len(seat) == 1
    assert [e.tag for e in seat[0]] == ["FriendlyName", "PhoneNumber", "Lata", "RateCenter", "Latitude", "Longitude",
                                        "Region", "PostalCode", "IsoCountry", "Capabilities"]
    assert seat[0].findtext("Lata") == "" and seat[0].findtext("Region") == "IL"
    caps = seat[0].find("Capabilities")
    assert caps is not None and [(e.tag, e.text) for e in caps] == [
        ("Voice", "true"), ("Sms", "true"), ("Mms", "false"), ("Fax", "false")]
    with tenant.client() as c:
        empty = ET.fromstring(c.get(f"/Accounts/{tenant.sid}/AvailablePhoneNumbers/FR/Local").text)
    assert empty.find("AvailablePhoneNumbers") is not None and len(empty.find("AvailablePhoneNumbers")) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [{"Contains": "51-0"}, {"Contains": "5%"}, {"AreaCode": "5100"}, {"AreaCode": "51"}, {"AreaCode": "abc"},
     {"SmsEnabled": "perhaps"}, {"PageSize": "0"}, {"PageSize": "x"}],
)
def test_invalid_parameters_are_400(tenant: Tenant, params: dict[str, str]) -> None:
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/AvailablePhoneNumbers/US/Local.json", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] in (20001, 20007, 21401)


def test_tenancy(server: Server) -> None:
    owner = make_tenant(server)
    child, sibling = owner.sub(), make_tenant(server)
    path = f"/Accounts/{owner.sid}/AvailablePhoneNumbers/US/Local.json"
    for allowed in (owner.client(), server.admin()):
        with allowed as c:
            assert c.get(path, params={"AreaCode": "312"}).status_code == 200
    for refused in (child, sibling):
        with refused.client() as c:
            assert c.get(path).status_code == 403
    assert httpx.get(server.api + path).status_code == 401
