"""REGISTER handling (RFC 3261 §10.3) with digest, against storage Protocols.

The registrar knows nothing of accounts or databases: it asks a :class:`CredentialLookup` for a
login's secret (and the account it belongs to, which it hands back untouched) and keeps bindings in
a :class:`BindingStore`. voice/ supplies database implementations so every node sees every
registration; the in-memory ones here serve the tests and a single node.

:meth:`Registrar.authenticate` is also what the UA uses to challenge INVITEs from clients, so both
paths share the same nonces, replay table and failure throttle. The throttle counts failed
credential checks per source address (SIP scanners try thousands of passwords) and refuses that
source with 403 for a while, before even looking at the credentials.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .auth import AuthResult, Credential, DigestServer, parse_auth
from .message import Address, Request, Response, SipError, make_response
from .transaction import Peer

__all__ = [
    "Binding",
    "BindingStore",
    "ClientCredential",
    "CredentialLookup",
    "FailureThrottle",
    "MemoryBindingStore",
    "MemoryCredentials",
    "Registrar",
]


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """A login's secret (password, or HA1 per algorithm) and the account it belongs to."""

    login: str
    credential: Credential
    account: str | None = None


class CredentialLookup(Protocol):
    async def credential(self, login: str, realm: str) -> ClientCredential | None: ...


@dataclass(frozen=True, slots=True)
class Binding:
    aor: str
    contact: str
    """The Contact URI (as text)."""
    expires_at: float
    """Wall-clock seconds (time.time()) so other nodes can read it."""
    call_id: str
    cseq: int
    source: Peer
    account: str | None = None
    q: float | None = None


class BindingStore(Protocol):
    async def bindings(self, aor: str, now: float) -> list[Binding]: ...
    async def put(self, binding: Binding) -> None: ...
    async def remove(self, aor: str, contact: str) -> None: ...
    async def remove_all(self, aor: str) -> None: ...


class MemoryCredentials:
    def __init__(self, users: dict[str, str] | None = None, account: str | None = None) -> None:
        self.users = dict(users or {})
        self.account = account

    async def credential(self, login: str, realm: str) -> ClientCredential | None:
        pw = self.users.get(login)
        return ClientCredential(login, Credential(password=pw), self.account) if pw is not None else None


class MemoryBindingStore:
    def __init__(self) -> None:
        self._by_aor: dict[str, dict[str, Binding]] = {}

    async def bindings(self, aor: str, now: float) -> list[Binding]:
        table = self._by_aor.get(aor, {})
        for k in [k for k, b in table.items() if b.expires_at <= now]:
            del table[k]
        return list(table.values())

    async def put(self, binding: Binding) -> None:
        self._by_aor.setdefault(binding.aor, {})[binding.contact] = binding

    async def remove(self, aor: str, contact: str) -> None:
        self._by_aor.get(aor, {}).pop(contact, None)

    async def remove_all(self, aor: str) -> None:
        self._by_aor.pop(aor, None)


class FailureThrottle:
    """``max_failures`` failed checks from one source within ``window`` seconds block it for
    ``block_for`` seconds. Memory is bounded by ``max_sources`` (oldest forgotten first)."""

    def __init__(self, max_failures: int = 5, window: float = 60.0, block_for: float = 300.0, *,
                 clock: Callable[[], float] = time.monotonic, max_sources: int = 10000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.block_for = block_for
        self.clock = clock
        self.max_sources = max_sources
        self._fails: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}

    def blocked(self, source: str) -> bool:
        until = self._blocked.get(source)
        if until is None:
            return False
        if self.clock() >= until:
            del self._blocked[source]
            return False
        return True

    def failure(self, source: str) -> None:
        now = self.clock()
        recent = [t for t in self._fails.get(source, []) if now - t < self.window]
        recent.append(now)
        self._fails[source] = recent
        if len(recent) >= self.max_failures:
            self._blocked[source] = now + self.block_for
            self._fails.pop(source, None)
        while len(self._fails) > self.max_sources:
            self._fails.pop(next(iter(self._fails)))
        while len(self._blocked) > self.max_sources:
            self._blocked.pop(next(iter(self._blocked)))

    def success(self, source: str) -> None:
        self._fails.pop(source, None)


def aor_of(address: Address) -> str:
    """Canonical address-of-record: ``sip:user@host`` (§10.3 step 5), no port or parameters."""
    u = address.uri
    return f"sip:{u.user}@{u.host}" if u.user else f"sip:{u.host}"


@dataclass(frozen=True, slots=True)
class Authenticated:
    login: str
    account: str | None


class Registrar:
    """REGISTER processing and the digest challenge shared with INVITE.

    ``algorithms`` is the order of the WWW-Authenticate challenges. MD5 comes first by default:
    measured with SIPp 3.6.1, a client that knows only MD5 may answer the *first* challenge and
    fail on SHA-256 instead of skipping it; clients that support SHA-256 (ours included) pick it
    from the list. Pass ``("SHA-256", "MD5")`` or ``("SHA-256",)`` where every phone is modern.
    """

    def __init__(self, realm: str, credentials: CredentialLookup, bindings: BindingStore, *,
                 secret: bytes, min_expires: int = 60, max_expires: int = 3600, default_expires: int = 3600,
                 throttle: FailureThrottle | None = None, wall_clock: Callable[[], float] = time.time,
                 nonce_ttl: float = 300.0, algorithms: tuple[str, ...] = ("MD5", "SHA-256")) -> None:
        self.realm = realm
        self.credentials = credentials
        self.store = bindings
        self.digest = DigestServer(realm, secret, clock=wall_clock, nonce_ttl=nonce_ttl,
                                   algorithms=algorithms)
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.throttle = throttle
        self.clock = wall_clock

    async def authenticate(self, request: Request, source: Peer, *, proxy: bool = False) -> Authenticated | Response:
        """Check the request's digest credentials; returns who it is, or the response to send.

        ``proxy`` uses 407/Proxy-Authorization (as a proxy would challenge an INVITE).
        """
        host = source[1]
        if self.throttle is not None and self.throttle.blocked(host):
            return make_response(request, 403, "Forbidden (too many failed attempts)", to_tag=_tag(request))
        header_name = "Proxy-Authorization" if proxy else "Authorization"
        header = request.headers.get(header_name)
        if header is None:
            return self._challenge(request, proxy=proxy, stale=False)
        found: dict[str, ClientCredential | None] = {}
        # DigestServer.verify wants a synchronous lookup: fetch the credential first.
        try:
            _, params = parse_auth(header)
        except ValueError:
            params = {}
        login = params.get("username", "")
        cc = await self.credentials.credential(login, self.realm) if login else None
        found[login] = cc
        result: AuthResult = self.digest.verify(request.method, header,
                                                lambda u, r: found.get(u).credential if found.get(u) else None)
        if result.ok and cc is not None:
            if self.throttle is not None:
                self.throttle.success(host)
            return Authenticated(cc.login, cc.account)
        if result.stale:
            return self._challenge(request, proxy=proxy, stale=True)
        if self.throttle is not None:
            self.throttle.failure(host)
            if self.throttle.blocked(host):
                return make_response(request, 403, "Forbidden (too many failed attempts)", to_tag=_tag(request))
        return self._challenge(request, proxy=proxy, stale=False)

    def _challenge(self, request: Request, *, proxy: bool, stale: bool) -> Response:
        resp = make_response(request, 407 if proxy else 401, to_tag=_tag(request))
        for v in self.digest.challenge(stale=stale):
            resp.headers.add("Proxy-Authenticate" if proxy else "WWW-Authenticate", v)
        return resp

    async def handle(self, request: Request, source: Peer) -> Response:
        """Process one REGISTER (already absorbed of retransmissions by the transaction layer)."""
        auth = await self.authenticate(request, source)
        if isinstance(auth, Response):
            return auth
        try:
            to = request.to
            aor = aor_of(to)
            if to.uri.user != auth.login:
                return make_response(request, 403, "Forbidden (To does not match the credentials)",
                                     to_tag=_tag(request))
            call_id = request.call_id
            cseq = request.cseq.seq
            header_expires = request.headers.get("Expires")
            hexp = int(header_expires) if header_expires is not None and header_expires.strip().isdigit() else None
            raw_contacts = request.headers.get_all("Contact")
            now = self.clock()
            if any(c.strip() == "*" for c in raw_contacts):
                if len(raw_contacts) != 1 or hexp != 0:
                    return make_response(request, 400, "Bad Request (* needs Expires: 0 alone)", to_tag=_tag(request))
                for b in await self.store.bindings(aor, now):
                    if b.call_id == call_id and cseq <= b.cseq:
                        return make_response(request, 500, "Out of order", to_tag=_tag(request))
                await self.store.remove_all(aor)
                return await self._ok(request, aor, now)
            contacts = request.contacts
            plan: list[tuple[Address, int]] = []
            for c in contacts:
                p = c.param("expires")
                exp = int(p) if p is not None and p.isdigit() else (hexp if hexp is not None else self.default_expires)
                if exp != 0 and exp < self.min_expires:
                    resp = make_response(request, 423, to_tag=_tag(request))
                    resp.headers.add("Min-Expires", str(self.min_expires))
                    return resp
                plan.append((c, min(exp, self.max_expires)))
            existing = {b.contact: b for b in await self.store.bindings(aor, now)}
            for c, exp in plan:
                uri = str(c.uri)
                old = existing.get(uri)
                if old is not None and old.call_id == call_id and cseq <= old.cseq:
                    return make_response(request, 500, "Out of order", to_tag=_tag(request))
                if exp == 0:
                    await self.store.remove(aor, uri)
                else:
                    q = c.param("q")
                    try:
                        qv = float(q) if q else None
                    except ValueError:
                        qv = None
                    await self.store.put(Binding(aor, uri, now + exp, call_id, cseq, source, auth.account, qv))
            return await self._ok(request, aor, now)
        except (SipError, ValueError) as exc:
            return make_response(request, 400, f"Bad Request ({exc})"[:80], to_tag=_tag(request))

    async def _ok(self, request: Request, aor: str, now: float) -> Response:
        resp = make_response(request, 200, to_tag=_tag(request))
        for b in await self.store.bindings(aor, now):
            resp.headers.add("Contact", f"<{b.contact}>;expires={max(0, int(b.expires_at - now))}")
        return resp

    async def lookup(self, aor: str) -> list[Binding]:
        """Current bindings of an AOR (for routing a call to a registered client)."""
        return await self.store.bindings(aor, self.clock())


def _tag(request: Request) -> str:
    """A deterministic To-tag per request so retransmitted answers look the same."""
    return hashlib.sha1(f"{request.call_id}:{request.cseq.seq}".encode()).hexdigest()[:10]
