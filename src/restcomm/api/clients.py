"""Clients: the SIP users of an account (Login + digest password), reachable as <Client> in RCML.

A Login is unique in the organization. Creating a login the same account already has returns that
client unchanged (Restcomm's idempotent create); a login of another account is a 409. The password
is stored as the digest HA1 md5(login:realm:password) and never shown: it is password-equivalent.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from restcomm.api.accounts import ha1
from restcomm.api.errors import ApiError, invalid, not_found
from restcomm.api.framework import Call, Param, by_sid, operation
from restcomm.api.passwords import is_strong
from restcomm.api.shapes import Row, Shape, col, computed
from restcomm.api.tagging import TAG_FILTER, tag_condition
from restcomm.store import schema as t
from restcomm.store.compiled import Query
from restcomm.store.session import Session
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Clients"
ITEM_PATH = "/Accounts/{AccountSid}/Clients/{ClientSid}"
LIST_PATH = "/Accounts/{AccountSid}/Clients"

# Restcomm refuses ? = @ (they break the SIP URI and the login lookup). Whitespace, control
# characters and ':' are refused too: none can appear in a SIP user part, and ':' would make the
# digest HA1 "login:realm:password" ambiguous.
_BAD_LOGIN = re.compile(r"[?=@:\s\x00-\x1f\x7f]")
_SID = re.compile(r"^[A-Za-z0-9]{34}$")


def _uri(r: Row) -> str:
    return f"/{API_VERSION}/Accounts/{r['account_sid']}/Clients/{r['sid']}"


CLIENT = Shape(
    name="Client",
    list_name="Clients",
    items_key="clients",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("account_sid", "AccountSid"),
        col("api_version", "ApiVersion"),
        col("friendly_name", "FriendlyName"),
        col("login", "Login"),
        # Restcomm shows the stored HA1 in "password" here; it is password-equivalent for SIP
        # digest, so it is never rendered (see docs/compatibility.md).
        col("password_algorithm", "Password_Algorithm"),
        computed("status", "Status", lambda r: str(r["status"]), description='"1" enabled, "0" disabled'),
        col("voice_url", "VoiceUrl"),
        col("voice_method", "VoiceMethod"),
        col("voice_fallback_url", "VoiceFallbackUrl"),
        col("voice_fallback_method", "VoiceFallbackMethod"),
        col("voice_application_sid", "VoiceApplicationSid"),
        computed("uri", "Uri", _uri, is_uri=True),
        col("push_client_identity", "PushClientIdentity"),
    ),
)

_COMMON = (
    Param("FriendlyName", max_length=255, description="defaults to the Login"),
    Param("Status", "integer", minimum=0, maximum=1, description="1 enabled (default), 0 disabled"),
    Param("VoiceUrl", "url_or_path", description="RCML fetched for calls from this client; empty clears"),
    Param("VoiceMethod", "method"),
    Param("VoiceFallbackUrl", "url_or_path", description="empty clears"),
    Param("VoiceFallbackMethod", "method"),
    Param("VoiceApplicationSid", max_length=34, description="an application of the same account; empty clears"),
    Param("IsPushEnabled", "boolean", description="true sets push_client_identity to the client SID"),
)

CREATE = (
    Param("Login", required=True, max_length=255, description="SIP user name; unique in the organization"),
    Param("Password", required=True, secret=True, max_length=256, description="must be strong"),
    *_COMMON,
    Param("ApiVersion", max_length=16),
)

UPDATE = (Param("Password", secret=True, max_length=256, description="must be strong"), *_COMMON)


def _check_login(login: str) -> None:
    if _BAD_LOGIN.search(login):
        raise invalid("Login", f"{login!r} contains invalid character(s)")


def ha1_sha256(login: str, realm: str, password: str) -> str:
    """The SHA-256 digest HA1 (RFC 7616), stored beside the MD5 one so SIP phones may use either."""
    return hashlib.sha256(f"{login}:{realm}:{password}".encode()).hexdigest()


def _check_password(password: str) -> None:
    if not is_strong(password):
        raise ApiError(400, 22001, "Password too weak")


_APPLICATION_OWNER = Query(
    select(t.applications.c.account_sid).where(t.applications.c.sid == bindparam("sid")).with_for_update(read=True)
)


async def check_application(conn: Session, account_sid: str, app_sid: str, name: str) -> None:
    """The application must exist in the same account. FOR SHARE (PostgreSQL) keeps a concurrent
    delete of that application from committing between this check and our reference to it."""
    row = await conn.first(_APPLICATION_OWNER, {"sid": app_sid})
    if row is None or row["account_sid"] != account_sid:
        raise invalid(name, f"{app_sid} is not an application of account {account_sid}")


def _voice_values(f: dict[str, Any], values: dict[str, Any]) -> None:
    for param, column in (
        ("FriendlyName", "friendly_name"),
        ("Status", "status"),
        ("VoiceUrl", "voice_url"),
        ("VoiceMethod", "voice_method"),
        ("VoiceFallbackUrl", "voice_fallback_url"),
        ("VoiceFallbackMethod", "voice_fallback_method"),
    ):
        if param in f:
            values[column] = f[param]
    if "VoiceApplicationSid" in f:
        values["voice_application_sid"] = f["VoiceApplicationSid"] or None


# Constant statements (store/compiled.py: compiled once; building them per call cost several per
# cent of a node's CPU under mixed load). The login lookup runs with ``_login_params``.
_LOGIN_QUERY = Query(select(t.clients).where(
    t.clients.c.organization_sid == bindparam("login_org"), t.clients.c.login == bindparam("login_name")
))
_LIST = Query(select(t.clients).where(t.clients.c.account_sid == bindparam("account_sid"))
              .order_by(t.clients.c.date_created, t.clients.c.sid))
_INSERT = Query(insert(t.clients))
_UPDATE = Query(update(t.clients).where(t.clients.c.sid == bindparam("where_sid")))
_DELETE = Query(delete(t.clients).where(t.clients.c.sid == bindparam("sid")))
_DELETE_TAGS = Query(delete(t.tags).where(t.tags.c.resource_sid == bindparam("sid")))


def _login_params(organization_sid: str, login: str) -> dict[str, str]:
    return {"login_org": organization_sid, "login_name": login}


def _existing(call: Call, account: Row, row: Row) -> Response:
    """A create of a login that exists: the same account gets it back unchanged, others a 409."""
    if row["account_sid"] == account["sid"]:
        return call.item(CLIENT, row)
    raise ApiError(
        409,
        20010,
        "A client with the same name was already created by another account. "
        "Please, choose a different name and try again.",
    )


@operation("GET", LIST_PATH, summary="List the account's clients", tag=TAG, shape=CLIENT, kind="list",
           query=(TAG_FILTER,))
async def list_clients(call: Call) -> Response:
    account = await call.account()
    tagged = tag_condition(call, t.clients.c.sid, "Clients", account["sid"])
    if tagged is None:
        return call.bare_list(CLIENT, await call.fetch_all(_LIST, {"account_sid": account["sid"]}))
    rows = await call.fetch_all(
        select(t.clients).where(t.clients.c.account_sid == account["sid"], tagged)
        .order_by(t.clients.c.date_created, t.clients.c.sid)
    )
    return call.bare_list(CLIENT, rows)


@operation("POST", LIST_PATH, summary="Create a client (an existing Login of this account is returned unchanged)",
           tag=TAG, shape=CLIENT, form=CREATE, responses={409: "the Login belongs to another account"})
async def create_client(call: Call) -> Response:
    account = await call.account(write=True)
    f = call.form
    login: str = f["Login"]
    _check_login(login)
    org = account["organization_sid"]
    found = await call.fetch_one(_LOGIN_QUERY, _login_params(org, login))
    if found is not None:
        return _existing(call, account, found)
    _check_password(f["Password"])
    now = call.services.clock()
    sid = new_sid("CL")
    row: dict[str, Any] = {
        "sid": sid,
        "account_sid": account["sid"],
        "organization_sid": org,
        "login": login,
        "friendly_name": login,
        "password": ha1(login, call.settings.domain, f["Password"]),
        "password_algorithm": "MD5",
        "password_sha256": ha1_sha256(login, call.settings.domain, f["Password"]),
        "status": 1,
        "voice_url": None,
        "voice_method": "POST",
        "voice_fallback_url": None,
        "voice_fallback_method": "POST",
        "voice_application_sid": None,
        "push_client_identity": sid if f.get("IsPushEnabled") else None,
        "api_version": f.get("ApiVersion") or API_VERSION,
        "date_created": now,
        "date_updated": now,
    }
    _voice_values(f, row)
    row["friendly_name"] = row["friendly_name"] or login
    try:
        async with call.write() as conn:
            # Checked again under the write lock (SQLite) or left to the unique constraint
            # (PostgreSQL): of many parallel creates of one login exactly one inserts.
            taken = await conn.first(_LOGIN_QUERY, _login_params(org, login))
            if taken is None:
                if row["voice_application_sid"]:
                    await check_application(conn, account["sid"], row["voice_application_sid"], "VoiceApplicationSid")
                await conn.run(_INSERT, row)
                await call.audit(conn, "create", "Client", sid, account["sid"], f.keys())
    except IntegrityError:
        taken = await call.fetch_one(_LOGIN_QUERY, _login_params(org, login))
        if taken is None:  # not the login after all: let the framework answer 409
            raise
    if taken is not None:
        return _existing(call, account, taken)
    return call.item(CLIENT, row)


async def _client(call: Call, *, write: bool = False) -> tuple[Row, Row]:
    if not _SID.match(call.path["ClientSid"]):
        await call.account(write=write)  # the account's own 403/404 come first
        raise not_found("The client")
    return await call.owned(t.clients, "ClientSid", "The client", write=write)


@operation("GET", ITEM_PATH, summary="Read a client", tag=TAG, shape=CLIENT)
async def get_client(call: Call) -> Response:
    _, row = await _client(call)
    return call.item(CLIENT, row)


@operation("POST", ITEM_PATH, summary="Update a client (POST and PUT alike; Login cannot change)", tag=TAG,
           shape=CLIENT, form=UPDATE)
async def update_client(call: Call) -> Response:
    account, current = await _client(call, write=True)
    f = call.form
    values: dict[str, Any] = {}
    if "Password" in f:
        _check_password(f["Password"])
        values["password"] = ha1(current["login"], call.settings.domain, f["Password"])
        values["password_algorithm"] = "MD5"
        values["password_sha256"] = ha1_sha256(current["login"], call.settings.domain, f["Password"])
    _voice_values(f, values)
    if "friendly_name" in values and not values["friendly_name"]:
        values["friendly_name"] = current["login"]
    if "IsPushEnabled" in f:
        values["push_client_identity"] = current["sid"] if f["IsPushEnabled"] else None
    if not values:
        return call.item(CLIENT, current)
    values["date_updated"] = call.services.clock()
    async with call.write() as conn:
        if values.get("voice_application_sid"):
            await check_application(conn, account["sid"], values["voice_application_sid"], "VoiceApplicationSid")
        if await conn.run(_UPDATE, {**values, "where_sid": current["sid"]}) == 0:  # deleted since we read it
            raise not_found("The client")
        await call.audit(conn, "update", "Client", current["sid"], account["sid"], f.keys())
        row = await conn.first(by_sid(t.clients), {"sid": current["sid"]})
    assert row is not None  # (updated in this transaction)
    return call.item(CLIENT, row)


@operation("DELETE", ITEM_PATH, summary="Delete a client", tag=TAG, kind="empty")
async def delete_client(call: Call) -> Response:
    account, current = await _client(call, write=True)
    async with call.write() as conn:
        done = await conn.run(_DELETE, {"sid": current["sid"]})
        await conn.run(_DELETE_TAGS, {"sid": current["sid"]})
        if done == 0:  # a concurrent delete won
            raise not_found("The client")
        await call.audit(conn, "delete", "Client", current["sid"], account["sid"])
    return call.empty(200)
