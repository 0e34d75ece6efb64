"""HTTP Basic authentication: user = AccountSid, account email or API key SID; password = AuthToken
(or the secondary token during rotation), the account password, or the API key secret."""

from __future__ import annotations

import base64
import binascii

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, Principal
from restcomm.security import constant_time_equals, hash_secret, verify_password

INACTIVE = ("closed", "suspended", "inactive")


def unauthorized(realm: str) -> ApiError:
    return ApiError(401, 20003, "Authentication failed", {"WWW-Authenticate": f'Basic realm="{realm}"'})


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password


async def authenticate(call: Call) -> Principal:
    realm = call.settings.realm
    creds = parse_basic(call.request.headers.get("authorization"))
    if creds is None:
        raise unauthorized(realm)
    user, password = creds
    if user.startswith("SK") and len(user) == 34:
        row = await call.services.reader.api_key(user)
        if row is None or not constant_time_equals(hash_secret(password), row["secret_hash"]):
            raise unauthorized(realm)
        principal = Principal(account=row, credential_sid=user)
    else:
        if "@" in user:
            row = await call.services.reader.account(email=user.lower())
        else:
            row = await call.services.reader.account(sid=user)
        if row is None:
            raise unauthorized(realm)
        ok = constant_time_equals(password, row["auth_token"]) or constant_time_equals(
            password, row["secondary_auth_token"]
        )
        if not ok and not verify_password(password, row["password_hash"]):
            raise unauthorized(realm)
        principal = Principal(account=row, credential_sid=row["sid"])
    if principal.account["status"] in INACTIVE:
        raise ApiError(403, 20005, "Provided Account is not active")
    return principal
