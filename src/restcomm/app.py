"""Builds the ASGI application and runs the background services for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from restcomm import observability
from restcomm.api.errors import ApiError
from restcomm.api.framework import API_ROOT, REGISTRY, Call, Operation, error_response, parse_form, validate
from restcomm.config import ConfigError, Settings
from restcomm.container import BackgroundService, Draining, Services
from restcomm.security import generate_password, hash_password, new_auth_token
from restcomm.store import db
from restcomm.store.reader import make_reader
from restcomm.store.schema import accounts, instance
from restcomm.util import API_VERSION, new_sid

log = logging.getLogger("restcomm")
STORAGE_FULL = "The server cannot store data right now (its storage is full or failing); nothing was changed"


def _load_resources() -> None:
    """Import every module of restcomm.api, each registering its operations with @operation."""
    import importlib
    import pkgutil

    import restcomm.api

    for module in pkgutil.iter_modules(restcomm.api.__path__):
        importlib.import_module(f"restcomm.api.{module.name}")


# ---------------------------------------------------------------------------------------------
# The HTTP edge: one ASGI layer in front of the router, doing what every request needs.
#
# * Format negotiation: strip .json/.xml from any segment and trailing slashes before routing.
# * The request id: an incoming X-Request-Id (if it is a sane token) or a new one, bound to the
#   log context for the request, added to the request headers (so the audit log records it) and
#   echoed in the response.
# * Metrics: latency by method, route template and status.
# * Dispatch straight to the routes (Dispatch, below; Starlette's error middlewares are replaced by
#   the handling here: operations answer their own errors, Dispatch answers 404/405, so only bugs
#   reach this layer's 500).

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


class Dispatch:
    """Routing by path segments: a trie walked once per request, whatever the number of routes.

    Literal segments are tried before parameters (``/IncomingPhoneNumbers/Local`` before
    ``/IncomingPhoneNumbers/{Sid}``), with backtracking; a parameter matches one non-empty segment,
    as Starlette's ``{name}`` does. A path that matches with another method is 405 with Allow.
    """

    class Node:
        __slots__ = ("literal", "param", "methods")

        def __init__(self) -> None:
            self.literal: dict[str, Dispatch.Node] = {}
            self.param: Dispatch.Node | None = None
            self.methods: dict[str, tuple[Route, tuple[str, ...]]] = {}

    def __init__(self, routes: list[Route]):
        self.root = Dispatch.Node()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        node, names = self.root, []
        for seg in route.path.split("/")[1:]:
            if seg.startswith("{") and seg.endswith("}"):
                names.append(seg[1:-1].split(":", 1)[0])
                if node.param is None:
                    node.param = Dispatch.Node()
                node = node.param
            else:
                node = node.literal.setdefault(seg, Dispatch.Node())
        for method in route.methods or ("GET",):
            node.methods.setdefault(method, (route, tuple(names)))

    def match(self, path: str, method: str) -> tuple[Route, dict[str, str]] | tuple[None, Node | None]:
        segments = path.split("/")[1:]
        values: list[str] = []
        fallback: list[Dispatch.Node] = []
        found = self._walk(self.root, segments, 0, method, values, fallback)
        if found is None:
            return None, (fallback[0] if fallback else None)
        route, names = found
        return route, dict(zip(names, values, strict=True))

    # A method, not a closure: a recursive closure is a reference cycle per request, garbage that only
    # the cycle collector frees (and its full passes over a large heap showed up as p99 latency).
    def _walk(self, node: Node, segments: list[str], i: int, method: str, values: list[str],
              fallback: list[Node]) -> tuple[Route, tuple[str, ...]] | None:
        if i == len(segments):
            if node.methods:
                found = node.methods.get(method)
                if found is not None:
                    return found
                fallback.append(node)
            return None
        seg = segments[i]
        child = node.literal.get(seg)
        if child is not None:
            found = self._walk(child, segments, i + 1, method, values, fallback)
            if found is not None:
                return found
        if node.param is not None and seg:
            values.append(seg)
            found = self._walk(node.param, segments, i + 1, method, values, fallback)
            if found is not None:
                return found
            values.pop()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, params = self.match(scope["path"], scope["method"])
        if route is None:  # answered here, inside any CORS layer, so browsers can read the error
            request = Request(scope, receive)
            if params is None:
                response = await _not_found(request, HTTPException(404))
            else:
                allow = {"Allow": ", ".join(sorted(params.methods))}  # type: ignore[union-attr]
                response = await _method_not_allowed(request, HTTPException(405, headers=allow))
            await response(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        await route.app(scope, receive, send)


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
        except HTTPException as exc:  # raised by Starlette code inside a route (Dispatch answers its own)
            if not response_started:
                response = await _http_exception(Request(scope, receive), exc)
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


def negotiate(request: Request) -> str:
    fmt = request.scope.get("state", {}).get("fmt")
    if fmt:
        return fmt
    accept = request.headers.get("accept", "")
    return "json" if "json" in accept else "xml"


# ---------------------------------------------------------------------------------------------
# Operation endpoints


def _query(request: Request) -> dict[str, str]:
    qs = request.scope.get("query_string", b"")
    if not qs:
        return {}
    return parse_form(qs)


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, 20008, f"Request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, 20008, f"Request body larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and ctype not in ("", "application/x-www-form-urlencoded"):
        raise ApiError(415, 20009, "Bodies must be application/x-www-form-urlencoded")
    return body


class Endpoint:
    """An operation as a plain ASGI app (no per-request wrappers between the router and it)."""

    __slots__ = ("handle",)

    def __init__(self, op: Operation, services: Services):
        self.handle = make_endpoint(op, services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)


def make_endpoint(op: Operation, services: Services) -> Callable[[Request], Any]:
    from restcomm.api.auth import authenticate

    async def endpoint(request: Request) -> Response:
        fmt = negotiate(request)
        call = Call(request, op, services, fmt)
        try:
            if op.auth:
                call.principal = await authenticate(call)
                if "AccountSid" in call.path:
                    # Tenancy before validation: an intruder learns nothing from a 400.
                    await call.account()
            call.raw_query = _query(request)
            call.query = validate(op.query, call.raw_query)
            if op.form:
                call.form = validate(op.form, parse_form(await _body(request, services.settings.max_body_bytes)))
            return await op.handler(call)
        except ApiError as err:
            return error_response(fmt, err)
        except IntegrityError:
            log.info("conflicting write on %s %s", request.method, request.url.path)
            return error_response(fmt, ApiError(409, 20010, "The resource conflicts with an existing one"))
        except ClientDisconnect:  # the client left (or was closed) before its body was complete
            return Response(status_code=400)  # nobody reads it
        except Exception as exc:
            return error_response(fmt, server_error(exc, request.method, request.url.path))
        finally:
            await call.close()

    return endpoint


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


# ---------------------------------------------------------------------------------------------
# Bootstrap


async def bootstrap(services: Services, out: Any = None) -> None:
    """First start: the organization and the administrator account. Safe when several nodes race."""
    settings, engine = services.settings, services.engine
    out = out or sys.stdout
    async with engine.begin() as conn:
        org = (await conn.execute(select(instance.c.value).where(instance.c.key == "organization_sid"))).scalar()
    if org is None:
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(instance).values(key="organization_sid", value=new_sid("OR")))
        except IntegrityError:
            pass
        async with engine.begin() as conn:
            org = (await conn.execute(select(instance.c.value).where(instance.c.key == "organization_sid"))).scalar()
    services.organization_sid = org
    async with engine.begin() as conn:
        n = (await conn.execute(select(func.count()).select_from(accounts))).scalar()
    if n:
        return
    email = (settings.admin_email or "administrator@company.com").lower()
    password = settings.admin_password
    generated = not password
    if generated:
        password = generate_password()
    now = services.clock()
    sid, token = new_sid("AC"), new_auth_token()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(accounts).values(
                    sid=sid,
                    parent_sid=None,
                    lineage="",
                    organization_sid=org,
                    email=email,
                    friendly_name="Default Administrator Account",
                    status="active",
                    role="Administrator",
                    type="Full",
                    auth_token=token,
                    secondary_auth_token=None,
                    password_hash=hash_password(password),
                    api_version=API_VERSION,
                    date_created=now,
                    date_updated=now,
                )
            )
    except IntegrityError:
        return  # another node bootstrapped first
    if generated:
        print(
            "Administrator account created (shown once):\n"
            f"  AccountSid: {sid}\n  AuthToken:  {token}\n  Email:      {email}\n  Password:   {password}",
            file=out,
            flush=True,
        )
    else:
        print(f"Administrator account created: {email} ({sid})", file=out, flush=True)


def _startup_error(settings: Settings, exc: Exception) -> ConfigError | None:
    """A plain statement of why the database could not be prepared, when we know it."""
    if isinstance(exc, ConfigError):
        return exc
    if db.storage_failure(exc):
        where = f"data directory {settings.data_dir}" if settings.is_sqlite else "the database's storage"
        reason = getattr(exc, "orig", None) or exc
        return ConfigError(f"{where} cannot store the database: {reason} (full, read-only or failing)")
    return None


async def prepare_database(services: Services) -> None:
    if services.settings.should_auto_migrate:
        await db.upgrade(services.engine)
    else:
        current = await db.current_revision(services.engine)
        if current != db.head_revision():
            raise ConfigError(
                f"database schema is at {current or 'nothing'}, this version needs {db.head_revision()}: "
                "run `restcomm db upgrade` first (or set RESTCOMM_AUTO_MIGRATE=true)"
            )


# ---------------------------------------------------------------------------------------------


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(negotiate(request), ApiError(404, 20404, "The requested resource was not found"))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    return error_response(negotiate(request), ApiError(405, 20004, f"{request.method} is not allowed here", dict(allow)))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return await _method_not_allowed(request, exc)
    if exc.status_code == 404:
        return await _not_found(request, exc)
    return error_response(negotiate(request), ApiError(exc.status_code, 20001, str(exc.detail)))


def build_app(settings: Settings, services: Services | None = None, extra_services: list[Any] | None = None) -> Any:
    _load_resources()
    engine = services.engine if services else db.create_engine(settings)
    services = services or Services(settings=settings, engine=engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await prepare_database(services)
            services.reader = make_reader(engine)
            await bootstrap(services)
        except Exception as exc:
            Edge.startup_error = _startup_error(settings, exc)
            if Edge.startup_error is not None:
                raise Edge.startup_error from exc
            raise
        from restcomm.background import build_background_services

        services.background = build_background_services(services) + list(extra_services or [])
        started: list[BackgroundService] = []
        collectors = [lambda: _collect_queue(services), lambda: _collect_carriers(services)]
        for collector in collectors:
            observability.metrics.collector(collector)
        observability.PROCESS_START.set(time.time())
        try:
            for svc in services.background:
                await svc.start()
                started.append(svc)
            yield
        finally:
            for collector in collectors:
                observability.metrics.remove_collector(collector)
            # Drain first (stop taking new work, finish what is in hand) while everything is still
            # up, then stop in reverse start order.
            for svc in reversed(started):
                if isinstance(svc, Draining):
                    try:
                        await svc.drain()
                    except Exception:
                        log.exception("draining %r failed", svc)
            for svc in reversed(started):
                try:
                    await svc.stop()
                except Exception:
                    log.exception("stopping %r failed", svc)
            services.reader.close()
            await engine.dispose()

    routes: list[Route] = []
    for op in REGISTRY:
        routes.append(Route(op.full_path, Endpoint(op, services), methods=[op.method], name=op.handler.__name__))
    # PUT updates exactly as POST does wherever POST updates an item.
    for op in REGISTRY:
        if op.method == "POST" and op.path.endswith("}"):
            routes.append(Route(op.full_path, Endpoint(op, services), methods=["PUT"], name=op.handler.__name__))

    openapi_body: list[bytes] = []  # built on first use, then served as is (it is public and ~250 KB)

    async def openapi(request: Request) -> Response:
        if not openapi_body:
            from restcomm.api.openapi import build_openapi

            openapi_body.append(JSONResponse(build_openapi(REGISTRY)).body)
        return Response(openapi_body[0], media_type="application/json")

    async def error_page(request: Request) -> Response:
        code = request.path_params["code"]
        from restcomm.codes import ERRORS

        try:
            number = int(code.removesuffix(".html"))
        except ValueError:
            return HTMLResponse("<h1>Unknown error code</h1>", 404)
        entry = ERRORS.get(number)
        if entry is None:
            return HTMLResponse("<h1>Unknown error code</h1>", 404)
        title, text = entry.title, entry.explanation
        from html import escape

        return HTMLResponse(f"<h1>{number}: {escape(title)}</h1><p>{escape(text)}</p>")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        """Ready for traffic: the database answers a real query and every carrier has a bind up."""
        checks: dict[str, Any] = {}
        ok = True
        try:
            async with asyncio.timeout(READY_TIMEOUT), engine.connect() as conn:
                await conn.execute(select(instance.c.value).where(instance.c.key == "organization_sid"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes to the log, the class to the probe
            log.warning("readiness: database check failed: %r", exc)
            ok, checks["database"] = False, f"failed ({type(exc).__name__})"
        try:
            states = services.carrier_states()
        except Exception:
            log.exception("readiness: carrier state failed")
            ok, states, checks["carriers"] = False, None, "failed"
        if states is None:
            checks.setdefault("carriers", "none configured")
        else:
            checks["carriers"] = {str(st.get("name")): st.get("status", "unknown") for st in states}
            if any(st.get("status") not in ("up", "degraded") for st in states):
                ok = False
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    async def metrics_page(request: Request) -> Response:
        from restcomm.security import constant_time_equals

        token = settings.metrics_token
        if token:
            given = request.headers.get("authorization", "")
            if not (given[:7].lower() == "bearer " and constant_time_equals(given[7:].strip(), token)):
                return Response("metrics need a bearer token\n", 401, {"WWW-Authenticate": "Bearer"},
                                media_type="text/plain")
        await observability.metrics.collect()
        return Response(observability.metrics.exposition(), media_type=observability.CONTENT_TYPE)

    routes += [
        Route("/restcomm/openapi", openapi, methods=["GET"]),
        Route(f"{API_ROOT}/openapi", openapi, methods=["GET"]),
        Route("/restcomm/errors/{code}", error_page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _method_not_allowed, HTTPException: _http_exception},
    )
    app.state.services = services
    inner: Any = Dispatch(routes)
    if settings.cors_allowed_origins:
        from starlette.middleware.cors import CORSMiddleware

        inner = CORSMiddleware(
            inner,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After", "WWW-Authenticate"],
            max_age=600,
        )
    return Edge(app, inner)


READY_TIMEOUT = 3.0  # seconds the readiness probe waits for the database


async def _collect_queue(services: Services) -> None:
    from restcomm.ops import export_queue, queue_snapshot

    async with services.engine.connect() as conn:
        snap = await queue_snapshot(conn)
    export_queue(snap, services.clock())


def _collect_carriers(services: Services) -> None:
    from restcomm.ops import export_carriers

    export_carriers(services.carrier_states())


def create_app() -> Any:
    """Factory for `uvicorn --factory restcomm.app:create_app`."""
    from restcomm.config import load_settings

    return build_app(load_settings())
