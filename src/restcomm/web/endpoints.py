"""API operations as ASGI endpoints: authentication, tenancy, validation, the body, the answer."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from restcomm.api.errors import ApiError
from restcomm.api.framework import REGISTRY, Call, Operation, error_response, parse_form, validate
from restcomm.container import Services
from restcomm.observability import DB_ROUND_TRIPS
from restcomm.store.trips import per_request
from restcomm.web.errors import negotiate, server_error

log = logging.getLogger("restcomm")


def load_resources() -> None:
    """Import every module of restcomm.api, each registering its operations with @operation."""
    import restcomm.api

    for module in pkgutil.iter_modules(restcomm.api.__path__):
        importlib.import_module(f"restcomm.api.{module.name}")


def _query(request: Request) -> dict[str, str]:
    qs = request.scope.get("query_string", b"")
    if not qs:
        return {}
    return parse_form(qs)


async def _body(request: Request, limit: int, json: bool = False) -> bytes:
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
    # A JSON body's media type is checked by its handler, after the permission checks (api/profiles.py).
    if not json and body and ctype not in ("", "application/x-www-form-urlencoded"):
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
    from restcomm.api.roles import authorize

    trips_counter = DB_ROUND_TRIPS.labels(op.method, op.full_path)

    async def endpoint(request: Request) -> Response:
        with per_request() as counted:
            try:
                return await handle(request)
            finally:
                trips_counter.inc(counted[0])

    async def handle(request: Request) -> Response:
        fmt = "json" if op.media else negotiate(request)
        call = Call(request, op, services, fmt)
        try:
            if op.auth:
                call.principal = await authenticate(call)
                authorize(call.principal, op)  # the role's permission for this operation (api/roles.py)
                if "AccountSid" in call.path:
                    # Tenancy before validation: an intruder learns nothing from a 400.
                    await call.account()
            call.raw_query = _query(request)
            call.query = validate(op.query, call.raw_query)
            if op.headers:
                call.headers = validate(op.headers, {p.name: v for p in op.headers
                                                     if (v := request.headers.get(p.name)) is not None})
            if op.form:
                call.form = validate(op.form, parse_form(await _body(request, services.settings.max_body_bytes)))
            elif op.body is not None:
                call.body = await _body(request, services.settings.max_body_bytes, json=True)
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



def operation_routes(services: Services) -> list[Route]:
    """One route per registered operation; PUT updates exactly as POST does wherever POST updates an item."""
    routes: list[Route] = []
    for op in REGISTRY:
        routes.append(Route(op.full_path, Endpoint(op, services), methods=[op.method, *op.aliases],
                            name=op.handler.__name__))
    for op in REGISTRY:
        if op.method == "POST" and op.path.endswith("}"):
            routes.append(Route(op.full_path, Endpoint(op, services), methods=["PUT"], name=op.handler.__name__))
    return routes
