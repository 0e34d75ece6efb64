"""Calls (Restcomm ``/Accounts/{AccountSid}/Calls``; Twilio ``/2010-04-01/Accounts/{AccountSid}/Calls``).

Create writes the call's record (``queued``, direction ``outbound-api``) and commits it before it
answers; then the call is handed to the voice engine (``voice.ports.CallPlacer``). Without an
engine on this server, or when the engine refuses the call, the call is failed right after (status
``failed``, a 19101 notification, its ``completed`` callback): the answer is still the queued
record, as Twilio answers 201 ``queued`` and the call fails later.

Checks on create, in order: From and To present (21213/21201), Url or ApplicationSid (21205/21218),
To a number, ``client:name`` or a SIP URI (21211), From one the account may present (21210: its own
numbers, its OutgoingCallerIds, ``client:`` one of its Clients), StatusCallbackEvent known (20001).

Live modification: ``Url``/``Method`` redirect the call to new RCML, ``Status=canceled`` ends a
call not answered yet, ``Status=completed`` any live call (``voice.ports.CallControl``). A queued
call no engine has taken yet is changed in its record alone. An ended call, or ``canceled`` on an
answered call, is 400 21220.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import func, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, invalid
from restcomm.api.framework import Call, Param, operation
from restcomm.api.notifications import NOTIFICATION
from restcomm.api.shapes import Shape, col, computed
from restcomm.messaging.store import number_forms, owned_number
from restcomm.notify import ERROR, write_notification
from restcomm.profiles import PSTN
from restcomm.store.schema import applications, calls, clients, notifications, outgoing_caller_ids
from restcomm.util import API_VERSION, iso8601, rfc2822
from restcomm.voice import store as vs
from restcomm.voice.ports import CallNotHere, OutboundCall

TAG = "Calls"
LIST_PATH = "/Accounts/{AccountSid}/Calls"
ITEM_PATH = "/Accounts/{AccountSid}/Calls/{CallSid}"
TWILIO_ROOT = "/2010-04-01"
TWILIO_TAG = "Twilio Calls"
DEFAULT_TIMEOUT = 60
PROFILE_REFUSAL = 21215  # a PSTN destination the account's profile does not allow (restcomm.profiles)


def _call_uri(r: Any, root: str = f"/{API_VERSION}") -> str:
    return f"{root}/Accounts/{r['account_sid']}/Calls/{r['sid']}"


_CALL_SUBRESOURCES = Shape(
    name="SubresourceUris",
    list_name="",
    items_key="",
    fields=(
        computed("notifications", "Notifications", lambda r: _call_uri(r) + "/Notifications", is_uri=True),
        computed("recordings", "Recordings", lambda r: _call_uri(r) + "/Recordings", is_uri=True),
    ),
)

CALL = Shape(
    name="Call",
    list_name="Calls",
    items_key="calls",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("parent_call_sid", "ParentCallSid"),
        col("account_sid", "AccountSid"),
        col("to", "To", column="to_number"),
        col("from", "From", column="from_number"),
        col("phone_number_sid", "PhoneNumberSid"),
        col("status", "Status"),
        computed("start_time", "StartTime", lambda r: iso8601(r["start_time"])),
        computed("end_time", "EndTime", lambda r: iso8601(r["end_time"])),
        col("duration", "Duration", type="integer", xml_empty_when_null=True),
        col("price", "Price"),
        col("price_unit", "PriceUnit"),
        col("direction", "Direction"),
        col("answered_by", "AnsweredBy", xml_empty_when_null=True),
        col("api_version", "ApiVersion"),
        col("forwarded_from", "ForwardedFrom"),
        col("caller_name", "CallerName"),
        computed("uri", "Uri", _call_uri, is_uri=True),
        computed("subresource_uris", "SubresourceUris", lambda r: r, type="object", nested=_CALL_SUBRESOURCES),
        col("ring_duration", "Ring_duration", type="integer"),
    ),
)


def twilio_date(dt: datetime | None) -> str | None:
    return None if dt is None else f"{dt:%a, %d %b %Y %H:%M:%S} +0000"


_TWILIO_SUBRESOURCES = Shape(
    name="SubresourceUris",
    list_name="",
    items_key="",
    fields=(
        computed("notifications", "Notifications", lambda r: _call_uri(r, TWILIO_ROOT) + "/Notifications",
                 is_uri=True),
        computed("recordings", "Recordings", lambda r: _call_uri(r, TWILIO_ROOT) + "/Recordings", is_uri=True),
    ),
)

TWILIO_CALL = Shape(
    name="Call",
    list_name="Calls",
    items_key="calls",
    json_nulls=True,
    fields=(
        col("account_sid", "AccountSid"),
        computed("annotation", "Annotation", lambda r: None),
        col("answered_by", "AnsweredBy"),
        col("api_version", "ApiVersion"),
        col("caller_name", "CallerName"),
        computed("date_created", "DateCreated", lambda r: twilio_date(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: twilio_date(r["date_updated"])),
        col("direction", "Direction"),
        computed("duration", "Duration", lambda r: None if r["duration"] is None else str(r["duration"])),
        computed("end_time", "EndTime", lambda r: twilio_date(r["end_time"])),
        col("forwarded_from", "ForwardedFrom"),
        col("from", "From", column="from_number"),
        col("from_formatted", "FromFormatted"),
        computed("group_sid", "GroupSid", lambda r: None),
        col("parent_call_sid", "ParentCallSid"),
        col("phone_number_sid", "PhoneNumberSid"),
        col("price", "Price"),
        col("price_unit", "PriceUnit"),
        computed("queue_time", "QueueTime", lambda r: "0"),
        col("sid", "Sid"),
        computed("start_time", "StartTime", lambda r: twilio_date(r["start_time"])),
        col("status", "Status"),
        computed("subresource_uris", "SubresourceUris", lambda r: r, type="object", nested=_TWILIO_SUBRESOURCES),
        col("to", "To", column="to_number"),
        col("to_formatted", "ToFormatted"),
        computed("trunk_sid", "TrunkSid", lambda r: None),
        computed("uri", "Uri", lambda r: _call_uri(r, TWILIO_ROOT), is_uri=True),
    ),
)

_APP = (
    Param("Method", "method", code=21205, description="GET or POST (default POST) for Url"),
    Param("FallbackUrl", "url", code=21205, max_length=2048, description="fetched when Url fails"),
    Param("FallbackMethod", "method", code=21205, description="GET or POST (default POST)"),
    Param("StatusCallback", "url", code=21609, max_length=2048, description="receives the call progress events"),
    Param("StatusCallbackMethod", "method", code=21609, description="GET or POST (default POST)"),
)

CREATE = (
    Param("From", required=True, missing_code=21213, code=21212, max_length=512,
          description="a number of this account, one of its OutgoingCallerIds, or client:name of its Client"),
    Param("To", required=True, missing_code=21201, code=21211, max_length=1024,
          description="a phone number (via a SIP trunk), client:name, or a sip: URI; ?X-Header=value adds headers"),
    Param("Url", "url", code=21205, max_length=2048, description="the RCML run when the callee answers"),
    Param("ApplicationSid", max_length=34, code=21218, description="instead of Url: an application's RCML URL"),
    *_APP,
    Param("StatusCallbackEvent", max_length=64,
          description="initiated ringing answered completed (space or comma separated; default completed)"),
    Param("Timeout", "integer", minimum=1, maximum=600, code=20001, description="seconds to ring (default 60)"),
    Param("Record", "boolean", description="record the call"),
    Param("Username", max_length=255, description="user for the callee's digest challenge"),
    Param("Password", max_length=255, secret=True, description="password for the callee's digest challenge"),
)

MODIFY = (
    Param("Url", "url", code=21205, max_length=2048, description="redirect the call to this RCML"),
    *_APP,
    Param("Status", "enum", enum=("canceled", "completed"),
          description="canceled: end a call not answered yet; completed: end the call"),
)

_DATES = (
    Param("StartTime", "date", description="Restcomm: started on or after; Twilio: started on this day"),
    Param("StartTime>", "date", description="started on or after this day (or instant)"),
    Param("StartTime<", "date", description="started on or before this day (or instant)"),
    Param("EndTime", "date", description="Restcomm: ended on or before; Twilio: ended on this day"),
    Param("EndTime>", "date", description="ended on or after this day (or instant)"),
    Param("EndTime<", "date", description="ended on or before this day (or instant)"),
)

LIST_FILTERS = (
    Param("To", max_length=1024, description="Restcomm: ending with this value; Twilio: exactly"),
    Param("From", max_length=1024, description="Restcomm: ending with this value; Twilio: exactly"),
    Param("Status", "enum", enum=vs.STATUSES),
    Param("ParentCallSid", max_length=34),
    *_DATES,
)

# ---------------------------------------------------------------------------------------------
# Create

_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_CLIENT = re.compile(r"^client:([^:@\s?=]{1,255})$", re.IGNORECASE)
_SIP = re.compile(r"^sips?:[^\s]+@[^\s]+$", re.IGNORECASE)


def split_to(raw: str) -> tuple[str, dict[str, str]]:
    """``To`` and the SIP headers given after ``?`` (only X- headers are kept, as Restcomm does)."""
    target, sep, query = raw.strip().partition("?")
    headers: dict[str, str] = {}
    if sep:
        for k, v in parse_qsl(query, keep_blank_values=True):
            if k.lower().startswith("x-"):
                headers.setdefault(k, v)
    if not (_NUMBER.match(target) or _CLIENT.match(target) or _SIP.match(target)):
        raise ApiError(400, 21211, f"Invalid parameter To: {target!r} is not a phone number, client:name or a "
                                   "sip: URI")
    return target, headers


async def check_from(call: Call, account: Any, frm: str) -> None:
    """A call presents a caller id the account owns: 21210 otherwise."""
    conn = await call.conn()
    m = _CLIENT.match(frm)
    if m:
        found = (await conn.execute(select(clients.c.sid).where(clients.c.account_sid == account["sid"],
                                                                clients.c.login == m.group(1)))).first()
        if found:
            return
    else:
        number = frm.split(":", 1)[1].split("@", 1)[0] if _SIP.match(frm) else frm  # sip:+1555…@host: its user
        if _NUMBER.match(number):
            if await owned_number(conn, account, number) is not None:
                return
            found = (await conn.execute(select(outgoing_caller_ids.c.sid).where(
                outgoing_caller_ids.c.account_sid == account["sid"],
                outgoing_caller_ids.c.phone_number.in_(number_forms(number))))).first()
            if found:
                return
    raise ApiError(400, 21210, f"The source phone number {frm!r} is not verified for this account: use one of "
                               "its numbers, OutgoingCallerIds or client:name of its Clients")


async def _application_url(call: Call, account: Any, sid: str) -> str:
    row = await call.fetch_one(select(applications.c.rcml_url).where(applications.c.sid == sid,
                                                                     applications.c.account_sid == account["sid"]))
    if row is None or not row["rcml_url"]:
        raise ApiError(400, 21218, f"ApplicationSid {sid} is not an application of this account with an RCML URL")
    return row["rcml_url"]


def wake_callbacks(call: Call) -> None:
    """Callbacks queued by this request: let this node's outbox send them now, not at its next poll."""
    messaging = call.services.messaging
    if messaging is not None:
        messaging.wake(callbacks=True)


async def fail_call(call: Call, sid: str, code: int, reason: str) -> None:
    now = call.services.clock()
    async with call.write() as conn:
        row = await vs.set_call_status(conn, sid, vs.FAILED, now, error_code=code, reason=reason)
        if row is not None:
            await write_notification(conn, account_sid=row["account_sid"], error_code=code, log=ERROR,
                                     message_text=f"Call {sid} to {row['to_number']} failed: {reason}",
                                     call_sid=sid, clock=lambda: now)


async def create_call(call: Call, api_version: str) -> dict[str, Any]:
    """The create shared by the Restcomm and Twilio surfaces; returns the committed (queued) row."""
    account = await call.account(write=True)
    if account["status"] not in ("active", "uninitialized"):
        raise ApiError(403, 20005, f"Account {account['sid']} is {account['status']}: it cannot place calls")
    f = call.form
    to, headers = split_to(f["To"])
    frm = f["From"].strip()
    url = f.get("Url")
    if f.get("ApplicationSid"):
        url = await _application_url(call, account, f["ApplicationSid"])
    if not url:
        raise ApiError(400, 21205, "Url (or ApplicationSid) is required: the RCML run when the callee answers")
    try:
        events = vs.parse_events(f.get("StatusCallbackEvent"))
    except ValueError as exc:
        raise invalid("StatusCallbackEvent", str(exc)) from None
    await check_from(call, account, frm)
    if _NUMBER.match(to):  # a phone number goes out to the PSTN: the account's profile may not allow it
        refusal = (await call.services.profiles.policy(account)).refusal(PSTN, to)
        if refusal is not None:
            async with call.write() as conn:
                await write_notification(conn, account_sid=account["sid"], error_code=PROFILE_REFUSAL, log=ERROR,
                                         message_text=f"Call to {to} refused: {refusal}",
                                         request_url=str(call.request.url), request_method="POST",
                                         clock=call.services.clock)
            raise ApiError(400, PROFILE_REFUSAL, f"Account not authorized to call {to}: {refusal}")
    callback = f.get("StatusCallback")
    now = call.services.clock()
    async with call.write() as conn:
        row = await vs.create_call(
            conn, now, account_sid=account["sid"], from_number=frm, to_number=to, direction="outbound-api",
            api_version=api_version, url=url, method=f.get("Method") or "POST",
            fallback_url=f.get("FallbackUrl"), fallback_method=f.get("FallbackMethod") or "POST",
            application_sid=f.get("ApplicationSid"), status_callback=callback,
            status_callback_method=(f.get("StatusCallbackMethod") or "POST") if callback else None,
            status_callback_events=events if callback else None,
            timeout=f.get("Timeout") or DEFAULT_TIMEOUT, record=bool(f.get("Record")),
        )
    placer = call.services.call_placer
    outbound = OutboundCall(
        sid=row["sid"], account_sid=row["account_sid"], from_=frm, to=to, url=url, method=row["method"],
        fallback_url=row["fallback_url"], fallback_method=row["fallback_method"], timeout=row["timeout"],
        record=row["record"], application_sid=row["application_sid"], sip_headers=headers,
        username=f.get("Username"), password=f.get("Password"),
    )
    if placer is None:
        await fail_call(call, row["sid"], vs.NO_VOICE_ENGINE, "no voice engine runs on this server")
    else:
        try:
            await placer.place(outbound)
        except Exception as exc:  # the engine refused it: the call fails, the request does not
            await fail_call(call, row["sid"], vs.NO_VOICE_ENGINE, f"the voice engine refused the call ({exc})")
    wake_callbacks(call)
    return row


# ---------------------------------------------------------------------------------------------
# Modify


async def modify_call(call: Call) -> Any:
    _, row = await call.owned(calls, "CallSid", "The call", write=True)
    f = call.form
    sid = row["sid"]
    if row["status"] in vs.FINAL:
        raise ApiError(400, 21220, f"Call {sid} is {row['status']}: it can no longer be modified")
    status = f.get("Status")
    if status == "canceled" and row["status"] == vs.IN_PROGRESS:
        raise ApiError(400, 21220, f"Call {sid} was answered: Status=canceled only ends calls not answered yet "
                                   "(use Status=completed)")
    now = call.services.clock()
    changes: dict[str, Any] = {}
    for param, column in (("Url", "url"), ("Method", "method"), ("FallbackUrl", "fallback_url"),
                          ("FallbackMethod", "fallback_method"), ("StatusCallback", "status_callback"),
                          ("StatusCallbackMethod", "status_callback_method")):
        if param in f:
            changes[column] = f[param]
    untaken = row["status"] == vs.QUEUED and row["node"] is None  # no engine has it: the record is the call
    control = call.services.call_control
    if not untaken and (status or f.get("Url")):
        if control is None:
            raise ApiError(503, 20503, f"Call {sid} is not running on this server (no voice engine here)")
        try:
            if status:
                await control.hangup(sid, status)
            elif f.get("Url"):
                await control.redirect(sid, f["Url"], f.get("Method") or "POST")
        except CallNotHere:
            raise ApiError(503, 20503, f"Call {sid} is not running on this server; retry on the node that runs it "
                                       "or later") from None
    async with call.write() as conn:
        if untaken and (status or f.get("Url")):
            latest = await vs.get_call(conn, sid, for_update=True)
            if latest is None or latest["node"] is not None or latest["status"] != vs.QUEUED:
                # An engine took it (or it ended) between our read and now: the record alone no longer decides.
                raise ApiError(409, 20010, f"Call {sid} was just placed or ended; read it and retry")
        if changes:
            await conn.execute(update(calls).where(calls.c.sid == sid).values(**changes, date_updated=now))
        if untaken and status:
            await vs.set_call_status(conn, sid, vs.CANCELED, now, reason=f"Status={status} before it was placed")
        current = await vs.get_call(conn, sid)
    wake_callbacks(call)
    return current


# ---------------------------------------------------------------------------------------------
# Lists


def _day_bounds(call: Call, name: str, twilio: bool) -> tuple[datetime, datetime, bool]:
    """A date filter's value: (start of the day or the instant, the next day or the instant, bare?).

    Twilio's SDKs send a date as midnight UTC (``2024-01-02T00:00:00Z``): on the Twilio surface an
    instant at midnight is taken as that day."""
    value = call.query[name]
    bare = len(call.raw_query.get(name, "").strip()) == 10 or (twilio and value == value.replace(
        hour=0, minute=0, second=0, microsecond=0))
    return value, (value + timedelta(days=1) if bare else value), bare


async def list_calls(call: Call, *, twilio: bool, extra: dict[str, Any] | None = None) -> tuple[list[Any], int, int, int]:
    account = await call.account()
    q = call.query
    kw: dict[str, Any] = {}
    for field, key in (("start", "StartTime"), ("end", "EndTime")):
        if key in q:
            first, nxt, bare = _day_bounds(call, key, twilio)
            if twilio:  # that day (or that instant)
                kw[f"{field}_from"] = first
                kw[f"{field}_before"] = nxt if bare else first + timedelta(microseconds=1)
            elif field == "start":  # Restcomm: start_time >= date
                kw["start_from"] = first
            else:  # Restcomm: end_time <= date + 1 day
                kw["end_before"] = nxt if bare else first + timedelta(microseconds=1)
        if f"{key}>" in q:
            kw[f"{field}_from"] = _day_bounds(call, f"{key}>", twilio)[0]
        if f"{key}<" in q:
            first, nxt, bare = _day_bounds(call, f"{key}<", twilio)
            kw[f"{field}_before"] = nxt if bare else first + timedelta(microseconds=1)
    cond = vs.call_conditions(
        [account["sid"]], to=q.get("To"), from_=q.get("From"), ends_with=not twilio, status=q.get("Status"),
        parent_call_sid=q.get("ParentCallSid"), **kw, **(extra or {}),
    )
    page, size = call.paging()
    total = (await call.fetch_one(select(func.count().label("n")).select_from(calls).where(*cond)))["n"]
    rows = await call.fetch_all(
        select(calls).where(*cond).order_by(calls.c.date_created.desc(), calls.c.sid).offset(page * size).limit(size)
    )
    return rows, total, page, size


# ---------------------------------------------------------------------------------------------
# Restcomm surface


@operation("POST", LIST_PATH, summary="Place a call (committed as queued, then handed to the voice engine)",
           tag=TAG, shape=CALL, form=CREATE)
async def create_call_restcomm(call: Call) -> Response:
    return call.item(CALL, await create_call(call, API_VERSION))


@operation("GET", LIST_PATH, summary="List the account's calls, newest first", tag=TAG, shape=CALL, kind="page",
           query=LIST_FILTERS)
async def list_calls_restcomm(call: Call) -> Response:
    rows, total, page, size = await list_calls(call, twilio=False)
    return call.page(CALL, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read one call", tag=TAG, shape=CALL)
async def get_call_restcomm(call: Call) -> Response:
    _, row = await call.owned(calls, "CallSid", "The call")
    return call.item(CALL, row)


@operation("POST", ITEM_PATH, summary="Modify a live call: redirect (Url) or end it (Status)", tag=TAG, shape=CALL,
           form=MODIFY)
async def modify_call_restcomm(call: Call) -> Response:
    return call.item(CALL, await modify_call(call))


# ---------------------------------------------------------------------------------------------
# Twilio surface


@operation("POST", LIST_PATH, summary="Create a call (Twilio 2010-04-01)", tag=TWILIO_TAG, shape=TWILIO_CALL,
           form=CREATE, status=201, root=TWILIO_ROOT)
async def create_call_twilio(call: Call) -> Response:
    return call.item(TWILIO_CALL, await create_call(call, TWILIO_ROOT.strip("/")))


@operation("GET", LIST_PATH, summary="List calls, newest first (Twilio 2010-04-01)", tag=TWILIO_TAG,
           shape=TWILIO_CALL, kind="page", root=TWILIO_ROOT,
           query=(*LIST_FILTERS, Param("PageToken", max_length=256, description="accepted and ignored")))
async def list_calls_twilio(call: Call) -> Response:
    rows, total, page, size = await list_calls(call, twilio=True)
    if call.fmt != "json":
        return call.page(TWILIO_CALL, rows, total, page, size)
    path = f"{TWILIO_ROOT}/Accounts/{call.path['AccountSid']}/Calls.json"
    return call.respond(call.twilio_page(TWILIO_CALL, rows, total, page, size, path))


@operation("GET", ITEM_PATH, summary="Fetch a call (Twilio 2010-04-01)", tag=TWILIO_TAG, shape=TWILIO_CALL,
           root=TWILIO_ROOT)
async def fetch_call_twilio(call: Call) -> Response:
    _, row = await call.owned(calls, "CallSid", "The call")
    return call.item(TWILIO_CALL, row)


@operation("POST", ITEM_PATH, summary="Update a live call (Twilio 2010-04-01)", tag=TWILIO_TAG, shape=TWILIO_CALL,
           form=MODIFY, root=TWILIO_ROOT)
async def update_call_twilio(call: Call) -> Response:
    return call.item(TWILIO_CALL, await modify_call(call))



# ---------------------------------------------------------------------------------------------
# A call's notifications (its subresource_uris.notifications)


@operation("GET", "/Accounts/{AccountSid}/Calls/{CallSid}/Notifications", summary="The notifications of one call, "
           "newest first", tag=TAG, kind="page", shape=NOTIFICATION)
async def list_call_notifications(call: Call) -> Response:
    _, row = await call.owned(calls, "CallSid", "The call")
    cond = [notifications.c.account_sid == row["account_sid"], notifications.c.call_sid == row["sid"]]
    page, size = call.paging()
    total = (await call.fetch_one(select(func.count().label("n")).select_from(notifications).where(*cond)))["n"]
    rows = await call.fetch_all(select(notifications).where(*cond)
                                .order_by(notifications.c.date_created.desc(), notifications.c.sid)
                                .offset(page * size).limit(size))
    return call.page(NOTIFICATION, rows, total, page, size)
