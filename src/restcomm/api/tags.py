"""Tags: key/value labels on an account's resources, for finding them again (``?Tag=key:value`` on
the lists of accounts, clients, applications and incoming numbers).

Restcomm names Tags in its API's table of contents without a design; this one follows the rest of
the API: ``/Accounts/{AccountSid}/Tags`` with form bodies, 200 on create as Restcomm's creates,
the shared paging envelope, 204 on delete. A tag belongs to the account under which it is made,
and its resource must be that account's: the account itself (``AC``), or one of its incoming
numbers (``PN``), clients (``CL``) or applications (``AP``). A resource holds one value per key
(409 for a second); deleting the resource deletes its tags, and closing an account its tags.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, invalid, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.api.tagging import KEY
from restcomm.store import schema as t
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Tags"
LIST_PATH = "/Accounts/{AccountSid}/Tags"
ITEM_PATH = "/Accounts/{AccountSid}/Tags/{TagSid}"

# SID prefix -> (resource type, its table); the resource type is also the name of its list path.
RESOURCES: dict[str, tuple[str, Any]] = {
    "AC": ("Accounts", t.accounts),
    "PN": ("IncomingPhoneNumbers", t.incoming_phone_numbers),
    "CL": ("Clients", t.clients),
    "AP": ("Applications", t.applications),
}

TAG_SHAPE = Shape(
    name="Tag",
    list_name="Tags",
    items_key="tags",
    fields=(
        col("sid", "Sid"),
        col("account_sid", "AccountSid"),
        col("resource_type", "ResourceType", description="Accounts | IncomingPhoneNumbers | Clients | Applications"),
        col("resource_sid", "ResourceSid"),
        col("key", "Key"),
        col("value", "Value"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/Tags/{r['sid']}", is_uri=True),
    ),
)

_KEY_HELP = "1 to 128 characters, no ':'"
CREATE = (
    Param("ResourceSid", required=True, max_length=34, description="the tagged resource: AC, PN, CL or AP SID"),
    Param("Key", required=True, max_length=128, description=_KEY_HELP),
    Param("Value", max_length=256, description="empty by default"),
)
UPDATE = (
    Param("Key", max_length=128, description=_KEY_HELP),
    Param("Value", max_length=256),
)
LIST_QUERY = (
    Param("ResourceSid", max_length=34, description="only this resource's tags"),
    Param("Key", max_length=128, description="only tags with this key"),
    Param("Value", max_length=256, description="only tags with this value"),
)


def _key(raw: str) -> str:
    key = raw.strip()
    if not KEY.match(key):
        raise invalid("Key", _KEY_HELP)
    return key


async def _resource_type(call: Call, account: Any, sid: str) -> str:
    """The type of ``sid`` if it is the account or one of its taggable resources, else 404."""
    kind = RESOURCES.get(sid[:2])
    if kind is None:
        raise ApiError(400, 20001, "Invalid parameter ResourceSid: an account, incoming number, client or "
                                   "application SID")
    name, table = kind
    if name == "Accounts":
        if sid != account["sid"]:
            raise not_found("The resource")  # tag a sub-account under its own /Accounts/{sid}/Tags
        return name
    row = await call.fetch_one(select(table.c.account_sid).where(table.c.sid == sid))
    if row is None or row["account_sid"] != account["sid"]:
        raise not_found("The resource")
    return name


@operation("POST", LIST_PATH, summary="Tag one of the account's resources (the account, a number, a client, "
           "an application)", tag=TAG, shape=TAG_SHAPE, form=CREATE, responses={409: "the resource has this key"})
async def create_tag(call: Call) -> Response:
    account = await call.account(write=True)
    f = call.form
    key = _key(f["Key"])
    resource_type = await _resource_type(call, account, f["ResourceSid"])
    now = call.services.clock()
    row = {"sid": new_sid("TG"), "account_sid": account["sid"], "resource_type": resource_type,
           "resource_sid": f["ResourceSid"], "key": key, "value": f.get("Value") or "",
           "date_created": now, "date_updated": now}
    async with call.write() as conn:
        taken = (await conn.execute(select(t.tags.c.sid).where(t.tags.c.resource_sid == row["resource_sid"],
                                                                t.tags.c.key == key))).first()
        if taken:
            raise ApiError(409, 20010, f"The resource already has a tag {key!r}; update that one")
        await conn.execute(insert(t.tags).values(**row))
        await call.audit(conn, "create", "Tag", row["sid"], account["sid"], f.keys())
    return call.item(TAG_SHAPE, row)


@operation("GET", LIST_PATH, summary="List the account's tags (paged; by resource, key, value)", tag=TAG,
           shape=TAG_SHAPE, kind="page", query=LIST_QUERY)
async def list_tags(call: Call) -> Response:
    account = await call.account()
    page, size = call.paging()
    q = call.query
    cond = [t.tags.c.account_sid == account["sid"]]
    for param, column in (("ResourceSid", t.tags.c.resource_sid), ("Key", t.tags.c.key), ("Value", t.tags.c.value)):
        if param in q:
            cond.append(column == (q[param].strip() if param == "Key" else q[param]))
    total = (await call.fetch_one(select(func.count().label("n")).select_from(t.tags).where(*cond)))["n"]
    rows = await call.fetch_all(select(t.tags).where(*cond).order_by(t.tags.c.date_created, t.tags.c.sid)
                                .offset(page * size).limit(size))
    return call.page(TAG_SHAPE, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read a tag", tag=TAG, shape=TAG_SHAPE)
async def get_tag(call: Call) -> Response:
    _, row = await call.owned(t.tags, "TagSid", "The tag")
    return call.item(TAG_SHAPE, row)


@operation("POST", ITEM_PATH, summary="Change a tag's key or value (POST and PUT alike)", tag=TAG, shape=TAG_SHAPE,
           form=UPDATE, responses={409: "the resource has a tag with the new key"})
async def update_tag(call: Call) -> Response:
    account, row = await call.owned(t.tags, "TagSid", "The tag", write=True)
    values: dict[str, Any] = {}
    if "Key" in call.form:
        values["key"] = _key(call.form["Key"])
    if "Value" in call.form:
        values["value"] = call.form["Value"] or ""
    if not values:
        return call.item(TAG_SHAPE, row)
    values["date_updated"] = call.services.clock()
    async with call.write() as conn:
        if values.get("key", row["key"]) != row["key"]:
            taken = (await conn.execute(select(t.tags.c.sid).where(t.tags.c.resource_sid == row["resource_sid"],
                                                                    t.tags.c.key == values["key"]))).first()
            if taken:
                raise ApiError(409, 20010, f"The resource already has a tag {values['key']!r}")
        done = await conn.execute(update(t.tags).where(t.tags.c.sid == row["sid"]).values(**values))
        if done.rowcount == 0:
            raise not_found("The tag")
        await call.audit(conn, "update", "Tag", row["sid"], account["sid"], call.form.keys())
    return call.item(TAG_SHAPE, {**row, **values})


@operation("DELETE", ITEM_PATH, summary="Delete a tag (204)", tag=TAG, kind="empty", status=204)
async def delete_tag(call: Call) -> Response:
    account, row = await call.owned(t.tags, "TagSid", "The tag", write=True)
    async with call.write() as conn:
        done = await conn.execute(delete(t.tags).where(t.tags.c.sid == row["sid"]))
        if done.rowcount == 0:
            raise not_found("The tag")
        await call.audit(conn, "delete", "Tag", row["sid"], account["sid"])
    return call.empty(204)
