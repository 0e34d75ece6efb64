"""The sweep that ends calls a dead node left live (``voice.store.close_orphaned_calls``).

Every node runs it: at start (a restarted node finds what its previous run left, once the leases
expire) and then every ``[voice] recovery_interval`` seconds (default 5). A node that runs calls
renews their leases (``voice.store.renew_call_leases``) well within ``[voice] call_lease`` (default
30 s), so only the calls of a node that stopped renewing are closed. Several nodes may sweep at
once: PostgreSQL hands each orphan to one of them (``SKIP LOCKED``), SQLite has one writer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from restcomm.polling import PollingWorker
from restcomm.voice.store import close_orphaned_calls

if TYPE_CHECKING:
    from restcomm.container import Services

log = logging.getLogger("restcomm.voice.recovery")

class CallRecovery(PollingWorker):
    """A background service of the server: sweeps for orphaned calls until stopped."""

    task_name = "voice-call-recovery"

    def __init__(self, services: Services):
        super().__init__()
        self.services = services
        self.interval = services.settings.voice_recovery_interval
        self.closed = 0

    async def start(self) -> None:
        self.start_loop()

    async def stop(self) -> None:
        await self.stop_loop()

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
            messaging = self.services.messaging
            if messaging is not None:
                messaging.wake(callbacks=True)  # their completed callbacks: now, not at the outbox's next poll
        self.closed += len(closed)
        return len(closed)

    async def run_pass(self, woken: bool) -> float:
        try:
            await self.sweep()
        except Exception:  # the database may be away for a while: the next pass tries again
            log.exception("sweeping for orphaned calls failed")
        return self.interval
