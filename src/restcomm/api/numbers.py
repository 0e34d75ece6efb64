"""IncomingPhoneNumbers: the numbers an account receives calls, SMS, USSD and REFERs on.

Two kinds of number:

- **inventory numbers** (no ``isSIP``): the operator's numbers, listed in the configuration (see
  available_numbers.py). The number is normalized to E.164 and must be in the inventory and not
  held by anyone; ``AreaCode`` instead of ``PhoneNumber`` takes the first free one of that area.
- **pure-SIP numbers** (``isSIP=true``): stored in E.164 when they are phone numbers (any spelling
  of one number is that number: one owner), otherwise as given; unique per organization. They may
  be regex patterns (``+1234.*``, ``555[0-9]*``) or the catch-all ``*``; inbound routing
  (restcomm.routing) tries them after exact matches.

``/Local``, ``/TollFree`` and ``/Mobile`` create numbers of that type and list only that type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from restcomm.api.available_numbers import (
    NUMBER_TYPES,
    InventoryNumber,
    check_area_code,
    inventory,
    inventory_entry,
)
from restcomm.api.errors import ApiError, missing
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Row, Shape, col, computed, xml_document
from restcomm.api.tagging import TAG_FILTER, tag_condition
from restcomm.phone import has_area_code, normalize, to_e164
from restcomm.routing import PatternError, canonical_number, check_pattern, is_pattern
from restcomm.store import schema as t
from restcomm.store.compiled import Query
from restcomm.store.session import Session
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "IncomingPhoneNumbers"
LIST_PATH = "/Accounts/{AccountSid}/IncomingPhoneNumbers"
ITEM_PATH = LIST_PATH + "/{IncomingPhoneNumberSid}"
MAX_NUMBER_LENGTH = 64

numbers = t.incoming_phone_numbers

URL_PARAMS = {
    "VoiceUrl": "voice_url",
    "VoiceFallbackUrl": "voice_fallback_url",
    "StatusCallback": "status_callback",
    "SmsUrl": "sms_url",
    "SmsFallbackUrl": "sms_fallback_url",
    "UssdUrl": "ussd_url",
    "UssdFallbackUrl": "ussd_fallback_url",
    "ReferUrl": "refer_url",
}
METHOD_PARAMS = {
    "VoiceMethod": "voice_method",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallbackMethod": "status_callback_method",
    "SmsMethod": "sms_method",
    "SmsFallbackMethod": "sms_fallback_method",
    "UssdMethod": "ussd_method",
    "UssdFallbackMethod": "ussd_fallback_method",
    "ReferMethod": "refer_method",
}
APPLICATION_PARAMS = {
    "VoiceApplicationSid": "voice_application_sid",
    "SmsApplicationSid": "sms_application_sid",
    "UssdApplicationSid": "ussd_application_sid",
    "ReferApplicationSid": "refer_application_sid",
}
CAPABILITY_PARAMS = {
    "VoiceCapable": "voice_capable",
    "SmsCapable": "sms_capable",
    "MmsCapable": "mms_capable",
    "FaxCapable": "fax_capable",
}

# ---------------------------------------------------------------------------------------------
# Wire shape: Restcomm's field order, explicit JSON nulls, *_application_name only when bound.

CAPABILITIES = Shape(
    name="Capabilities",
    list_name="",
    items_key="",
    fields=(
        computed("voice_capable", "Voice", lambda r: bool(r["voice_capable"]), type="boolean"),
        computed("sms_capable", "Sms", lambda r: bool(r["sms_capable"]), type="boolean"),
        computed("mms_capable", "Mms", lambda r: bool(r["mms_capable"]), type="boolean"),
        computed("fax_capable", "Fax", lambda r: bool(r["fax_capable"]), type="boolean"),
    ),
)


def _method(json: str, xml: str) -> Any:
    return col(json, xml, xml_empty_when_null=True)


def _app_name(json: str, xml: str) -> Any:
    return col(json, xml, omit_null=True, description="the bound application's friendly name (only when bound)")


INCOMING_NUMBER = Shape(
    name="IncomingPhoneNumber",
    list_name="IncomingPhoneNumbers",
    items_key="incomingPhoneNumbers",
    json_nulls=True,
    fields=(
        col("sid", "Sid"),
        col("account_sid", "AccountSid"),
        col("friendly_name", "FriendlyName"),
        col("phone_number", "PhoneNumber"),
        col("voice_url", "VoiceUrl"),
        _method("voice_method", "VoiceMethod"),
        col("voice_fallback_url", "VoiceFallbackUrl"),
        _method("voice_fallback_method", "VoiceFallbackMethod"),
        col("status_callback", "StatusCallback"),
        _method("status_callback_method", "StatusCallbackMethod"),
        computed("voice_caller_id_lookup", "VoiceCallerIdLookup", lambda r: bool(r["voice_caller_id_lookup"]),
                 type="boolean"),
        col("voice_application_sid", "VoiceApplicationSid"),
        _app_name("voice_application_name", "VoiceApplicationName"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("sms_url", "SmsUrl"),
        _method("sms_method", "SmsMethod"),
        col("sms_fallback_url", "SmsFallbackUrl"),
        _method("sms_fallback_method", "SmsFallbackMethod"),
        col("sms_application_sid", "SmsApplicationSid"),
        _app_name("sms_application_name", "SmsApplicationName"),
        col("ussd_url", "UssdUrl"),
        _method("ussd_method", "UssdMethod"),
        col("ussd_fallback_url", "UssdFallbackUrl"),
        _method("ussd_fallback_method", "UssdFallbackMethod"),
        col("ussd_application_sid", "UssdApplicationSid"),
        _app_name("ussd_application_name", "UssdApplicationName"),
        col("refer_url", "ReferUrl"),
        _method("refer_method", "ReferMethod"),
        col("refer_application_sid", "ReferApplicationSid"),
        _app_name("refer_application_name", "ReferApplicationName"),
        computed("capabilities", "Capabilities", lambda r: r, type="object", nested=CAPABILITIES),
        col("api_version", "ApiVersion"),
        computed(
            "uri",
            "Uri",
            lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/IncomingPhoneNumbers/{r['sid']}",
            is_uri=True,
        ),
    ),
)

# ---------------------------------------------------------------------------------------------
# Parameters

COMMON = (
    Param("FriendlyName", max_length=255, description="default: the phone number"),
    *(Param(name, "url_or_path", max_length=2048, description="absolute http(s) URL or a /path; empty clears")
      for name in URL_PARAMS),
    *(Param(name, "method", description="GET or POST (default POST)") for name in METHOD_PARAMS),
    Param("VoiceCallerIdLookup", "boolean"),
    *(Param(name, max_length=34, description="an application of the same account; empty clears")
      for name in APPLICATION_PARAMS),
    *(Param(name, "boolean") for name in CAPABILITY_PARAMS),
)

CREATE = (
    Param("PhoneNumber", max_length=MAX_NUMBER_LENGTH, code=21401,
          description="the number; with isSIP=true any SIP number, a regex pattern or the catch-all '*'"),
    Param("AreaCode", max_length=3, code=21401,
          description="instead of PhoneNumber: take the first free inventory number of this 3-digit area code"),
    Param("isSIP", "boolean", description="true: a pure-SIP/virtual number, stored in E.164 when it is a phone number, "
                "otherwise (patterns, SIP user names) as given"),
    *COMMON,
)

LIST_QUERY = (
    Param("PhoneNumber", max_length=MAX_NUMBER_LENGTH, description="substring of the number"),
    Param("FriendlyName", max_length=255, description="substring of the friendly name"),
    Param("SortBy", max_length=32, description="PhoneNumber (default) or FriendlyName, optionally :asc or :desc"),
    Param("Reverse", "boolean", description="true: descending order"),
    TAG_FILTER,
)

# ---------------------------------------------------------------------------------------------
# Reading


_APP_ALIASES = {key: t.applications.alias(f"{key}_app") for key in ("voice", "sms", "ussd", "refer")}


def _select() -> Any:
    """Numbers with the friendly names of the applications they are bound to."""
    joined = numbers
    names = []
    for key, app in _APP_ALIASES.items():
        joined = joined.outerjoin(
            app, (app.c.sid == numbers.c[f"{key}_application_sid"]) & (app.c.account_sid == numbers.c.account_sid)
        )
        names.append(app.c.friendly_name.label(f"{key}_application_name"))
    return select(numbers, *names).select_from(joined)


# Constant statements (store/compiled.py): one number by SID, and the list without filters in its
# default order (by phone number).
_READ = Query(_select().where(numbers.c.sid == bindparam("sid")))
_BY_PHONE_NUMBER = (numbers.c.phone_number.asc(), numbers.c.sid.asc())
_COUNT = Query(select(func.count().label("n")).select_from(numbers)
               .where(numbers.c.account_sid == bindparam("account_sid")))
_PAGE = Query(_select().where(numbers.c.account_sid == bindparam("account_sid"))
              .order_by(*_BY_PHONE_NUMBER).offset(bindparam("offset")).limit(bindparam("limit")))
_INSERT = Query(insert(numbers))
_UPDATE = Query(update(numbers).where(numbers.c.sid == bindparam("where_sid")))
_DELETE = Query(delete(numbers).where(numbers.c.sid == bindparam("sid")))
_DELETE_TAGS = Query(delete(t.tags).where(t.tags.c.resource_sid == bindparam("sid")))


async def _read(conn: Session, sid: str) -> Row:
    row = await conn.first(_READ, {"sid": sid})
    if row is None:
        raise NoResultFound("No row was found when one was required")
    return row


# ---------------------------------------------------------------------------------------------
# Writing


def _unavailable(message: str) -> ApiError:
    return ApiError(400, 21452, message)


def _settable(form: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the parameters present in the request (an empty URL or SID clears)."""
    values: dict[str, Any] = {}
    if "FriendlyName" in form:
        values["friendly_name"] = form["FriendlyName"]
    for mapping in (URL_PARAMS, METHOD_PARAMS, CAPABILITY_PARAMS):
        for name, column in mapping.items():
            if name in form:
                values[column] = form[name]
    for name, column in APPLICATION_PARAMS.items():
        if name in form:
            values[column] = form[name].strip() or None
    if "VoiceCallerIdLookup" in form:
        values["voice_caller_id_lookup"] = form["VoiceCallerIdLookup"]
    return values


async def _check_applications(conn: AsyncConnection, account_sid: str, values: Mapping[str, Any]) -> None:
    wanted = {column: values[column] for column in APPLICATION_PARAMS.values() if values.get(column)}
    if not wanted:
        return
    found = set(
        (
            await conn.execute(
                select(t.applications.c.sid).where(
                    t.applications.c.sid.in_(set(wanted.values())), t.applications.c.account_sid == account_sid
                )
            )
        ).scalars()
    )
    for name, column in APPLICATION_PARAMS.items():
        sid = wanted.get(column)
        if sid is not None and sid not in found:
            raise ApiError(400, 20001, f"Invalid parameter {name}: {sid} is not an application of account {account_sid}")


def _defaults(item: InventoryNumber | None) -> dict[str, Any]:
    values: dict[str, Any] = {column: None for column in (*URL_PARAMS.values(), *APPLICATION_PARAMS.values())}
    values.update({column: "POST" for column in METHOD_PARAMS.values()})
    values["voice_caller_id_lookup"] = False
    if item is None:
        values.update(voice_capable=True, sms_capable=True, mms_capable=False, fax_capable=False)
    else:
        values.update({f"{c}_capable": item.capable(c) for c in ("voice", "sms", "mms", "fax")})
    return values


_HELD = Query(select(numbers.c.phone_number).where(numbers.c.phone_number == bindparam("phone_number")))
_HELD_IN_ORG = Query(select(numbers.c.phone_number).where(numbers.c.phone_number == bindparam("phone_number"),
                                                          numbers.c.organization_sid == bindparam("org")))


async def _taken(conn: Session, phone_numbers: list[str], organization_sid: str | None) -> set[str]:
    if len(phone_numbers) == 1:  # the common case: one constant statement
        if organization_sid is None:
            rows = await conn.rows(_HELD, {"phone_number": phone_numbers[0]})
        else:
            rows = await conn.rows(_HELD_IN_ORG, {"phone_number": phone_numbers[0], "org": organization_sid})
        return {r["phone_number"] for r in rows}
    cond = [numbers.c.phone_number.in_(phone_numbers)]
    if organization_sid is not None:
        cond.append(numbers.c.organization_sid == organization_sid)
    return set((await conn.execute(select(numbers.c.phone_number).where(*cond))).scalars())


def _inventory_choices(call: Call, kind: str | None) -> list[InventoryNumber]:
    """The inventory numbers a request may provision, in the order they are tried."""
    f = call.form
    phone = (f.get("PhoneNumber") or "").strip()
    if phone:
        e164 = normalize(phone)
        item = inventory_entry(call.settings, e164)
        if item is None:
            raise _unavailable(
                f"{phone} is not available: it is not in this server's number inventory "
                "(use isSIP=true to add a SIP or virtual number)"
            )
        if kind is not None and item.type != kind:
            raise _unavailable(f"{e164} is a {item.type} number, not a {kind} number")
        return [item]
    area = check_area_code(f["AreaCode"])
    choices = [
        n for n in sorted(inventory(call.settings), key=lambda n: n.phone_number)
        if has_area_code(n.phone_number, area) and (kind is None or n.type == kind)
    ]
    if not choices:
        of_kind = f"{kind} number" if kind else "number"
        raise _unavailable(f"No {of_kind} with area code {area} is in this server's inventory")
    return choices


async def create_number(call: Call, kind: str | None) -> Response:
    account = await call.account(write=True)
    f = call.form
    sip = f.get("isSIP") is True
    phone = (f.get("PhoneNumber") or "").strip()
    if not phone and (sip or not f.get("AreaCode")):
        raise missing("PhoneNumber")
    if any(ch < " " or ch == "\x7f" for ch in phone):
        raise ApiError(400, 21401, "Invalid parameter PhoneNumber: contains a control character")
    org = account["organization_sid"]
    # A spelling such as "1 (555) 333-1234" holds regex syntax but is a phone number: a number.
    pattern = sip and is_pattern(phone) and to_e164(phone) is None
    if pattern:
        try:
            check_pattern(phone)
        except PatternError as exc:
            raise ApiError(400, 21401, f"Invalid parameter PhoneNumber: {exc}") from None
    if sip and not pattern:
        # One number, one owner: "+1 555-333-1234", "15553331234" and "+15553331234" are stored
        # (and compared by the unique index) as the same E.164 number. Patterns stay as given.
        phone = canonical_number(phone)
    choices = None if sip else _inventory_choices(call, kind)
    given = _settable(f)
    now = call.services.clock()
    sid = new_sid("PN")

    def row_for(item: InventoryNumber | None) -> dict[str, Any]:
        row = _defaults(item)
        row.update(
            sid=sid,
            account_sid=account["sid"],
            organization_sid=org,
            phone_number=phone if item is None else item.phone_number,
            friendly_name=phone if item is None else item.friendly_name,
            number_type=(kind or "local") if item is None else item.type,
            pure_sip=sip,
            is_pattern=pattern,
            api_version=API_VERSION,
            date_created=now,
            date_updated=now,
        )
        row.update(given)
        if not row["friendly_name"]:  # an empty FriendlyName means the default, not ""
            row["friendly_name"] = phone if item is None else item.friendly_name
        return row

    # Two requests racing for the same number: the unique index lets one win. With AreaCode the
    # loser retries and takes the next free number.
    for _attempt in range(3):
        try:
            async with call.write() as conn:
                await _check_applications(conn, account["sid"], given)
                if choices is None:
                    if await _taken(conn, [phone], org):
                        raise _unavailable(f"{phone} is already provisioned")
                    row = row_for(None)
                else:
                    taken = await _taken(conn, [n.phone_number for n in choices], None)
                    free = [n for n in choices if n.phone_number not in taken]
                    if not free:
                        raise _unavailable(
                            f"{choices[0].phone_number} is already provisioned" if len(choices) == 1
                            else f"Every number with area code {f['AreaCode']} is already provisioned"
                        )
                    row = row_for(free[0])
                await conn.run(_INSERT, row)
                await call.audit(conn, "create", "IncomingPhoneNumber", sid, account["sid"], f.keys())
                created = await _read(conn, sid)
            return call.item(INCOMING_NUMBER, created)
        except IntegrityError:
            if choices is None or len(choices) == 1:
                break
    raise _unavailable(f"{phone or 'The number'} is already provisioned")


async def list_numbers(call: Call, kind: str | None) -> Response:
    account = await call.account()
    page, size = call.paging()
    q = call.query
    if kind is None and not any(q.get(name) for name in ("PhoneNumber", "FriendlyName", "Tag", "SortBy", "Reverse")):
        total = (await call.fetch_one(_COUNT, {"account_sid": account["sid"]}))["n"]
        rows = await call.fetch_all(_PAGE, {"account_sid": account["sid"], "offset": page * size, "limit": size})
        return call.page(INCOMING_NUMBER, rows, total, page, size)
    cond = [numbers.c.account_sid == account["sid"]]
    if kind is not None:
        cond.append(numbers.c.number_type == kind)
    if q.get("PhoneNumber"):
        cond.append(numbers.c.phone_number.contains(q["PhoneNumber"].strip(), autoescape=True))
    if q.get("FriendlyName"):
        cond.append(numbers.c.friendly_name.contains(q["FriendlyName"], autoescape=True))
    tagged = tag_condition(call, numbers.c.sid, "IncomingPhoneNumbers", account["sid"])
    if tagged is not None:
        cond.append(tagged)
    field, _, direction = (q.get("SortBy") or "PhoneNumber").partition(":")
    if direction and direction.lower() not in ("asc", "desc"):
        raise ApiError(400, 20001, "Invalid parameter SortBy: the direction must be asc or desc")
    column = numbers.c.friendly_name if field.strip().lower() in ("friendlyname", "friendly_name") else numbers.c.phone_number
    descending = direction.lower() == "desc" or q.get("Reverse") is True
    order = [column.desc(), numbers.c.sid.desc()] if descending else [column.asc(), numbers.c.sid.asc()]
    total = (await call.fetch_one(select(func.count().label("n")).select_from(numbers).where(*cond)))["n"]
    rows = await call.fetch_all(_select().where(*cond).order_by(*order).offset(page * size).limit(size))
    return call.page(INCOMING_NUMBER, rows, total, page, size)


# ---------------------------------------------------------------------------------------------
# Operations. The fixed paths (/Local, /AvailableCountries ...) are declared before the item
# path so that they are routed first.


@operation("GET", LIST_PATH + "/AvailableCountries", summary="Countries of the number inventory", tag=TAG,
           kind="list")
async def available_countries(call: Call) -> Response:
    await call.account()
    countries = sorted({n.iso_country for n in inventory(call.settings) if n.iso_country})
    if call.fmt == "json":
        return call.respond(orjson.dumps(countries))
    inner = "".join(f"<AvailableCountry>{c}</AvailableCountry>" for c in countries)
    return call.respond(xml_document(f"<AvailableCountries>{inner}</AvailableCountries>"))


def _register_typed(path_type: str, kind: str) -> None:
    @operation("GET", f"{LIST_PATH}/{path_type}", summary=f"List the account's {path_type} numbers", tag=TAG,
               shape=INCOMING_NUMBER, kind="page", query=LIST_QUERY)
    async def list_typed(call: Call) -> Response:
        return await list_numbers(call, kind)

    @operation("POST", f"{LIST_PATH}/{path_type}", summary=f"Provision a {path_type} number", tag=TAG,
               shape=INCOMING_NUMBER, form=CREATE, responses={400: "unavailable (21452) or invalid number"})
    async def create_typed(call: Call) -> Response:
        return await create_number(call, kind)

    list_typed.__name__ = f"list_{kind}_numbers"
    create_typed.__name__ = f"create_{kind}_number"


for _path_type, _kind in NUMBER_TYPES.items():
    _register_typed(_path_type, _kind)


@operation("GET", LIST_PATH, summary="List the account's incoming numbers (paged, by phone number)", tag=TAG,
           shape=INCOMING_NUMBER, kind="page", query=LIST_QUERY)
async def list_all_numbers(call: Call) -> Response:
    return await list_numbers(call, None)


@operation("POST", LIST_PATH, summary="Provision an inventory number, or add a SIP number or pattern (isSIP=true)",
           tag=TAG, shape=INCOMING_NUMBER, form=CREATE, responses={400: "unavailable (21452) or invalid number"})
async def create_any_number(call: Call) -> Response:
    return await create_number(call, None)


@operation("GET", ITEM_PATH, summary="Read an incoming number", tag=TAG, shape=INCOMING_NUMBER)
async def get_number(call: Call) -> Response:
    _, row = await call.owned(numbers, "IncomingPhoneNumberSid", "The incoming phone number")
    return call.item(INCOMING_NUMBER, await _read(await call.conn(), row["sid"]))


@operation("POST", ITEM_PATH, summary="Update an incoming number (POST and PUT alike)", tag=TAG,
           shape=INCOMING_NUMBER, form=COMMON)
async def update_number(call: Call) -> Response:
    account, row = await call.owned(numbers, "IncomingPhoneNumberSid", "The incoming phone number", write=True)
    values = _settable(call.form)
    values["date_updated"] = call.services.clock()
    async with call.write() as conn:
        await _check_applications(conn, account["sid"], values)
        await conn.run(_UPDATE, {**values, "where_sid": row["sid"]})
        await call.audit(conn, "update", "IncomingPhoneNumber", row["sid"], account["sid"], call.form.keys())
        updated = await _read(conn, row["sid"])
    return call.item(INCOMING_NUMBER, updated)


@operation("DELETE", ITEM_PATH, summary="Release an incoming number (204)", tag=TAG, kind="empty", status=204)
async def delete_number(call: Call) -> Response:
    account, row = await call.owned(numbers, "IncomingPhoneNumberSid", "The incoming phone number", write=True)
    async with call.write() as conn:
        await conn.run(_DELETE, {"sid": row["sid"]})
        await conn.run(_DELETE_TAGS, {"sid": row["sid"]})
        await call.audit(conn, "delete", "IncomingPhoneNumber", row["sid"], account["sid"])
    return call.empty(204)
