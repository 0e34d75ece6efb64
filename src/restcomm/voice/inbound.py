"""A new INVITE: who may call, which application answers, and the call's record from start to end.

Admission (no open relay, no toll fraud):

1. a source listed in a trunk's ``inbound_addresses`` (``[[sip_trunks]]`` and the Gateways API) is
   trusted as a carrier;
2. otherwise the INVITE is digest-challenged (407) against the organization's Clients, through the
   registrar (same nonces, replay check and failure throttle as REGISTER: a source that keeps
   failing gets 403 for a while);
3. anything else never reaches an application.

Destination: the Request-URI's user, matched like SMS inbound (``routing.find_incoming_number``:
exact, E.164 forms, patterns, ``*``) to a number's voice application (``VoiceApplicationSid`` ->
``RcmlUrl``, else ``VoiceUrl``/``VoiceMethod``, with ``VoiceFallbackUrl``); else a Client's login to
that Client's voice application. Nothing matches: 404. A Client without a voice application: its
registered phones ring through the engine's dialer as ``<Dial><Client>`` would (voice/dial.py;
480 on a node without one).

The call's record is written before anything is answered (``ringing``, direction ``inbound``,
this node's lease), ``in-progress`` when answered, and its final status when it ends: ``completed``
(answered), ``canceled`` (the caller gave up first), ``busy`` (``<Reject reason="busy">``),
``failed`` (anything else); status callbacks go to the number's ``StatusCallback`` via the outbox.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from restcomm.config import SipTrunk
from restcomm.messaging.model import OUTBOUND_CALL
from restcomm.messaging.rcml_sms import PipelineEmail, PipelineReplies
from restcomm.observability import metrics
from restcomm.rcml.call import DialOptions, DialTarget
from restcomm.rcml.interpreter import DocumentFetcher
from restcomm.rcml.notifications import StoreNotifier
from restcomm.rcml.voice import VoiceRequest, run_voice_application, voice_entry
from restcomm.routing import find_incoming_number
from restcomm.sip.ua import IncomingCall
from restcomm.store.schema import accounts, applications, clients
from restcomm.voice import store
from restcomm.voice.leg import Leg, NoCommonCodec
from restcomm.voice.recording import DbRecordings
from restcomm.voice.session import CallSession

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine

log = logging.getLogger("restcomm.voice")

INBOUND_CALLS = metrics.counter("restcomm_voice_inbound_calls_total",
                                "INVITEs for new calls, by outcome (a final call status, or refused_<SIP status>)",
                                ("outcome",))

DIRECT_RING_SECONDS = 30  # a Client calling a Client with no voice URL: <Dial>'s defaults
DIRECT_TIME_LIMIT = 4 * 3600  # seconds (<Dial timeLimit> default)


def trusted_source(host: str, trunks: Sequence[SipTrunk]) -> SipTrunk | None:
    """The trunk whose ``inbound_addresses`` (addresses or networks) contain ``host``."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    for trunk in trunks:
        for entry in trunk.inbound_addresses:
            try:
                if addr in ipaddress.ip_network(entry.strip(), strict=False):
                    return trunk
            except ValueError:
                continue
    return None


def forwarded_from(call: IncomingCall) -> str | None:
    """The user of the first ``Diversion`` (RFC 5806) or ``History-Info`` entry: who forwarded
    the call to us (``ForwardedFrom``)."""
    for name in ("Diversion", "History-Info"):
        value = call.request.headers.get(name)
        if value:
            uri = value.split("<", 1)[-1].split(">", 1)[0]
            user = uri.split(":", 1)[-1].split("@", 1)[0]
            if user and user != uri:
                return user
    return None


def sip_headers(call: IncomingCall) -> dict[str, str]:
    """The INVITE's ``X-`` headers (``SipHeader_X-…`` parameters)."""
    out: dict[str, str] = {}
    for name, value in call.request.headers:
        if name.upper().startswith("X-"):
            out[name] = value
    return out


async def _destination(engine: VoiceEngine, user: str) -> tuple[Mapping[str, Any], Mapping[str, Any], Any, str] | None:
    """(owner row, account, application, kind) for the Request-URI user; kind is number or client."""
    org = engine.services.organization_sid
    async with engine.read() as conn:
        owner: Mapping[str, Any] | None = await find_incoming_number(conn, org, user)
        kind = "number"
        if owner is None:
            owner = (await conn.execute(select(clients).where(clients.c.organization_sid == org,
                                                              clients.c.login == user))).mappings().first()
            kind = "client"
        if owner is None:
            return None
        account = (await conn.execute(select(accounts).where(accounts.c.sid == owner["account_sid"]))).mappings().first()
        application = None
        if owner.get("voice_application_sid"):
            application = (await conn.execute(select(applications).where(
                applications.c.sid == owner["voice_application_sid"]))).mappings().first()
    if account is None:
        return None
    return owner, account, application, kind


async def handle_invite(engine: VoiceEngine, call: IncomingCall) -> None:
    req = call.request
    source_host = call.source[1]
    async with engine.read() as conn:
        trunks = await store.sip_trunks(conn, engine.settings.sip_trunks)
    trunk = trusted_source(source_host, trunks)
    caller_login: str | None = None
    if trunk is None:
        assert engine.registrar is not None
        auth = await call.challenge(engine.registrar, proxy=True)
        if auth is None:
            INBOUND_CALLS.labels("challenged").inc()
            return  # 407 (or 403 for a throttled source) sent; a retry is a new INVITE
        caller_login = auth.login
    user = req.uri.user or ""
    found = await _destination(engine, user)
    if found is None:
        INBOUND_CALLS.labels("refused_404").inc()
        log.info("INVITE for unknown destination %r from %s refused (404)", user, source_host)
        await call.reject(404, "Not Found")
        return
    owner, account, application, kind = found
    if account.get("status") not in (None, "active"):
        await call.reject(403, "Forbidden (account not active)")
        return
    entry = voice_entry(owner, application)
    direct = not entry.url and kind == "client" and engine.dialer is not None
    if not entry.url and not direct:
        await call.reject(480 if kind == "client" else 404, "No voice application")
        return
    call_sid = store.new_call_sid()
    try:
        leg = await engine.new_incoming_leg(call_sid, call)
    except NoCommonCodec:
        INBOUND_CALLS.labels("refused_488").inc()
        await call.reject(488, "Not Acceptable Here")
        return
    try:
        await _run_call(engine, leg, owner, account, entry, kind, caller_login)
    finally:
        engine.remove_leg(leg)
        await leg.close()


async def _run_call(engine: VoiceEngine, leg: Leg, owner: Mapping[str, Any], account: Mapping[str, Any],
                    entry: Any, kind: str, caller_login: str | None) -> None:
    call = leg.sip
    assert isinstance(call, IncomingCall)
    req = call.request
    # An authenticated Client is its login, whatever its From says: a Client must not present a
    # number it does not own (caller ID spoofing). A trunk's From is the carrier's caller ID.
    from_user = caller_login or req.from_.uri.user or req.from_.uri.host
    to_user = req.uri.user or ""
    if kind == "number" and not owner.get("is_pattern"):
        to_user = owner["phone_number"]  # the number as hosted (E.164), however the carrier spelled it
    caller_name = (req.from_.display or "").strip('" ') or None
    now = engine.clock()
    values: dict[str, Any] = dict(
        sid=leg.call_sid, account_sid=account["sid"], from_number=from_user, to_number=to_user,
        direction="inbound", status=store.RINGING, caller_name=caller_name or None,
        forwarded_from=forwarded_from(call),
        sip_call_id=req.call_id, node=engine.node, lease_until=now + timedelta(seconds=engine.lease_seconds),
        url=entry.url, method=entry.method, fallback_url=entry.fallback_url, fallback_method=entry.fallback_method,
    )
    if kind == "number":
        values["phone_number_sid"] = owner["sid"]
        values["status_callback"] = owner.get("status_callback")
        values["status_callback_method"] = owner.get("status_callback_method") or "POST"
    await engine.write(lambda conn: store.create_call(conn, now, **values))
    await leg.ringing()

    async def on_answer() -> None:
        t = engine.clock()
        await engine.write(lambda conn: store.set_call_status(conn, leg.call_sid, store.IN_PROGRESS, t))
        engine.wake_callbacks()

    ms = engine.messaging
    session = CallSession(leg, media=engine.sources, recordings=DbRecordings(engine, account),
                          on_answer=on_answer, dialer=engine.dialer)
    request = VoiceRequest(call_sid=leg.call_sid, account_sid=account["sid"], from_=from_user, to=to_user,
                           caller_name=caller_name or None, forwarded_from=forwarded_from(call),
                           sip_headers=sip_headers(call))
    assert ms.http is not None
    fetcher = DocumentFetcher(ms.http, account["auth_token"], timeout=ms.sms.app_timeout,
                              max_redirects=ms.sms.app_max_redirects, guard=ms.guard)
    notifier = StoreNotifier(engine.write, account["sid"], clock=engine.clock, call_sid=leg.call_sid)
    replies = PipelineReplies(ms, account, default_to=from_user, default_from=to_user, direction=OUTBOUND_CALL)
    try:
        if entry.url:
            await run_voice_application(session, request, entry, fetcher=fetcher, notifier=notifier,
                                        public_base=engine.public_base(), replies=replies,
                                        email=PipelineEmail(ms, account["sid"]))
        else:
            await _ring_client(session, to_user, from_user)
    finally:
        if not leg.ended.done():
            try:
                await leg.hangup()
            except Exception:  # the record below must still be written
                log.exception("hanging up %s failed", leg.call_sid)
        status = final_status(leg)
        t = engine.clock()
        why = f"ended: {leg.ended.result() if leg.ended.done() else 'local'}"
        INBOUND_CALLS.labels(status).inc()
        log.info("inbound call %s from %s to %s %s (%s)", leg.call_sid, from_user, to_user, status, why)
        await engine.write(lambda conn: store.set_call_status(conn, leg.call_sid, status, t, reason=why))
        engine.wake_callbacks()


async def _ring_client(session: CallSession, login: str, caller: str) -> None:
    """A Client called with no voice URL: ring its registered phones as ``<Dial><Client>`` does
    (answered first, like the verb), through the engine's dialer (voice/dial.py)."""
    await session.answer()
    if not session.hung_up.is_set():
        await session.dial([DialTarget("client", login)],
                           DialOptions(caller_id=caller, timeout=DIRECT_RING_SECONDS, time_limit=DIRECT_TIME_LIMIT))


def final_status(leg: Leg) -> str:
    reason = leg.ended.result() if leg.ended.done() else "local"
    if leg.answered:
        return store.COMPLETED
    if reason == "cancel":
        return store.CANCELED
    if leg.rejected_with == 486:
        return store.BUSY
    return store.FAILED
