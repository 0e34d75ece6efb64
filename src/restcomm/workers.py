"""Several server processes on one port: ``restcomm serve --workers N``.

Python runs one thread of Python at a time, so one process uses one core. With ``--workers N`` the
parent prepares the database once (migrations, the first-start administrator), opens the listening
socket, and forks N processes that each accept on it. The kernel spreads connections between them.

Each worker is a *node* exactly like a second server on the same database (the multi-node design
in docs/operations.md): its own dispatcher, status-callback worker and email outbox, claiming work
with leases, so a worker that dies loses nothing: its leases expire and the others (or its
replacement) take the work over. Each opens its share of every carrier's binds (``binds`` and
``max_tps`` stay totals for the whole server), so a carrier must have at least one bind per worker.

The workers answer ``/metrics``, ``/ready`` and the Carriers API as one server: each listens on a
Unix socket in a private directory the parent creates, and the one that takes such a request asks
the others (web/peers.py).

The parent forwards SIGTERM/SIGINT to the workers (each drains and unbinds as a single server
does) and replaces a worker killed by a signal (a crash, the OOM killer, ``kill -9``). A worker
that exits by itself with an error (it could not start: configuration, port) stops the server,
since its replacement would fail the same way; so does one killed twice in a row within
``STARTUP_GRACE`` seconds of its start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from restcomm.config import Settings
from restcomm.runtime import settle_for_serving

log = logging.getLogger("restcomm.workers")


def serving_server(config: Any) -> Any:
    """A `uvicorn.Server` that applies the serving process policy once the application has started
    (restcomm/runtime.py: the start-up heap frozen, a 1 ms GIL switch interval for the media clock)."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                frozen = settle_for_serving()
                log.debug("start-up heap frozen: %d objects; switch interval %s s", frozen, sys.getswitchinterval())

    return _Server(config)

STARTUP_GRACE = 10.0  # seconds: a worker killed this soon after its start, twice in a row, stops the server


async def _prepare(settings: Settings) -> None:
    """What must happen once, before the workers race for it: the schema and the bootstrap."""
    from restcomm.container import Services
    from restcomm.store import db
    from restcomm.web.bootstrap import bootstrap, prepare_database

    engine = db.create_engine(settings)
    services = Services(settings=settings, engine=engine)
    try:
        await prepare_database(services)
        await bootstrap(services)
    finally:
        await engine.dispose()


def _check_carriers(settings: Settings) -> None:
    from restcomm.smpp.carriers import load_carriers, worker_share

    carriers = load_carriers(settings)
    for index in range(settings.workers):
        worker_share(carriers, index, settings.workers)  # raises ConfigError when binds < workers


def _listen(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server((settings.host, settings.port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(settings: Settings, make_config: Callable[[Settings], Any]) -> int:
    """Run ``settings.workers`` server processes; returns the exit status for the command."""

    _check_carriers(settings)
    asyncio.run(_prepare(settings))
    sock = _listen(settings)
    workers_dir = tempfile.mkdtemp(prefix="restcomm-workers-")  # mode 0700: this user's processes only
    settings = dataclasses.replace(settings, workers_dir=workers_dir)
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
    stopping = False
    failed = False
    crashed_young: set[int] = set()  # workers whose last run died young (a second time stops the server)

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                server = serving_server(make_config(dataclasses.replace(settings, worker_index=index)))
                server.run(sockets=[sock])
                code = 0 if server.started else 1
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = (index, time.monotonic())
        log.info("worker %d started (pid %d)", index, pid)

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(settings.workers):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index, started = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            log.info("worker %d stopped (%s)", index, code)
            continue
        if code > 0:  # exited on its own: could not start (configuration, port) or failed: stop
            log.error("worker %d exited with status %d: stopping the server", index, code)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        if time.monotonic() - started < STARTUP_GRACE and index in crashed_young:
            log.error("worker %d died twice while starting (%s): stopping the server", index, code)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        if time.monotonic() - started < STARTUP_GRACE:
            crashed_young.add(index)
        else:
            crashed_young.discard(index)
        log.error("worker %d died (%s): starting a new one; its unfinished work is taken over when its "
                  "leases expire", index, code)
        spawn(index)
    sock.close()
    shutil.rmtree(workers_dir, ignore_errors=True)
    return 1 if failed else 0
