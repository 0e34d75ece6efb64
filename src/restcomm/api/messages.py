"""SMS Messages (Restcomm ``/Accounts/{AccountSid}/SMS/Messages``): send, read, list.

A send is checked (codes below), committed as ``queued`` and only then answered: the dispatcher
takes it from the store, so an accepted message survives a crash of the process. Checks, in order:
From/To/Body present (21603/21604/21602), Body at most 1600 characters (21617), To a phone number
(21211), To enabled by the account's profile (21408, with a Notification; restcomm.profiles), From a
phone number or sender ID (21212) that the account owns (21606; sender IDs only when
``[sms] alphanumeric_senders`` allows them), recipient not opted out of this sender (21610).

Restcomm answers with status ``sending``; here a new message is ``queued`` until the dispatcher
takes it (Twilio's first status), then ``sending``, ``sent``, ``delivered``/``undelivered``/``failed``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from starlette.responses import Response

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.messaging import model as m
from restcomm.messaging.validation import Rejected, check_static
from restcomm.notify import ERROR, write_notification
from restcomm.store.compiled import Query
from restcomm.store.schema import accounts, messages
from restcomm.util import API_VERSION, iso8601, rfc2822

TAG = "SMS Messages"
LIST_PATH = "/Accounts/{AccountSid}/SMS/Messages"
ITEM_PATH = "/Accounts/{AccountSid}/SMS/Messages/{SmsMessageSid}"

SMS_MESSAGE = Shape(
    name="SMSMessage",
    list_name="SMSMessages",
    items_key="messages",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed("date_sent", "DateSent", lambda r: iso8601(r["date_sent"])),
        col("account_sid", "AccountSid"),
        col("from", "From", column="from_number"),
        col("to", "To", column="to_number"),
        col("body", "Body"),
        col("status", "Status"),
        col("direction", "Direction"),
        computed("price", "Price", lambda r: r["price"] or "0"),
        col("price_unit", "PriceUnit"),
        col("api_version", "ApiVersion"),
        col("num_segments", "NumSegments", type="integer", description="SMS segments the body takes"),
        col("num_media", "NumMedia", type="integer"),
        col("encoding", "Encoding", description="GSM-7 or UCS-2"),
        col("error_code", "ErrorCode", type="integer"),
        col("error_message", "ErrorMessage"),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/SMS/Messages/{r['sid']}",
                 is_uri=True),
    ),
)

PROFILE_REFUSAL = 21408  # the destination is not enabled by the account's profile (restcomm.profiles)

SEND = (
    Param("From", required=True, missing_code=21603, code=21212, max_length=64,
          description="a number of this account (or an allowed alphanumeric sender ID)"),
    Param("To", required=True, missing_code=21604, code=21211, max_length=64),
    Param("Body", required=True, missing_code=21602, code=21617, max_length=1600,
          description="at most 1600 characters"),
    Param("StatusCallback", "url", code=21609, max_length=2048,
          description="receives a request on every status change"),
    Param("StatusCallbackMethod", "method", code=21609, description="GET or POST (default POST)"),
    Param("Encoding", "enum", enum=("GSM", "UCS-2", "UCS_2", "UTF-8", "UTF_8"),
          description="GSM (default: GSM-7 when the text allows, else UCS-2) or UCS-2/UTF-8 (always UCS-2)"),
)

STATUS_FILTER = Param("Status", "enum", enum=m.STATUSES)

LIST_FILTERS = (
    Param("To", max_length=64, description="numbers ending with this value"),
    Param("From", max_length=64, description="numbers ending with this value"),
    STATUS_FILTER,
    Param("Body", max_length=1600, description="substring of the body"),
    Param("StartTime", "date", description="created on or after this date"),
    Param("EndTime", "date", description="created on or before this date (a bare date covers the whole day)"),
    Param("DateSent", "date", description="sent on this day"),
    Param("DateSent<", "date", description="sent on or before this day"),
    Param("DateSent>", "date", description="sent on or after this day"),
    Param("SubAccounts", "boolean", description="include the messages of descendant accounts"),
)


async def send_message(call: Call) -> dict[str, Any]:
    """The send shared by the Restcomm and Twilio surfaces; returns the committed row."""
    account = await call.account(write=True)
    if account["status"] not in ("active", "uninitialized"):
        raise ApiError(403, 20005, f"Account {account['sid']} is {account['status']}: it cannot send messages")
    f = call.form
    messaging = call.services.require_messaging()
    encoding = "UCS-2" if f.get("Encoding") in ("UCS-2", "UCS_2", "UTF-8", "UTF_8") else None
    try:
        out = check_static(f["From"], f["To"], f["Body"], encoding)
        await messaging.check_destination(account, out)
        await messaging.check_sender(account, out)
    except Rejected as r:
        if r.code == PROFILE_REFUSAL:  # the account's administrator learns of it too (Notifications)
            async with call.write() as conn:
                await write_notification(conn, account_sid=account["sid"], error_code=r.code, log=ERROR,
                                         message_text=r.message, request_url=str(call.request.url),
                                         request_method="POST", clock=call.services.clock)
        raise ApiError(400, r.code, r.message) from None
    callback = f.get("StatusCallback")
    return await messaging.submit(
        account["sid"],
        out,
        status_callback=callback,
        status_callback_method=(f.get("StatusCallbackMethod") or "POST") if callback else None,
    )


def _day(value: Any) -> Any:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


async def message_filters(call: Call, account_sid: str, *, ends_with: bool) -> list[Any]:
    """Conditions shared by both list surfaces (Restcomm matches To/From by suffix, Twilio exactly)."""
    q = call.query
    if q.get("SubAccounts"):
        subtree = select(accounts.c.sid).where(accounts.c.lineage.contains(account_sid + "/", autoescape=True))
        cond: list[Any] = [or_(messages.c.account_sid == account_sid, messages.c.account_sid.in_(subtree))]
    else:
        cond = [messages.c.account_sid == account_sid]
    for name, column in (("To", messages.c.to_number), ("From", messages.c.from_number)):
        value = q.get(name)
        if value and value[0] == " " and value[1:2].isdigit():
            value = "+" + value[1:]  # an unencoded "+" in the query string arrives as a space
        if value:
            cond.append(column.endswith(value, autoescape=True) if ends_with else column == value)
    if q.get("Status"):
        cond.append(messages.c.status == q["Status"])
    if q.get("Body"):
        cond.append(messages.c.body.contains(q["Body"], autoescape=True))
    if "StartTime" in q:
        cond.append(messages.c.date_created >= q["StartTime"])
    if "EndTime" in q:
        end = q["EndTime"]
        bare = len(call.raw_query.get("EndTime", "").strip()) == 10
        cond.append(messages.c.date_created < end + timedelta(days=1) if bare else messages.c.date_created <= end)
    for name, op in (("DateSent", "="), ("DateSent<", "<="), ("DateSent>", ">=")):
        if name not in q:
            continue
        value = q[name]
        if len(call.raw_query.get(name, "").strip()) > 10:  # an instant: compare exactly
            cond.append({"=": messages.c.date_sent == value, "<=": messages.c.date_sent <= value,
                         ">=": messages.c.date_sent >= value}[op])
            continue
        day = _day(value)  # a bare date covers the whole day
        if op in ("=", ">="):
            cond.append(messages.c.date_sent >= day)
        if op in ("=", "<="):
            cond.append(messages.c.date_sent < day + timedelta(days=1))
    return cond


# A list without filters (the common case): two constant statements (store/compiled.py).
_NEWEST_FIRST = (messages.c.date_created.desc(), messages.c.sid)
_COUNT = Query(select(func.count().label("n")).select_from(messages)
               .where(messages.c.account_sid == bindparam("account_sid")))
_PAGE = Query(select(messages).where(messages.c.account_sid == bindparam("account_sid"))
              .order_by(*_NEWEST_FIRST).offset(bindparam("offset")).limit(bindparam("limit")))
# The query parameters message_filters reads.
_FILTERS = ("SubAccounts", "To", "From", "Status", "Body", "StartTime", "EndTime", "DateSent", "DateSent<", "DateSent>")


async def list_page(call: Call, account_sid: str, page: int, size: int, *, ends_with: bool) -> tuple[list[Any], int]:
    """One page of the account's messages (newest first) and the number of messages matching the filters."""
    if not any(name in call.query for name in _FILTERS):
        total = (await call.fetch_one(_COUNT, {"account_sid": account_sid}))["n"]
        rows = await call.fetch_all(_PAGE, {"account_sid": account_sid, "offset": page * size, "limit": size})
        return rows, total
    cond = await message_filters(call, account_sid, ends_with=ends_with)
    total = (await call.fetch_one(select(func.count().label("n")).select_from(messages).where(*cond)))["n"]
    rows = await call.fetch_all(
        select(messages)
        .where(*cond)
        .order_by(*_NEWEST_FIRST)
        .offset(page * size)
        .limit(size)
    )
    return rows, total


@operation("POST", LIST_PATH, summary="Send an SMS (committed as queued before the answer)", tag=TAG,
           shape=SMS_MESSAGE, form=SEND)
async def create_sms(call: Call) -> Response:
    return call.item(SMS_MESSAGE, await send_message(call))


@operation("GET", LIST_PATH, summary="List the account's messages, newest first", tag=TAG, shape=SMS_MESSAGE,
           kind="page", query=LIST_FILTERS)
async def list_sms(call: Call) -> Response:
    account = await call.account()
    page, size = call.paging()
    rows, total = await list_page(call, account["sid"], page, size, ends_with=True)
    return call.page(SMS_MESSAGE, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read one message", tag=TAG, shape=SMS_MESSAGE)
async def get_sms(call: Call) -> Response:
    _, row = await call.owned(messages, "SmsMessageSid", "The message")
    return call.item(SMS_MESSAGE, row)
