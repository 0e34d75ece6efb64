"""OutgoingCallerIds: numbers an account may present as caller id (stored in E.164).

Restcomm answers an unparsable number with a 500 and DELETE of an unknown id with 200; here they
are 400 (code 21401) and 404.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.phone import national_format, to_e164
from restcomm.store import schema as t
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "OutgoingCallerIds"
LIST_PATH = "/Accounts/{AccountSid}/OutgoingCallerIds"
ITEM_PATH = LIST_PATH + "/{OutgoingCallerIdSid}"

caller_ids = t.outgoing_caller_ids

CALLER_ID = Shape(
    name="OutgoingCallerId",
    list_name="OutgoingCallerIds",
    items_key="outgoing_caller_ids",
    fields=(
        col("sid", "Sid"),
        col("account_sid", "AccountSid"),
        col("friendly_name", "FriendlyName"),
        col("phone_number", "PhoneNumber"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed(
            "uri",
            "Uri",
            lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/OutgoingCallerIds/{r['sid']}",
            is_uri=True,
        ),
    ),
)


def _e164(raw: str, name: str = "PhoneNumber") -> str:
    e164 = to_e164(raw)
    if e164 is None:
        raise ApiError(400, 21401, f"Invalid parameter {name}: {raw!r} is not a valid phone number")
    return e164


@operation("GET", LIST_PATH, summary="List the account's outgoing caller ids", tag=TAG, shape=CALLER_ID,
           kind="list",
           query=(Param("PhoneNumber", max_length=64, description="only this number (any format)"),
                  Param("FriendlyName", max_length=255, description="only this friendly name")))
async def list_caller_ids(call: Call) -> Response:
    account = await call.account()
    cond = [caller_ids.c.account_sid == account["sid"]]
    if call.query.get("PhoneNumber"):
        cond.append(caller_ids.c.phone_number == _e164(call.query["PhoneNumber"]))
    if call.query.get("FriendlyName"):
        cond.append(caller_ids.c.friendly_name == call.query["FriendlyName"])
    rows = await call.fetch_all(
        select(caller_ids).where(*cond).order_by(caller_ids.c.date_created, caller_ids.c.sid)
    )
    return call.bare_list(CALLER_ID, rows)


@operation("POST", LIST_PATH, summary="Add an outgoing caller id", tag=TAG, shape=CALLER_ID,
           form=(Param("PhoneNumber", required=True, max_length=64, code=21401,
                       description="any format; stored in E.164 (US numbers may omit +1)"),
                 Param("FriendlyName", max_length=255, description="default: the national format")))
async def create_caller_id(call: Call) -> Response:
    account = await call.account(write=True)
    e164 = _e164(call.form["PhoneNumber"])
    now = call.services.clock()
    row = {
        "sid": new_sid("PN"),
        "account_sid": account["sid"],
        "friendly_name": call.form.get("FriendlyName") or national_format(e164),
        "phone_number": e164,
        "api_version": API_VERSION,
        "date_created": now,
        "date_updated": now,
    }
    async with call.write() as conn:
        await conn.execute(insert(caller_ids).values(**row))
        await call.audit(conn, "create", "OutgoingCallerId", row["sid"], account["sid"], call.form.keys())
    return call.item(CALLER_ID, row)


@operation("GET", ITEM_PATH, summary="Read an outgoing caller id", tag=TAG, shape=CALLER_ID)
async def get_caller_id(call: Call) -> Response:
    _, row = await call.owned(caller_ids, "OutgoingCallerIdSid", "The outgoing caller id")
    return call.item(CALLER_ID, row)


@operation("POST", ITEM_PATH, summary="Rename an outgoing caller id (POST and PUT alike)", tag=TAG,
           shape=CALLER_ID, form=(Param("FriendlyName", max_length=255),))
async def update_caller_id(call: Call) -> Response:
    account, row = await call.owned(caller_ids, "OutgoingCallerIdSid", "The outgoing caller id", write=True)
    if "FriendlyName" not in call.form:
        return call.item(CALLER_ID, row)
    values = {"friendly_name": call.form["FriendlyName"], "date_updated": call.services.clock()}
    async with call.write() as conn:
        await conn.execute(update(caller_ids).where(caller_ids.c.sid == row["sid"]).values(**values))
        await call.audit(conn, "update", "OutgoingCallerId", row["sid"], account["sid"], call.form.keys())
    return call.item(CALLER_ID, {**row, **values})


@operation("DELETE", ITEM_PATH, summary="Remove an outgoing caller id (404 when unknown)", tag=TAG, kind="empty")
async def delete_caller_id(call: Call) -> Response:
    account, row = await call.owned(caller_ids, "OutgoingCallerIdSid", "The outgoing caller id", write=True)
    async with call.write() as conn:
        await conn.execute(delete(caller_ids).where(caller_ids.c.sid == row["sid"]))
        await call.audit(conn, "delete", "OutgoingCallerId", row["sid"], account["sid"])
    return call.empty(200)
