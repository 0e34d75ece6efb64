"""Bounded polling until a condition holds: for what a test can only observe from outside (an API,
a database, a process). The bound turns a broken pipeline into a failure instead of a hung suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(fetch: Callable[[], T], done: Callable[[T], Any] = bool, timeout: float = 15, what: str = "",
               interval: float = 0.02, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Poll ``fetch`` until ``done(value)``; returns the value. Exceptions of the ``ignore`` types
    count as "not yet" (a connection refused while a process restarts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fetch()
            if done(value):
                return value
            last: Any = value
        except ignore as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'condition'}; last value: {last!r}")
        time.sleep(interval)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.05,
             ignore: tuple[type[BaseException], ...] = ()) -> None:
    """Poll ``predicate`` until it is true (bounded)."""
    wait_until(predicate, bool, timeout, what, interval, ignore)


def poll(fetch: Callable[[], T], done: Callable[[T], Any], timeout: float, interval: float = 0.05) -> T:
    """Like :func:`wait_until`, but returns the last value at the deadline instead of failing, for
    callers that assert on it themselves (with a message that says more)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)
