"""IAM users: people who sign in to an account with their own email and password and a role,
instead of sharing the account's AuthToken or password.

A user authenticates with HTTP Basic ``email:password`` (restcomm.api.auth) and then acts exactly
as its account would (the account and its descendants; the account's status applies), with the
permissions of its own role (restcomm.api.roles: ``Administrator`` or ``Developer``). Everything
it changes is attributed to it in the audit log (``credential_sid`` = the user's SID).

Managing users needs the Users permission (Administrators only) and cannot be done with an API key.
Emails are unique across users and accounts, so a sign-in names exactly one of them. Passwords
must be strong (the accounts' rule) and are stored as the accounts' are (restcomm.security).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.passwords import is_strong
from restcomm.api.roles import ROLES
from restcomm.api.shapes import Shape, col, computed
from restcomm.security import hash_password_async
from restcomm.store import schema as t
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Users"
LIST_PATH = "/Accounts/{AccountSid}/Users"
ITEM_PATH = "/Accounts/{AccountSid}/Users/{UserSid}"

USER = Shape(
    name="User",
    list_name="Users",
    items_key="users",
    fields=(
        col("sid", "Sid"),
        col("account_sid", "AccountSid"),
        col("email", "Email"),
        col("friendly_name", "FriendlyName"),
        col("role", "Role", description="Administrator | Developer"),
        col("status", "Status", description="active | suspended"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/Users/{r['sid']}", is_uri=True),
    ),
)

ROLE = Param("Role", "enum", enum=ROLES, description="the user's permissions (default Developer)")
STATUS = Param("Status", "enum", enum=("active", "suspended"), description="a suspended user cannot sign in")
CREATE = (
    Param("Email", "email", required=True, description="the sign-in name; unique among users and accounts"),
    Param("Password", required=True, secret=True, max_length=256),
    Param("FriendlyName", max_length=255),
    ROLE,
    STATUS,
)
UPDATE = (Param("FriendlyName", max_length=255), Param("Password", secret=True, max_length=256), ROLE, STATUS)


def _refuse_keys(call: Call) -> None:
    if call.me.credential_sid.startswith("SK"):
        raise ApiError(403, 20006, "API keys cannot manage users; sign in as the account or an Administrator user")


def _check_password(password: str) -> None:
    if not is_strong(password):
        raise ApiError(400, 22001, "Password too weak")


@operation("POST", LIST_PATH, summary="Create a user who signs in with its own email and password", tag=TAG,
           shape=USER, form=CREATE, responses={409: "the email is taken"})
async def create_user(call: Call) -> Response:
    _refuse_keys(call)
    account = await call.account(write=True)
    f = call.form
    _check_password(f["Password"])
    email = f["Email"]
    now = call.services.clock()
    row = {"sid": new_sid("US"), "account_sid": account["sid"], "email": email,
           "friendly_name": f.get("FriendlyName") or email, "role": f.get("Role", "Developer"),
           "status": f.get("Status", "active"), "password_hash": await hash_password_async(f["Password"]),
           "date_created": now, "date_updated": now}
    async with call.write() as conn:
        for table in (t.users, t.accounts):
            if (await conn.execute(select(table.c.sid).where(table.c.email == email))).first():
                raise ApiError(409, 20010, "The email address is already in use.")
        await conn.execute(insert(t.users).values(**row))
        await call.audit(conn, "create", "User", row["sid"], account["sid"], f.keys() - {"Password"})
    return call.item(USER, row)


@operation("GET", LIST_PATH, summary="List the account's users", tag=TAG, shape=USER, kind="page")
async def list_users(call: Call) -> Response:
    _refuse_keys(call)
    account = await call.account()
    page, size = call.paging()
    cond = t.users.c.account_sid == account["sid"]
    total = (await call.fetch_one(select(func.count().label("n")).select_from(t.users).where(cond)))["n"]
    rows = await call.fetch_all(select(t.users).where(cond).order_by(t.users.c.date_created, t.users.c.sid)
                                .offset(page * size).limit(size))
    return call.page(USER, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read a user", tag=TAG, shape=USER)
async def get_user(call: Call) -> Response:
    _refuse_keys(call)
    _, row = await call.owned(t.users, "UserSid", "The user")
    return call.item(USER, row)


@operation("POST", ITEM_PATH, summary="Update a user: name, password, role, status (POST and PUT alike)", tag=TAG,
           shape=USER, form=UPDATE)
async def update_user(call: Call) -> Response:
    _refuse_keys(call)
    account, row = await call.owned(t.users, "UserSid", "The user", write=True)
    f = call.form
    values: dict[str, Any] = {}
    if "FriendlyName" in f:
        values["friendly_name"] = f["FriendlyName"] or row["email"]
    if "Password" in f:
        _check_password(f["Password"])
        values["password_hash"] = await hash_password_async(f["Password"])
    for name in ("Role", "Status"):
        if name in f:
            values[name.lower()] = f[name]
    if not values:
        return call.item(USER, row)
    values["date_updated"] = call.services.clock()
    async with call.write() as conn:
        done = await conn.execute(update(t.users).where(t.users.c.sid == row["sid"]).values(**values))
        if done.rowcount == 0:
            raise not_found("The user")
        await call.audit(conn, "update", "User", row["sid"], account["sid"], f.keys())
    return call.item(USER, {**row, **values})


@operation("DELETE", ITEM_PATH, summary="Delete a user (204); it can no longer sign in", tag=TAG, kind="empty",
           status=204)
async def delete_user(call: Call) -> Response:
    _refuse_keys(call)
    account, row = await call.owned(t.users, "UserSid", "The user", write=True)
    async with call.write() as conn:
        done = await conn.execute(delete(t.users).where(t.users.c.sid == row["sid"]))
        if done.rowcount == 0:
            raise not_found("The user")
        await call.audit(conn, "delete", "User", row["sid"], account["sid"])
    return call.empty(204)
