"""``<Dial>``: ring every noun at once, bridge the first to answer, cancel the rest.

Each party that rings (a number through its trunks, a ``sip:`` URI, each registered contact of a
Client) is a child call of its own: a ``calls`` row (direction ``outbound-dial``, ``ParentCallSid``
the calling leg) whose progress is written through ``voice.store`` (``initiated``, ``ringing``,
``in-progress``, then ``completed``/``busy``/``no-answer``/``failed``/``canceled``), so the noun's
``statusCallback``/``statusCallbackEvent`` go out through the callback outbox like any call's.

``ring_all`` is shared with the Calls API's placer (voice/outbound.py): it places every leg,
reports ringing, waits for the first answer (bounded by ``timeout``, or until ``stop`` is set)
and cancels the others (CANCEL; a loser that answered in the same instant gets a BYE).

Once answered: the Number's ``sendDigits`` go to the callee, then the two RTP endpoints are
bridged (``RtpEndpoint.bridge``), recorded from the answer when ``record`` (a recording on the
caller's leg hears both sides). The bridge ends when either side hangs up, ``timeLimit`` passes, or
with ``hangupOnStar`` the caller presses ``*`` (the callee is hung up, the caller's call goes on).

The ``url`` of a ``<Number>``/``<Client>``/``<Sip>`` (screening, "whisper") is run on the
answered callee's leg before the bridge (``Direction=outbound-dial``, ``ParentCallSid``); when it
ends the parties are bridged, unless the callee hung up meanwhile. Limitation: a ``<Hangup>`` in
that document ends it like its last verb does (Twilio drops the callee instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from restcomm.notify import ERROR, write_notification
from restcomm.profiles import PSTN
from restcomm.rcml.call import Callback, DialOptions, DialResult, DialTarget
from restcomm.rcml.interpreter import Entry
from restcomm.rcml.voice import VoiceRequest, run_voice_application
from restcomm.sip.ua import CallFailed
from restcomm.store.schema import accounts
from restcomm.voice import store
from restcomm.voice.appenv import app_environment
from restcomm.voice.leg import Leg
from restcomm.voice.recording import DbRecordings
from restcomm.voice.routing import Alternative, NoRoute, resolve, ring_alternative
from restcomm.voice.session import CallSession

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine

# Twilio's "Account not authorized to call": a <Number> the account's profile does not enable.
DIAL_REFUSED = 21215

log = logging.getLogger("restcomm.voice")


def failure_status(status: int) -> str:
    """A call status for a final SIP failure (486 busy, 408 no answer, 487 cancelled, else failed)."""
    if status in (486, 600):
        return store.BUSY
    if status in (408, 480):
        return store.NO_ANSWER
    if status == 487:
        return store.CANCELED
    return store.FAILED


@dataclass
class Ringing:
    """One party being rung: its call SID, alternative and (once placed) leg."""

    sid: str
    alt: Alternative
    leg: Leg | None = None
    outcome: str | None = None  # final status when it did not win
    target: DialTarget | None = None
    headers: list[tuple[str, str]] | None = None


@dataclass
class RingResult:
    winner: Ringing | None
    parties: list[Ringing] = field(default_factory=list)

    def status(self) -> str:
        """Without a winner: busy if anyone was busy, then no-answer, canceled, else failed."""
        outcomes = {p.outcome for p in self.parties}
        for s in (store.BUSY, store.NO_ANSWER, store.CANCELED):
            if s in outcomes:
                return s
        return store.FAILED


async def ring_all(engine: VoiceEngine, parties: Sequence[Ringing], *, from_uri: str,
                   timeout: float, stop: asyncio.Event,  # noqa: ASYNC109 - a ring timer
                   on_ringing: Callable[[Ringing], Any] | None = None) -> RingResult:
    """See the module docstring. Every loser's ``outcome`` is set; the winner's leg is answered."""
    result = RingResult(None, list(parties))
    if not parties:
        return result
    watchers: list[asyncio.Task[Any]] = []

    def placed(party: Ringing) -> Callable[[Leg], None]:
        def on_leg(leg: Leg) -> None:
            party.leg = leg
            if on_ringing is not None:
                async def watch() -> None:
                    await leg.sip.ringing.wait()  # type: ignore[union-attr]
                    if not leg.answered:
                        await on_ringing(party)
                watchers.append(asyncio.ensure_future(watch()))
        return on_leg

    tasks = {asyncio.ensure_future(ring_alternative(engine, p.sid, p.alt, from_uri=from_uri, headers=p.headers,
                                                    timeout=timeout, on_leg=placed(p))): p for p in parties}
    stopper = asyncio.ensure_future(stop.wait())
    pending = set(tasks)
    try:
        while pending and result.winner is None:
            done, pending = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopper)
            for t in done:
                if t is stopper:
                    continue
                party = tasks[t]
                exc = t.exception()
                if exc is None:
                    if result.winner is None:
                        result.winner = party
                    else:  # answered in the same instant as the winner
                        party.outcome = store.CANCELED
                        await _drop(engine, t.result())
                elif isinstance(exc, CallFailed):
                    party.outcome = failure_status(exc.status)
                else:
                    log.warning("ringing %s failed", party.sid, exc_info=exc)
                    party.outcome = store.FAILED
            if stopper.done():
                break
    finally:
        stopper.cancel()
        for t in pending:
            t.cancel()
        for t in pending:
            party = tasks[t]
            with contextlib.suppress(BaseException):
                leg = await t
                if result.winner is None or leg is not result.winner.leg:
                    await _drop(engine, leg)
            party.outcome = party.outcome or store.CANCELED
        for w in watchers:
            w.cancel()
    if result.winner is not None and result.winner.leg is not None:
        engine.add_leg(result.winner.leg)  # legs of one call SID may have replaced it in the registry
        if on_ringing is not None and result.winner.leg.sip.ringing.is_set():  # type: ignore[union-attr]
            await on_ringing(result.winner)  # a 180 just before the 200: ringing is reported before answered
    return result


async def _drop(engine: VoiceEngine, leg: Leg) -> None:
    with contextlib.suppress(Exception):
        await leg.hangup()
    engine.remove_leg(leg)
    await leg.close()


def caller_uri(engine: VoiceEngine, caller: str) -> str:
    """The From of our INVITEs: a SIP URI as given, else the caller at our address."""
    if caller.startswith(("sip:", "sips:")):
        return caller
    user = caller[len("client:"):] if caller.startswith("client:") else caller
    return f"sip:{user}@{engine.media_address}"


def _events(callback: Callback | None) -> str | None:
    if callback is None:
        return None
    try:
        return store.parse_events(" ".join(callback.events))
    except ValueError:
        return "completed"


async def account_of(engine: VoiceEngine, account_sid: str) -> Mapping[str, Any]:
    async with engine.read() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.sid == account_sid))).mappings().first()
    if row is None:
        raise LookupError(f"account {account_sid} is gone")
    return dict(row)


async def set_status(engine: VoiceEngine, sid: str, status: str, reason: str | None = None) -> None:
    now = engine.clock()
    await engine.write(lambda conn: store.set_call_status(conn, sid, status, now, reason=reason))
    engine.wake_callbacks()


async def report_ringing(engine: VoiceEngine, sid: str) -> None:
    """``ringing`` unless the call already got further (the answer may be written first)."""
    now = engine.clock()

    async def job(conn: Any) -> None:
        row = await store.get_call(conn, sid, for_update=True)
        if row is not None and row["status"] == store.QUEUED:
            await store.set_call_status(conn, sid, store.RINGING, now)

    await engine.write(job)
    engine.wake_callbacks()


class Dialer:
    """``VoiceEngine.dialer``: ``await dialer(session, targets, options)`` (voice/session.py)."""

    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine

    async def __call__(self, session: CallSession, targets: Sequence[DialTarget], options: DialOptions) -> DialResult:
        engine = self.engine
        parent_sid = session.leg.call_sid
        async with engine.read() as conn:
            parent = await store.get_call(conn, parent_sid)
        if parent is None:
            return DialResult(store.FAILED)
        account = await account_of(engine, parent["account_sid"])
        org = account["organization_sid"]
        caller = options.caller_id or parent["from_number"]
        parties: list[Ringing] = []
        failed_sid: str | None = None
        policy = await engine.services.profiles.policy(account)
        for target in targets:
            refusal = policy.refusal(PSTN, target.address) if target.kind == "number" else None
            if refusal is not None:  # the account's profile does not let it reach this number
                failed_sid = await self._child(parent, account, caller, target, Alternative((), target.address),
                                               final=store.FAILED, reason=refusal, code=DIAL_REFUSED)
                continue
            try:
                alts = await resolve(engine, org, target.kind, target.address,
                                     credentials=(target.username, target.password or "") if target.username else None)
            except NoRoute as exc:
                failed_sid = await self._child(parent, account, caller, target, Alternative((), target.address),
                                               final=store.FAILED, reason=str(exc))
                continue
            for alt in alts:
                sid = await self._child(parent, account, caller, target, alt)
                parties.append(Ringing(sid, alt, target=target, headers=list(target.headers) or None))
        if not parties:
            return DialResult(store.FAILED, failed_sid)
        result = await ring_all(engine, parties, from_uri=caller_uri(engine, caller),
                                timeout=max(1, options.timeout), stop=session.hung_up,
                                on_ringing=lambda p: report_ringing(engine, p.sid))
        for p in parties:
            if p is not result.winner:
                await set_status(engine, p.sid, p.outcome or store.CANCELED, reason="dial")
        winner = result.winner
        if winner is None or winner.leg is None:
            status = store.CANCELED if session.hung_up.is_set() else result.status()
            return DialResult(status, parties[-1].sid)
        await set_status(engine, winner.sid, store.IN_PROGRESS)
        return await self._bridge(session, winner, account, winner.target or targets[0], options)

    async def _child(self, parent: Mapping[str, Any], account: Mapping[str, Any], caller: str, target: DialTarget,
                     alt: Alternative, *, final: str | None = None, reason: str | None = None,
                     code: int | None = None) -> str:
        engine = self.engine
        now = engine.clock()
        cb = target.status_callback
        sid = store.new_call_sid()

        async def job(conn: Any) -> None:
            await store.create_call(
                conn, now, sid=sid, account_sid=account["sid"], from_number=caller, to_number=alt.to,
                direction="outbound-dial", parent_call_sid=parent["sid"],
                status_callback=cb.url if cb else None, status_callback_method=cb.method if cb else None,
                status_callback_events=_events(cb))
            await store.call_initiated(conn, sid, now, node=engine.node, lease_seconds=engine.lease_seconds)
            if final is not None:
                await store.set_call_status(conn, sid, final, now, reason=reason, error_code=code)
            if code is not None:
                await write_notification(conn, account_sid=account["sid"], error_code=code, log=ERROR,
                                         message_text=f"<Dial> to {alt.to} refused: {reason}", call_sid=parent["sid"],
                                         clock=lambda: now)

        await engine.write(job)
        engine.wake_callbacks()
        return sid

    async def _bridge(self, session: CallSession, winner: Ringing, account: Mapping[str, Any], target: DialTarget,
                      options: DialOptions) -> DialResult:
        engine = self.engine
        caller, callee = session.leg, winner.leg
        assert callee is not None
        recording = None
        recordings = DbRecordings(engine, account)
        try:
            if target.send_digits and not callee.ended.done():
                await callee.media.send_digits(target.send_digits)
            if target.url and not callee.ended.done():
                await self._screen(session, winner, account, target)
            if callee.ended.done() or caller.ended.done():
                raise _NotBridged
            caller.media.bridge(callee.media)
            if options.record:
                recording = await recordings.open(caller.call_sid)
                caller.media.start_recording(recording.path)
            waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(asyncio.shield(caller.ended)),
                                               asyncio.ensure_future(asyncio.shield(callee.ended))}
            if options.hangup_on_star:
                waits.add(asyncio.ensure_future(_star(caller)))
            try:
                await asyncio.wait(waits, timeout=max(1, options.time_limit), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        except _NotBridged:
            pass
        finally:
            caller.media.unbridge()
            duration = callee.duration()
            rec_duration = await caller.media.stop_recording() if recording is not None else 0.0
            if not callee.ended.done():
                with contextlib.suppress(Exception):
                    await callee.hangup()
            engine.remove_leg(callee)
            await callee.close()
            await set_status(engine, winner.sid, store.COMPLETED, reason="bridge ended")
            if recording is not None:
                await recordings.close(recording, rec_duration, options.recording_status_callback)
        if recording is not None and rec_duration > 0:
            return DialResult(store.COMPLETED, winner.sid, duration, recording.url, recording.sid)
        return DialResult(store.COMPLETED, winner.sid, duration)


    async def _screen(self, session: CallSession, winner: Ringing, account: Mapping[str, Any],
                      target: DialTarget) -> None:
        """Run the noun's ``url`` document on the callee's leg (see the module docstring)."""
        engine, callee = self.engine, winner.leg
        assert callee is not None and target.url
        screening = _Screening(callee, media=engine.sources, recordings=DbRecordings(engine, account))
        caller = session.leg.call_sid
        request = VoiceRequest(call_sid=winner.sid, account_sid=account["sid"], from_=caller, to=winner.alt.to,
                               direction="outbound-dial", parent_call_sid=caller)
        env = app_environment(engine, account, winner.sid, default_to=winner.alt.to, default_from=caller)
        entry = Entry(target.url, target.method, label="Url", fallback_label="FallbackUrl")
        run = asyncio.ensure_future(run_voice_application(screening, request, entry, **env))
        ended = asyncio.ensure_future(asyncio.shield(session.leg.ended))
        try:
            await asyncio.wait({run, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not run.done():
                run.cancel()
                with contextlib.suppress(BaseException):
                    await run


class _NotBridged(Exception):
    """One side hung up before the bridge (during the screening document)."""


class _Screening(CallSession):
    """The callee's leg while its screening document runs: the document's end (or ``<Hangup>``)
    stops the document without hanging up, so the parties are bridged next."""

    async def hangup(self) -> None:
        self.hung_up.set()


async def _star(leg: Leg) -> None:
    while True:
        if await leg.media.digits.get() == "*":
            return


def install_dialer(engine: VoiceEngine) -> Dialer:
    dialer = Dialer(engine)
    engine.dialer = dialer
    return dialer

