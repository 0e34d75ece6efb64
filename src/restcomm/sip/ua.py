"""The asyncio user agent voice/ uses: :class:`SipStack`, :class:`IncomingCall`, :class:`OutgoingCall`.

All protocol policy (retransmission, absorbing duplicates, timers, ACK of non-2xx, 2xx
retransmission until ACK) is in the sans-I/O :class:`~restcomm.sip.transaction.TransactionLayer`.
This module only

* feeds it what the transport received and flushes what it wants sent,
* keeps one timer handle for the layer's next deadline,
* turns its events into call objects: a new INVITE becomes an :class:`IncomingCall` handed to
  ``on_invite`` exactly once; CANCEL, BYE, ACK, INFO, re-INVITE and OPTIONS are answered here.

A call object is small on purpose: the request, a dialog, a few futures. Media, RCML and accounts
are voice/'s business.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .auth import answer_challenge, pick_challenge
from .dialog import Dialog, make_cancel
from .message import URI, Headers, Request, Response, SipError, make_response, parse_address, parse_uri
from .transaction import (
    AckTimeout,
    Peer,
    RequestReceived,
    ResponseReceived,
    Timers,
    TransactionLayer,
    TransactionTimeout,
    new_branch,
)
from .transport import SipTransport

__all__ = ["CallFailed", "IncomingCall", "OutgoingCall", "Registration", "SipStack"]

log = logging.getLogger("restcomm.sip")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER"
SUPPORTED: frozenset[str] = frozenset()
"""Option tags we implement (none yet: no 100rel, no timer, no replaces)."""


class CallFailed(Exception):
    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status
        self.reason = reason


def _tag() -> str:
    return secrets.token_hex(5)


def parse_dtmf_relay(body: bytes) -> str | None:
    """``Signal=5\\r\\nDuration=160`` -> "5" (application/dtmf-relay, the de facto format)."""
    for line in body.decode("utf-8", "replace").splitlines():
        k, _, v = line.partition("=")
        if k.strip().lower() == "signal" and v.strip():
            return v.strip()[:1]
    return None


def destination_of(uri: URI, default_transport: str = "UDP") -> Peer:
    """RFC 3263 reduced to what a trunk config or a Contact gives: numeric host or name, port,
    ``transport`` parameter. (No NAPTR/SRV.)"""
    t = (uri.param("transport") or default_transport).upper()
    port = uri.port or (5061 if uri.scheme == "sips" else 5060)
    return ("TCP" if t == "TCP" else "UDP", uri.host.strip("[]"), port)


class _Call:
    """What incoming and outgoing calls share: dialog, ended future, INFO and in-dialog requests."""

    def __init__(self, stack: SipStack) -> None:
        self._stack = stack
        self.dialog: Dialog | None = None
        self.peer: Peer | None = None
        self.local_sdp: str | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._info_cb: Callable[[str], Any] | None = None
        self._reinvite_cb: Callable[[str], str | None] | None = None

    def on_info(self, callback: Callable[[str], Any]) -> None:
        """``callback(digit)`` for each application/dtmf-relay INFO received in the dialog."""
        self._info_cb = callback

    def on_reinvite(self, callback: Callable[[str], str | None]) -> None:
        """``callback(offer)`` for each re-INVITE with an SDP offer (hold, resume, media moved): it
        returns the answer SDP, or ``None`` when nothing in the offer is acceptable (488; the
        session goes on as it was, RFC 3261 §14.2)."""
        self._reinvite_cb = callback

    def _end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)
        if self.dialog is not None:
            self._stack._dialogs.pop(self.dialog.key, None)

    async def bye(self) -> None:
        """Hang up an established call (no-op if it already ended)."""
        if self.ended.done() or self.dialog is None:
            return
        self._end("local")
        try:
            await self._stack._dialog_request(self, "BYE")
        except CallFailed:
            pass

    async def reinvite(self, sdp: str) -> str:
        """Send a re-INVITE with ``sdp`` (target refresh / future hold); returns the answer SDP."""
        stack = self._stack
        assert self.dialog is not None
        transport = self.peer[0] if self.peer else "UDP"
        self.local_sdp = sdp
        req = self.dialog.create_request("INVITE", stack.via(transport), contact=stack.contact(transport),
                                         body=sdp.encode(), content_type="application/sdp")
        dest = stack._route_dest(self.dialog, transport)
        resp = await stack.request(req, dest)
        if 200 <= resp.status < 300:
            ack = self.dialog.create_request("ACK", stack.via(transport), cseq=req.cseq.seq)
            stack._send_request(ack, dest, None)
            return resp.body.decode("utf-8", "replace")
        raise CallFailed(resp.status, resp.reason)

    async def info(self, body: str, content_type: str = "application/dtmf-relay") -> Response:
        return await self._stack._dialog_request(self, "INFO", body=body.encode(), content_type=content_type)


class IncomingCall(_Call):
    def __init__(self, stack: SipStack, request: Request, source: Peer) -> None:
        super().__init__(stack)
        self.request = request
        self.source = source
        self.peer = source
        self.to_tag = _tag()
        self.answered = False
        self._final_sent = False
        self._ack: asyncio.Future[Request] = asyncio.get_running_loop().create_future()

    @property
    def sdp(self) -> str:
        return self.request.body.decode("utf-8", "replace")

    def _respond(self, status: int, reason: str | None = None, *, body: bytes = b"",
                 extra: list[tuple[str, str]] | None = None) -> None:
        resp = make_response(self.request, status, reason, to_tag=self.to_tag, body=body, extra=extra)
        self._stack._send_response(resp)

    async def ringing(self, status: int = 180) -> None:
        if not self._final_sent:
            self._respond(status, extra=[("Contact", self._stack.contact(self.source[0]))])

    async def answer(self, sdp: str, *, timeout: float | None = None) -> str:  # noqa: ASYNC109 - contract
        """Send 200 OK with ``sdp``; return once the ACK arrives (the transaction layer
        retransmits the 200 meanwhile), with the SDP the ACK carried ("" when none: it only carries
        one when the INVITE had no offer and ``sdp`` was ours). Raises :class:`CallFailed` (408) if
        no ACK in 64*T1, after sending BYE, or (487) if the caller cancelled first."""
        if self.ended.done():
            raise CallFailed(487, "call already ended")
        if self._final_sent:
            raise RuntimeError("already answered or rejected")
        self._final_sent = True
        self.answered = True
        self.local_sdp = sdp
        self.dialog = Dialog.as_uas(self.request, self.to_tag)
        self._stack._dialogs[self.dialog.key] = self
        self._respond(200, body=sdp.encode(), extra=[
            ("Contact", self._stack.contact(self.source[0])), ("Allow", ALLOW),
            ("Content-Type", "application/sdp"),
        ])
        done, _ = await asyncio.wait({self._ack, self.ended}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._ack.done() and not self._ack.cancelled() and self._ack.exception() is None:
            ack = self._ack.result()
            if ack.body and (ack.content_type or "").lower() == "application/sdp":
                return ack.body.decode("utf-8", "replace")
            return ""
        if self.ended.done() and self.ended.result() == "timeout":
            raise CallFailed(408, "no ACK")
        if not done:
            raise CallFailed(408, "no ACK")
        raise CallFailed(487, self.ended.result() if self.ended.done() else "ended")

    async def reject(self, status: int = 603, reason: str | None = None) -> None:
        if self._final_sent:
            return
        self._final_sent = True
        self._respond(status, reason)
        self._end("rejected")

    async def challenge(self, registrar: Any, *, proxy: bool = True) -> Any:
        """Digest-challenge this INVITE with ``registrar`` (a :class:`~restcomm.sip.registrar.Registrar`).
        Returns its ``Authenticated`` result, or ``None`` after answering 401/407/403 (the caller
        retries with a new INVITE, which reaches ``on_invite`` as a new call)."""
        result = await registrar.authenticate(self.request, self.source, proxy=proxy)
        if isinstance(result, Response):
            result.headers.set("To", str(self.request.to.with_param("tag", self.to_tag)))
            self._final_sent = True
            self._stack._send_response(result)
            self._end("unauthenticated")
            return None
        return result


class OutgoingCall(_Call):
    def __init__(self, stack: SipStack, invite: Request, dest: Peer,
                 credentials: tuple[str, str] | None) -> None:
        super().__init__(stack)
        self.invite = invite
        self.peer = dest
        self.credentials = credentials
        self.ringing = asyncio.Event()
        self.early_sdp: str | None = None
        """SDP of a 183 Session Progress (early media), if any."""
        self.status: int | None = None
        self._answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._ack_bytes: bytes | None = None
        self._provisional = False
        self._cancel_wanted = False
        self._cancel_sent = False
        self._auth_tried = False
        self.key: str = ""

    async def wait_answer(self, timeout: float | None = None) -> str:  # noqa: ASYNC109 - contract
        """The answer's SDP; raises :class:`CallFailed` with the final status (408 on timeout,
        after cancelling)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._answer), timeout)
        except TimeoutError:
            await self.cancel()
            raise CallFailed(408, "no answer") from None

    async def cancel(self) -> None:
        """Cancel before answer (CANCEL goes out once a provisional response arrived, §9.1)."""
        if self._answer.done():
            if not self._answer.cancelled() and self._answer.exception() is None:
                await self.bye()
            return
        self._cancel_wanted = True
        if self._provisional and not self._cancel_sent:
            self._send_cancel()

    def _send_cancel(self) -> None:
        self._cancel_sent = True
        self._stack._send_request(make_cancel(self.invite), self.peer or ("UDP", "", 0), None)

    def _fail(self, status: int, reason: str) -> None:
        self.status = status
        if not self._answer.done():
            self._answer.set_exception(CallFailed(status, reason))
            self._answer.exception()  # mark retrieved: the caller may never wait
        self._end("cancel" if status == 487 and self._cancel_wanted else "failed")

    def _on_response(self, resp: Response) -> None:
        code = resp.status
        if code < 200:
            self._provisional = True
            if code in (180, 183):
                self.ringing.set()
            if resp.body and resp.content_type == "application/sdp":
                self.early_sdp = resp.body.decode("utf-8", "replace")
            if self._cancel_wanted and not self._cancel_sent:
                self._send_cancel()
            return
        if code < 300:
            if self._ack_bytes is not None:  # a retransmitted 2xx: ACK again
                self._stack._transport_send(self._ack_bytes, self._ack_dest)
                return
            self.status = code
            self.dialog = Dialog.as_uac(self.invite, resp)
            self._stack._dialogs[self.dialog.key] = self
            ack = self.dialog.create_request("ACK", self._stack.via(self._transport), cseq=self.invite.cseq.seq)
            self._ack_dest = self._stack._route_dest(self.dialog, self._transport)
            self._ack_bytes = ack.encode()
            self._stack._transport_send(self._ack_bytes, self._ack_dest)
            if self._cancel_wanted:  # answered while we cancelled: hang up (§9.1)
                self._answer.set_exception(CallFailed(487, "cancelled"))
                self._answer.exception()
                asyncio.get_running_loop().create_task(self._stack._dialog_request(self, "BYE"))
                self._end("cancel")
                return
            self._answer.set_result(resp.body.decode("utf-8", "replace"))
            return
        if code in (401, 407) and self.credentials and not self._auth_tried:
            hdr = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
            chal = pick_challenge(resp.headers.get_all(hdr))
            if chal:
                self._auth_tried = True
                self._retry_with_auth(chal, code)
                return
        self._fail(code, resp.reason)

    @property
    def _transport(self) -> str:
        return self.peer[0] if self.peer else "UDP"

    def _retry_with_auth(self, challenge: str, code: int) -> None:
        old = self.invite
        user, password = self.credentials or ("", "")
        h = old.headers.copy()
        h.replace_first_value("Via", self._stack.via(self._transport))
        h.set("CSeq", f"{old.cseq.seq + 1} INVITE")
        value = answer_challenge(challenge, "INVITE", str(old.uri), user, password)
        h.set("Authorization" if code == 401 else "Proxy-Authorization", value)
        self.invite = Request(headers=h, body=old.body, method="INVITE", uri=old.uri)
        self._stack._start_invite(self)


@dataclass
class Registration:
    """An outbound registration kept fresh by a task; ``await stop()`` unregisters."""

    stack: SipStack
    registrar: URI
    aor: str
    credentials: tuple[str, str] | None
    expires: int
    call_id: str
    tag: str
    seq: int = 0
    granted: int = 0
    task: asyncio.Task | None = None
    refreshed: int = 0
    challenge: tuple[str, str] | None = None
    """(header name, challenge) last received, reused with an increasing nonce-count."""
    nc: int = 0
    """How many refreshes succeeded (observability and tests)."""

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        try:
            await self.stack._register_once(self, 0)
        except CallFailed:
            pass


class SipStack:
    def __init__(self, host: str, port: int, *,
                 on_invite: Callable[[IncomingCall], Awaitable[None] | None],
                 on_register: Callable[[Request, Peer], Awaitable[Response]] | None = None,
                 on_options: Callable[[Request, Peer], Awaitable[Response] | Response] | None = None,
                 clock: Callable[[], float] = time.monotonic, timers: Timers | None = None,
                 user_agent: str = "restcomm", send_trying: bool = True) -> None:
        self.on_invite = on_invite
        self.on_register = on_register
        self.on_options = on_options
        self.clock = clock
        self.user_agent = user_agent
        self.send_trying = send_trying
        self.layer = TransactionLayer(timers)
        self.transport = SipTransport(host, port, self._received, self._unreachable)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._dialogs: dict[tuple[str, str, str], _Call] = {}
        self._incoming: dict[str, IncomingCall] = {}  # INVITE branch -> call (for CANCEL)
        self._owners: dict[str, Any] = {}  # client transaction key -> OutgoingCall | Future
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ lifecycle
    @property
    def local_host(self) -> str:
        return self.transport.host

    @property
    def local_port(self) -> int:
        return self.transport.port

    async def start(self) -> None:
        await self.transport.start()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        await self.transport.stop()

    @property
    def _hostport(self) -> str:
        host = self.local_host
        return f"[{host}]:{self.local_port}" if ":" in host else f"{host}:{self.local_port}"

    def via(self, transport: str = "UDP") -> str:
        return f"SIP/2.0/{transport} {self._hostport};branch={new_branch()};rport"

    def contact(self, transport: str = "UDP", user: str | None = None) -> str:
        u = f"{user}@" if user else ""
        t = ";transport=tcp" if transport.upper() == "TCP" else ""
        return f"<sip:{u}{self._hostport}{t}>"

    # ------------------------------------------------------------------ pump
    def _received(self, msg: Request | Response, peer: Peer) -> None:
        self.layer.receive(msg, peer, self.clock())
        self._pump()

    def _unreachable(self, peer: Peer) -> None:
        self.layer.transport_error(peer, self.clock())
        self._pump()

    def _pump(self) -> None:
        for data, dest in self.layer.datagrams_to_send():
            self.transport.send(data, dest)
        while (ev := self.layer.next_event()) is not None:
            try:
                self._dispatch(ev)
            except SipError as exc:
                log.info("dropping message: %s", exc)
        for data, dest in self.layer.datagrams_to_send():
            self.transport.send(data, dest)
        self._schedule()

    def _schedule(self) -> None:
        when = self.layer.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            delay = max(0.0, when - self.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.layer.handle_timer(self.clock())
        self._pump()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("SIP handler failed", exc_info=t.exception())

    def _send_response(self, resp: Response) -> None:
        resp.headers.add("Server", self.user_agent) if "Server" not in resp.headers else None
        self.layer.send_response(resp, self.clock())
        self._pump()

    def _send_request(self, req: Request, dest: Peer, owner: Any) -> str:
        if "User-Agent" not in req.headers:
            req.headers.add("User-Agent", self.user_agent)
        key = self.layer.send_request(req, dest, self.clock())
        if owner is not None:
            self._owners[key] = owner
        self._pump()
        return key

    def _transport_send(self, data: bytes, dest: Peer) -> None:
        self.transport.send(data, dest)

    def _route_dest(self, dialog: Dialog, transport: str) -> Peer:
        return destination_of(dialog.next_hop(), transport)

    # ------------------------------------------------------------------ events
    def _dispatch(self, ev: Any) -> None:
        if isinstance(ev, RequestReceived):
            try:
                self._on_request(ev.request, ev.source)
            except SipError as exc:  # a header we needed is malformed: 400, never a crash
                if ev.request.method != "ACK":
                    self._reply(ev.request, 400, f"Bad Request ({exc})"[:80])
        elif isinstance(ev, ResponseReceived):
            owner = self._owners.get(ev.key) if ev.key else None
            if owner is None:
                # a 2xx retransmission (RFC 6026 Accepted, or after it): its dialog re-ACKs
                owner = self._owner_of_stray(ev.response)
            if isinstance(owner, OutgoingCall):
                if ev.response.status >= 200 and ev.key:
                    self._owners.pop(ev.key, None)
                owner._on_response(ev.response)
            elif isinstance(owner, asyncio.Future):
                if ev.response.status >= 200:
                    self._owners.pop(ev.key or "", None)
                    if not owner.done():
                        owner.set_result(ev.response)
        elif isinstance(ev, TransactionTimeout):
            owner = self._owners.pop(ev.key, None)
            status, why = (503, "unreachable") if ev.transport_error else (408, "timeout")
            if isinstance(owner, OutgoingCall):
                owner._fail(status, why)
            elif isinstance(owner, asyncio.Future) and not owner.done():
                owner.set_exception(CallFailed(status, why))
                owner.exception()
        elif isinstance(ev, AckTimeout):
            for call in list(self._dialogs.values()):
                if isinstance(call, IncomingCall) and call.request.call_id == ev.call_id and not call._ack.done():
                    call._end("timeout")
                    self._spawn(self._dialog_request(call, "BYE"))

    def _owner_of_stray(self, resp: Response) -> Any:
        """A 2xx retransmission after the INVITE transaction ended belongs to its dialog."""
        try:
            if resp.cseq.method != "INVITE":
                return None
            key = (resp.call_id, resp.from_.tag or "", resp.to.tag or "")
        except SipError:
            return None
        return self._dialogs.get(key)

    def _find_dialog(self, req: Request) -> _Call | None:
        return self._dialogs.get((req.call_id, req.to.tag or "", req.from_.tag or ""))

    def _reply(self, req: Request, status: int, reason: str | None = None, **kw: Any) -> None:
        self._send_response(make_response(req, status, reason, to_tag=_tag(), **kw))

    def _on_request(self, req: Request, source: Peer) -> None:
        m = req.method
        if m == "ACK":
            call = self._find_dialog(req)
            if isinstance(call, IncomingCall) and not call._ack.done():
                call._ack.set_result(req)
            return
        if m == "CANCEL":
            inc = self._incoming.get(req.top_via.branch or "")
            if inc is None:
                self._reply(req, 481)
                return
            self._send_response(make_response(req, 200, to_tag=inc.to_tag))
            if not inc._final_sent:
                inc._final_sent = True
                inc._respond(487)
                inc._end("cancel")
            return
        if req.to.tag:
            self._in_dialog(req, source)
            return
        if req.headers.get("Max-Forwards", "70").strip() == "0":
            self._reply(req, 483)
            return
        required = [o.strip() for o in req.headers.get_all("Require") if o.strip()]
        unsupported = [o for o in required if o.lower() not in SUPPORTED]
        if unsupported and m != "CANCEL":
            # §8.2.2.3: an extension the caller insists on and we lack (e.g. 100rel/PRACK)
            self._reply(req, 420, extra=[("Unsupported", ", ".join(unsupported))])
            return
        if m == "INVITE":
            if not req.contacts:
                raise SipError("INVITE without Contact")
            call = IncomingCall(self, req, source)
            if self.send_trying:  # §17.2.1: stop the caller's INVITE retransmissions at once
                self._send_response(make_response(req, 100))
            branch = req.top_via.branch or ""
            self._incoming[branch] = call
            call.ended.add_done_callback(lambda _f: self._incoming.pop(branch, None))
            result = self.on_invite(call)
            if asyncio.iscoroutine(result):
                self._spawn(self._run_invite(call, result))
        elif m == "OPTIONS":
            if self.on_options is not None:
                self._spawn(self._hook_response(self.on_options, req, source))
            else:
                self._reply(req, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        elif m == "REGISTER":
            if self.on_register is not None:
                self._spawn(self._hook_response(self.on_register, req, source))
            else:
                self._reply(req, 405, extra=[("Allow", ALLOW)])
        elif m in ("BYE", "INFO"):
            self._reply(req, 481)
        else:
            self._reply(req, 501 if m not in ALLOW else 405, extra=[("Allow", ALLOW)])

    async def _run_invite(self, call: IncomingCall, handler: Awaitable[None]) -> None:
        """Run the application's handler; if it fails before a final response, the caller gets
        500 instead of ringing until its own timers give up."""
        try:
            await handler
        except Exception:
            log.exception("on_invite handler failed for %s", call.request.call_id)
            if not call._final_sent:
                await call.reject(500)
            elif not call.ended.done():
                await call.bye()

    async def _hook_response(self, hook: Callable[..., Any], req: Request, source: Peer) -> None:
        result = hook(req, source)
        resp = await result if asyncio.iscoroutine(result) else result
        self._send_response(resp)

    def _in_dialog(self, req: Request, source: Peer) -> None:
        call = self._find_dialog(req)
        if call is None or call.dialog is None:
            self._reply(req, 481)
            return
        if not call.dialog.accept_remote(req):
            self._send_response(make_response(req, 500, "Out of order"))
            return
        m = req.method
        if m == "BYE":
            self._send_response(make_response(req, 200))
            call._end("bye")
        elif m == "INVITE":
            # re-INVITE: a new offer (hold, resume, media moved) is answered by the leg; one
            # without SDP gets the current session description (a session refresh).
            offer = req.body.decode("utf-8", "replace") if req.body and req.content_type == "application/sdp" else ""
            if offer.strip() and call._reinvite_cb is not None:
                answer = call._reinvite_cb(offer)
                if answer is None:
                    self._send_response(make_response(req, 488))
                    return
                call.local_sdp = answer
            body = (call.local_sdp or "").encode()
            extra = [("Contact", self.contact(source[0])), ("Allow", ALLOW)]
            if body:
                extra.append(("Content-Type", "application/sdp"))
            self._send_response(make_response(req, 200, body=body, extra=extra))
        elif m == "INFO":
            if req.content_type == "application/dtmf-relay":
                digit = parse_dtmf_relay(req.body)
                if digit and call._info_cb is not None:
                    call._info_cb(digit)
            self._send_response(make_response(req, 200))
        elif m == "OPTIONS":
            self._send_response(make_response(req, 200, extra=[("Allow", ALLOW)]))
        else:
            self._send_response(make_response(req, 501))

    # ------------------------------------------------------------------ outgoing
    async def _dialog_request(self, call: _Call, method: str, *, body: bytes = b"",
                              content_type: str | None = None) -> Response:
        assert call.dialog is not None
        transport = call.peer[0] if call.peer else "UDP"
        req = call.dialog.create_request(method, self.via(transport), body=body, content_type=content_type)
        return await self.request(req, self._route_dest(call.dialog, transport))

    async def request(self, req: Request, dest: Peer) -> Response:
        """Send a non-INVITE request in a client transaction; the final response (CallFailed 408 on
        timeout)."""
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._send_request(req, dest, fut)
        return await fut

    def _start_invite(self, call: OutgoingCall) -> None:
        call.key = self._send_request(call.invite, call.peer or ("UDP", "", 0), call)

    async def invite(self, target: str, *, from_uri: str, to_uri: str | None = None, sdp: str,
                     headers: list[tuple[str, str]] | None = None, destination: Peer | None = None,
                     credentials: tuple[str, str] | None = None) -> OutgoingCall:
        """Start an outgoing call; returns at once (use ``wait_answer``)."""
        ruri = parse_uri(target)
        dest = destination or destination_of(ruri)
        h = Headers()
        h.add("Via", self.via(dest[0]))
        h.add("Max-Forwards", "70")
        from_addr = parse_address(from_uri) if "<" in from_uri else parse_address(f"<{from_uri}>")
        h.add("From", str(from_addr.with_param("tag", _tag())))
        h.add("To", str(parse_address(to_uri if to_uri and "<" in to_uri else f"<{to_uri or target}>")))
        h.add("Call-ID", f"{secrets.token_hex(12)}@{self.local_host}")
        h.add("CSeq", "1 INVITE")
        extra = Headers(list(headers or []))
        if "Contact" not in extra:
            h.add("Contact", self.contact(dest[0], from_addr.uri.user))
        h.add("Allow", ALLOW)
        for k, v in extra:
            h.add(k, v)
        h.add("Content-Type", "application/sdp")
        req = Request(headers=h, body=sdp.encode(), method="INVITE", uri=ruri)
        call = OutgoingCall(self, req, dest, credentials)
        call.local_sdp = sdp
        self._start_invite(call)
        return call

    # ------------------------------------------------------------------ outbound REGISTER
    async def register(self, registrar_uri: str, aor: str, credentials: tuple[str, str] | None,
                       expires: int = 3600) -> Registration:
        """Register ``aor`` at a carrier's registrar (digest answered) and keep it refreshed."""
        reg = Registration(self, parse_uri(registrar_uri), aor, credentials, expires,
                           f"{secrets.token_hex(12)}@{self.local_host}", _tag())
        await self._register_once(reg, expires)
        reg.task = asyncio.get_running_loop().create_task(self._refresh(reg))
        return reg

    async def _refresh(self, reg: Registration) -> None:
        """Re-REGISTER at 80% of the granted interval (at least 1 s apart)."""
        while True:
            await asyncio.sleep(max(1.0, reg.granted * 0.8))
            try:
                await self._register_once(reg, reg.expires)
                reg.refreshed += 1
            except CallFailed as exc:
                log.warning("re-REGISTER of %s failed: %s", reg.aor, exc)
                await asyncio.sleep(30)

    async def _register_once(self, reg: Registration, expires: int) -> Response:
        """One REGISTER exchange. The last challenge is reused with an incremented nonce-count
        (so a refresh costs one round trip); a fresh 401/407 or 423 is answered and retried."""
        dest = destination_of(reg.registrar)
        fresh_challenge = False
        for _ in range(4):
            reg.seq += 1
            h = Headers()
            h.add("Via", self.via(dest[0]))
            h.add("Max-Forwards", "70")
            h.add("From", f"<{reg.aor}>;tag={reg.tag}")
            h.add("To", f"<{reg.aor}>")
            h.add("Call-ID", reg.call_id)
            h.add("CSeq", f"{reg.seq} REGISTER")
            h.add("Contact", self.contact(dest[0], parse_uri(reg.aor).user))
            h.add("Expires", str(expires))
            if reg.challenge is not None and reg.credentials:
                header, chal = reg.challenge
                reg.nc += 1
                h.add(header, answer_challenge(chal, "REGISTER", str(reg.registrar), *reg.credentials, nc=reg.nc))
            resp = await self.request(Request(headers=h, method="REGISTER", uri=reg.registrar), dest)
            if resp.status in (401, 407) and reg.credentials and not fresh_challenge:
                hdr = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
                chal = pick_challenge(resp.headers.get_all(hdr))
                if chal:
                    fresh_challenge = True
                    reg.challenge = ("Authorization" if resp.status == 401 else "Proxy-Authorization", chal)
                    reg.nc = 0
                    continue
            min_exp = resp.headers.get("Min-Expires", "")
            if resp.status == 423 and min_exp.strip().isdigit() and expires != 0:
                expires = reg.expires = int(min_exp)  # §10.2.8: retry with the registrar's minimum
                continue
            if resp.status >= 300:
                raise CallFailed(resp.status, resp.reason)
            reg.granted = expires
            for c in resp.contacts:
                e = c.param("expires")
                if e and e.isdigit():
                    reg.granted = int(e)
            ex = resp.headers.get("Expires")
            if ex and ex.isdigit() and not resp.contacts:
                reg.granted = int(ex)
            return resp
        raise CallFailed(401, "authentication failed")
