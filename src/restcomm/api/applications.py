"""Applications: a named RCML URL that numbers and clients point at instead of their own URLs.

The list shows, for each application, the account's incoming numbers bound to it (as voice, SMS,
USSD or refer application). Deleting an application clears those bindings in the same transaction.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, not_found
from restcomm.api.framework import Call, Param, by_sid, operation
from restcomm.api.shapes import Row, Shape, col, computed
from restcomm.api.tagging import TAG_FILTER, tag_condition
from restcomm.store import schema as t
from restcomm.store.compiled import Query
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Applications"
ITEM_PATH = "/Accounts/{AccountSid}/Applications/{ApplicationSid}"
LIST_PATH = "/Accounts/{AccountSid}/Applications"
KINDS = ("voice", "sms", "ussd")
_SID = re.compile(r"^[A-Za-z0-9]{34}$")

# The incoming-number columns that can name an application.
BINDINGS = ("voice_application_sid", "sms_application_sid", "ussd_application_sid", "refer_application_sid")

NUMBER = Shape(
    name="Number",
    list_name="Numbers",
    items_key="numbers",
    fields=(
        col("sid", "Sid"),
        col("friendly_name", "FriendlyName"),
        col("phone_number", "PhoneNumber"),
        col("voice_application_sid", "VoiceApplicationSid"),
        col("sms_application_sid", "SmsApplicationSid"),
        col("ussd_application_sid", "UssdApplicationSid"),
        col("refer_application_sid", "ReferApplicationSid"),
    ),
)

APPLICATION = Shape(
    name="Application",
    list_name="Applications",
    items_key="applications",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("friendly_name", "FriendlyName"),
        col("account_sid", "AccountSid"),
        col("api_version", "ApiVersion"),
        computed("voice_caller_id_lookup", "VoiceCallerIdLookup", lambda r: bool(r["voice_caller_id_lookup"]),
                 type="boolean"),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/Applications/{r['sid']}",
                 is_uri=True),
        col("rcml_url", "RcmlUrl"),
        col("kind", "Kind"),
        # Only in lists (as in Restcomm): the numbers bound to the application.
        computed("numbers", "Numbers", lambda r: r.get("numbers"), type="array", item=NUMBER),
    ),
)

_COMMON = (
    Param("VoiceCallerIdLookup", "boolean"),
    Param("RcmlUrl", "url_or_path", description="the RCML document; a path is resolved against this server"),
    Param("Kind", "enum", enum=KINDS),
)

CREATE = (Param("FriendlyName", required=True, max_length=255), *_COMMON, Param("ApiVersion", max_length=16))
UPDATE = (Param("FriendlyName", max_length=255), *_COMMON)


def _values(f: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param, column in (
        ("FriendlyName", "friendly_name"),
        ("VoiceCallerIdLookup", "voice_caller_id_lookup"),
        ("RcmlUrl", "rcml_url"),
        ("Kind", "kind"),
    ):
        if param in f:
            values[column] = f[param]
    return values


# Constant statements (store/compiled.py).
_LIST = Query(select(t.applications).where(t.applications.c.account_sid == bindparam("account_sid"))
              .order_by(t.applications.c.date_created, t.applications.c.sid))
_n = t.incoming_phone_numbers
_BOUND_NUMBERS = Query(
    select(_n.c.sid, _n.c.friendly_name, _n.c.phone_number, *(_n.c[b] for b in BINDINGS))
    .where(_n.c.account_sid == bindparam("account_sid"), or_(*(_n.c[b].is_not(None) for b in BINDINGS)))
    .order_by(_n.c.phone_number, _n.c.sid)
)
_INSERT = Query(insert(t.applications))
_UPDATE = Query(update(t.applications).where(t.applications.c.sid == bindparam("where_sid")))
_DELETE = Query(delete(t.applications).where(t.applications.c.sid == bindparam("sid")))
_DELETE_TAGS = Query(delete(t.tags).where(t.tags.c.resource_sid == bindparam("sid")))
# Unbinding a deleted application: one statement per column that can name it, and the clients'.
_UNBIND = tuple(
    Query(update(_n).where(_n.c[column] == bindparam("app_sid")).values({column: None, "date_updated": bindparam("now")}))
    for column in BINDINGS
)
_UNBIND_CLIENTS = Query(
    update(t.clients).where(t.clients.c.voice_application_sid == bindparam("app_sid"))
    .values(voice_application_sid=None, date_updated=bindparam("now"))
)


async def _application(call: Call, *, write: bool = False) -> tuple[Row, Row]:
    if not _SID.match(call.path["ApplicationSid"]):
        await call.account(write=write)  # the account's own 403/404 come first
        raise not_found("The application")
    return await call.owned(t.applications, "ApplicationSid", "The application", write=write)


@operation("GET", LIST_PATH, summary="List the account's applications with the numbers bound to each", tag=TAG,
           shape=APPLICATION, kind="list", query=(TAG_FILTER,))
async def list_applications(call: Call) -> Response:
    account = await call.account()
    tagged = tag_condition(call, t.applications.c.sid, "Applications", account["sid"])
    if tagged is None:
        apps = await call.fetch_all(_LIST, {"account_sid": account["sid"]})
    else:
        apps = await call.fetch_all(
            select(t.applications)
            .where(t.applications.c.account_sid == account["sid"], tagged)
            .order_by(t.applications.c.date_created, t.applications.c.sid)
        )
    numbers = await call.fetch_all(_BOUND_NUMBERS, {"account_sid": account["sid"]})
    bound: dict[str, list[Row]] = defaultdict(list)
    for number in numbers:
        for app_sid in {number[b] for b in BINDINGS if number[b]}:
            bound[app_sid].append(number)
    return call.bare_list(APPLICATION, [{**app, "numbers": bound.get(app["sid"], [])} for app in apps])


@operation("POST", LIST_PATH, summary="Create an application", tag=TAG, shape=APPLICATION, form=CREATE)
async def create_application(call: Call) -> Response:
    account = await call.account(write=True)
    f = call.form
    now = call.services.clock()
    sid = new_sid("AP")
    row: dict[str, Any] = {
        "sid": sid,
        "account_sid": account["sid"],
        "friendly_name": f["FriendlyName"],
        "voice_caller_id_lookup": False,
        "rcml_url": None,
        "kind": None,
        "api_version": f.get("ApiVersion") or API_VERSION,
        "date_created": now,
        "date_updated": now,
    }
    row.update(_values(f))
    async with call.write() as conn:
        await conn.run(_INSERT, row)
        await call.audit(conn, "create", "Application", sid, account["sid"], f.keys())
    return call.item(APPLICATION, row)


@operation("GET", ITEM_PATH, summary="Read an application (without its numbers)", tag=TAG, shape=APPLICATION)
async def get_application(call: Call) -> Response:
    _, row = await _application(call)
    return call.item(APPLICATION, row)


@operation("POST", ITEM_PATH, summary="Update an application (POST and PUT alike)", tag=TAG, shape=APPLICATION,
           form=UPDATE)
async def update_application(call: Call) -> Response:
    account, current = await _application(call, write=True)
    f = call.form
    if f.get("FriendlyName") == "":
        raise ApiError(400, 20002, "FriendlyName can not be empty.")
    values = _values(f)
    if not values:
        return call.item(APPLICATION, current)
    values["date_updated"] = call.services.clock()
    async with call.write() as conn:
        if await conn.run(_UPDATE, {**values, "where_sid": current["sid"]}) == 0:  # deleted since we read it
            raise not_found("The application")
        await call.audit(conn, "update", "Application", current["sid"], account["sid"], f.keys())
        row = await conn.first(by_sid(t.applications), {"sid": current["sid"]})
    assert row is not None  # (updated in this transaction)
    return call.item(APPLICATION, row)


@operation("DELETE", ITEM_PATH, summary="Delete an application; numbers and clients bound to it are unbound",
           tag=TAG, kind="empty")
async def delete_application(call: Call) -> Response:
    account, current = await _application(call, write=True)
    sid = current["sid"]
    async with call.write() as conn:
        # The row goes first: on PostgreSQL its lock makes a concurrent "bind to this application"
        # (which reads it FOR SHARE) either finish before the unbinding below or see it gone.
        done = await conn.run(_DELETE, {"sid": sid})
        await conn.run(_DELETE_TAGS, {"sid": sid})
        if done == 0:  # a concurrent delete won
            raise not_found("The application")
        unbind = {"app_sid": sid, "now": call.services.clock()}
        for query in (*_UNBIND, _UNBIND_CLIENTS):
            await conn.run(query, unbind)
        await call.audit(conn, "delete", "Application", sid, account["sid"])
    return call.empty(200)
