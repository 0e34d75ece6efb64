"""SIP digest authentication (RFC 3261 §22, RFC 7616 for MD5 and SHA-256 with qop=auth).

Server side: :class:`DigestServer` issues stateless nonces (a timestamp, a random part and an
HMAC of both with a server secret, so any node sharing the secret can verify them and nothing is
stored per challenge), rejects expired ones with ``stale=true`` (the client retries silently with
the new nonce instead of asking its user for a password), and refuses a replayed nonce-count. The
replay table is bounded: a nonce that fell out of it is answered ``stale`` unless it starts at
nc=1 again, so eviction can never reopen a replay. Every secret comparison is constant-time.

Client side: :func:`answer_challenge` builds the Authorization/Proxy-Authorization value for a
401/407 (trunks, outbound REGISTER).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "AuthResult",
    "Credential",
    "DigestServer",
    "answer_challenge",
    "parse_auth",
    "digest_response",
    "ha1",
]

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _h(alg: str, data: str) -> str:
    return ALGORITHMS[alg](data.encode("utf-8")).hexdigest()


def ha1(alg: str, username: str, realm: str, password: str) -> str:
    return _h(alg, f"{username}:{realm}:{password}")


def digest_response(alg: str, ha1_hex: str, method: str, uri: str, nonce: str,
                    nc: str | None = None, cnonce: str | None = None, qop: str | None = None) -> str:
    """The ``response`` value (RFC 7616 §3.4.1; RFC 2069 form when qop is absent)."""
    ha2 = _h(alg, f"{method}:{uri}")
    if qop:
        return _h(alg, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(alg, f"{ha1_hex}:{nonce}:{ha2}")


_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_\-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*(,|$)')


def parse_auth(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest k=v, k="v"`` into the scheme and lower-cased parameter names."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if not m or m.end() == pos:
            raise ValueError("malformed auth parameters")
        raw = m.group(3) if m.group(3) is not None else m.group(2)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw)
        pos = m.end()
    return scheme, params


@dataclass(frozen=True, slots=True)
class Credential:
    """What a lookup knows about a user: the password, or precomputed HA1 per algorithm."""

    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None

    def ha1_for(self, alg: str, username: str, realm: str) -> str | None:
        if self.password is not None:
            return ha1(alg, username, realm, self.password)
        return self.ha1_md5 if alg == "MD5" else self.ha1_sha256


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


class DigestServer:
    """Challenges and verifies digest credentials for one realm."""

    def __init__(self, realm: str, secret: bytes, *, nonce_ttl: float = 300.0,
                 clock: Callable[[], float] = time.time, max_tracked_nonces: int = 10000,
                 algorithms: tuple[str, ...] = ("SHA-256", "MD5")) -> None:
        self.realm = realm
        self._secret = secret
        self.nonce_ttl = nonce_ttl
        self.clock = clock
        self.algorithms = algorithms
        self._max = max_tracked_nonces
        self._nc: OrderedDict[str, int] = OrderedDict()

    # ------------------------------------------------------------------ nonces
    def _mac(self, stamp: str) -> str:
        return hmac.new(self._secret, f"{stamp}:{self.realm}".encode(), hashlib.sha256).hexdigest()[:32]

    def make_nonce(self) -> str:
        stamp = f"{int(self.clock()):x}.{os.urandom(6).hex()}"
        return f"{stamp}.{self._mac(stamp)}"

    def _nonce_state(self, nonce: str) -> str:
        """'ok', 'stale' (ours but expired) or 'bad' (forged)."""
        stamp, _, mac = nonce.rpartition(".")
        if not stamp or not hmac.compare_digest(mac.encode(), self._mac(stamp).encode()):
            return "bad"
        try:
            issued = int(stamp.split(".")[0], 16)
        except ValueError:
            return "bad"
        age = self.clock() - issued
        if age > self.nonce_ttl or age < -5:
            return "stale"
        return "ok"

    def challenge(self, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate (or Proxy-Authenticate) values, one per algorithm, preferred first."""
        nonce = self.make_nonce()
        out = []
        for alg in self.algorithms:
            v = f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={alg}, qop="auth"'
            if stale:
                v += ", stale=true"
            out.append(v)
        return out

    # ------------------------------------------------------------------ verification
    def verify(self, method: str, header: str | None,
               lookup: Callable[[str, str], Credential | None]) -> AuthResult:
        """Check an Authorization header for ``method``; ``lookup(username, realm)`` -> Credential."""
        if not header:
            return AuthResult(False, reason="no credentials")
        try:
            scheme, p = parse_auth(header)
        except ValueError:
            return AuthResult(False, reason="malformed")
        if scheme.lower() != "digest":
            return AuthResult(False, reason="not digest")
        username, nonce, uri, resp = p.get("username"), p.get("nonce"), p.get("uri"), p.get("response")
        alg = p.get("algorithm", "MD5").upper()
        if alg == "SHA256":
            alg = "SHA-256"
        if not (username and nonce and uri and resp) or alg not in self.algorithms:
            return AuthResult(False, username, reason="incomplete or unsupported")
        if p.get("realm") != self.realm:
            return AuthResult(False, username, reason="wrong realm")
        state = self._nonce_state(nonce)
        if state == "bad":
            return AuthResult(False, username, reason="unknown nonce")
        qop = p.get("qop")
        nc_text, cnonce = p.get("nc"), p.get("cnonce")
        if qop is not None and (qop != "auth" or not nc_text or not cnonce):
            return AuthResult(False, username, reason="bad qop")
        cred = lookup(username, self.realm)
        # Compute even for unknown users so timing does not reveal which logins exist.
        h1 = cred.ha1_for(alg, username, self.realm) if cred else None
        expected = digest_response(alg, h1 or "0" * 32, method, uri, nonce, nc_text, cnonce, qop)
        good = hmac.compare_digest(expected.encode(), resp.lower().encode()) and h1 is not None
        if not good:
            return AuthResult(False, username, reason="bad response")
        if state == "stale":
            return AuthResult(False, username, stale=True, reason="nonce expired")
        if qop is not None:
            try:
                nc = int(nc_text or "", 16)
            except ValueError:
                return AuthResult(False, username, reason="bad nc")
            last = self._nc.get(nonce)
            if last is None and nc != 1:
                # forgotten (evicted) or never seen with nc=1: make the client take a new nonce
                return AuthResult(False, username, stale=True, reason="nonce not tracked")
            if last is not None and nc <= last:
                return AuthResult(False, username, reason="replayed nonce count")
            self._nc[nonce] = nc
            self._nc.move_to_end(nonce)
            while len(self._nc) > self._max:
                self._nc.popitem(last=False)
        return AuthResult(True, username)


# ---------------------------------------------------------------------- client side


def answer_challenge(challenge: str, method: str, uri: str, username: str, password: str, *,
                     nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization value answering one WWW-/Proxy-Authenticate ``challenge``."""
    scheme, p = parse_auth(challenge)
    if scheme.lower() != "digest":
        raise ValueError(f"unsupported auth scheme {scheme}")
    alg = p.get("algorithm", "MD5").upper()
    if alg not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {alg}")
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    h1 = ha1(alg, username, realm, password)
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if qop:
        cnonce = cnonce or os.urandom(8).hex()
        nc_text = f"{nc:08x}"
        resp = digest_response(alg, h1, method, uri, nonce, nc_text, cnonce, qop)
        parts += [f'response="{resp}"', f"algorithm={alg}", f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    else:
        resp = digest_response(alg, h1, method, uri, nonce)
        parts += [f'response="{resp}"', f"algorithm={alg}"]
    if "opaque" in p:
        parts.append(f'opaque="{p["opaque"]}"')
    return "Digest " + ", ".join(parts)


def pick_challenge(values: list[str]) -> str | None:
    """Prefer SHA-256 over MD5 among several challenges (RFC 7616 §3.7)."""
    best = None
    for v in values:
        try:
            scheme, p = parse_auth(v)
        except ValueError:
            continue
        if scheme.lower() != "digest":
            continue
        alg = p.get("algorithm", "MD5").upper()
        if alg == "SHA-256":
            return v
        if alg == "MD5" and best is None:
            best = v
    return best
