"""Usage Records for SMS, counted from stored messages, over real HTTP (SQLite and PostgreSQL).

Messages are written straight into the server's database with chosen dates, so that grouping per
day, month and year can be checked against known numbers.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tests.support.server import Server, Tenant, make_tenant
from tests.support.waiting import poll


def insert_messages(server: Server, account_sid: str, rows: list[tuple[str, str, str, int, str | None]]) -> None:
    """rows: (date_created ISO, direction, status, num_segments, price)."""
    from restcomm.config import load_settings
    from restcomm.store.db import create_engine
    from restcomm.store.schema import messages

    values = []
    for when, direction, status, segments, price in rows:
        ts = datetime.fromisoformat(when)
        values.append({
            "sid": "SM" + uuid.uuid4().hex, "account_sid": account_sid, "from_number": "+15105550100",
            "to_number": "+15105552255", "body": "hello", "status": status, "direction": direction,
            "num_segments": segments, "num_media": 0, "encoding": "GSM-7", "price": price, "price_unit": "USD",
            "api_version": "2012-04-24", "attempts": 0, "hop": 0, "date_created": ts, "date_updated": ts,
        })

    async def run() -> None:
        engine = create_engine(load_settings(env=server.env))
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(messages), values)
        finally:
            await engine.dispose()

    asyncio.run(run())


def records(client: httpx.Client, account_sid: str, sub: str = "", **params: str) -> list[dict[str, Any]]:
    path = f"/Accounts/{account_sid}/Usage/Records" + (f"/{sub}" if sub else "") + ".json"
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    return body


def summary(recs: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    return [(r["category"], r["start_date"], r["end_date"], r["count"], r["usage"]) for r in recs]


HISTORY = [
    ("2023-12-31T23:59:59", "outbound-api", "delivered", 1, "-0.0075"),
    ("2024-01-15T00:00:00", "outbound-api", "sent", 1, "-0.0075"),
    ("2024-01-15T13:30:00", "outbound-api", "delivered", 3, "-0.0225"),
    ("2024-01-15T18:00:00", "inbound", "received", 1, "-0.0075"),
    ("2024-01-15T19:00:00", "outbound-api", "failed", 2, None),  # never left: not counted
    ("2024-01-20T08:00:00", "outbound-reply", "undelivered", 2, None),
    ("2024-02-03T23:59:59", "inbound", "received", 1, "0"),
]


@pytest.fixture
def history(server: Server) -> tuple[Tenant, Tenant]:
    """An account with known messages, and a sub-account with one of its own."""
    owner = make_tenant(server, name="usage")
    child = owner.sub("usagechild")
    insert_messages(server, owner.sid, HISTORY)
    insert_messages(server, child.sid, [("2024-01-15T10:00:00", "outbound-api", "sent", 4, "-0.03")])
    return owner, child


def test_daily_counts_per_day_and_category(server: Server, history: tuple[Tenant, Tenant]) -> None:
    owner, _ = history
    with owner.client() as c:
        recs = records(c, owner.sid, "Daily", StartDate="2024-01-01", EndDate="2024-02-29")
        assert summary([r for r in recs if r["category"] == "sms"]) == [
            ("sms", "2024-01-15", "2024-01-15", "3", "5"),
            ("sms", "2024-01-20", "2024-01-20", "1", "2"),
            ("sms", "2024-02-03", "2024-02-03", "1", "1"),
        ]
        assert summary(records(c, owner.sid, "Daily", Category="sms-outbound", StartDate="2024-01-01",
                               EndDate="2024-02-29")) == [
            ("sms-outbound", "2024-01-15", "2024-01-15", "2", "4"),
            ("sms-outbound", "2024-01-20", "2024-01-20", "1", "2"),
        ]
        first = recs[0]
        assert first == {
            "category": "sms",
            "description": "SMS Messages",
            "account_sid": owner.sid,
            "start_date": "2024-01-15",
            "end_date": "2024-01-15",
            "usage": "5",
            "usage_unit": "segments",
            "count": "3",
            "count_unit": "messages",
            "price": "0.0375",
            "price_unit": "USD",
            "api_version": "2012-04-24",
            "uri": f"/2012-04-24/Accounts/{owner.sid}/Usage/Records/Daily"
                   "?Category=sms&StartDate=2024-01-15&EndDate=2024-01-15",
        }


def test_monthly_and_yearly_grouping(server: Server, history: tuple[Tenant, Tenant]) -> None:
    owner, _ = history
    with owner.client() as c:
        monthly = records(c, owner.sid, "Monthly", Category="sms", StartDate="2023-12-01", EndDate="2024-02-10")
        assert summary(monthly) == [
            ("sms", "2023-12-01", "2023-12-31", "1", "1"),
            ("sms", "2024-01-01", "2024-01-31", "4", "7"),
            ("sms", "2024-02-01", "2024-02-10", "1", "1"),  # clipped to the requested window
        ]
        yearly = records(c, owner.sid, "Yearly", Category="sms-inbound", StartDate="2023-01-01", EndDate="2024-12-31")
        assert summary(yearly) == [("sms-inbound", "2024-01-01", "2024-12-31", "2", "2")]
        price = records(c, owner.sid, "Yearly", Category="totalprice", StartDate="2023-01-01", EndDate="2024-12-31")
        assert [(r["start_date"], r["usage"], r["usage_unit"], r["price"]) for r in price] == [
            ("2023-01-01", "0.0075", "USD", "0.0075"),
            ("2024-01-01", "0.0375", "USD", "0.0375"),
        ]


def test_all_time_gives_one_record_per_category(server: Server, history: tuple[Tenant, Tenant]) -> None:
    owner, _ = history
    today = datetime.now(UTC).date().isoformat()
    with owner.client() as c:
        for sub in ("", "AllTime"):
            recs = records(c, owner.sid, sub)
            assert summary(recs) == [
                ("sms", "2023-12-31", today, "6", "9"),
                ("sms-inbound", "2023-12-31", today, "2", "2"),
                ("sms-outbound", "2023-12-31", today, "4", "7"),
                ("calls", "2023-12-31", today, "0", "0"),
                ("calls-inbound", "2023-12-31", today, "0", "0"),
                ("calls-outbound", "2023-12-31", today, "0", "0"),
                ("recordings", "2023-12-31", today, "0", "0"),
                ("totalprice", "2023-12-31", today, "6", "0.045"),
            ]
        # A window with no messages still answers, with zeros.
        assert summary(records(c, owner.sid, "AllTime", Category="sms", StartDate="2020-01-01",
                               EndDate="2020-12-31")) == [("sms", "2020-01-01", "2020-12-31", "0", "0")]
        assert records(c, owner.sid, "Daily", StartDate="2020-01-01", EndDate="2020-12-31") == []


def test_category_names_of_twilio_and_restcomm(server: Server, history: tuple[Tenant, Tenant]) -> None:
    owner, _ = history
    with owner.client() as c:
        twilio = records(c, owner.sid, "AllTime", Category="sms-inbound")
        restcomm = records(c, owner.sid, "AllTime", Category="SMS_INBOUND")
        assert twilio == [{**restcomm[0], "uri": twilio[0]["uri"]}] and twilio[0]["count"] == "2"
        assert summary(records(c, owner.sid, "AllTime", Category="SMS"))[0][3] == "6"
        assert summary(records(c, owner.sid, "AllTime", Category="TOTALPRICE"))[0][0] == "totalprice"


@pytest.mark.parametrize(
    "params",
    [
        {"Category": "bogus"},
        {"Category": "transcriptions"},  # a Restcomm category this server does not meter
        {"Category": ""},
        {"StartDate": "2024-13-01"},
        {"StartDate": "yesterday"},
        {"EndDate": "2024-02-30"},
        {"StartDate": "2024-02-01", "EndDate": "2024-01-01"},
    ],
)
def test_invalid_parameters_are_400(server: Server, tenant: Tenant, params: dict[str, str]) -> None:
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Usage/Records/Daily.json", params=params)
    if params == {"Category": ""}:
        assert r.status_code == 200  # an empty filter is no filter
        return
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 20001
    assert next(iter(params)) in r.json()["message"] or "EndDate" in r.json()["message"]


def test_fixed_windows(server: Server, tenant: Tenant) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    last_month_day = today.replace(day=1) - timedelta(days=20)
    insert_messages(server, tenant.sid, [
        (f"{today}T00:00:01", "outbound-api", "sent", 1, None),
        (f"{yesterday}T12:00:00", "inbound", "received", 1, None),
        (f"{yesterday}T12:00:01", "inbound", "received", 1, None),
        (f"{last_month_day}T12:00:00", "outbound-api", "sent", 2, None),
    ])
    month_start = today.replace(day=1)
    last_month_start = last_month_day.replace(day=1)
    last_month_end = month_start - timedelta(days=1)
    this_month = 1 + (2 if yesterday >= month_start else 0)
    last_month = 1 + (2 if yesterday < month_start else 0)
    with tenant.client() as c:
        def sms(sub: str) -> tuple[str, str, str, str, str]:
            return summary(records(c, tenant.sid, sub, Category="sms"))[0]

        assert sms("Today") == ("sms", str(today), str(today), "1", "1")
        assert sms("Yesterday") == ("sms", str(yesterday), str(yesterday), "2", "2")
        assert sms("ThisMonth")[1:4] == (str(month_start), str(today), str(this_month))
        assert sms("LastMonth")[1:4] == (str(last_month_start), str(last_month_end), str(last_month))
        # Sub-resource names are matched regardless of case, as Restcomm does; unknown ones are 404.
        assert summary(records(c, tenant.sid, "today", Category="sms")) == [sms("Today")]
        assert c.get(f"/Accounts/{tenant.sid}/Usage/Records/Weekly.json").status_code == 404


def test_xml_shape(server: Server, history: tuple[Tenant, Tenant]) -> None:
    owner, _ = history
    with owner.client() as c:
        r = c.get(f"/Accounts/{owner.sid}/Usage/Records/Monthly",
                  params={"Category": "sms", "StartDate": "2024-01-01", "EndDate": "2024-01-31"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.text)
    assert root.tag == "RestcommResponse"
    (rec,) = root.findall("UsageRecords/UsageRecord")
    assert rec.findtext("Category") == "sms" and rec.findtext("Count") == "4" and rec.findtext("Usage") == "7"
    assert rec.findtext("StartDate") == "2024-01-01" and rec.findtext("EndDate") == "2024-01-31"
    assert rec.findtext("AccountSid") == owner.sid and rec.findtext("UsageUnit") == "segments"


def test_tenancy_and_sub_accounts(server: Server, history: tuple[Tenant, Tenant]) -> None:
    owner, child = history
    sibling = make_tenant(server, name="usagesibling")
    window = {"Category": "sms", "StartDate": "2024-01-15", "EndDate": "2024-01-15"}
    with owner.client() as c:
        assert summary(records(c, owner.sid, "Daily", **window))[0][3] == "3"
        # Sub-accounts only when asked (Restcomm's SubAccounts or Twilio's IncludeSubaccounts).
        for flag in ("IncludeSubaccounts", "SubAccounts"):
            assert summary(records(c, owner.sid, "Daily", **window, **{flag: "true"}))[0][3:] == ("4", "9")
        # The parent reads its sub-account's usage.
        assert summary(records(c, child.sid, "Daily", **window)) == [("sms", "2024-01-15", "2024-01-15", "1", "4")]
    with sibling.client() as s:
        assert summary(records(s, sibling.sid, "AllTime", Category="sms"))[0][3] == "0"
        for path in ("", "/Daily", "/AllTime", "/daily", "/Nonsense"):
            assert s.get(f"/Accounts/{owner.sid}/Usage/Records{path}.json").status_code == 403, path
    with child.client() as c:
        assert c.get(f"/Accounts/{owner.sid}/Usage/Records/Daily.json").status_code == 403


def test_messages_sent_through_the_api_are_counted(server: Server, tenant: Tenant) -> None:
    """Messages made by the SMS API (an internal route between two hosted numbers) are counted as listed."""
    a, b = (f"+1555{uuid.uuid4().int % 10**7:07d}" for _ in range(2))
    with tenant.client() as c:
        probe = c.get(f"/Accounts/{tenant.sid}/SMS/Messages.json")
        assert probe.status_code == 200, f"the SMS Messages API must answer: {probe.status_code} {probe.text}"
        for number in (a, b):
            r = c.post(f"/Accounts/{tenant.sid}/IncomingPhoneNumbers.json", data={"PhoneNumber": number, "isSIP": "true"})
            assert r.status_code in (200, 201), r.text
        for body in ("one", "two"):
            r = c.post(f"/Accounts/{tenant.sid}/SMS/Messages.json", data={"From": a, "To": b, "Body": body})
            assert r.status_code in (200, 201), r.text
        # Wait (bounded) until every message of the account has settled, then count them as listed.
        def is_settled(listed: list[dict[str, Any]]) -> bool:
            return all(m["status"] not in ("queued", "sending", "accepted") for m in listed)

        listed = poll(lambda: c.get(f"/Accounts/{tenant.sid}/SMS/Messages.json", params={"PageSize": 100}
                                    ).json()["messages"], lambda ms: is_settled(ms) and len(ms) >= 2, 20)
        assert is_settled(listed), listed
        counted = [m for m in listed if m["status"] != "failed"]
        inbound = sum(1 for m in counted if m["direction"] == "inbound")
        today = {r["category"]: r["count"] for r in records(c, tenant.sid, "Today")}
    assert today["sms"] == str(len(counted)) and len(counted) >= 2
    assert today["sms-inbound"] == str(inbound)
    assert today["sms-outbound"] == str(len(counted) - inbound)
