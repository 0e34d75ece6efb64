"""Profiles (Restcomm's ``/Profiles``): what an account may do, as a JSON document linked to accounts
and organizations.

The document (``rc-profile-schema.json``, served at ``/Profiles/schemas/rc-profile-schema.json``) is
an object with two optional parts, and anything else kept as given:

* ``featureEnablement``: when present, only the features it names are enabled (Restcomm's reading:
  its default plan lists every feature with an empty object). Enforced here: ``outboundSMS``
  (API sends and application replies; refused with 21408) and ``outboundPSTN`` (outbound calls;
  21215). ``destinations.allowedPrefixes`` (Restcomm's name) limits every outbound channel to
  numbers starting with one of the prefixes; ``destinations.blockedPrefixes`` and the same two
  lists inside ``outboundSMS``/``outboundPSTN`` are this server's additions. Without
  ``featureEnablement`` nothing is restricted.
* ``sessionThrottling``: rules ``{"events": n, "time": t, "timeUnit": "seconds"}``. Enforced here:
  ``APIRequestsPerTime`` replaces the ``[api] rate_limit`` of the accounts the profile applies to
  (``events`` at once, refilled at ``events`` per ``time``). ``PSTNCallsPerTime`` (Restcomm's)
  and other rules are validated and stored but not enforced.

An account's **effective** profile is, in order: the profile linked to the account, to its nearest
ancestor that has one, to its organization, else the default profile ``PRae6e…`` (Restcomm's SID,
created by migration 0011). One indexed query finds it (``resolve``); ``ProfileCache`` keeps the
answer per account for ``profile_cache_seconds`` and is emptied on this node by every change made
through the API, so the send path reads the database once per account and period, not per message.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from restcomm.store.schema import profile_associations, profiles

DEFAULT_PROFILE_SID = "PRae6e420f425248d6a26948c17a9e2acf"  # Restcomm's DEFAULT_PROFILE_SID
SCHEMA_ID = "rc-profile-schema.json"

# The default profile: every feature enabled, no throttling (Restcomm's defaultPlan.json content).
DEFAULT_DOCUMENT: dict[str, Any] = {
    "featureEnablement": {
        "DIDPurchase": {}, "subaccountsCreation": {}, "outboundPSTN": {}, "inboundPSTN": {}, "outboundSMS": {},
        "inboundSMS": {}, "asr": {}, "USSD": {"provider": "default"}, "inboundUSSD": {}, "outboundUSSD": {},
    }
}

SMS = "outboundSMS"
PSTN = "outboundPSTN"

_PREFIX = {"type": "string", "pattern": r"^\+?[0-9]{1,15}$", "description": "digits a destination starts with"}
_PREFIXES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "allowedPrefixes": {"type": "array", "items": _PREFIX, "description": "only numbers starting so"},
        "blockedPrefixes": {"type": "array", "items": _PREFIX, "description": "never numbers starting so"},
    },
}
_FEATURE = {"type": "object", "additionalProperties": False, "properties": {}}
_TIME_UNITS = ["nanoseconds", "milliseconds", "seconds", "minutes", "hours", "days", "weeks", "months", "years"]
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["events", "time", "timeUnit"],
    "properties": {
        "events": {"type": "integer", "minimum": 1},
        "time": {"type": "integer", "minimum": 1},
        "timeUnit": {"type": "string", "enum": _TIME_UNITS},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "id": SCHEMA_ID,
    "title": "Restcomm profile",
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "featureEnablement": {
            "type": "object",
            "additionalProperties": True,
            "properties": {
                "destinations": _PREFIXES,
                "outboundSMS": _PREFIXES,
                "outboundPSTN": _PREFIXES,
                "inboundSMS": _FEATURE,
                "inboundPSTN": _FEATURE,
                "DIDPurchase": {"type": "object", "additionalProperties": False, "properties": {
                    "allowedCountries": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Z]$"}}}},
                "subaccountsCreation": {"type": "object", "additionalProperties": False,
                                        "properties": {"limit": {"type": "integer", "minimum": 0}}},
                "asr": _FEATURE,
                "USSD": {"type": "object", "additionalProperties": False, "properties": {
                    "provider": {"type": "string", "enum": ["default", "virgin", "somos"]}}},
                "inboundUSSD": _FEATURE,
                "outboundUSSD": _FEATURE,
            },
        },
        "sessionThrottling": {
            "type": "object",
            "additionalProperties": _RULE,
            "properties": {"APIRequestsPerTime": _RULE, "PSTNCallsPerTime": _RULE},
        },
    },
}

MAX_DOCUMENT_BYTES = 64 * 1024


# ---------------------------------------------------------------------------------------------
# The document


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}


def _check(value: Any, schema: Mapping[str, Any], where: str, errors: list[str]) -> None:
    """The subset of JSON Schema that SCHEMA uses: type, properties, required, additionalProperties
    (a boolean or a schema), items, enum, pattern, minimum."""
    kind = schema.get("type")
    if kind is not None and not _TYPES[kind](value):
        errors.append(f"{where}: must be of type {kind}")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: must be one of {', '.join(map(str, schema['enum']))}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: must be at least {schema['minimum']}")
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{i}]", errors)
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{where}: {name} is required")
        for name, item in value.items():
            if name in props:
                _check(item, props[name], f"{where}.{name}", errors)
            elif extra is False:
                errors.append(f"{where}: unknown property {name!r}")
            elif isinstance(extra, Mapping):
                _check(item, extra, f"{where}.{name}", errors)


class InvalidDocument(ValueError):
    pass


def parse_document(body: bytes) -> dict[str, Any]:
    """The profile document in a request body, checked against SCHEMA; InvalidDocument says why not."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"The profile document is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"The profile document is not JSON: {exc}") from None
    errors: list[str] = []
    _check(doc, SCHEMA, "$", errors)
    if errors:
        raise InvalidDocument("The profile document does not match rc-profile-schema.json: " + "; ".join(errors[:10]))
    return doc


def dump_document(doc: Mapping[str, Any]) -> str:
    return orjson.dumps(doc).decode()


# ---------------------------------------------------------------------------------------------
# What a profile means to the send paths


_SECONDS = {"nanoseconds": 1e-9, "milliseconds": 1e-3, "seconds": 1, "minutes": 60, "hours": 3600,
            "days": 86400, "weeks": 7 * 86400, "months": 30 * 86400, "years": 365 * 86400}


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _prefixes(section: Any, key: str) -> tuple[str, ...] | None:
    if not isinstance(section, Mapping) or key not in section:
        return None
    return tuple(_digits(p) for p in section[key] if _digits(p))


@dataclass(frozen=True)
class Channel:
    enabled: bool
    allowed: tuple[tuple[str, ...], ...]  # each list must match (destinations', the channel's own)
    blocked: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """An account's effective profile, as the send paths and the rate limiter read it."""

    sid: str
    channels: Mapping[str, Channel]
    api_rate: tuple[float, int] | None  # (requests per second, burst) replacing [api] rate_limit

    def refusal(self, channel: str, destination: str) -> str | None:
        """Why ``destination`` may not be reached on ``channel`` (SMS or PSTN), or None."""
        rule = self.channels.get(channel)
        if rule is None:
            return None
        what = "sending SMS" if channel == SMS else "outbound calls"
        if not rule.enabled:
            return f"The account's profile {self.sid} does not enable {what} (featureEnablement.{channel})"
        digits = _digits(destination)
        for prefix in rule.blocked:
            if digits.startswith(prefix):
                return f"The account's profile {self.sid} blocks {what} to numbers starting with +{prefix}"
        for allowed in rule.allowed:
            if not any(digits.startswith(p) for p in allowed):
                return f"The account's profile {self.sid} does not allow {what} to {destination}"
        return None


def policy_of(sid: str, document: str) -> Policy:
    try:
        doc = orjson.loads(document)
    except orjson.JSONDecodeError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    channels: dict[str, Channel] = {}
    features = doc.get("featureEnablement")
    if isinstance(features, Mapping):
        destinations = features.get("destinations")
        for name in (SMS, PSTN):
            own = features.get(name)
            allowed = tuple(p for p in (_prefixes(destinations, "allowedPrefixes"), _prefixes(own, "allowedPrefixes"))
                            if p is not None)
            blocked = (_prefixes(destinations, "blockedPrefixes") or ()) + (_prefixes(own, "blockedPrefixes") or ())
            channels[name] = Channel(enabled=name in features, allowed=allowed, blocked=blocked)
    api_rate = None
    throttling = doc.get("sessionThrottling")
    rule = throttling.get("APIRequestsPerTime") if isinstance(throttling, Mapping) else None
    if isinstance(rule, Mapping):
        try:
            events, period = int(rule["events"]), int(rule["time"]) * _SECONDS[rule["timeUnit"]]
            if events >= 1 and period > 0:
                api_rate = (events / period, events)
        except (KeyError, TypeError, ValueError):
            pass
    return Policy(sid=sid, channels=channels, api_rate=api_rate)


UNRESTRICTED = Policy(sid=DEFAULT_PROFILE_SID, channels={}, api_rate=None)


# ---------------------------------------------------------------------------------------------
# Resolution and the cache


def candidates(account: Mapping[str, Any]) -> list[str]:
    """The targets whose link applies to ``account``, in order: itself, its ancestors (nearest
    first), its organization."""
    ancestors = [s for s in account["lineage"].split("/") if s]
    return [account["sid"], *reversed(ancestors), account["organization_sid"]]


async def resolve(conn: AsyncConnection, account: Mapping[str, Any]) -> tuple[str, str]:
    """(profile SID, document) of the account's effective profile: one query on the primary keys."""
    order = candidates(account)
    rows = (await conn.execute(
        select(profile_associations.c.target_sid, profiles.c.sid, profiles.c.document)
        .join(profiles, profiles.c.sid == profile_associations.c.profile_sid)
        .where(profile_associations.c.target_sid.in_(order))
    )).all()
    if rows:
        best = min(rows, key=lambda r: order.index(r[0]))
        return best[1], best[2]
    row = (await conn.execute(select(profiles.c.document).where(profiles.c.sid == DEFAULT_PROFILE_SID))).first()
    return DEFAULT_PROFILE_SID, row[0] if row is not None else dump_document(DEFAULT_DOCUMENT)


class ProfileCache:
    """Effective policies by account SID, each kept ``ttl`` seconds; ``invalidate`` empties it.

    A miss reads through ``session()`` when given (a request session of store/session.py: on SQLite
    the event-loop thread's read connection, no worker-thread hop), else on a connection of the
    engine. Concurrent misses for one account share one read (when an entry expires, every request
    of that account in flight would otherwise read it)."""

    def __init__(self, engine: AsyncEngine, ttl: float, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 100_000, session: Callable[[], Any] | None = None) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self.session = session
        self._entries: dict[str, tuple[float, Policy]] = {}
        self._generation = 0
        self._reading: dict[tuple[str, int], asyncio.Future[Policy]] = {}
        self.reads = 0  # database reads made (tests and the benchmark look)

    def cached(self, account_sid: str) -> Policy | None:
        entry = self._entries.get(account_sid)
        if entry is not None and entry[0] > self.clock():
            return entry[1]
        return None

    async def policy(self, account: Mapping[str, Any]) -> Policy:
        hit = self.cached(account["sid"])
        if hit is not None:
            return hit
        key = (account["sid"], self._generation)  # a read started before a change is not joined after it
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(self._read(account))
            reading.add_done_callback(lambda _done: self._reading.pop(key, None))
        return await asyncio.shield(reading)  # a cancelled caller does not cancel the others' read

    async def _read(self, account: Mapping[str, Any]) -> Policy:
        generation = self._generation
        self.reads += 1
        if self.session is not None:
            session = self.session()
            try:
                sid, document = await resolve(session, account)
            finally:
                await session.close()
        else:
            async with self.engine.connect() as conn:
                sid, document = await resolve(conn, account)
        found = policy_of(sid, document)
        if self.ttl > 0 and generation == self._generation:  # not if a change landed meanwhile
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[account["sid"]] = (self.clock() + self.ttl, found)
        return found

    def invalidate(self) -> None:
        """After any change of a profile or a link (rare): every account's answer may have changed."""
        self._generation += 1
        self._entries.clear()
