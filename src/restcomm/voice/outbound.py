"""Calls the Calls API places (``CallPlacer``) and live modification (``CallControl``).

``place`` routes ``To`` (an unroutable call raises: the API fails it with notification 19101) and
returns; a task then: takes the call (``voice.store.call_initiated``: the lease,
``initiated``), routes ``To`` (voice/routing.py: ``client:``, ``sip:``, a number through the trunks
with failover) and rings every alternative at once (voice/dial.py ``ring_all``), reporting
``ringing``; on the answer it writes ``in-progress`` (``answered``) and runs the RCML application
(``Url``, or the ``ApplicationSid``'s ``RcmlUrl``; ``FallbackUrl``) on the leg with
``Direction=outbound-api``; ``Record=true`` records the whole answered call. The final status is
``completed`` (answered), ``busy`` (486), ``no-answer`` (``Timeout`` passed, 408/480),
``canceled`` (``Status=canceled`` before the answer) or ``failed``; ``completed`` is always
reported. ``voice.store`` writes durations and queues the status callbacks.

``redirect`` replaces the running document (voice/control.py: any call whose application runs
through ``run_redirectable``, inbound ones too). ``hangup`` CANCELs a ringing call, BYEs an
answered one; it also ends the engine's inbound calls (by their leg).

``OutboundService`` is the background service that installs the placer, the control and the
``<Dial>`` dialer (``VoiceEngine.dialer``) and keeps ``register = true`` trunks registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from restcomm.rcml.interpreter import Entry
from restcomm.rcml.voice import VoiceRequest
from restcomm.store.schema import applications
from restcomm.voice import store
from restcomm.voice.appenv import app_environment
from restcomm.voice.control import redirect, run_redirectable
from restcomm.voice.dial import (
    Ringing,
    account_of,
    caller_uri,
    install_dialer,
    report_ringing,
    ring_all,
    set_status,
)
from restcomm.voice.leg import Leg
from restcomm.voice.ports import CallNotHere, OutboundCall
from restcomm.voice.recording import DbRecordings
from restcomm.voice.routing import Alternative, TrunkRegistrations, classify, resolve
from restcomm.voice.session import CallSession

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine

log = logging.getLogger("restcomm.voice")


@dataclass
class Running:
    """A call this node placed: what ``CallControl`` acts on."""

    call: OutboundCall
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    leg: Leg | None = None


class Outbound:
    """``CallPlacer`` and ``CallControl`` of the engine (see the module docstring)."""

    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine
        self.running: dict[str, Running] = {}

    # ---- CallPlacer --------------------------------------------------------------------------

    async def place(self, call: OutboundCall) -> None:
        """Route ``To`` now (an unroutable call is refused: the API fails it with a notification),
        then place it in the background."""
        if self.engine.registrar is None:
            raise RuntimeError("the voice engine is not started")
        account = await account_of(self.engine, call.account_sid)
        kind, address = classify(call.to)
        creds = (call.username, call.password or "") if call.username else None
        alts = await resolve(self.engine, account["organization_sid"], kind, address, credentials=creds)
        running = Running(call)
        self.running[call.sid] = running
        self.engine.spawn(self._run(running, account, alts), name=f"call-{call.sid}")

    async def _run(self, running: Running, account: Mapping[str, Any], alts: list[Alternative]) -> None:
        engine, call = self.engine, running.call
        try:
            await self._place(running, account, alts)
        except Exception:
            log.exception("outbound call %s failed", call.sid)
            await set_status(engine, call.sid, store.FAILED, reason="internal error")
        finally:
            self.running.pop(call.sid, None)

    async def _place(self, running: Running, account: Mapping[str, Any], alts: list[Alternative]) -> None:
        engine, call = self.engine, running.call
        now = engine.clock()
        taken = await engine.write(lambda conn: store.call_initiated(conn, call.sid, now, node=engine.node,
                                                                     lease_seconds=engine.lease_seconds))
        engine.wake_callbacks()
        if taken is None:
            return  # canceled before we took it, or another node has it
        headers = list(call.sip_headers.items()) or None
        parties = [Ringing(call.sid, alt, headers=headers) for alt in alts]
        result = await ring_all(engine, parties, from_uri=caller_uri(engine, call.from_), timeout=max(1, call.timeout),
                                stop=running.stop, on_ringing=lambda _p: report_ringing(engine, call.sid))
        winner = result.winner
        if winner is None or winner.leg is None:
            status = store.CANCELED if running.stop.is_set() else result.status()
            await set_status(engine, call.sid, status, reason="not answered")
            return
        leg = running.leg = winner.leg
        try:
            await set_status(engine, call.sid, store.IN_PROGRESS)
            await self._application(running, leg, account)
        finally:
            if not leg.ended.done():
                with contextlib.suppress(Exception):
                    await leg.hangup()
            engine.remove_leg(leg)
            await leg.close()
            reason = f"ended: {leg.ended.result() if leg.ended.done() else 'local'}"
            await set_status(engine, call.sid, store.COMPLETED, reason=reason)

    async def _entry(self, call: OutboundCall) -> Entry:
        if call.application_sid and not call.url:
            async with self.engine.read() as conn:
                app = (await conn.execute(select(applications).where(
                    applications.c.sid == call.application_sid))).mappings().first()
            url = app["rcml_url"] if app is not None else None
            return Entry(url, "POST", call.fallback_url, call.fallback_method, label="Url", fallback_label="FallbackUrl")
        return Entry(call.url, call.method, call.fallback_url, call.fallback_method, label="Url",
                     fallback_label="FallbackUrl")

    async def _application(self, running: Running, leg: Leg, account: Mapping[str, Any]) -> None:
        """Run the call's RCML until it ends; a redirect replaces the running document."""
        engine, call = self.engine, running.call
        recordings = DbRecordings(engine, account)
        session = CallSession(leg, media=engine.sources, recordings=recordings, dialer=engine.dialer)
        request = VoiceRequest(call_sid=call.sid, account_sid=call.account_sid, from_=call.from_, to=call.to,
                               direction="outbound-api", sip_headers=dict(call.sip_headers))
        env = app_environment(engine, account, call.sid, default_to=call.to, default_from=call.from_)
        recording = None
        if call.record:
            recording = await recordings.open(call.sid)
            leg.media.start_recording(recording.path)
        entry = await self._entry(call)
        try:
            await run_redirectable(session, request, entry, env)
        finally:
            if recording is not None:
                duration = await leg.media.stop_recording()
                await recordings.close(recording, duration, None)

    # ---- CallControl -------------------------------------------------------------------------

    async def redirect(self, call_sid: str, url: str, method: str) -> None:
        if not redirect(call_sid, url, method):
            raise CallNotHere(call_sid)

    async def hangup(self, call_sid: str, status: str) -> None:
        running = self.running.get(call_sid)
        if running is not None:
            running.stop.set()  # still ringing: ring_all cancels every leg
            if running.leg is not None:
                await running.leg.hangup()
            return
        leg = self.engine.legs.get(call_sid)
        if leg is None:
            raise CallNotHere(call_sid)
        await leg.hangup()


class OutboundService:
    """Background service started after the engine: installs the placer, control and dialer in
    the service container and registers the trunks that ask for it."""

    def __init__(self, services: Any, engine: VoiceEngine) -> None:
        self.services = services
        self.engine = engine
        self.outbound = Outbound(engine)
        self.registrations = TrunkRegistrations(engine)

    async def start(self) -> None:
        install_dialer(self.engine)
        # A placer/control already in the container (put there by whoever built it) is kept.
        self._installed = self.services.call_placer is None and self.services.call_control is None
        if self._installed:
            self.services.call_placer = self.outbound
            self.services.call_control = self.outbound
        await self.registrations.start()

    async def stop(self) -> None:
        if getattr(self, "_installed", False):
            self.services.call_placer = None
            self.services.call_control = None
        for running in list(self.outbound.running.values()):
            running.stop.set()
        await self.registrations.stop()
