"""Usage Records for SMS, calls and recordings: ``/Accounts/{AccountSid}/Usage/Records`` and its
period sub-resources.

Counted from the stored messages, grouped per day in SQL (``date(date_created)`` works on SQLite
and PostgreSQL alike) and folded into months, years or one window here, so the database does the
heavy part over the ``(account_sid, date_created)`` index whatever the window.

- ``count``: messages (``count_unit`` "messages"); ``usage``: their segments (``usage_unit``
  "segments"); ``price``: the sum of the messages' prices. All strings, as Restcomm writes them.
- Calls (``calls``, ``calls-inbound``, ``calls-outbound``): ``count`` the calls that were
  answered and ended (``completed``), ``usage`` their minutes, each call rounded up to the minute
  (busy, failed, unanswered and canceled calls cost nothing and are not counted).
- ``recordings``: ``count`` completed recordings, ``usage`` their minutes (each rounded up).
- ``totalprice``: the sum of every priced item above.
- Messages that ended ``failed`` never left the platform and are not counted.
- ``Daily``/``Monthly``/``Yearly`` list only the periods that have usage (as Restcomm's GROUP BY
  does); ``AllTime``, ``Today``, ``Yesterday``, ``ThisMonth``, ``LastMonth`` and the bare list
  answer one record per category, zero when nothing happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Numeric, cast, func, or_, select
from starlette.responses import Response

from restcomm.api.errors import ApiError, invalid, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col
from restcomm.store.schema import accounts, calls, messages, recordings
from restcomm.util import API_VERSION

TAG = "Usage"


@dataclass(frozen=True)
class Category:
    name: str  # Twilio's spelling, also what the records say
    enum_name: str  # Restcomm's Java enum constant
    description: str
    sources: tuple[str, ...]  # which tallies it adds: sms-in, sms-out, call-in, call-out, recording
    usage_unit: str
    count_unit: str


CATEGORIES: tuple[Category, ...] = (
    Category("sms", "SMS", "SMS Messages", ("sms-in", "sms-out"), "segments", "messages"),
    Category("sms-inbound", "SMS_INBOUND", "Inbound SMS Messages", ("sms-in",), "segments", "messages"),
    Category("sms-outbound", "SMS_OUTBOUND", "Outbound SMS Messages", ("sms-out",), "segments", "messages"),
    Category("calls", "CALLS", "Voice Minutes", ("call-in", "call-out"), "minutes", "calls"),
    Category("calls-inbound", "CALLS_INBOUND", "Inbound Voice Minutes", ("call-in",), "minutes", "calls"),
    Category("calls-outbound", "CALLS_OUTBOUND", "Outbound Voice Minutes", ("call-out",), "minutes", "calls"),
    Category("recordings", "RECORDINGS", "Voice Recordings", ("recording",), "minutes", "recordings"),
    Category("totalprice", "TOTALPRICE", "Total Price", ("sms-in", "sms-out", "call-in", "call-out", "recording"),
             "USD", "items"),
)
_BY_NAME = {c.name: c for c in CATEGORIES} | {c.enum_name: c for c in CATEGORIES}


def category(value: str) -> Category:
    """Twilio's lowercase names and Restcomm's enum names alike; anything else is a 400."""
    found = _BY_NAME.get(value.strip()) or _BY_NAME.get(value.strip().lower())
    if found is None:
        raise invalid(
            "Category",
            f"{value!r} is not a usage category this server meters; use one of "
            + ", ".join(c.name for c in CATEGORIES),
        )
    return found


USAGE_RECORD = Shape(
    name="UsageRecord",
    list_name="UsageRecords",
    items_key="usage_records",
    fields=(
        col("category", "Category"),
        col("description", "Description"),
        col("account_sid", "AccountSid"),
        col("start_date", "StartDate", description="yyyy-MM-dd"),
        col("end_date", "EndDate", description="yyyy-MM-dd"),
        col("usage", "Usage"),
        col("usage_unit", "UsageUnit"),
        col("count", "Count"),
        col("count_unit", "CountUnit"),
        col("price", "Price"),
        col("price_unit", "PriceUnit"),
        col("api_version", "ApiVersion"),
        col("uri", "Uri", description="the request path with Category, StartDate and EndDate; no .json"),
    ),
)

QUERY = (
    Param("Category", max_length=64, description="sms, sms-inbound, sms-outbound, calls, calls-inbound, calls-outbound, "
          "recordings, totalprice (or SMS, CALLS_INBOUND, …)"),
    Param("StartDate", "date", description="yyyy-MM-dd, inclusive (default: the account's creation)"),
    Param("EndDate", "date", description="yyyy-MM-dd, inclusive (default: today, UTC)"),
    Param("IncludeSubaccounts", "boolean", description="also count the sub-accounts' messages (default false)"),
    Param("SubAccounts", "boolean", description="Restcomm's name for IncludeSubaccounts"),
)

# sub-resource -> how records are grouped: "day", "month", "year" or None (one window)
PERIODS: dict[str, str | None] = {
    "Daily": "day",
    "Monthly": "month",
    "Yearly": "year",
    "AllTime": None,
    "Today": None,
    "Yesterday": None,
    "ThisMonth": None,
    "LastMonth": None,
}
_PERIODS_CI = {k.lower(): k for k in PERIODS}


# ---------------------------------------------------------------------------------------------
# Windows


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _month_end(d: date) -> date:
    nxt = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


def fixed_window(period: str, today: date) -> tuple[date, date] | None:
    if period == "Today":
        return today, today
    if period == "Yesterday":
        y = today - timedelta(days=1)
        return y, y
    if period == "ThisMonth":
        return _month_start(today), today
    if period == "LastMonth":
        last = _month_start(today) - timedelta(days=1)
        return _month_start(last), last
    return None


def bucket(day: date, grouping: str) -> tuple[date, date]:
    """The period (first and last day) that ``day`` falls in."""
    if grouping == "day":
        return day, day
    if grouping == "month":
        return _month_start(day), _month_end(day)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _money(value: Decimal) -> str:
    text = format(value.quantize(Decimal("0.00001")).normalize(), "f")
    return "0" if text in ("0", "-0") else text


# ---------------------------------------------------------------------------------------------
# Counting


@dataclass
class Tally:
    count: int = 0
    usage: int = 0  # segments (SMS) or minutes (calls, recordings)
    price: Decimal = Decimal(0)

    def add(self, other: Tally) -> None:
        self.count += other.count
        self.usage += other.usage
        self.price += other.price


async def daily_tallies(
    call: Call, account_sids: list[str], start: date | None, end: date
) -> dict[tuple[date, str], Tally]:
    """(day, "inbound"|"outbound") -> tally, for the accounts' non-failed messages in [start, end]."""
    day = func.date(messages.c.date_created)
    price = func.abs(cast(func.nullif(messages.c.price, ""), Numeric(18, 6)))
    stmt = (
        select(
            day.label("day"),
            messages.c.direction,
            func.count().label("n"),
            func.coalesce(func.sum(messages.c.num_segments), 0).label("segments"),
            func.coalesce(func.sum(price), 0).label("price"),
        )
        .where(
            messages.c.account_sid.in_(account_sids),
            messages.c.date_created < datetime.combine(end + timedelta(days=1), datetime.min.time()),
            messages.c.status != "failed",
        )
        # Grouped by the raw direction (no bound parameters in GROUP BY: PostgreSQL could not match them).
        .group_by(day, messages.c.direction)
    )
    if start is not None:
        stmt = stmt.where(messages.c.date_created >= datetime.combine(start, datetime.min.time()))
    out: dict[tuple[date, str], Tally] = {}
    for row in await call.fetch_all(stmt):
        key = (_as_date(row["day"]), "sms-in" if row["direction"] == "inbound" else "sms-out")
        tally = out.setdefault(key, Tally())
        tally.add(Tally(int(row["n"]), int(row["segments"]), Decimal(str(row["price"]))))
    await _voice_tallies(call, account_sids, start, end, out)
    return out


async def _voice_tallies(
    call: Call, account_sids: list[str], start: date | None, end: date, out: dict[tuple[date, str], Tally]
) -> None:
    """Completed calls (per direction) and recordings, per day, into ``out``: minutes rounded up."""
    until = datetime.combine(end + timedelta(days=1), datetime.min.time())
    for table, kind in ((calls, "call"), (recordings, "recording")):
        day = func.date(table.c.date_created)
        price = func.abs(cast(func.nullif(table.c.price, ""), Numeric(18, 6)))
        minutes = (func.coalesce(table.c.duration, 0) + 59) // 60
        columns = [day.label("day"), func.count().label("n"), func.coalesce(func.sum(minutes), 0).label("minutes"),
                   func.coalesce(func.sum(price), 0).label("price")]
        group = [day]
        if kind == "call":
            columns.append(table.c.direction)
            group.append(table.c.direction)
        stmt = (select(*columns)
                .where(table.c.account_sid.in_(account_sids), table.c.date_created < until,
                       table.c.status == "completed")
                .group_by(*group))
        if start is not None:
            stmt = stmt.where(table.c.date_created >= datetime.combine(start, datetime.min.time()))
        for row in await call.fetch_all(stmt):
            source = kind if kind == "recording" else ("call-in" if row["direction"] == "inbound" else "call-out")
            tally = out.setdefault((_as_date(row["day"]), source), Tally())
            tally.add(Tally(int(row["n"]), int(row["minutes"]), Decimal(str(row["price"]))))


def _record(call: Call, account_sid: str, cat: Category, start: date, end: date, tally: Tally) -> dict[str, Any]:
    usage = _money(tally.price) if cat.name == "totalprice" else str(tally.usage)
    query = urlencode({"Category": cat.name, "StartDate": start.isoformat(), "EndDate": end.isoformat()})
    path = call.request.url.path.removeprefix("/restcomm").removesuffix(".json").removesuffix(".xml")
    return {
        "category": cat.name,
        "description": cat.description,
        "account_sid": account_sid,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "usage": usage,
        "usage_unit": cat.usage_unit,
        "count": str(tally.count),
        "count_unit": cat.count_unit,
        "price": _money(tally.price),
        "price_unit": "USD",
        "api_version": API_VERSION,
        "uri": f"{path}?{query}",
    }


def _sum(tallies: Iterable[tuple[tuple[date, str], Tally]], cat: Category) -> Tally:
    total = Tally()
    for (_, source), tally in tallies:
        if source in cat.sources:
            total.add(tally)
    return total


async def _account_scope(call: Call, account: Any) -> list[str]:
    if not (call.query.get("IncludeSubaccounts") or call.query.get("SubAccounts")):
        return [account["sid"]]
    rows = await call.fetch_all(
        select(accounts.c.sid).where(
            or_(accounts.c.sid == account["sid"], accounts.c.lineage.contains(account["sid"] + "/"))
        )
    )
    return [r["sid"] for r in rows]


async def usage_records(call: Call, period: str | None) -> Response:
    account = await call.account()
    cats = [category(call.query["Category"])] if call.query.get("Category") else list(CATEGORIES)
    today = call.services.clock().date()
    window = fixed_window(period, today) if period else None
    start: date | None
    if window is None:
        start = call.query["StartDate"].date() if "StartDate" in call.query else None
        end = call.query["EndDate"].date() if "EndDate" in call.query else today
        if start is not None and end < start:
            raise ApiError(400, 20001, "Invalid parameter EndDate: must not be before StartDate")
    else:
        start, end = window
    tallies = await daily_tallies(call, await _account_scope(call, account), start, end)
    if start is None:  # all time: from the account's creation, or its first usage if older (imported data)
        start = min([account["date_created"].date(), *(day for day, _ in tallies)])
    grouping = PERIODS.get(period) if period else None
    records: list[dict[str, Any]] = []
    for cat in cats:
        if grouping is None:
            records.append(_record(call, account["sid"], cat, start, end, _sum(tallies.items(), cat)))
            continue
        buckets: dict[tuple[date, date], list[tuple[tuple[date, str], Tally]]] = {}
        for key, tally in tallies.items():
            buckets.setdefault(bucket(key[0], grouping), []).append((key, tally))
        for (first, last), items in sorted(buckets.items()):
            total = _sum(items, cat)
            if total.count:
                records.append(_record(call, account["sid"], cat, max(first, start), min(last, end), total))
    return call.bare_list(USAGE_RECORD, records)


# ---------------------------------------------------------------------------------------------
# Routes: the list, each named sub-resource, and a case-insensitive catch-all (Restcomm matches
# sub-resource names regardless of case).


@operation("GET", "/Accounts/{AccountSid}/Usage/Records", summary="Usage per category over a window (all time by default)",
           tag=TAG, query=QUERY, shape=USAGE_RECORD, kind="list")
async def list_usage(call: Call) -> Response:
    return await usage_records(call, None)


def _register(name: str) -> None:
    async def handler(call: Call) -> Response:
        return await usage_records(call, name)

    grouping = PERIODS[name]
    summary = f"Usage per category and {grouping}" if grouping else f"Usage per category: {name}"
    operation("GET", f"/Accounts/{{AccountSid}}/Usage/Records/{name}", summary=summary, tag=TAG, query=QUERY,
              shape=USAGE_RECORD, kind="list")(handler)


for _name in PERIODS:
    _register(_name)


@operation("GET", "/Accounts/{AccountSid}/Usage/Records/{Subresource}",
           summary="A usage sub-resource named in any letter case (daily, MONTHLY, …)", tag=TAG, query=QUERY,
           shape=USAGE_RECORD, kind="list")
async def usage_any_case(call: Call) -> Response:
    name = _PERIODS_CI.get(call.path["Subresource"].lower())
    if name is None:
        await call.account()  # tenancy first: a foreign account gets 403, not a hint about the path
        raise not_found("The usage sub-resource")
    return await usage_records(call, name)
