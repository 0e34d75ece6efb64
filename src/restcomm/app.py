"""The ASGI application of the server: assembled here from the parts in ``restcomm.web``.

``build_app`` puts together the routes (every API operation, the public pages, the probes,
/metrics), the router, CORS when configured, and the edge in front of it all; the lifespan runs
the database checks and the background services (``restcomm.background``) for the app's lifetime.
The services themselves live in the container (``restcomm.container.Services``).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from restcomm.api.framework import API_ROOT
from restcomm.config import Settings
from restcomm.container import Services
from restcomm.store import db
from restcomm.web.bootstrap import bootstrap, prepare_database
from restcomm.web.edge import Edge
from restcomm.web.endpoints import load_resources, operation_routes
from restcomm.web.errors import http_exception, method_not_allowed, not_found
from restcomm.web.lifespan import make_lifespan
from restcomm.web.metrics import MetricsPage
from restcomm.web.pages import HomePage, OpenApiPage, error_page
from restcomm.web.probes import Ready, health
from restcomm.web.router import Router

__all__ = ["Services", "bootstrap", "build_app", "create_app", "prepare_database"]


def build_app(settings: Settings, services: Services | None = None, extra_services: list[Any] | None = None) -> Any:
    load_resources()
    engine = services.engine if services else db.create_engine(settings)
    services = services or Services(settings=settings, engine=engine)

    # With --workers N, the workers answer /metrics, /ready and the Carriers API as one server.
    fleet = None
    if settings.workers > 1 and settings.workers_dir:
        from restcomm.web.peers import Fleet

        fleet = Fleet(services)
    routes: list[Route] = operation_routes(services)
    openapi = OpenApiPage().respond  # a bound method: Starlette serves it as a request endpoint
    routes += [
        Route("/restcomm/openapi", openapi, methods=["GET"]),
        Route(f"{API_ROOT}/openapi", openapi, methods=["GET"]),
        Route("/restcomm/errors/{code}", error_page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/", HomePage(settings).respond, methods=["GET"]),
        Route("/ready", Ready(services, fleet).respond, methods=["GET"]),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", MetricsPage(settings.metrics_token, fleet).respond, methods=["GET"]))
    app = Starlette(
        routes=routes,
        lifespan=make_lifespan(services, extra_services, fleet),
        exception_handlers={404: not_found, 405: method_not_allowed, HTTPException: http_exception},
    )
    app.state.services = services
    inner: Any = Router(routes)
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


def create_app() -> Any:
    """Factory for `uvicorn --factory restcomm.app:create_app`."""
    from restcomm.config import load_settings

    return build_app(load_settings())
