"""Secrets: password hashing with a slow KDF, tokens compared in constant time.

AuthTokens are random (not md5 of the password, as Restcomm derives them) and are stored as they
are, because the account representation shows them and webhook signatures are keyed with them.
Passwords are hashed with scrypt. Verifying a password per request would cost ~50 ms of CPU, so a
successful verification is remembered under a digest of (stored hash, password): a password change
on any node changes the stored hash, so the memory can never vouch for an old password.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from collections import OrderedDict

_N, _R, _P = 2**14, 8, 1
_CACHE_MAX = 4096
_verified: OrderedDict[bytes, None] = OrderedDict()


def new_auth_token() -> str:
    return secrets.token_hex(16)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """High-entropy secrets (API key secrets) need no slow KDF: a plain digest suffices."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def constant_time_equals(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _cache_key(password: str, stored: str) -> bytes:
    return hashlib.sha256(stored.encode() + b"\0" + password.encode("utf-8", "surrogatepass")).digest()


def _remembered(key: bytes) -> bool:
    if key in _verified:
        _verified.move_to_end(key)
        return True
    return False


def _remember(key: bytes) -> None:
    _verified[key] = None
    if len(_verified) > _CACHE_MAX:
        _verified.popitem(last=False)


def verify_password(password: str, stored: str) -> bool:
    key = _cache_key(password, stored)
    if _remembered(key):
        return True
    ok = _kdf_verify(password, stored)
    if ok:
        _remember(key)
    return ok


def _kdf_verify(password: str, stored: str) -> bool:
    """The scrypt comparison itself (no cache): ~25-50 ms of CPU, safe to run in a thread."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=base64.b64decode(salt_b64),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


# -- off the event loop ---------------------------------------------------------------------------
# scrypt holds a core for tens of milliseconds (it releases the GIL). Run on the event loop, every
# request of every tenant waits behind it: a tenant changing its password in a loop slowed others'
# GETs from ~2 ms to hundreds. So the KDF runs in the default thread pool, at most KDF_CONCURRENCY
# at a time (the rest wait their turn without holding a thread), leaving cores for the loop.

KDF_CONCURRENCY = max(1, (os.cpu_count() or 2) // 2)
_limits: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _kdf_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _limits.get(loop)
    if slot is None:
        for old in [lp for lp in _limits if lp.is_closed()]:
            del _limits[old]
        slot = _limits[loop] = asyncio.Semaphore(KDF_CONCURRENCY)
    return slot


async def hash_password_async(password: str) -> str:
    """``hash_password`` in the thread pool, bounded by KDF_CONCURRENCY."""
    async with _kdf_slot():
        return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    """``verify_password`` with the KDF in the thread pool; a remembered success stays on the loop."""
    key = _cache_key(password, stored)
    if _remembered(key):
        return True
    async with _kdf_slot():
        ok = await asyncio.to_thread(_kdf_verify, password, stored)
    if ok:
        _remember(key)
    return ok


_dummy_hash: str | None = None


async def burn_password_check(password: str) -> None:
    """The work of checking ``password`` against an account that does not exist: the same scrypt
    run as for a wrong password, so that timing does not tell unknown logins from known ones."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password_async(secrets.token_urlsafe(24))
    await verify_password_async(password, _dummy_hash)


def generate_password() -> str:
    """A strong random password that also passes Restcomm's strength score."""
    return "Rc-" + secrets.token_urlsafe(18) + "9!"
