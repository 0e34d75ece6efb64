"""Probes for load balancers and orchestrators: alive (/health) and ready for traffic (/ready)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from restcomm.container import Services
from restcomm.store.schema import instance

if TYPE_CHECKING:
    from restcomm.web.peers import Fleet

log = logging.getLogger("restcomm")

READY_TIMEOUT = 3.0  # seconds the readiness probe waits for the database


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def local_readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    """This process: the database answers a real query and every carrier has a bind up."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        async with asyncio.timeout(READY_TIMEOUT), services.engine.connect() as conn:
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
    return ok, checks


class Ready:
    """Ready for traffic: the database answers a real query and every carrier has a bind up.

    With ``--workers N`` (``fleet`` given): every worker must answer and be ready itself (each
    sends through its own share of the carriers' binds); ``workers`` lists each one's answer and
    ``carriers`` the server's merged state (web/peers.py).
    """

    def __init__(self, services: Services, fleet: Fleet | None = None) -> None:
        self.services = services
        self.fleet = fleet

    async def respond(self, request: Request) -> Response:
        services = self.services
        ok, checks = await local_readiness(services)
        if self.fleet is not None:
            workers: dict[str, Any] = {str(services.settings.worker_index): "ready" if ok else "unavailable"}
            for index, answer in (await self.fleet.peers.ask("ready")).items():
                if answer is None:
                    ok, workers[str(index)] = False, "no answer"
                    continue
                workers[str(index)] = "ready" if answer.get("ok") else "unavailable"
                if not answer.get("ok"):
                    ok = False
                    for name, failed in (answer.get("checks") or {}).items():
                        if name != "carriers" and failed != "ok":
                            checks.setdefault(f"worker {index} {name}", failed)
            checks["workers"] = workers
            checks["answered_by"] = services.settings.worker_index
            try:
                states = await services.server_carrier_states()
            except Exception:
                log.exception("readiness: carrier state failed")
                states = None
            if states is not None:
                checks["carriers"] = {str(st.get("name")): st.get("status", "unknown") for st in states}
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, 200 if ok else 503)
