"""``VoiceEngine``: the background service that takes (and, with voice/dial.py, places) calls.

It owns what every call shares and nothing call-specific:

* ``stack``: the ``SipStack`` listening on ``[sip] listen`` (UDP and TCP on one port);
* ``ports``: the ``PortAllocator`` of ``[media] rtp_ports``; ``media_address``: what SDP carries;
* ``sources``: text to speech (``media.tts.Synthesizer``, files cached under the data dir) and
  audio URLs (``voice.audio.AudioCache``: fetched through the destination guard, revalidated
  with ETag/Last-Modified);
* ``registrar``: the SIP registrar for Clients (digest against the stored HA1, bindings in the
  database through ``voice.registrar``), also used to challenge INVITEs;
* ``legs``: the live legs of this node by call SID (``add_leg``/``remove_leg``), whose call leases
  it renews every ``[voice] call_lease``/3 seconds so ``voice/recovery.py`` closes only the calls
  of a node that stopped;
* ``write(job)``: runs ``job(conn)`` in a committed transaction (the messaging group-commit
  writer), ``wake_callbacks()`` after queuing status callbacks.

* ``dialer``: ``None`` until voice/dial.py sets it (``session.Dialer``: ``<Dial>``, and a Client
  calling a Client with no voice URL); ``new_incoming_leg``/``new_outgoing_leg`` build legs
  registered in ``legs`` (``remove_leg`` when done, then ``leg.close()``).

What a call does is elsewhere: ``voice/inbound.py`` handles a new INVITE, ``voice/session.py``
runs RCML over a leg, ``voice/dial.py`` (outbound calls and ``<Dial>``) uses ``new_outgoing_leg``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from restcomm.config import Settings
from restcomm.media.ports import PortAllocator
from restcomm.media.tts import Synthesizer
from restcomm.profiles import ProfileCache
from restcomm.sip.registrar import FailureThrottle, Registrar
from restcomm.sip.ua import IncomingCall, SipStack
from restcomm.store.schema import instance
from restcomm.voice import store
from restcomm.voice.audio import AudioCache, EngineSources
from restcomm.voice.leg import Leg
from restcomm.voice.registrar import DbBindings, DbCredentials
from restcomm.voice.session import Dialer

log = logging.getLogger("restcomm.voice")

NONCE_SECRET_KEY = "sip_nonce_secret"


class EngineServices(Protocol):
    """What the engine needs of the server's service container (and no more)."""

    settings: Settings
    clock: Callable[[], datetime]
    organization_sid: str
    profiles: ProfileCache  # what accounts may dial (restcomm.profiles)


class Writer(Protocol):
    async def run(self, fn: Callable[[Any], Awaitable[Any]]) -> Any: ...


class SmsLimits(Protocol):
    app_timeout: float
    app_max_redirects: int


class MessagingPorts(Protocol):
    """What the engine borrows from the messaging pipeline: its database writer (group commit),
    reads, the webhook HTTP session and destination guard, the callback outbox's wake-up, the
    application limits, and the SMS pipeline itself for ``<Sms>``/``<Email>`` in a call."""

    node_id: str
    writer: Writer
    http: Any  # aiohttp.ClientSession once started
    guard: Settings | None
    sms: SmsLimits
    callbacks_ready: asyncio.Event

    def read(self) -> AbstractAsyncContextManager[Any]: ...

    def public_base(self) -> str: ...


class VoiceEngine:
    """See the module docstring. ``start``/``stop`` like every background service."""

    def __init__(self, services: EngineServices, messaging: MessagingPorts) -> None:
        self.services = services
        self.messaging = messaging
        self.settings = services.settings
        self.clock = services.clock
        self.node = messaging.node_id
        host, port = self.settings.sip_address
        self.media_address = self.settings.media_host
        # RTP binds where SIP listens (a wildcard, or the private side of a 1:1 NAT whose public
        # address [media] address puts in SDP)
        self.bind_address = host
        self.ports = PortAllocator(*self.settings.rtp_port_range)
        self.synthesizer = Synthesizer(self.settings.data_dir / "cache" / "tts")
        self.audio = AudioCache(self.settings.data_dir / "cache" / "audio", guard=messaging.guard)
        self.sources = EngineSources(self.synthesizer, self.audio, lambda: self.messaging.http)
        self.stack = SipStack(host, port, on_invite=self._on_invite, on_register=self._on_register)
        self.registrar: Registrar | None = None
        self.legs: dict[str, Leg] = {}
        self.dialer: Dialer | None = None  # voice/dial.py sets its dial function here
        self.lease_seconds = self.settings.voice_call_lease
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lease_task: asyncio.Task[None] | None = None
        self.inbound_calls = 0
        self._calls: set[asyncio.Task[Any]] = set()  # handlers of incoming calls still running
        self.stop_grace = 5.0  # seconds a stopping node gives its calls to hang up and record the end

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.media_address in ("0.0.0.0", "::", ""):
            # c=0.0.0.0 in SDP means "hold" to every phone: the address must be a real one
            raise RuntimeError(f"[sip] listen {self.settings.sip_listen} is a wildcard: set [media] address "
                               "(RESTCOMM_MEDIA_ADDRESS) to the address phones send RTP to")
        secret = await self._nonce_secret()
        # [sip] digest_algorithms, MD5 alone by default: a SHA-256 challenge beside the MD5 one makes
        # baresip's stack (libre) refuse the whole 401 with ENOSYS.
        self.registrar = Registrar(self.settings.domain, DbCredentials(self), DbBindings(self), secret=secret,
                                   throttle=FailureThrottle(max_failures=5, window=60.0, block_for=300.0),
                                   algorithms=self.settings.sip_digest_algorithms)
        try:
            await self.stack.start()
        except OSError as exc:
            raise RuntimeError(f"[sip] listen {self.settings.sip_listen}: cannot listen ({exc.strerror or exc}); "
                               "choose a free port with [sip] listen or RESTCOMM_SIP_LISTEN") from None
        log.info("SIP listening on %s:%d (UDP and TCP), media on %s ports %s", self.stack.local_host,
                 self.stack.local_port, self.media_address, self.settings.rtp_ports)
        self._lease_task = asyncio.create_task(self._renew_leases(), name="voice-call-leases")

    async def stop(self) -> None:
        """Hang up every live call, give the calls ``stop_grace`` seconds to write their final
        status (so a restart leaves nothing for recovery), then close the stack."""
        for leg in list(self.legs.values()):
            with contextlib.suppress(Exception):
                await leg.hangup()
        pending = [t for t in self._calls if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.stop_grace)
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        await self.stack.stop()
        self.synthesizer.close()
        self.sources.close()

    async def _nonce_secret(self) -> bytes:
        """Shared by every node (digest nonces issued by one verify on another)."""
        async def job(conn: Any) -> str:
            row = (await conn.execute(select(instance.c.value).where(instance.c.key == NONCE_SECRET_KEY))).first()
            if row is not None:
                return str(row[0])
            value = secrets.token_hex(32)
            await conn.execute(insert(instance).values(key=NONCE_SECRET_KEY, value=value))
            return value

        try:
            return bytes.fromhex(await self.write(job))
        except IntegrityError:  # another node wrote it first
            return bytes.fromhex(await self.write(job))

    # ---- shared helpers ----------------------------------------------------------------------

    async def write(self, job: Callable[[Any], Awaitable[Any]]) -> Any:
        return await self.messaging.writer.run(job)

    def read(self) -> Any:
        """``async with engine.read() as conn``: a read-only connection."""
        return self.messaging.read()

    def wake_callbacks(self) -> None:
        self.messaging.wake(callbacks=True)

    def public_base(self) -> str:
        return self.messaging.public_base()

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voice task failed", exc_info=task.exception())

    # ---- legs --------------------------------------------------------------------------------

    def add_leg(self, leg: Leg) -> None:
        self.legs[leg.call_sid] = leg

    def remove_leg(self, leg: Leg) -> None:
        if self.legs.get(leg.call_sid) is leg:
            del self.legs[leg.call_sid]

    async def new_incoming_leg(self, call_sid: str, sip_call: IncomingCall) -> Leg:
        leg = await Leg.incoming(call_sid, sip_call, self.ports, self.media_address, bind_address=self.bind_address)
        self.add_leg(leg)
        return leg

    async def new_outgoing_leg(self, call_sid: str, target: str, **invite: Any) -> Leg:
        """An outgoing leg registered with the engine (``invite``: ``Leg.outgoing``'s keywords)."""
        invite.setdefault("bind_address", self.bind_address)
        leg = await Leg.outgoing(call_sid, self.stack, target, ports=self.ports, media_address=self.media_address,
                                 **invite)
        self.add_leg(leg)
        return leg

    async def _renew_leases(self) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            sids = list(self.legs)
            if not sids:
                continue
            try:
                now = self.clock()
                await self.write(lambda conn, sids=sids, now=now: store.renew_call_leases(
                    conn, self.node, sids, now, self.lease_seconds))
            except Exception:
                log.exception("renewing call leases failed")

    # ---- SIP entry points --------------------------------------------------------------------

    async def _on_invite(self, call: IncomingCall) -> None:
        from restcomm.voice.inbound import handle_invite

        self.inbound_calls += 1
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            await handle_invite(self, call)
        finally:
            if task is not None:
                self._calls.discard(task)

    async def _on_register(self, request: Any, source: Any) -> Any:
        assert self.registrar is not None
        return await self.registrar.handle(request, source)
