"""Counting what is sent to the database: statements, transaction boundaries and pool pings.

On PostgreSQL each of these is a network round trip (the driver waits for the answer); on SQLite
each is a call into the library. ``TOTAL`` counts them for the whole process (exported as
``restcomm_db_round_trips_total``); ``per_request`` counts those made in one API request's context
(exported per route as ``restcomm_http_request_db_round_trips_total``), and a test holds each
route's count under a fixed ceiling so it cannot grow unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, event

TOTAL = [0]
_request: ContextVar[list[int] | None] = ContextVar("restcomm_db_trips", default=None)


def note(n: int = 1) -> None:
    TOTAL[0] += n
    mine = _request.get()
    if mine is not None:
        mine[0] += n


@contextmanager
def per_request() -> Iterator[list[int]]:
    """Count the round trips made in this context (the request's task) into the list's one item."""
    mine = [0]
    token = _request.set(mine)
    try:
        yield mine
    finally:
        _request.reset(token)


def _one(*_args: Any, **_kw: Any) -> None:
    note()


def _boundary(conn: Any, *_args: Any) -> None:
    """BEGIN, COMMIT or ROLLBACK: sent only outside autocommit mode (asyncpg's adapter skips them)."""
    # Read the driver connection without SQLAlchemy's revalidation (``conn.connection`` raises on a
    # connection invalidated by a lost server); a counting hook must never fail the statement.
    try:
        if conn.invalidated:
            return
        level = conn._dbapi_connection.dbapi_connection.isolation_level
    except Exception:
        level = None
    if level != "autocommit":
        note()


def instrument(sync_engine: Engine, *, boundaries: bool = True) -> None:
    """Count every statement the engine sends; with ``boundaries`` also BEGIN, COMMIT and ROLLBACK
    (engines whose BEGIN is real: PostgreSQL). Engines that issue BEGIN themselves on the raw connection count it there."""
    if event.contains(sync_engine, "before_cursor_execute", _one):
        return
    event.listen(sync_engine, "before_cursor_execute", _one)
    if boundaries:
        for name in ("begin", "commit", "rollback"):
            event.listen(sync_engine, name, _boundary)
        # The pool's liveness check at checkout counts itself (store/db.py).
