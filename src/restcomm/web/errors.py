"""Error answers of the HTTP layer: not found, method not allowed, and failures on the server's side.

Operations answer their own errors (``ApiError``); what reaches here is a path nobody serves, a
method a path does not take, or a bug or an outage, answered in the format the client asked for.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from restcomm.api.errors import ApiError
from restcomm.api.framework import error_response
from restcomm.store import db

log = logging.getLogger("restcomm")
STORAGE_FULL = "The server cannot store data right now (its storage is full or failing); nothing was changed"


def negotiate(request: Request) -> str:
    fmt = request.scope.get("state", {}).get("fmt")
    if fmt:
        return fmt
    accept = request.headers.get("accept", "")
    return "json" if "json" in accept else "xml"


def server_error(exc: Exception, method: str, path: str) -> ApiError:
    """The answer to a request that failed on the server's side, logged.

    The database being unreachable (restarting, failing over, network) is 503 with Retry-After: the
    client may send the request again. (A write whose COMMIT got no answer is in doubt: it may have
    been applied.) Anything else is a 500 with its traceback in the log."""
    if db.database_unavailable(exc):
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        log.error("database unavailable on %s %s: %s", method, path, first)
        return ApiError(503, 20503, "The database is unavailable; retry later", {"Retry-After": "1"})
    if db.storage_failure(exc):  # disk full, read-only or failing: nothing was stored
        log.error("storage failure on %s %s: %s", method, path, exc)
        return ApiError(503, 20503, STORAGE_FULL)
    log.exception("unhandled error on %s %s", method, path, exc_info=exc)
    return ApiError(500, 20500, "Internal server error")


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(negotiate(request), ApiError(404, 20404, "The requested resource was not found"))


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    return error_response(negotiate(request), ApiError(405, 20004, f"{request.method} is not allowed here", dict(allow)))


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return await method_not_allowed(request, exc)
    if exc.status_code == 404:
        return await not_found(request, exc)
    return error_response(negotiate(request), ApiError(exc.status_code, 20001, str(exc.detail)))
