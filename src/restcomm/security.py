"""Secrets: password hashing with a slow KDF, tokens compared in constant time.

AuthTokens are random (not md5 of the password, as Restcomm derives them) and are stored as they
are, because the account representation shows them and webhook signatures are keyed with them.
Passwords are hashed with scrypt. Verifying a password per request would cost ~50 ms of CPU, so a
successful verification is remembered under a digest of (stored hash, password): a password change
on any node changes the stored hash, so the memory can never vouch for an old password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def verify_password(password: str, stored: str) -> bool:
    key = hashlib.sha256(stored.encode() + b"\0" + password.encode("utf-8", "surrogatepass")).digest()
    if key in _verified:
        _verified.move_to_end(key)
        return True
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
    ok = hmac.compare_digest(digest, base64.b64decode(digest_b64))
    if ok:
        _verified[key] = None
        if len(_verified) > _CACHE_MAX:
            _verified.popitem(last=False)
    return ok


def generate_password() -> str:
    """A strong random password that also passes Restcomm's strength score."""
    return "Rc-" + secrets.token_urlsafe(18) + "9!"
