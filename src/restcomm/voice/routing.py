"""Where an outgoing leg goes: a destination (``client:alice``, a ``sip:`` URI, a number) as routes.

* ``client:alice`` (or a ``<Client>``): every registered contact of the Client (the registrar's
  bindings, ``voice.store.current_bindings``), each rung at once; the INVITE goes to the address
  the REGISTER came from (a phone behind NAT is reachable only there).
* a ``sip:``/``sips:`` URI: direct, to the URI's host and port (and ``transport`` parameter).
* a number: the ``[[sip_trunks]]`` and Gateways whose prefix matches, longest prefix first (file
  order, then name, among equals); ``""`` is the default route. Each trunk is tried in turn: a 5xx,
  408 (no answer from the carrier in time) or a transport error moves on to the next, while a final
  answer about the callee (486 busy, 603 decline, 404 ...) ends the attempt. The trunk's digest
  credentials answer a 401/407.

``Alternative`` is one party that rings (a Client's contact, a URI, a number); its ``routes`` are
tried in order (failover). ``ring_alternative`` places one alternative's leg through the engine.
Trunks with ``register = true`` are registered to the carrier by ``TrunkRegistrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restcomm.config import SipTrunk
from restcomm.sip.ua import CallFailed
from restcomm.voice import store
from restcomm.voice.leg import Leg

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine

log = logging.getLogger("restcomm.voice")

FAILOVER = frozenset({408, 500, 502, 503, 504})
"""Statuses that say the carrier, not the callee, failed: the next trunk is tried (and any 5xx)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One way to reach a party: the Request-URI, where to send it, how to authenticate."""

    target: str
    destination: tuple[str, str, int] | None = None
    credentials: tuple[str, str] | None = None
    trunk: str | None = None


@dataclass(frozen=True, slots=True)
class Alternative:
    """One party that rings; ``routes`` are tried in order until one is not a carrier failure."""

    routes: tuple[Route, ...]
    to: str  # the To presented (number, login or URI)


class NoRoute(Exception):
    """Nothing can reach the destination (unknown or unregistered Client, no trunk for a number)."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def is_failover(status: int) -> bool:
    return status in FAILOVER or 500 <= status < 600


def trunks_for(number: str, trunks: Sequence[SipTrunk]) -> list[SipTrunk]:
    """Trunks whose prefix matches ``number`` (with or without ``+``), longest prefix first."""
    digits = number.lstrip("+")
    scored: list[tuple[int, int, SipTrunk]] = []
    for i, trunk in enumerate(trunks):
        best = -1
        for prefix in trunk.prefixes or ("",):
            p = prefix.strip()
            if number.startswith(p) or digits.startswith(p.lstrip("+")):
                best = max(best, len(p.lstrip("+")))
        if best >= 0:
            scored.append((-best, i, trunk))
    return [t for _, _, t in sorted(scored, key=lambda x: (x[0], x[1]))]


def trunk_route(number: str, trunk: SipTrunk) -> Route:
    transport = "TCP" if trunk.transport.lower() == "tcp" else "UDP"
    target = f"sip:{number}@{trunk.host}:{trunk.port}"
    if transport == "TCP":
        target += ";transport=tcp"
    creds = (trunk.username, trunk.password or "") if trunk.username else None
    return Route(target, (transport, trunk.host, trunk.port), creds, trunk.name)


def _bare(uri: str) -> str:
    uri = uri.strip()
    if "<" in uri:
        uri = uri.split("<", 1)[1].split(">", 1)[0]
    return uri


async def resolve(engine: VoiceEngine, organization_sid: str, kind: str, address: str,
                  *, credentials: tuple[str, str] | None = None) -> list[Alternative]:
    """The alternatives that ring for one destination (``kind``: client, sip or number)."""
    if kind == "client":
        login = address.split(":", 1)[1] if address.startswith("client:") else address
        async with engine.read() as conn:
            rows = await store.current_bindings(conn, organization_sid, login, engine.clock())
        if not rows:
            raise NoRoute(f"client {login} is not registered", 480)
        out = []
        for r in rows:
            host, _, port = (r["source_address"] or "").rpartition(":")
            transport = "TCP" if (r["transport"] or "").upper() == "TCP" else "UDP"
            dest = (transport, host, int(port)) if host and port.isdigit() else None
            out.append(Alternative((Route(_bare(r["contact"]), dest),), login))
        return out
    if kind == "sip" or address.startswith(("sip:", "sips:")):
        uri = address if address.startswith(("sip:", "sips:")) else f"sip:{address}"
        return [Alternative((Route(uri, None, credentials),), uri)]
    async with engine.read() as conn:
        trunks = await store.sip_trunks(conn, engine.settings.sip_trunks)
    matching = trunks_for(address, trunks)
    if not matching:
        raise NoRoute(f"no SIP trunk routes {address}", 404)
    return [Alternative(tuple(trunk_route(address, t) for t in matching), address)]


def classify(to: str) -> tuple[str, str]:
    """The API's ``To`` as (kind, address)."""
    if to.startswith("client:"):
        return "client", to[len("client:"):]
    if to.startswith(("sip:", "sips:")):
        return "sip", to
    return "number", to


async def ring_alternative(engine: VoiceEngine, call_sid: str, alt: Alternative, *, from_uri: str,
                           headers: list[tuple[str, str]] | None, timeout: float,  # noqa: ASYNC109
                           on_leg: Any = None) -> Leg:
    """Place ``alt``'s leg and wait (at most ``timeout`` seconds overall) for its answer; the
    answered ``Leg``. Raises ``CallFailed`` with the last final status (408 when nobody answered in
    time). ``on_leg(leg)`` is called for each leg as soon as it exists (ringing reports, cancel)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: CallFailed = CallFailed(503, "no route")
    for route in alt.routes:
        left = deadline - loop.time()
        if left <= 0:
            raise CallFailed(408, "no answer")
        to_uri = route.target.split(";", 1)[0]
        try:
            leg = await engine.new_outgoing_leg(call_sid, route.target, from_uri=from_uri, to_uri=to_uri,
                                                headers=headers, destination=route.destination,
                                                credentials=route.credentials)
        except (OSError, CallFailed) as exc:
            log.info("INVITE %s via %s failed: %s", route.target, route.trunk, exc)
            last = exc if isinstance(exc, CallFailed) else CallFailed(503, str(exc))
            continue
        if on_leg is not None:
            on_leg(leg)
        try:
            await leg.wait_answer(left)
            return leg
        except CallFailed as exc:
            engine.remove_leg(leg)
            await leg.close()
            last = exc
            timed_out = loop.time() >= deadline
            if timed_out or route.trunk is None or not is_failover(exc.status):
                raise
            log.info("trunk %s answered %d for %s: trying the next", route.trunk, exc.status, call_sid)
        except BaseException:
            with contextlib.suppress(Exception):
                await leg.hangup()
            engine.remove_leg(leg)
            await leg.close()
            raise
    raise last


class TrunkRegistrations:
    """Keeps every ``register = true`` trunk registered to its carrier while the engine runs."""

    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine
        self.registrations: list[Any] = []

    async def start(self) -> None:
        for trunk in self.engine.settings.sip_trunks:
            if not trunk.register or not trunk.username:
                continue
            registrar = f"sip:{trunk.host}:{trunk.port}" + (";transport=tcp" if trunk.transport == "tcp" else "")
            aor = f"sip:{trunk.username}@{trunk.host}"
            try:
                self.registrations.append(await self.engine.stack.register(
                    registrar, aor, (trunk.username, trunk.password or "")))
            except Exception as exc:  # a carrier down must not stop the server; calls fail over
                log.warning("registering to trunk %s failed: %s", trunk.name, exc)

    async def stop(self) -> None:
        for reg in self.registrations:
            task = getattr(reg, "task", None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self.registrations.clear()
