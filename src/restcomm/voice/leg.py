"""One call leg: a SIP dialog, its RTP endpoint and the call SID it is recorded under.

A ``Leg`` is what every voice feature is built from: an inbound call is one leg running RCML, a
``<Dial>`` adds an outgoing leg and bridges the two endpoints, a future conference mixes many legs.
It holds no policy (no RCML, no database): signalling and media primitives plus a small state
machine, so features add modules instead of growing this one.

States (``LegState``)::

    RINGING --answer()/answered--> ANSWERED --hangup()/BYE--> ENDED
       \\--reject()/cancel/failure-------------------------------^

Interface (binding for voice/ modules):

* ``await Leg.incoming(call_sid, sip_call, ports, media_address, bind_address=None)``: for an
  ``IncomingCall``; binds an RTP port pair (on ``bind_address``, default ``media_address``: they
  differ behind a 1:1 NAT or with a wildcard listen) and negotiates the offer now, so an offer without a common codec fails before
  anything else (``NoCommonCodec``: answer 488).
* ``await Leg.outgoing(call_sid, stack, target, ports=..., media_address=..., from_uri=..., ...)``:
  binds the endpoint, sends the INVITE with our offer and returns at once; ``await
  leg.wait_answer(timeout)`` applies the answer (raises ``sip.ua.CallFailed`` with the status).
* ``await leg.ringing()``, ``await leg.answer()`` (incoming: 200 OK with the negotiated SDP, returns
  once the ACK arrived; for an INVITE without SDP, a late offer, the 200 OK carries our offer and
  the ACK's answer is applied, ``CallFailed`` 488 and a BYE when it has none we can use), ``await leg.reject(status, reason)``, ``await leg.hangup()`` (BYE when
  answered, CANCEL or a final answer before), ``await leg.close()`` (releases the media; idempotent).
* ``leg.media`` (``RtpEndpoint``: ``play``, ``digits``, ``start_recording``, ``bridge`` ...),
  ``leg.sip`` (the ``IncomingCall``/``OutgoingCall``), ``leg.state``, ``leg.answered_at`` (monotonic)
  and ``leg.ended``: a future resolved with the reason (``bye``, ``cancel``, ``local``, ``timeout``,
  ``rejected``, ``failed``) once the leg is over for whatever cause.
* A re-INVITE with an offer (the peer holds us with ``sendonly``/``inactive``, resumes, or moves
  its media) is answered from the leg's endpoint and applied to it; an offer with nothing we accept
  is refused with 488 and the call goes on as it was.
* SIP INFO digits (``application/dtmf-relay``) are fed into ``leg.media.digits`` with the RFC 4733
  ones, so one queue holds every digit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from enum import StrEnum

from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.sdp import Answer, SdpError, make_offer, negotiate, parse_answer
from restcomm.sip.ua import CallFailed, IncomingCall, OutgoingCall, SipStack

log = logging.getLogger("restcomm.voice")

__all__ = ["Leg", "LegState", "NoCommonCodec"]


class LegState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class NoCommonCodec(Exception):
    """The offer has no codec we accept (SIP 488 Not Acceptable Here)."""


class Leg:
    """See the module docstring. Build with ``incoming`` or ``outgoing``, never directly."""

    def __init__(self, call_sid: str, sip: IncomingCall | OutgoingCall, media: RtpEndpoint,
                 *, direction: str, sdp_session: int = 0) -> None:
        self.call_sid = call_sid
        self.sip = sip
        self.media = media
        self.direction = direction  # "inbound" | "outbound"
        self.state = LegState.RINGING
        self.negotiated: Answer | None = None
        self.late_offer: str | None = None  # our offer, when an incoming INVITE had none
        self.answered_at: float | None = None
        self.rejected_with: int | None = None  # the final status reject() sent
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._closed = False
        # o= of our session descriptions: one id, a version raised by each new one (RFC 3264 §8)
        self._sdp_session = sdp_session
        self._sdp_version = 0
        sip.on_info(media.feed_digit)
        sip.on_reinvite(self._reoffered)
        sip.ended.add_done_callback(self._sip_ended)

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    async def incoming(cls, call_sid: str, sip_call: IncomingCall, ports: PortAllocator,
                       media_address: str, *, bind_address: str | None = None) -> Leg:
        media = await RtpEndpoint.create(ports, media_address, bind_address=bind_address)
        session = secrets.randbelow(2**62)
        if not sip_call.sdp.strip():
            # Late offer (RFC 3261 §13.2.1, "delayed offer" of some PBXs and trunks): the INVITE
            # carries no SDP, so the 200 OK carries our offer and the ACK the caller's answer.
            leg = cls(call_sid, sip_call, media, direction="inbound", sdp_session=session)
            leg.late_offer = make_offer(media_address, media.local_port, session_id=session)
            return leg
        try:
            negotiated = negotiate(sip_call.sdp, media_address, media.local_port, session_id=session)
        except SdpError as exc:
            await media.close()
            raise NoCommonCodec(str(exc)) from None
        media.set_remote(negotiated)
        leg = cls(call_sid, sip_call, media, direction="inbound", sdp_session=session)
        leg.negotiated = negotiated
        return leg

    @classmethod
    async def outgoing(cls, call_sid: str, stack: SipStack, target: str, *, ports: PortAllocator,
                       media_address: str, from_uri: str, to_uri: str | None = None,
                       headers: list[tuple[str, str]] | None = None,
                       destination: tuple[str, str, int] | None = None,
                       credentials: tuple[str, str] | None = None, bind_address: str | None = None) -> Leg:
        media = await RtpEndpoint.create(ports, media_address, bind_address=bind_address)
        session = secrets.randbelow(2**62)
        try:
            sip_call = await stack.invite(target, from_uri=from_uri, to_uri=to_uri,
                                          sdp=make_offer(media_address, media.local_port, session_id=session),
                                          headers=headers,
                                          destination=destination, credentials=credentials)
        except BaseException:
            await media.close()
            raise
        return cls(call_sid, sip_call, media, direction="outbound", sdp_session=session)

    # ---- state -------------------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def _sip_ended(self, fut: asyncio.Future[str]) -> None:
        reason = "failed" if fut.cancelled() else fut.result()
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        self.state = LegState.ENDED
        if not self.ended.done():
            self.ended.set_result(reason)

    def duration(self) -> int:
        """Whole seconds since the answer (0 when never answered)."""
        if self.answered_at is None:
            return 0
        return int(time.monotonic() - self.answered_at)

    # ---- signalling --------------------------------------------------------------------------

    async def ringing(self) -> None:
        if isinstance(self.sip, IncomingCall) and self.state is LegState.RINGING:
            await self.sip.ringing()

    async def answer(self) -> None:
        """Incoming: 200 OK with the negotiated SDP; returns once ACKed. Raises ``CallFailed``
        (487 when the caller cancelled first, 408 when no ACK came)."""
        assert isinstance(self.sip, IncomingCall)
        if self.state is not LegState.RINGING:
            return
        if self.negotiated is not None:
            await self.sip.answer(self.negotiated.sdp)
            self._answered()
            return
        assert self.late_offer is not None
        remote = await self.sip.answer(self.late_offer)
        try:
            self.negotiated = parse_answer(remote)
        except SdpError:
            # The dialog exists (200 OK and ACK) but there is no usable media: end it (§13.3.1.4).
            log.info("call %s: the ACK carried no usable answer to our offer; hanging up", self.call_sid)
            with contextlib.suppress(CallFailed):
                await self.sip.bye()
            raise CallFailed(488, "no usable answer in the ACK") from None
        self.media.set_remote(self.negotiated)
        self._answered()

    async def wait_answer(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - a ring timeout
        """Outgoing: wait for the 2xx and apply its SDP. Raises ``CallFailed`` (408 on timeout)."""
        assert isinstance(self.sip, OutgoingCall)
        remote = await self.sip.wait_answer(timeout)
        try:
            self.negotiated = parse_answer(remote)
        except SdpError:
            await self.sip.bye()
            raise CallFailed(488, "unusable answer SDP") from None
        self.media.set_remote(self.negotiated)
        self._answered()

    def _reoffered(self, offer: str) -> str | None:
        """A re-INVITE's offer (the peer holds us, resumes, or moved its media): answer it and
        apply it to the endpoint; ``None`` (488, nothing changes) when it has nothing we accept."""
        try:
            answer = negotiate(offer, self.media.local_address, self.media.local_port,
                               session_id=self._sdp_session, session_version=self._sdp_version + 1)
        except SdpError:
            return None
        self._sdp_version += 1
        self.negotiated = answer
        self.media.set_remote(answer)
        return answer.sdp

    def _answered(self) -> None:
        if self.state is LegState.RINGING:
            self.state = LegState.ANSWERED
            self.answered_at = time.monotonic()

    async def reject(self, status: int = 603, reason: str | None = None) -> None:
        """Refuse a ringing incoming leg with a final answer (486 busy, 603 decline, 500 ...)."""
        if isinstance(self.sip, IncomingCall) and self.state is LegState.RINGING:
            self.rejected_with = status
            await self.sip.reject(status, reason)
        self._finish("rejected")

    async def hangup(self) -> None:
        """End the leg whatever its state: BYE once answered; before that, a final error answer
        (incoming) or CANCEL (outgoing)."""
        if self.state is LegState.ENDED:
            return
        try:
            if self.state is LegState.ANSWERED:
                await self.sip.bye()
            elif isinstance(self.sip, IncomingCall):
                await self.sip.reject(480, "Temporarily Unavailable")
            else:
                await self.sip.cancel()
        except CallFailed:
            pass
        self._finish("local")

    async def close(self) -> None:
        """Release the media (after the leg ended or was hung up). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.media.close()

    def __repr__(self) -> str:
        return f"<Leg {self.call_sid} {self.direction} {self.state}>"

