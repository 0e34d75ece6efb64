"""API Keys (Twilio-like): extra credentials for an account, each revocable on its own.

A key authenticates as ``KeySid:Secret`` exactly as ``AccountSid:AuthToken`` does for its account
(restcomm.api.auth). The secret is shown once, in the answer to the create; only its digest is
stored. As with Twilio's standard keys, a request authenticated with a key cannot manage keys, so
a leaked key cannot mint or revive credentials for itself.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.security import hash_secret, new_secret
from restcomm.store.schema import api_keys
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Keys"
LIST_PATH = "/Accounts/{AccountSid}/Keys"
ITEM_PATH = "/Accounts/{AccountSid}/Keys/{KeySid}"

_FIELDS = (
    col("sid", "Sid"),
    col("account_sid", "AccountSid"),
    col("friendly_name", "FriendlyName"),
    computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
    computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
    computed("uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/Keys/{r['sid']}", is_uri=True),
)

KEY = Shape(name="Key", list_name="Keys", items_key="keys", fields=_FIELDS)

# Only the create answer carries the secret.
NEW_KEY = Shape(
    name="Key",
    list_name="Keys",
    items_key="keys",
    fields=_FIELDS + (col("secret", "Secret", description="shown only once, in this answer"),),
)

FORM = (Param("FriendlyName", max_length=255, description="a label for the key"),)


def _refuse_key_credentials(call: Call) -> None:
    if call.me.credential_sid != call.me.sid:
        raise ApiError(403, 20006, "API keys cannot manage API keys; use the account's AuthToken")


@operation("POST", LIST_PATH, summary="Create an API key; its secret is shown only in this answer", tag=TAG,
           shape=NEW_KEY, form=FORM, status=201)
async def create_key(call: Call) -> Response:
    _refuse_key_credentials(call)
    account = await call.account(write=True)
    secret = new_secret()
    now = call.services.clock()
    row = {
        "sid": new_sid("SK"),
        "account_sid": account["sid"],
        "friendly_name": call.form.get("FriendlyName") or "",
        "secret_hash": hash_secret(secret),
        "date_created": now,
        "date_updated": now,
    }
    async with call.write() as conn:
        await conn.execute(insert(api_keys).values(**row))
        await call.audit(conn, "create", "Key", row["sid"], account["sid"], call.form.keys())
    return call.item(NEW_KEY, {**row, "secret": secret})


@operation("GET", LIST_PATH, summary="List the account's API keys (without secrets)", tag=TAG,
           shape=KEY, kind="page")
async def list_keys(call: Call) -> Response:
    _refuse_key_credentials(call)
    account = await call.account()
    page, size = call.paging()
    cond = api_keys.c.account_sid == account["sid"]
    total = (await call.fetch_one(select(func.count().label("n")).select_from(api_keys).where(cond)))["n"]
    rows = await call.fetch_all(
        select(api_keys).where(cond).order_by(api_keys.c.date_created.desc(), api_keys.c.sid)
        .offset(page * size).limit(size)
    )
    return call.page(KEY, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read an API key (without its secret)", tag=TAG, shape=KEY)
async def get_key(call: Call) -> Response:
    _refuse_key_credentials(call)
    _, row = await call.owned(api_keys, "KeySid", "The key")
    return call.item(KEY, row)


@operation("POST", ITEM_PATH, summary="Rename an API key (POST and PUT alike)", tag=TAG, shape=KEY, form=FORM)
async def update_key(call: Call) -> Response:
    _refuse_key_credentials(call)
    account, row = await call.owned(api_keys, "KeySid", "The key", write=True)
    if "FriendlyName" not in call.form:
        return call.item(KEY, row)
    values = {"friendly_name": call.form["FriendlyName"] or "", "date_updated": call.services.clock()}
    async with call.write() as conn:
        done = await conn.execute(update(api_keys).where(api_keys.c.sid == row["sid"]).values(**values))
        if done.rowcount == 0:
            raise not_found("The key")
        await call.audit(conn, "update", "Key", row["sid"], account["sid"], call.form.keys())
    return call.item(KEY, {**row, **values})


@operation("DELETE", ITEM_PATH, summary="Delete (revoke) an API key", tag=TAG, kind="empty", status=204)
async def delete_key(call: Call) -> Response:
    _refuse_key_credentials(call)
    account, row = await call.owned(api_keys, "KeySid", "The key", write=True)
    async with call.write() as conn:
        done = await conn.execute(delete(api_keys).where(api_keys.c.sid == row["sid"]))
        if done.rowcount == 0:
            raise not_found("The key")
        await call.audit(conn, "delete", "Key", row["sid"], account["sid"])
    return call.empty(204)
