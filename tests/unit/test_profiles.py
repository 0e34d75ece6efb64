"""Profile documents: the schema check, what a document refuses, the resolution order, the cache
(with an injected clock) and the API rate a profile sets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert

from restcomm.config import load_settings
from restcomm.limits import Limits
from restcomm.profiles import (
    DEFAULT_DOCUMENT,
    DEFAULT_PROFILE_SID,
    PSTN,
    SMS,
    InvalidDocument,
    ProfileCache,
    candidates,
    parse_document,
    policy_of,
)
from restcomm.store import db
from restcomm.store.schema import profile_associations, profiles
from restcomm.util import utcnow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _policy(doc: object) -> object:
    return policy_of("PR1", orjson.dumps(doc).decode())


@pytest.mark.parametrize("doc", [
    {}, DEFAULT_DOCUMENT, {"extra": [1, 2]}, {"featureEnablement": {"somethingNew": {"x": 1}}},
    {"featureEnablement": {"destinations": {"allowedPrefixes": ["+44", "1"], "blockedPrefixes": []}}},
    {"sessionThrottling": {"PSTNCallsPerTime": {"events": 300, "time": 30, "timeUnit": "days"},
                           "SMSPerTime": {"events": 1, "time": 1, "timeUnit": "seconds"}}},
])
def test_valid_documents(doc: object) -> None:
    assert parse_document(orjson.dumps(doc)) == doc


@pytest.mark.parametrize(("body", "why"), [
    (b"{", "not JSON"),
    (b"[]", "$: must be of type object"),
    (b'{"featureEnablement": 1}', "$.featureEnablement: must be of type object"),
    (b'{"featureEnablement": {"destinations": {"allowedPrefixes": ["Canada"]}}}', "does not match"),
    (b'{"featureEnablement": {"outboundSMS": {"allowedPrefixes": "+1"}}}', "must be of type array"),
    (b'{"featureEnablement": {"USSD": {"provider": "other"}}}', "must be one of"),
    (b'{"sessionThrottling": {"X": {"events": 1, "time": 1}}}', "timeUnit is required"),
    (b'{"sessionThrottling": {"X": {"events": true, "time": 1, "timeUnit": "days"}}}', "must be of type integer"),
])
def test_invalid_documents_say_why(body: bytes, why: str) -> None:
    with pytest.raises(InvalidDocument, match=why.replace("$", r"\$")):
        parse_document(body)


def test_no_feature_enablement_restricts_nothing() -> None:
    p = _policy({"other": 1})
    assert p.refusal(SMS, "+447700900000") is None and p.refusal(PSTN, "+1") is None  # type: ignore[attr-defined]
    assert _policy(DEFAULT_DOCUMENT).refusal(SMS, "+447700900000") is None  # type: ignore[attr-defined]


def test_features_absent_from_feature_enablement_are_disabled() -> None:
    p = _policy({"featureEnablement": {"outboundSMS": {}}})
    assert p.refusal(SMS, "+15550001") is None  # type: ignore[attr-defined]
    assert "does not enable outbound calls" in p.refusal(PSTN, "+15550001")  # type: ignore[attr-defined]


def test_prefixes() -> None:
    p = _policy({"featureEnablement": {
        "outboundSMS": {"blockedPrefixes": ["+1555999"]}, "outboundPSTN": {"allowedPrefixes": ["+1555"]},
        "destinations": {"allowedPrefixes": ["+1", "+44"]}}})
    refusal = p.refusal  # type: ignore[attr-defined]
    assert refusal(SMS, "+1 555 000 1234") is None
    assert refusal(SMS, "+447700900000") is None
    assert "+1555999" in refusal(SMS, "+15559990000")
    assert refusal(SMS, "+33600000000") is not None  # not in destinations
    assert refusal(PSTN, "+15550001") is None
    assert refusal(PSTN, "+447700900000") is not None  # in destinations, not in the channel's own list


def test_api_rate_from_session_throttling() -> None:
    p = _policy({"sessionThrottling": {"APIRequestsPerTime": {"events": 120, "time": 2, "timeUnit": "minutes"}}})
    assert p.api_rate == (1.0, 120)  # type: ignore[attr-defined]
    assert _policy({}).api_rate is None  # type: ignore[attr-defined]


def test_limits_use_the_profile_rate_even_when_the_configured_one_is_off() -> None:
    clock = Clock()
    limits = Limits(load_settings(env={"RESTCOMM_API_RATE_LIMIT": "0"}), clock=clock)
    assert all(limits.api_wait("AC1") is None for _ in range(100))
    waits = [limits.api_wait("AC1", (0.5, 2)) for _ in range(3)]
    assert waits[:2] == [None, None] and waits[2] == pytest.approx(2.0)
    assert limits.api_wait("AC2", (0.5, 2)) is None  # per account
    clock.now += 2
    assert limits.api_wait("AC1", (0.5, 2)) is None


def test_candidates_nearest_ancestor_first() -> None:
    account = {"sid": "AC3", "lineage": "AC1/AC2/", "organization_sid": "OR1"}
    assert candidates(account) == ["AC3", "AC2", "AC1", "OR1"]
    assert candidates({"sid": "AC1", "lineage": "", "organization_sid": "OR1"}) == ["AC1", "OR1"]


def test_resolution_and_cache(tmp_path: Path) -> None:
    """Own link, nearest ancestor, organization, default; one read per account until the TTL
    passes or the cache is invalidated."""
    settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})

    async def run() -> None:
        engine = db.create_engine(settings)
        try:
            await db.upgrade(engine)
            now = utcnow()
            async with engine.begin() as conn:
                for sid in ("PRa", "PRb", "PRc"):
                    await conn.execute(insert(profiles).values(sid=sid, document=f'{{"n": "{sid}"}}',
                                                               date_created=now, date_updated=now))
                for target, sid in (("AC1", "PRa"), ("AC2", "PRb"), ("OR1", "PRc")):
                    await conn.execute(insert(profile_associations).values(
                        target_sid=target, profile_sid=sid, date_created=now, date_updated=now))
            clock = Clock()
            cache = ProfileCache(engine, ttl=10, clock=clock)

            async def sid_of(sid: str, lineage: str, org: str = "OR1") -> str:
                return (await cache.policy({"sid": sid, "lineage": lineage, "organization_sid": org})).sid

            assert await sid_of("AC2", "AC1/") == "PRb"  # its own
            assert await sid_of("AC3", "AC1/AC2/") == "PRb"  # the nearest ancestor
            assert await sid_of("AC4", "AC1/") == "PRa"
            assert await sid_of("AC5", "") == "PRc"  # the organization
            assert await sid_of("AC6", "", "OR2") == DEFAULT_PROFILE_SID
            reads = cache.reads
            assert await sid_of("AC3", "AC1/AC2/") == "PRb" and cache.reads == reads  # cached
            clock.now += 10
            assert await sid_of("AC3", "AC1/AC2/") == "PRb" and cache.reads == reads + 1  # expired
            cache.invalidate()
            assert await sid_of("AC3", "AC1/AC2/") == "PRb" and cache.reads == reads + 2
        finally:
            await engine.dispose()

    asyncio.run(run())
