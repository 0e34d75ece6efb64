"""One view of a multi-process server (``restcomm serve --workers N``): the workers ask each other.

The kernel hands each connection to whichever worker accepts it, but ``/metrics``, ``/ready`` and
the Carriers API must describe the whole server, not that worker. Each worker therefore listens on
a Unix socket of its own in a private directory the parent creates (``Settings.workers_dir``,
``<dir>/worker-<index>.sock``); the worker answering such a request asks every other worker for its
part over those sockets, at that moment, and merges:

* ``/metrics``: every counter, gauge and histogram summed over the workers, except the values read
  from the database (queue depth and age, pending callbacks, queued emails: the same in every
  worker, taken once) and the process start (the earliest). ``restcomm_workers_reporting`` says how
  many workers the scrape merged.
* ``/ready``: ready only when every worker answers and is ready itself (its database and its share
  of every carrier's binds); the answer lists each worker.
* Carriers: per carrier, the binds and counters summed over the workers' shares; ``binds`` and
  ``max_tps`` are the configured totals, so a worker that does not answer shows as binds down.

Asking is bounded (``PEER_TIMEOUT`` per worker, all at once): a worker that is being replaced
simply does not count. The protocol is one JSON line each way: ``{"want": "metrics" | "ready" |
"carriers"}``, answered with that worker's part.

Calls: only the first worker listens for SIP and runs calls (one SIP port cannot be shared between
processes without breaking its transactions). The Calls API of every other worker hands its work to
the first one over the same sockets (``WorkerCalls``): ``{"want": "place_call", "call": {...}}``
(the call as committed, ``voice.ports.OutboundCall``) and ``{"want": "control_call", "sid": ...,
"status": ... | "url": ..., "method": ...}``. A first worker that does not answer refuses the call
(it fails with 19101, as with no voice engine) or the change (503, retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from restcomm import observability
from restcomm.config import Settings
from restcomm.container import Services
from restcomm.voice.ports import CallNotHere, OutboundCall

log = logging.getLogger("restcomm.workers")

PEER_TIMEOUT = 3.0  # seconds one worker waits for another's answer
Report = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
CALLS_WORKER = 0  # the worker that listens for SIP and runs the calls (background.voice_engine)


def socket_path(directory: str, index: int) -> str:
    return str(Path(directory) / f"worker-{index}.sock")


class Peers:
    """This worker's socket for the others, and its way of asking them (see the module doc)."""

    def __init__(self, settings: Settings, report: Report) -> None:
        self.settings = settings
        self.report = report
        self._server: asyncio.AbstractServer | None = None

    @property
    def index(self) -> int:
        return self.settings.worker_index

    def others(self) -> list[int]:
        return [i for i in range(self.settings.workers) if i != self.index]

    async def start(self) -> None:
        path = socket_path(self.settings.workers_dir, self.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by the worker this one replaces
        self._server = await asyncio.start_unix_server(self._serve, path=path, limit=1 << 20)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = orjson.loads(await asyncio.wait_for(reader.readline(), PEER_TIMEOUT))
            answer = await self.report(request if isinstance(request, dict) else {})
            writer.write(orjson.dumps({"index": self.index, "pid": os.getpid(), **answer}) + b"\n")
            await writer.drain()
        except Exception:
            log.exception("answering another worker failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def ask(self, want: str) -> dict[int, dict[str, Any] | None]:
        """Every other worker's part (None for one that did not answer in time)."""
        indexes = self.others()
        answers = await asyncio.gather(*(self._ask_one(i, want) for i in indexes))
        return dict(zip(indexes, answers, strict=True))

    async def _ask_one(self, index: int, want: str) -> dict[str, Any] | None:
        return await self.ask_worker(index, {"want": want})

    async def ask_worker(self, index: int, request: dict[str, Any]) -> dict[str, Any] | None:
        """One worker's answer to ``request`` (None when it did not answer in time)."""
        want = request.get("want")
        path = socket_path(self.settings.workers_dir, index)
        try:
            async with asyncio.timeout(PEER_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(path, limit=1 << 24)
                try:
                    writer.write(orjson.dumps(request) + b"\n")
                    await writer.drain()
                    line = await reader.readline()
                finally:
                    writer.close()
            answer: dict[str, Any] = orjson.loads(line)
            return answer
        except Exception as exc:
            log.warning("worker %d did not answer for %s: %r", index, want, exc)
            return None


# ---------------------------------------------------------------------------------------------
# Merging the workers' carriers

_SUMMED = ("bound", "window_in_use", "queued", "tps", "reconnects", "submitted", "accepted", "retries", "receipts",
           "receipts_parked", "mo", "mo_not_hosted", "mo_incomplete", "messages_sent", "messages_refused",
           "messages_unavailable", "errors")


def merge_carriers(parts: list[list[dict[str, Any]]], configured: dict[str, tuple[int, float]]) -> list[dict[str, Any]]:
    """The server's carriers from the workers' states (``configured``: name -> total binds, max_tps)."""
    merged: dict[str, dict[str, Any]] = {}
    for states in parts:
        for st in states:
            name = st["name"]
            into = merged.get(name)
            if into is None:
                merged[name] = {**st, "error_counts": dict(st.get("error_counts", {}))}
                continue
            for key in _SUMMED:
                into[key] = into.get(key, 0) + st.get(key, 0)
            for kind, n in st.get("error_counts", {}).items():
                into["error_counts"][kind] = into["error_counts"].get(kind, 0) + n
    out = []
    for name, st in merged.items():
        binds, max_tps = configured.get(name, (st["binds"], st["max_tps"]))
        st["binds"], st["max_tps"] = binds, max_tps
        st["window_size"] = st["window"] * binds
        st["status"] = "up" if st["bound"] >= binds else ("degraded" if st["bound"] else "down")
        out.append(st)
    return out


class WorkersView:
    """``Services.server_view`` in a worker: the carriers of every worker, merged."""

    def __init__(self, peers: Peers, mine: Callable[[], list[dict[str, Any]] | None],
                 configured: dict[str, tuple[int, float]]) -> None:
        self.peers = peers
        self.mine = mine
        self.configured = configured

    async def carrier_states(self) -> list[dict[str, Any]] | None:
        mine = self.mine()
        if mine is None:
            return None
        others = await self.peers.ask("carriers")
        parts = [mine] + [a["carriers"] or [] for a in others.values() if a is not None]
        states = merge_carriers(parts, self.configured)
        # Every configured carrier, even one whose every worker failed to answer: down.
        order = {st["name"]: i for i, st in enumerate(mine)}
        return sorted(states, key=lambda st: order.get(st["name"], len(order)))


async def merged_exposition(peers: Peers | None) -> str:
    """/metrics: this worker's values merged with every other worker's (see the module doc)."""
    await observability.metrics.collect()
    if peers is None:
        observability.WORKERS_REPORTING.set(1)
        return observability.metrics.exposition()
    answers = await peers.ask("metrics")
    snapshots = [a["metrics"] for a in answers.values() if a is not None]
    observability.WORKERS_REPORTING.set(1 + len(snapshots))
    return observability.metrics.exposition(snapshots)


class Fleet:
    """The workers of this server as one: built by the app when ``--workers`` > 1."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.peers = Peers(services.settings, self.report)

    async def start(self) -> None:
        from restcomm.smpp.carriers import load_carriers

        configured = {cs.config.name: (cs.config.binds, cs.config.max_tps) for cs in load_carriers(self.services.settings)}
        self.services.server_view = WorkersView(self.peers, self.services.carrier_states, configured)
        await self.peers.start()
        s = self.services
        self._forwarding = self.peers.index != CALLS_WORKER and s.call_placer is None and s.call_control is None
        if self._forwarding:
            s.call_placer = s.call_control = WorkerCalls(self.peers)

    async def stop(self) -> None:
        await self.peers.stop()
        self.services.server_view = None
        if getattr(self, "_forwarding", False):
            self.services.call_placer = self.services.call_control = None

    async def report(self, request: dict[str, Any]) -> dict[str, Any]:
        """This worker's part of the server's view, or a call handed over by another worker."""
        from restcomm.web.probes import local_readiness

        want = str(request.get("want", ""))
        if want in ("place_call", "control_call"):
            return await self._calls(want, request)

        if want == "metrics":
            await observability.metrics.collect()
            return {"metrics": observability.metrics.snapshot()}
        if want == "carriers":
            return {"carriers": self.services.carrier_states()}
        if want == "ready":
            ok, checks = await local_readiness(self.services)
            return {"ok": ok, "checks": checks}
        return {"error": f"unknown request {want!r}"}

    async def _calls(self, want: str, request: dict[str, Any]) -> dict[str, Any]:
        """Another worker's Calls API, carried out by this one's voice engine."""
        placer, control = self.services.call_placer, self.services.call_control
        if isinstance(placer, WorkerCalls) or placer is None or control is None:
            return {"error": "no voice engine runs in this worker"}
        try:
            if want == "place_call":
                await placer.place(OutboundCall(**request["call"]))
            elif request.get("status"):
                await control.hangup(str(request["sid"]), str(request["status"]))
            else:
                await control.redirect(str(request["sid"]), str(request["url"]), str(request.get("method") or "POST"))
        except CallNotHere:
            return {"not_here": True}
        except Exception as exc:  # the engine refused: the asking worker fails the call with the reason
            return {"error": str(exc) or type(exc).__name__}
        return {"ok": True}


class WorkerCalls:
    """The Calls API's placer and control in a worker without the voice engine: every call is
    placed and controlled by the first worker (see the module docstring)."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        return await self.peers.ask_worker(CALLS_WORKER, request)

    async def place(self, call: OutboundCall) -> None:
        answer = await self._ask({"want": "place_call", "call": dataclasses.asdict(call)})
        if answer is None:
            raise RuntimeError("the worker that runs calls did not answer")
        if not answer.get("ok"):
            raise RuntimeError(str(answer.get("error") or "refused"))

    async def _control(self, request: dict[str, Any]) -> None:
        answer = await self._ask({"want": "control_call", **request})
        if answer is None or answer.get("not_here") or not answer.get("ok"):
            raise CallNotHere(str((answer or {}).get("error") or "the worker that runs calls does not have it"))

    async def hangup(self, call_sid: str, status: str) -> None:
        await self._control({"sid": call_sid, "status": status})

    async def redirect(self, call_sid: str, url: str, method: str) -> None:
        await self._control({"sid": call_sid, "url": url, "method": method})
