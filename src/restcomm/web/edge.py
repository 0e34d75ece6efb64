"""The HTTP edge: one ASGI layer in front of the router, doing what every request needs.

* Format negotiation: strip .json/.xml from any segment and trailing slashes before routing.
* The request id: an incoming X-Request-Id (if it is a sane token) or a new one, bound to the
  log context for the request, added to the request headers (so the audit log records it) and
  echoed in the response.
* Metrics: latency by method, route template and status.
* Routing straight to the routes (``restcomm.web.router.Router``; Starlette's error middlewares are
  replaced by the handling here: operations answer their own errors, the router answers 404/405,
  so only bugs reach this layer's 500).
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from restcomm import observability
from restcomm.api.framework import error_response
from restcomm.config import ConfigError
from restcomm.web.errors import http_exception, negotiate, server_error

_REQUEST_ID_OK = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}").fullmatch
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})


class _RequestIds:
    """Unique per process and across processes: a random prefix and a counter."""

    def __init__(self) -> None:
        import itertools
        import secrets

        self.prefix = "RQ" + secrets.token_hex(8)
        self.counter = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):012x}"


class Edge:
    startup_error: ConfigError | None = None  # why the lifespan could not start, said plainly

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            # A start refused for a reason we can state (a configuration or storage problem) is
            # reported as that sentence, not as the traceback Starlette would pass on.
            if message["type"] == "lifespan.startup.failed" and Edge.startup_error is not None:
                message = {**message, "message": f"restcomm: configuration error: {Edge.startup_error}"}
            await send(message)

        return lifespan_send

    def __init__(self, app: Starlette, inner: Any):
        self.app = app  # the Starlette application: lifespan, and the scope["app"] of requests
        self.inner = inner  # the router, possibly behind CORS
        self.ids = _RequestIds()
        self.observe = observability.HTTP_REQUESTS.labels
        self.series: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self._lifespan_send(send)
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        fmt = None
        if path.endswith(".json") and path.count(".") == 1:  # the common case: one suffix, at the end
            path, fmt = path[:-5], "json"
        elif ".json" in path or ".xml" in path:
            segments = path.split("/")
            for i, seg in enumerate(segments):
                if seg.endswith(".json"):
                    segments[i], fmt = seg[:-5], "json"
                elif seg.endswith(".xml"):
                    segments[i] = seg[:-4]
                    fmt = fmt or "xml"
            path = "/".join(segments)
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["fmt"] = fmt
        state["client_path"] = scope["path"]  # as sent, for links that must lead back here
        scope["path"] = path
        scope["raw_path"] = path.encode()
        scope["app"] = self.app

        rid = None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if not isinstance(headers, list):  # ASGI allows any iterable; we append to it
            headers = scope["headers"] = list(headers)
        for name, value in headers:
            if name == b"x-request-id":
                rid = value
                break
        if rid is None:
            rid = self.ids.new().encode()
            headers.append((b"x-request-id", rid))
        elif not _REQUEST_ID_OK(rid):
            rid = self.ids.new().encode()
            scope["headers"] = [h for h in headers if h[0] != b"x-request-id"] + [(b"x-request-id", rid)]
        token = observability.enter_request(rid.decode())
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.inner(scope, receive, send_with_id)
        except HTTPException as exc:  # raised by Starlette code inside a route (the router answers its own)
            if not response_started:
                response = await http_exception(Request(scope, receive), exc)
                await response(scope, receive, send_with_id)
        except Exception as exc:
            error = server_error(exc, scope["method"], scope["path"])
            if not response_started:
                response = error_response(negotiate(Request(scope)), error)
                await response(scope, receive, send_with_id)
        finally:
            observability.unbind(token)
            route = scope.get("route")
            method = scope["method"]
            key = (method if method in _METHODS else "OTHER", route.path if route is not None else "unmatched", status)
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = self.observe(*key)
            series.observe(time.perf_counter() - started)
