"""AuthToken rotation, as Twilio does it: a secondary token, then promotion.

1. ``POST /Accounts/{AccountSid}/AuthTokens/Secondary`` creates a secondary AuthToken and shows it
   once. Both tokens authenticate from then on, so clients can be moved to the new one at leisure.
2. ``POST /Accounts/{AccountSid}/AuthTokens/Promote`` makes the secondary the primary; the old
   primary stops working at once, and webhook signatures are keyed with the new one.
3. ``DELETE /Accounts/{AccountSid}/AuthTokens/Secondary`` abandons a rotation.

Creating a secondary while one exists replaces it (the earlier one stops working). The account
itself and its ancestors may rotate; an API key may not (a leaked key must not be able to take the
account over), as for passwords. Twilio's own paths (``/v1/AuthTokens/Secondary``,
``/v1/AuthTokens/Promote``, for the authenticated account) are served too, with Twilio's JSON, so
its SDKs' ``accounts.v1.secondary_auth_token`` and ``auth_token_promotion`` work with only the base
URL changed. The token values are never logged nor audited (the audit trail names the change only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from restcomm.api.errors import ApiError, not_found
from restcomm.api.framework import Call, operation
from restcomm.api.shapes import Field, Row, Shape, col, computed
from restcomm.security import new_auth_token
from restcomm.store.schema import accounts
from restcomm.util import API_VERSION, rfc2822

TAG = "AuthTokens"
SECONDARY_PATH = "/Accounts/{AccountSid}/AuthTokens/Secondary"
PROMOTE_PATH = "/Accounts/{AccountSid}/AuthTokens/Promote"


def _iso(dt: datetime) -> str | None:
    return f"{dt:%Y-%m-%dT%H:%M:%S}Z"


def _shape(name: str, token: str, token_xml: str, date: Callable[[datetime], str | None], link: Field,
           json_nulls: bool = False) -> Shape:
    """One token answer: the account, the token (shown only here), the time of the change, a link."""
    return Shape(
        name=name,
        list_name=name + "s",
        items_key="",
        json_nulls=json_nulls,
        fields=(
            col("account_sid", "AccountSid"),
            col(token, token_xml),
            computed("date_created", "DateCreated", lambda r: date(r["now"])),
            computed("date_updated", "DateUpdated", lambda r: date(r["now"])),
            link,
        ),
    )


SECONDARY = _shape("SecondaryAuthToken", "secondary_auth_token", "SecondaryAuthToken", rfc2822, computed(
    "uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/AuthTokens/Secondary", is_uri=True))
PROMOTED = _shape("AuthToken", "auth_token", "AuthToken", rfc2822, computed(
    "uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}", is_uri=True))
# Twilio's v1 representations: ISO 8601 dates and a url.
TWILIO_SECONDARY = _shape("SecondaryAuthToken", "secondary_auth_token", "SecondaryAuthToken", _iso,
                          computed("url", "Url", lambda r: "/v1/AuthTokens/Secondary"), json_nulls=True)
TWILIO_PROMOTED = _shape("AuthTokenPromotion", "auth_token", "AuthToken", _iso,
                         computed("url", "Url", lambda r: "/v1/AuthTokens/Promote"), json_nulls=True)


# ---------------------------------------------------------------------------------------------
# The changes, in a write transaction of the caller's.


async def create_secondary(conn: AsyncConnection, account_sid: str, now: datetime) -> str:
    token = new_auth_token()
    await conn.execute(
        update(accounts).where(accounts.c.sid == account_sid).values(secondary_auth_token=token, date_updated=now)
    )
    return token


async def delete_secondary(conn: AsyncConnection, account_sid: str, now: datetime) -> bool:
    result = await conn.execute(
        update(accounts)
        .where(accounts.c.sid == account_sid, accounts.c.secondary_auth_token.is_not(None))
        .values(secondary_auth_token=None, date_updated=now)
    )
    return bool(result.rowcount)


async def promote_secondary(conn: AsyncConnection, account_sid: str, now: datetime) -> str | None:
    """The secondary becomes the primary in one statement; None when there is no secondary."""
    result = await conn.execute(
        update(accounts)
        .where(accounts.c.sid == account_sid, accounts.c.secondary_auth_token.is_not(None))
        .values(auth_token=accounts.c.secondary_auth_token, secondary_auth_token=None, date_updated=now)
        .returning(accounts.c.auth_token)
    )
    return result.scalar()


# ---------------------------------------------------------------------------------------------
# Operations


async def _target(call: Call, by_path: bool) -> Row:
    if call.me.credential_sid != call.me.sid:
        raise ApiError(403, 20006, "An API key cannot rotate AuthTokens; use the account's AuthToken")
    if by_path:
        return await call.account(write=True)
    account = call.me.account
    if account["status"] == "closed":
        raise ApiError(400, 22003, "Account is closed")
    return account


async def _create(call: Call, by_path: bool, shape: Shape) -> Response:
    account = await _target(call, by_path)
    now = call.services.clock()
    async with call.write() as conn:
        token = await create_secondary(conn, account["sid"], now)
        await call.audit(conn, "create", "SecondaryAuthToken", account["sid"], account["sid"])
    return call.item(shape, {"account_sid": account["sid"], "secondary_auth_token": token, "now": now})


async def _delete(call: Call, by_path: bool) -> Response:
    account = await _target(call, by_path)
    async with call.write() as conn:
        if not await delete_secondary(conn, account["sid"], call.services.clock()):
            raise not_found("The secondary AuthToken")
        await call.audit(conn, "delete", "SecondaryAuthToken", account["sid"], account["sid"])
    return call.empty(204)


async def _promote(call: Call, by_path: bool, shape: Shape) -> Response:
    account = await _target(call, by_path)
    now = call.services.clock()
    async with call.write() as conn:
        token = await promote_secondary(conn, account["sid"], now)
        if token is None:
            raise not_found("The secondary AuthToken to promote")
        await call.audit(conn, "update", "AuthToken", account["sid"], account["sid"], ["AuthToken"])
    row: dict[str, Any] = {"account_sid": account["sid"], "auth_token": token, "now": now}
    return call.item(shape, row)


@operation("POST", SECONDARY_PATH, summary="Create a secondary AuthToken (shown only in this answer)", tag=TAG,
           shape=SECONDARY, status=201)
async def create_secondary_token(call: Call) -> Response:
    return await _create(call, True, SECONDARY)


@operation("DELETE", SECONDARY_PATH, summary="Delete the secondary AuthToken", tag=TAG, kind="empty", status=204)
async def delete_secondary_token(call: Call) -> Response:
    return await _delete(call, True)


@operation("POST", PROMOTE_PATH, summary="Promote the secondary AuthToken to primary (the old one stops working)",
           tag=TAG, shape=PROMOTED)
async def promote_token(call: Call) -> Response:
    return await _promote(call, True, PROMOTED)


# Twilio's paths: the authenticated account's tokens.
@operation("POST", "/v1/AuthTokens/Secondary", summary="Twilio: create a secondary AuthToken", tag=TAG,
           shape=TWILIO_SECONDARY, status=201, root="")
async def twilio_create_secondary(call: Call) -> Response:
    return await _create(call, False, TWILIO_SECONDARY)


@operation("DELETE", "/v1/AuthTokens/Secondary", summary="Twilio: delete the secondary AuthToken", tag=TAG,
           kind="empty", status=204, root="")
async def twilio_delete_secondary(call: Call) -> Response:
    return await _delete(call, False)


@operation("POST", "/v1/AuthTokens/Promote", summary="Twilio: promote the secondary AuthToken", tag=TAG,
           shape=TWILIO_PROMOTED, root="")
async def twilio_promote(call: Call) -> Response:
    return await _promote(call, False, TWILIO_PROMOTED)
