"""Probes for load balancers and orchestrators: alive (/health) and ready for traffic (/ready)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from restcomm.container import Services
from restcomm.store.schema import instance

log = logging.getLogger("restcomm")

READY_TIMEOUT = 3.0  # seconds the readiness probe waits for the database


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class Ready:
    """Ready for traffic: the database answers a real query and every carrier has a bind up."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def respond(self, request: Request) -> Response:
        services = self.services
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
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, 200 if ok else 503)
