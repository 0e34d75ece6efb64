"""Builds the ASGI application and runs the background services for its lifetime."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from restcomm.api.errors import ERROR_CODES, ApiError
from restcomm.api.framework import API_ROOT, REGISTRY, Call, Operation, error_response, parse_form, validate
from restcomm.config import ConfigError, Settings
from restcomm.security import generate_password, hash_password, new_auth_token
from restcomm.store import db
from restcomm.store.reader import Reader, make_reader
from restcomm.store.schema import accounts, instance
from restcomm.util import API_VERSION, new_sid, utcnow

log = logging.getLogger("restcomm")


class BackgroundService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    clock: Callable[[], datetime] = utcnow
    organization_sid: str = ""
    background: list[BackgroundService] = field(default_factory=list)
    reader: Reader = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)


def _load_resources() -> None:
    """Import every module of restcomm.api, each registering its operations with @operation."""
    import importlib
    import pkgutil

    import restcomm.api

    for module in pkgutil.iter_modules(restcomm.api.__path__):
        importlib.import_module(f"restcomm.api.{module.name}")


# ---------------------------------------------------------------------------------------------
# Format negotiation: strip .json/.xml from any segment and trailing slashes before routing.


class Negotiation:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            fmt = None
            if ".json" in path or ".xml" in path:
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
            state = scope.setdefault("state", {})
            state["fmt"] = fmt
            state["client_path"] = scope["path"]  # as sent, for links that must lead back here
            scope["path"] = path
            scope["raw_path"] = path.encode()
        await self.app(scope, receive, send)


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
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_response(fmt, ApiError(500, 20500, "Internal server error"))
        finally:
            await call.close()

    return endpoint


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
    return error_response(negotiate(request), ApiError(405, 20004, f"{request.method} is not allowed here"))


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
        await prepare_database(services)
        services.reader = make_reader(engine)
        await bootstrap(services)
        from restcomm.services import build_background_services

        services.background = build_background_services(services) + list(extra_services or [])
        started: list[BackgroundService] = []
        try:
            for svc in services.background:
                await svc.start()
                started.append(svc)
            yield
        finally:
            for svc in reversed(started):
                try:
                    await svc.stop()
                except Exception:
                    log.exception("stopping %r failed", svc)
            services.reader.close()
            await engine.dispose()

    routes: list[Route] = []
    for op in REGISTRY:
        routes.append(Route(op.full_path, make_endpoint(op, services), methods=[op.method], name=None))
    # PUT updates exactly as POST does wherever POST updates an item.
    for op in REGISTRY:
        if op.method == "POST" and op.path.endswith("}"):
            routes.append(Route(op.full_path, make_endpoint(op, services), methods=["PUT"]))

    async def openapi(request: Request) -> Response:
        from restcomm.api.openapi import build_openapi

        return JSONResponse(build_openapi(REGISTRY))

    async def error_page(request: Request) -> Response:
        code = request.path_params["code"]
        from restcomm.rcml.errors import SMS_NOTIFICATION_CODES

        try:
            number = int(code.removesuffix(".html"))
        except ValueError:
            return HTMLResponse("<h1>Unknown error code</h1>", 404)
        if number in ERROR_CODES:
            title, text = ERROR_CODES[number]
        elif number in SMS_NOTIFICATION_CODES:  # the more_info links of Notifications
            title, text = SMS_NOTIFICATION_CODES[number].message, SMS_NOTIFICATION_CODES[number].when
        else:
            return HTMLResponse("<h1>Unknown error code</h1>", 404)
        from html import escape

        return HTMLResponse(f"<h1>{number}: {escape(title)}</h1><p>{escape(text)}</p>")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes += [
        Route("/restcomm/openapi", openapi, methods=["GET"]),
        Route(f"{API_ROOT}/openapi", openapi, methods=["GET"]),
        Route("/restcomm/errors/{code}", error_page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _method_not_allowed, HTTPException: _http_exception},
    )
    app.state.services = services
    return Negotiation(app)


def create_app() -> Any:
    """Factory for `uvicorn --factory restcomm.app:create_app`."""
    from restcomm.config import load_settings

    return build_app(load_settings())
