"""/metrics (Prometheus text format), and the collectors that read the queue and the carriers at scrape time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from restcomm import observability
from restcomm.container import Services
from restcomm.security import constant_time_equals

if TYPE_CHECKING:
    from restcomm.web.peers import Fleet


class MetricsPage:
    """The exposition; behind a bearer token when ``metrics_token`` is set. With ``--workers N``
    (``fleet`` given), every worker's values merged (web/peers.py)."""

    def __init__(self, token: str | None, fleet: Fleet | None = None) -> None:
        self.token = token
        self.fleet = fleet

    async def respond(self, request: Request) -> Response:
        token = self.token
        if token:
            given = request.headers.get("authorization", "")
            if not (given[:7].lower() == "bearer " and constant_time_equals(given[7:].strip(), token)):
                return Response("metrics need a bearer token\n", 401, {"WWW-Authenticate": "Bearer"},
                                media_type="text/plain")
        from restcomm.web.peers import merged_exposition

        text = await merged_exposition(self.fleet.peers if self.fleet is not None else None)
        return Response(text, media_type=observability.CONTENT_TYPE)


async def collect_queue(services: Services) -> None:
    from restcomm.ops import export_queue, queue_snapshot

    async with services.engine.connect() as conn:
        snap = await queue_snapshot(conn)
    export_queue(snap, services.clock())


def collect_carriers(services: Services) -> None:
    from restcomm.ops import export_carriers

    export_carriers(services.carrier_states())


def collect_round_trips() -> None:
    from restcomm.store import trips

    observability.DB_ROUND_TRIPS_ALL.labels().set_total(trips.TOTAL[0])


def collectors(services: Services) -> list[Callable[[], Awaitable[None] | None]]:
    """The scrape-time collectors of this process, registered for the server's lifetime."""
    return [lambda: collect_queue(services), lambda: collect_carriers(services), collect_round_trips]
