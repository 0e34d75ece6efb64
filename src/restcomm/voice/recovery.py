"""The sweep that ends calls a dead node left live (``voice.store.close_orphaned_calls``).

Every node runs it: at start (a restarted node finds what its previous run left, once the leases
expire) and then every ``[voice] recovery_interval`` seconds (default 5). A node that runs calls
renews their leases (``voice.store.renew_call_leases``) well within ``[voice] call_lease`` (default
30 s), so only the calls of a node that stopped renewing are closed. Several nodes may sweep at
once: PostgreSQL hands each orphan to one of them (``SKIP LOCKED``), SQLite has one writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from restcomm.voice.store import close_orphaned_calls

if TYPE_CHECKING:
    from restcomm.app import Services

log = logging.getLogger("restcomm.voice.recovery")

class CallRecovery:
    """A background service of the server: sweeps for orphaned calls until stopped."""

    def __init__(self, services: Services):
        self.services = services
        self.interval = services.settings.voice_recovery_interval
        self.closed = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="voice-call-recovery")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def sweep(self) -> int:
        """One pass; returns how many calls it closed."""
        engine = self.services.engine
        now = self.services.clock()
        async with engine.connect() as conn:
            await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                closed = await close_orphaned_calls(conn, now)
        if closed:
            log.warning("closed %d call(s) left live by a node that stopped: %s", len(closed),
                        ", ".join(r["sid"] for r in closed))
            messaging = self.services.extras.get("messaging")
            event = getattr(messaging, "callbacks_ready", None)
            if event is not None:
                event.set()  # their completed callbacks: now, not at the outbox's next poll
        self.closed += len(closed)
        return len(closed)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sweep()
            except Exception:  # the database may be away for a while: the next pass tries again
                log.exception("sweeping for orphaned calls failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
