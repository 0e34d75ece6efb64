"""Failure throttling and rate limiting with an injected clock: exact counts, exact waits, decay."""

from __future__ import annotations

import pytest

from restcomm.config import load_settings
from restcomm.limits import FailureThrottle, Limits, RateLimiter, client_key, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_allows_limit_failures_then_says_how_long() -> None:
    clock = Clock()
    t = FailureThrottle(limit=3, window=30, clock=clock)  # drains one failure every 10 s
    tripped = []
    for _ in range(3):
        assert t.retry_after("1.2.3.4") is None
        tripped.append(t.fail("1.2.3.4"))
    assert tripped == [False, False, True]  # the third failure reaches the limit
    assert t.retry_after("1.2.3.4") == pytest.approx(10.0)
    assert t.retry_after("5.6.7.8") is None  # other keys are unaffected


def test_throttle_decays_and_forgets() -> None:
    clock = Clock()
    t = FailureThrottle(limit=3, window=30, clock=clock)
    for _ in range(3):
        t.fail("k")
    clock.now += 9.9
    assert t.retry_after("k") == pytest.approx(0.1)
    clock.now += 0.1
    assert t.retry_after("k") is None  # one failure has drained: one more is allowed
    clock.now += 30
    assert t.retry_after("k") is None and len(t) == 0  # fully drained keys are dropped


def test_persistent_attacker_stays_throttled_but_recovers_within_two_windows() -> None:
    clock = Clock()
    t = FailureThrottle(limit=5, window=50, clock=clock)
    for _ in range(1000):
        t.fail("k")
    wait = t.retry_after("k")
    assert wait is not None and wait == pytest.approx(60.0)  # level capped at 2 x limit
    clock.now += 60
    assert t.retry_after("k") is None


def test_throttle_memory_is_bounded() -> None:
    t = FailureThrottle(limit=1, window=10, clock=Clock(), max_keys=100)
    for i in range(1000):
        t.fail(f"user{i}")
    assert len(t) == 100
    assert t.retry_after("user999") is not None and t.retry_after("user0") is None


def test_rate_limiter_burst_then_refill() -> None:
    clock = Clock()
    r = RateLimiter(rate=2, burst=4, clock=clock)
    assert [r.take("AC1") for _ in range(4)] == [None] * 4
    assert r.take("AC1") == pytest.approx(0.5)
    assert r.take("AC2") is None  # per account
    clock.now += 0.5
    assert r.take("AC1") is None
    assert r.take("AC1") == pytest.approx(0.5)
    clock.now += 100
    assert [r.take("AC1") for _ in range(4)] == [None] * 4  # refills up to the burst, not beyond
    assert r.take("AC1") is not None


def test_retry_after_is_whole_seconds_never_zero() -> None:
    assert retry_after_header(0.0001) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(1.01) == "2"


def test_limits_from_settings() -> None:
    off = Limits(load_settings(env={}, auth_failures_per_address=0, auth_failures_per_account=0))
    assert off.by_address is None and off.by_account is None and off.api is None  # api off by default
    assert off.auth_wait("a", "b") is None and off.auth_failed("a", "b") == []
    clock = Clock()
    on = Limits(load_settings(env={"RESTCOMM_AUTH_FAILURES_PER_ADDRESS": "2", "RESTCOMM_AUTH_FAILURES_PER_ACCOUNT": "3",
                                   "RESTCOMM_AUTH_FAILURE_WINDOW": "6", "RESTCOMM_API_RATE_LIMIT": "2.5"}), clock)
    assert on.api is not None and on.api.burst == 3  # default burst: the rate, rounded up
    assert on.auth_failed("10.0.0.1", "AC1") == []
    assert on.auth_failed("10.0.0.1", "AC1") == ["address"]
    wait, scope = on.auth_wait("10.0.0.1", "AC1")
    assert scope == "address" and wait == pytest.approx(3.0)
    assert on.auth_wait("10.0.0.2", "AC1") is None  # the account has 2 of 3
    on.auth_failed("10.0.0.2", "AC1")
    assert on.auth_wait("10.0.0.3", "AC1")[1] == "account"
    assert on.auth_wait("10.0.0.3", "AC2") is None


def test_an_ipv6_client_is_its_64() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("fe80::1%eth0") == "fe80::/64" and client_key("") == "" and client_key("not:an:ip") == "not:an:ip"
    clock = Clock()
    limits = Limits(load_settings(env={"RESTCOMM_AUTH_FAILURES_PER_ADDRESS": "2"}), clock)
    limits.auth_failed("2001:db8::1", None)
    limits.auth_failed("2001:db8::2", None)
    assert limits.auth_wait("2001:db8::3", None) is not None  # same /64: same client
    assert limits.auth_wait("2001:db8:0:1::3", None) is None
