"""Which database errors mean "the database is unavailable" (the API answers 503 and the workers retry)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from restcomm.store.db import database_unavailable


def test_too_many_clients_is_unavailability_not_a_server_error() -> None:
    # PostgreSQL refuses a new connection when max_connections is reached (SQLSTATE 53300): the
    # request is fine and may be retried, so it must not become a 500.
    exc = asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    assert exc.sqlstate == "53300"
    assert database_unavailable(exc)
    wrapped = DBAPIError("SELECT 1", None, exc)  # as SQLAlchemy's engine raises it
    wrapped.orig = exc
    assert database_unavailable(wrapped)


def test_shutdown_and_lost_connections_are_unavailability() -> None:
    assert database_unavailable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert database_unavailable(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))
    assert database_unavailable(ConnectionRefusedError(111, "Connection refused"))


def test_a_statement_error_is_not_unavailability() -> None:
    exc = asyncpg.exceptions.UniqueViolationError("duplicate key value")
    assert not database_unavailable(exc)
    assert not database_unavailable(IntegrityError("INSERT", None, exc))
