"""The slow-client guard's bookkeeping (caps, eviction order, trusted proxies) and storage-failure detection."""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from restcomm.config import ConfigError, Settings, load_settings
from restcomm.httpguard import Guard, _Proxies, effective_max_connections
from restcomm.store.db import storage_failure


class Conn:
    """Stands in for a protocol: what the guard reads and calls."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.address_key: str | None = None
        self.counted = False
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True
        self.guard.release(self)  # type: ignore[arg-type]


def _guard(**kw: Any) -> Guard:
    return Guard(replace(Settings(), **kw))


def test_per_address_cap_and_release() -> None:
    guard = _guard(http_max_connections_per_address=2, http_max_connections=100)
    a, b, c = Conn(guard), Conn(guard), Conn(guard)
    assert guard.admit(a, "10.0.0.1") is None  # type: ignore[arg-type]
    assert guard.admit(b, "10.0.0.1") is None  # type: ignore[arg-type]
    assert guard.admit(c, "10.0.0.1") == "address"  # type: ignore[arg-type]
    assert guard.admit(Conn(guard), "10.0.0.2") is None  # type: ignore[arg-type]
    guard.release(a)  # type: ignore[arg-type]
    assert guard.admit(c, "10.0.0.1") is None  # type: ignore[arg-type]
    assert guard.open == 3


def test_at_capacity_the_longest_waiting_connection_is_evicted() -> None:
    guard = _guard(http_max_connections=3, http_max_connections_per_address=0)
    old, busy, young = Conn(guard), Conn(guard), Conn(guard)
    for conn, key in ((old, "10.0.0.1"), (busy, "10.0.0.2"), (young, "10.0.0.3")):
        guard.admit(conn, key)  # type: ignore[arg-type]
    guard.wait(old)  # type: ignore[arg-type]  # waiting on its client; `busy` is in the application
    guard.wait(young)  # type: ignore[arg-type]
    new = Conn(guard)
    assert guard.admit(new, "10.0.0.9") is None  # type: ignore[arg-type]
    assert old.evicted and not busy.evicted and not young.evicted
    assert guard.open == 3 and "10.0.0.1" not in guard.per_address


def test_at_capacity_an_address_evicts_its_own_connections_first() -> None:
    guard = _guard(http_max_connections=3, http_max_connections_per_address=0)
    other, mine1, mine2 = Conn(guard), Conn(guard), Conn(guard)
    for conn, key in ((other, "10.0.0.1"), (mine1, "10.0.0.7"), (mine2, "10.0.0.7")):
        guard.admit(conn, key)  # type: ignore[arg-type]
        guard.wait(conn)  # type: ignore[arg-type]
    assert guard.admit(Conn(guard), "10.0.0.7") is None  # type: ignore[arg-type]
    assert mine1.evicted and not other.evicted and not mine2.evicted


def test_at_capacity_with_nobody_waiting_the_newcomer_is_refused() -> None:
    guard = _guard(http_max_connections=1, http_max_connections_per_address=5)
    busy = Conn(guard)
    guard.admit(busy, "10.0.0.1")  # type: ignore[arg-type]
    assert guard.admit(Conn(guard), "10.0.0.2") == "capacity"  # type: ignore[arg-type]
    assert not busy.evicted and guard.per_address == {"10.0.0.1": 1}


def test_trusted_proxies() -> None:
    proxies = _Proxies("127.0.0.1, 10.1.0.0/16,fd00::/8")
    assert "127.0.0.1" in proxies and "10.1.2.3" in proxies and "fd00::5" in proxies
    assert "10.2.0.1" not in proxies and "127.0.0.2" not in proxies and "nonsense" not in proxies
    assert "203.0.113.9" in _Proxies("*")


def test_automatic_connection_cap_follows_the_open_file_limit() -> None:
    assert effective_max_connections(replace(Settings(), http_max_connections=7)) == 7
    assert 16 <= effective_max_connections(Settings()) <= 10_000


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        load_settings({"RESTCOMM_HTTP_HEADER_TIMEOUT": "0"})
    with pytest.raises(ConfigError):
        load_settings({"RESTCOMM_HTTP_MAX_CONNECTIONS": "-1"})
    assert load_settings({"RESTCOMM_HTTP_BODY_TIMEOUT": "2.5"}).http_body_timeout == 2.5


def _sqlite_error(code: int, text: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


class PgError(Exception):
    sqlstate = "53100"


@pytest.mark.parametrize("exc, expected", [
    (OperationalError("COMMIT", None, _sqlite_error(13, "database or disk is full")), True),
    (OperationalError("INSERT", None, _sqlite_error(10 | (3 << 8), "disk I/O error")), True),  # SQLITE_IOERR_WRITE
    (OperationalError("BEGIN", None, _sqlite_error(5, "database is locked")), False),
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.ECONNREFUSED, "refused"), False),
    (OperationalError("INSERT", None, PgError("could not extend file")), True),
    (ValueError("nothing to do with storage"), False),
])
def test_storage_failure(exc: BaseException, expected: bool) -> None:
    assert storage_failure(exc) is expected
