"""What happens when the server starts and stops.

Start: the schema is checked (or migrated), the administrator exists, then the background services
(``restcomm.background``: the email outbox, the SMS pipeline, the carriers, and whatever else is
registered there) start in order. Stop (SIGTERM): every service that has ``drain`` stops taking new
work (in reverse start order) while everything is still up, then each stops in reverse start order,
then the database is let go.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette

from restcomm import observability
from restcomm.container import BackgroundService, Draining, Services
from restcomm.store.reader import make_reader
from restcomm.web.bootstrap import bootstrap, prepare_database, startup_error
from restcomm.web.edge import Edge
from restcomm.web.metrics import collectors

log = logging.getLogger("restcomm")


def make_lifespan(services: Services, extra_services: list[Any] | None = None, fleet: Any = None
                  ) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """``fleet`` (web/peers.py, with --workers N) starts once the background services run and
    stops first, so another worker asking this one always finds its carriers."""
    settings, engine = services.settings, services.engine

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await prepare_database(services)
            services.reader = make_reader(engine)
            await bootstrap(services)
        except Exception as exc:
            Edge.startup_error = startup_error(settings, exc)
            if Edge.startup_error is not None:
                raise Edge.startup_error from exc
            raise
        from restcomm.background import build_background_services

        services.background = build_background_services(services) + list(extra_services or [])
        started: list[BackgroundService] = []
        scrape = collectors(services)
        for collector in scrape:
            observability.metrics.collector(collector)
        observability.PROCESS_START.set(time.time())
        try:
            for svc in services.background:
                await svc.start()
                started.append(svc)
            if fleet is not None:
                await fleet.start()
            yield
        finally:
            if fleet is not None:
                await fleet.stop()
            for collector in scrape:
                observability.metrics.remove_collector(collector)
            await stop_services(started)
            services.reader.close()
            services.close_db()
            await engine.dispose()

    return lifespan


async def stop_services(started: list[BackgroundService]) -> None:
    """Drain first (stop taking new work, finish what is in hand) while everything is still up,
    then stop in reverse start order. A failure is logged and the others still stop."""
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
