"""HTTP Basic authentication: user = AccountSid, account email, API key SID or IAM user email;
password = AuthToken (or the secondary token during rotation), the account password, the API key
secret, or the IAM user's password.

Repeated failures are throttled (restcomm.limits) per client address and per account: at most
``limit`` wrong credentials are checked per key and window. While a key is throttled, credentials
that do not match a token answer 429 without being checked, so neither a wrong nor a right password
is tested (no oracle, no scrypt work for the attacker). AuthTokens and API key secrets are
high-entropy and cannot be guessed, so a request that presents the right one is never slowed by
someone else's failures, from any address. Then the per-account API rate limit.
"""

from __future__ import annotations

import base64
import binascii
import logging

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, Principal
from restcomm.limits import retry_after_header
from restcomm.observability import AUTH_FAILURES, AUTH_THROTTLED, RATE_LIMITED
from restcomm.security import burn_password_check, constant_time_equals, hash_secret, verify_password_async

INACTIVE = ("closed", "suspended", "inactive")

log = logging.getLogger("restcomm.auth")


def unauthorized(realm: str) -> ApiError:
    return ApiError(401, 20003, "Authentication failed", {"WWW-Authenticate": f'Basic realm="{realm}"'})


def too_many(seconds: float, message: str) -> ApiError:
    return ApiError(429, 20429, message, {"Retry-After": retry_after_header(seconds)})


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


def _failed(call: Call, address: str, account_key: str | None) -> ApiError:
    """Answer a failure: 429 while the address or account is throttled (not counted: the count is of
    credentials actually checked), else count it and answer 401."""
    limits = call.services.limits
    wait = limits.auth_wait(address, account_key)
    if wait is not None:
        AUTH_THROTTLED.labels(wait[1]).inc()
        return too_many(wait[0], "Too many failed authentication attempts; retry later")
    for scope in limits.auth_failed(address, account_key):
        log.warning("authentication failures from %s for %r reached the %s limit; throttling", address,
                    account_key, scope)
    AUTH_FAILURES.inc()
    return unauthorized(call.settings.realm)


async def authenticate(call: Call) -> Principal:
    scope = call.request.scope
    header = None
    for name, value in scope["headers"]:  # straight from the scope: this runs on every request
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    client = scope.get("client")
    address = client[0] if client else ""
    creds = parse_basic(header)
    if creds is None:
        if header:  # credentials that are not even well formed count as a failure; absent ones do not
            raise _failed(call, address, None)
        raise unauthorized(call.settings.realm)
    user, password = creds
    reader = call.services.reader
    if "\x00" in user:  # no such account or key (and PostgreSQL cannot compare text holding NUL)
        raise _failed(call, address, None)
    if user.startswith("SK") and len(user) == 34:
        row = await reader.api_key(user)
        if row is None or not constant_time_equals(hash_secret(password), row["secret_hash"]):
            raise _failed(call, address, row["sid"] if row else user)
        principal = Principal(account=row, credential_sid=user)
    else:
        if "@" in user:
            row = await reader.account(email=user.lower())
            if row is None:
                iam = await reader.user(user.lower())
                if iam is not None:
                    return await _iam_user(call, address, iam, password)
        else:
            row = await reader.account(sid=user)
        if row is None:
            # As much work as a wrong password for a real account (unless throttled, where neither
            # does any): the answer time must not tell which logins exist.
            if call.services.limits.auth_wait(address, user.lower()) is None:
                await burn_password_check(password)
            raise _failed(call, address, user.lower())
        if not (constant_time_equals(password, row["auth_token"])
                or constant_time_equals(password, row["secondary_auth_token"])):
            # Passwords are guessable: checked only while neither the address nor the account is throttled.
            limits = call.services.limits
            wait = limits.auth_wait(address, row["sid"])
            if wait is not None or not await verify_password_async(password, row["password_hash"]):
                raise _failed(call, address, row["sid"])
        principal = Principal(account=row, credential_sid=row["sid"])
    return await _admit(call, principal)


async def _iam_user(call: Call, address: str, row: dict, password: str) -> Principal:
    """An IAM user (api/users.py): its own password, its own role, its account's tenancy and status."""
    limits = call.services.limits
    if limits.auth_wait(address, row["user_sid"]) is not None or not await verify_password_async(
            password, row["user_password_hash"]):
        raise _failed(call, address, row["user_sid"])
    if row["user_status"] != "active":
        raise ApiError(403, 20005, "Provided user is not active")
    return await _admit(call, Principal(account=row, credential_sid=row["user_sid"], user_role=row["user_role"]))


async def _admit(call: Call, principal: Principal) -> Principal:
    """The account's status, then its API rate limit (the profile's, where it sets one)."""
    account = principal.account
    if account["status"] in INACTIVE:
        raise ApiError(403, 20005, "Provided Account is not active")
    services = call.services
    policy = await services.profiles.policy(account)
    wait_s = services.limits.api_wait(account["sid"], policy.api_rate)
    if wait_s is not None:
        RATE_LIMITED.inc()
        raise too_many(wait_s, "Too many requests for this account; retry later")
    return principal
