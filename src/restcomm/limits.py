"""Abuse resistance: throttling of repeated authentication failures and per-account API rate limits.

State is per process (kept in memory, nothing is written to the database on the hot path). With
several nodes behind a load balancer each node counts on its own, so the effective limits are the
configured ones times the number of nodes; docs/operations.md says so.

* ``FailureThrottle`` counts failures per key in a leaky bucket: each failure adds one, the count
  drains at ``limit / window`` per second. While one more failure would exceed ``limit`` the key
  is throttled, and ``retry_after`` says for how long. Attempts refused while throttled are not
  counted (authentication does not call ``fail`` for them), so a key gets at most ``limit``
  checked failures per window, and a persistent attacker one every ``window / limit`` seconds.
  The count is capped at twice the limit in any case, so a key recovers within ``2 × window``.
* ``RateLimiter`` is a token bucket per key: ``burst`` requests at once, refilled at ``rate`` per
  second.

Both take the clock as a parameter (seconds, monotonic) so tests need no sleeps, and keep at most
``max_keys`` keys (the oldest are forgotten first), so a flood of made-up names or addresses cannot
exhaust memory.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from restcomm.config import Settings

MAX_KEYS = 100_000


class FailureThrottle:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.rate = limit / window  # failures forgiven per second
        self.clock = clock
        self.max_keys = max_keys
        self._levels: dict[str, list[float]] = {}  # key -> [level, time of level]

    def _level(self, key: str, now: float) -> float:
        entry = self._levels.get(key)
        if entry is None:
            return 0.0
        level = entry[0] - (now - entry[1]) * self.rate
        if level <= 0:
            del self._levels[key]
            return 0.0
        return level

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may fail once more without exceeding the limit; None if it may now."""
        if key not in self._levels:  # the hot path: nobody has failed with this key
            return None
        level = self._level(key, self.clock())
        excess = level + 1 - self.limit
        if excess <= 0:
            return None
        return excess / self.rate

    def fail(self, key: str) -> bool:
        """Count one failure; True when this failure is the one that reached the limit."""
        now = self.clock()
        level = self._level(key, now)
        if key not in self._levels and len(self._levels) >= self.max_keys:
            self._levels.pop(next(iter(self._levels)))
        new = min(level + 1, 2.0 * self.limit)
        self._levels[key] = [new, now]
        return level + 1 <= self.limit < new + 1

    def __len__(self) -> int:
        return len(self._levels)


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, time of tokens]

    def take(self, key: str) -> float | None:
        """Spend one token; None when allowed, else the seconds until a token is available."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.pop(next(iter(self._buckets)))
            self._buckets[key] = [self.burst - 1, now]
            return None
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return None
        bucket[0] = tokens
        return (1 - tokens) / self.rate


def client_key(address: str) -> str:
    """What one client is: an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64, so
    counting single IPv6 addresses would let it change address at every attempt)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network(f"{address.split('%', 1)[0]}/64", strict=False))
    except ValueError:
        return address


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 (a client told 0 would retry at once)."""
    return str(max(1, math.ceil(seconds)))


class Limits:
    """The limits of one server process, built from the settings; a disabled limit is None."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        window = settings.auth_failure_window
        self.by_address = (
            FailureThrottle(settings.auth_failures_per_address, window, clock)
            if settings.auth_failures_per_address > 0 else None
        )
        self.by_account = (
            FailureThrottle(settings.auth_failures_per_account, window, clock)
            if settings.auth_failures_per_account > 0 else None
        )
        burst = settings.api_rate_burst or max(1, math.ceil(settings.api_rate_limit))
        self.api = RateLimiter(settings.api_rate_limit, burst, clock) if settings.api_rate_limit > 0 else None
        self.clock = clock
        # Limiters for the rates accounts' profiles set instead (restcomm.profiles: sessionThrottling
        # APIRequestsPerTime), one per distinct (rate, burst); profiles are few.
        self._profile_api: dict[tuple[float, int], RateLimiter] = {}

    def api_wait(self, account_sid: str, profile_rate: tuple[float, int] | None = None) -> float | None:
        """Spend one API request of the account: None when allowed, else seconds to wait. A rate
        from the account's profile replaces the configured one (also where that one is off)."""
        if profile_rate is None:
            return self.api.take(account_sid) if self.api is not None else None
        limiter = self._profile_api.get(profile_rate)
        if limiter is None:
            limiter = self._profile_api[profile_rate] = RateLimiter(profile_rate[0], profile_rate[1], self.clock)
        return limiter.take(account_sid)

    def auth_wait(self, address: str, account_key: str | None) -> tuple[float, str] | None:
        """How long credentials from ``address`` for ``account_key`` stay refused, and why."""
        waits: list[tuple[float, str]] = []
        if self.by_address is not None:
            wait = self.by_address.retry_after(client_key(address))
            if wait is not None:
                waits.append((wait, "address"))
        if self.by_account is not None and account_key is not None:
            wait = self.by_account.retry_after(account_key)
            if wait is not None:
                waits.append((wait, "account"))
        return max(waits) if waits else None

    def auth_failed(self, address: str, account_key: str | None) -> list[str]:
        """Count a failure; the scopes (address, account) it pushed over their limit."""
        tripped = []
        if self.by_address is not None and self.by_address.fail(client_key(address)):
            tripped.append("address")
        if self.by_account is not None and account_key is not None and self.by_account.fail(account_key):
            tripped.append("account")
        return tripped
