"""Sans-I/O SIP transaction layer (RFC 3261 §17, with RFC 6026's Accepted state and RFC 3581 rport).

The layer never touches a socket or a clock. The asyncio adapter calls

* ``receive(message, source, now)`` for every parsed message (``source`` = (transport, host, port)),
* ``send_request(request, destination, now)`` to start a client transaction,
* ``send_response(response, now)`` for the TU's answer to a received request,
* ``handle_timer(now)`` when ``get_timer()``'s deadline has passed,

then drains ``datagrams_to_send()`` to the network and ``next_event()`` to the TU (the UA).

What it guarantees, each proved with a fake clock in ``tests/unit/test_sip_transaction.py``:

* a retransmitted request never reaches the TU twice: the server transaction absorbs it and
  resends the last response (a provisional while proceeding, the final once completed). After a 2xx
  to INVITE the transaction stays *Accepted* for 64*T1 (RFC 6026), so a late INVITE retransmission
  is still absorbed instead of starting a second call;
* client requests over UDP are retransmitted (timers A and E) and time out (B and F); the ACK for
  a non-2xx final response is generated here (§17.1.1.3) and resent for each retransmitted final;
* the 2xx to INVITE, which the transaction layer does not retransmit in RFC 3261, is retransmitted
  here on behalf of the UAS core (§13.3.1.4: T1 doubling up to T2) until the ACK arrives; after
  64*T1 the TU gets :class:`AckTimeout` and should send BYE.

Transactions are matched by the top Via branch (§17.1.3, §17.2.3); the RFC 2543 fallback is not
implemented: a request whose branch lacks the magic cookie is matched by its branch all the same.
"""

from __future__ import annotations

import heapq
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .message import CSeq, Headers, Request, Response, SipError, Via

Peer = tuple[str, str, int]
"""(transport, host, port); transport is "UDP" or "TCP"."""

MAGIC = "z9hG4bK"


@dataclass(frozen=True, slots=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_c: float = 180.0
    """How long an INVITE may stay in Proceeding without a final response (> 3 min, §16.6)."""


def new_branch() -> str:
    return MAGIC + secrets.token_hex(8)


def reliable(peer: Peer) -> bool:
    return peer[0].upper() != "UDP"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU (never a retransmission). ACKs to 2xx arrive this way too."""

    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the client transaction ``key`` (``None`` when it matched none)."""

    response: Response
    key: str | None


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B, C or F (client: no final response), or H (server: no ACK for a non-2xx final)."""

    key: str
    method: str
    client: bool
    transport_error: bool = False


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """A 2xx to INVITE was retransmitted for 64*T1 without an ACK (§13.3.1.4): send BYE."""

    call_id: str
    cseq: int


Event = RequestReceived | ResponseReceived | TransactionTimeout | AckTimeout


class State(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(eq=False)
class _Client:
    key: str
    request: Request
    data: bytes
    dest: Peer
    invite: bool
    state: State
    interval: float = 0.0
    ack: bytes | None = None


@dataclass(eq=False)
class _Server:
    key: str
    request: Request
    source: Peer
    response_dest: Peer
    invite: bool
    state: State
    last_response: bytes | None = None
    interval: float = 0.0


@dataclass(eq=False)
class _Pending2xx:
    data: bytes
    dest: Peer
    interval: float
    deadline: float
    call_id: str
    cseq: int


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    kind: str = field(compare=False)
    key: str = field(compare=False)
    name: str = field(compare=False)


def response_destination(via: Via, source: Peer) -> Peer:
    """Where responses go (§18.2.2 + RFC 3581): the connection for reliable transports, else
    ``received``/``rport`` (which :meth:`TransactionLayer.receive` stamped on the Via)."""
    if reliable(source):
        return source
    host = via.param("received") or via.host.strip("[]")
    rport = via.param("rport")
    if rport:
        return ("UDP", host, int(rport))
    return ("UDP", host, via.port or 5060)


def stamp_via(request: Request, source: Peer) -> Via:
    """Add ``received`` (and ``rport`` when asked for) to the top Via (§18.2.1, RFC 3581 §4)."""
    via = request.top_via
    host = via.host.strip("[]")
    changed = via
    if host != source[1] or via.param("rport") is not None:
        changed = changed.with_param("received", source[1])
    if via.param("rport") == "":
        changed = changed.with_param("rport", str(source[2]))
    if changed is not via:
        request.headers.replace_first_value("Via", str(changed))
    return changed


class TransactionLayer:
    def __init__(self, timers: Timers | None = None, *, branch_factory: Callable[[], str] = new_branch) -> None:
        self.timers = timers or Timers()
        self.new_branch = branch_factory
        self._clients: dict[str, _Client] = {}
        self._servers: dict[str, _Server] = {}
        self._pending_2xx: dict[tuple[str, int], _Pending2xx] = {}
        self._heap: list[_Timer] = []
        self._deadlines: dict[tuple[str, str, str], float] = {}
        self._seq = 0
        self._out: list[tuple[bytes, Peer]] = []
        self._events: deque[Event] = deque()

    # ------------------------------------------------------------------ outputs
    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        while self._heap:
            t = self._heap[0]
            if self._deadlines.get((t.kind, t.key, t.name)) == t.when:
                return t.when
            heapq.heappop(self._heap)
        return None

    @property
    def transaction_count(self) -> int:
        return len(self._clients) + len(self._servers) + len(self._pending_2xx)

    # ------------------------------------------------------------------ timers
    def _arm(self, kind: str, key: str, name: str, when: float) -> None:
        self._seq += 1
        self._deadlines[(kind, key, name)] = when
        heapq.heappush(self._heap, _Timer(when, self._seq, kind, key, name))

    def _disarm(self, kind: str, key: str, *names: str) -> None:
        for n in names:
            self._deadlines.pop((kind, key, n), None)

    def _drop(self, kind: str, key: str) -> None:
        for name in ("ABCDEFKM" if kind == "c" else "GHIJL"):
            self._deadlines.pop((kind, key, name), None)
        (self._clients if kind == "c" else self._servers).pop(key, None)  # type: ignore[attr-defined]

    def handle_timer(self, now: float) -> None:
        while self._heap and self._heap[0].when <= now:
            t = heapq.heappop(self._heap)
            if self._deadlines.get((t.kind, t.key, t.name)) != t.when:
                continue
            del self._deadlines[(t.kind, t.key, t.name)]
            if t.kind == "c":
                self._client_timer(t.key, t.name, now)
            elif t.kind == "s":
                self._server_timer(t.key, t.name, now)
            else:
                self._retransmit_2xx(t.key, now)

    # ------------------------------------------------------------------ client side
    def send_request(self, request: Request, dest: Peer, now: float) -> str:
        """Start a client transaction; the top Via must carry a fresh branch. Returns its key.

        ACK is not a transaction: it is sent once and the key is returned for symmetry.
        """
        branch = request.top_via.branch or ""
        data = request.encode()
        self._out.append((data, dest))
        if request.method == "ACK":
            return branch
        key = f"{branch}|{request.method}"
        invite = request.method == "INVITE"
        c = _Client(key, request, data, dest, invite, State.CALLING if invite else State.TRYING,
                    interval=self.timers.t1)
        self._clients[key] = c
        if not reliable(dest):
            self._arm("c", key, "A" if invite else "E", now + self.timers.t1)
        self._arm("c", key, "B" if invite else "F", now + 64 * self.timers.t1)
        return key

    def _client_timer(self, key: str, name: str, now: float) -> None:
        c = self._clients.get(key)
        if c is None:
            return
        t = self.timers
        if name == "A" and c.state is State.CALLING:
            self._out.append((c.data, c.dest))
            c.interval *= 2
            self._arm("c", key, "A", now + c.interval)
        elif name == "E" and c.state in (State.TRYING, State.PROCEEDING):
            self._out.append((c.data, c.dest))
            c.interval = t.t2 if c.state is State.PROCEEDING else min(2 * c.interval, t.t2)
            self._arm("c", key, "E", now + c.interval)
        elif name in ("B", "C", "F") and c.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self._drop("c", key)
            self._events.append(TransactionTimeout(key, c.request.method, True))
        elif name in ("D", "K", "M"):
            self._drop("c", key)

    def _client_response(self, resp: Response, now: float) -> None:
        try:
            branch = resp.top_via.branch or ""
            method = resp.cseq.method
        except SipError:
            return
        key = f"{branch}|{method}"
        c = self._clients.get(key)
        if c is None:
            self._events.append(ResponseReceived(resp, None))
            return
        code = resp.status
        t = self.timers
        if c.invite:
            if c.state in (State.CALLING, State.PROCEEDING):
                if code < 200:
                    c.state = State.PROCEEDING
                    self._disarm("c", key, "A", "B")
                    # Timer C (§16.6, borrowed for a UAC): a callee that rings forever without a
                    # final response must not keep the transaction alive; each 1xx refreshes it.
                    self._arm("c", key, "C", now + t.timer_c)
                    self._events.append(ResponseReceived(resp, key))
                elif code < 300:
                    # RFC 6026: Accepted; retransmitted 2xx still reach the TU (which re-ACKs).
                    c.state = State.ACCEPTED
                    self._disarm("c", key, "A", "B", "C")
                    self._arm("c", key, "M", now + 64 * t.t1)
                    self._events.append(ResponseReceived(resp, key))
                else:
                    c.state = State.COMPLETED
                    self._disarm("c", key, "A", "B", "C")
                    c.ack = self._ack_for(c.request, resp).encode()
                    self._out.append((c.ack, c.dest))
                    self._arm("c", key, "D", now + (0 if reliable(c.dest) else 32.0))
                    self._events.append(ResponseReceived(resp, key))
            elif c.state is State.ACCEPTED and 200 <= code < 300:
                self._events.append(ResponseReceived(resp, key))
            elif c.state is State.COMPLETED and code >= 300 and c.ack is not None:
                self._out.append((c.ack, c.dest))
        else:
            if c.state in (State.TRYING, State.PROCEEDING):
                if code < 200:
                    c.state = State.PROCEEDING
                    self._events.append(ResponseReceived(resp, key))
                else:
                    c.state = State.COMPLETED
                    self._disarm("c", key, "E", "F")
                    self._arm("c", key, "K", now + (0 if reliable(c.dest) else t.t4))
                    self._events.append(ResponseReceived(resp, key))

    @staticmethod
    def _ack_for(request: Request, resp: Response) -> Request:
        """ACK for a non-2xx final (§17.1.1.3): same branch and Request-URI, To from the response."""
        h = Headers()
        h.add("Via", request.headers.get_all("Via")[0])
        for name in ("Route",):
            for v in request.headers.get_all(name):
                h.add(name, v)
        h.add("Max-Forwards", "70")
        h.add("From", request.headers.get("From") or "")
        h.add("To", resp.headers.get("To") or "")
        h.add("Call-ID", request.call_id)
        h.add("CSeq", str(CSeq(request.cseq.seq, "ACK")))
        return Request(headers=h, method="ACK", uri=request.uri)

    def transport_error(self, dest: Peer, now: float) -> None:
        """The transport could not reach ``dest`` (TCP connect refused...): every client
        transaction towards it fails at once (§17.1.4: the TU treats it as 503)."""
        for key, c in list(self._clients.items()):
            if c.dest == dest and c.state in (State.CALLING, State.TRYING, State.PROCEEDING):
                self._drop("c", key)
                self._events.append(TransactionTimeout(key, c.request.method, True, transport_error=True))

    def cancel_client(self, key: str) -> None:
        """Forget a client transaction without waiting (the TU gave up on it)."""
        self._drop("c", key)

    # ------------------------------------------------------------------ server side
    @staticmethod
    def _server_key(req: Request) -> str:
        via = req.top_via
        method = "INVITE" if req.method == "ACK" else req.method
        sent_by = f"{via.host}:{via.port or ''}"
        return f"{via.branch or ''}|{sent_by}|{method}"

    def receive(self, msg: Request | Response, source: Peer, now: float) -> None:
        if isinstance(msg, Response):
            self._client_response(msg, now)
            return
        try:
            stamp_via(msg, source)
            key = self._server_key(msg)
        except SipError:
            return
        s = self._servers.get(key)
        if msg.method == "ACK":
            if s is not None and s.invite and s.state is State.COMPLETED:
                s.state = State.CONFIRMED
                self._disarm("s", key, "G", "H")
                self._arm("s", key, "I", now + (0 if reliable(s.source) else self.timers.t4))
                return
            if s is not None and s.state is State.CONFIRMED:
                return
            # ACK for a 2xx: end of that 2xx's retransmission, then up to the TU.
            try:
                self._pending_2xx_done(msg.call_id, msg.cseq.seq)
            except SipError:
                return
            self._events.append(RequestReceived(msg, source))
            return
        if s is not None:
            if s.last_response is not None and s.state in (State.PROCEEDING, State.COMPLETED):
                self._out.append((s.last_response, s.response_dest))
            return  # retransmission absorbed (Trying, Accepted, Confirmed: nothing to resend)
        invite = msg.method == "INVITE"
        dest = response_destination(msg.top_via, source)
        s = _Server(key, msg, source, dest, invite, State.PROCEEDING if invite else State.TRYING)
        self._servers[key] = s
        self._events.append(RequestReceived(msg, source))

    def send_response(self, resp: Response, now: float) -> None:
        """Send the TU's response; it is matched to its server transaction by Via and CSeq."""
        via = resp.top_via
        method = resp.cseq.method
        key = f"{via.branch or ''}|{via.host}:{via.port or ''}|{method}"
        s = self._servers.get(key)
        if s is None:
            # No transaction (e.g. a stray 2xx retransmission by the TU): route by Via.
            self._out.append((resp.encode(), response_destination(via, ("UDP", via.host, via.port or 5060))))
            return
        data = resp.encode()
        t = self.timers
        code = resp.status
        rel = reliable(s.source)
        if s.invite:
            if s.state is not State.PROCEEDING:
                return
            self._out.append((data, s.response_dest))
            s.last_response = data
            if code < 200:
                return
            if code < 300:
                s.state = State.ACCEPTED
                self._arm("s", key, "L", now + 64 * t.t1)
                self._start_2xx(resp, data, s.response_dest, rel, now)
            else:
                s.state = State.COMPLETED
                s.interval = t.t1
                if not rel:
                    self._arm("s", key, "G", now + t.t1)
                self._arm("s", key, "H", now + 64 * t.t1)
        else:
            if s.state not in (State.TRYING, State.PROCEEDING):
                return
            self._out.append((data, s.response_dest))
            s.last_response = data
            if code < 200:
                s.state = State.PROCEEDING
            else:
                s.state = State.COMPLETED
                self._arm("s", key, "J", now + (0 if rel else 64 * t.t1))

    def _server_timer(self, key: str, name: str, now: float) -> None:
        s = self._servers.get(key)
        if s is None:
            return
        if name == "G" and s.state is State.COMPLETED and s.last_response is not None:
            self._out.append((s.last_response, s.response_dest))
            s.interval = min(2 * s.interval, self.timers.t2)
            self._arm("s", key, "G", now + s.interval)
        elif name == "H" and s.state is State.COMPLETED:
            self._drop("s", key)
            self._events.append(TransactionTimeout(key, s.request.method, False))
        elif name in ("I", "J", "L"):
            self._drop("s", key)

    # ------------------------------------------------------------------ 2xx retransmission (§13.3.1.4)
    def _start_2xx(self, resp: Response, data: bytes, dest: Peer, rel: bool, now: float) -> None:
        ident = (resp.call_id, resp.cseq.seq)
        t = self.timers
        p = _Pending2xx(data, dest, t.t1, now + 64 * t.t1, ident[0], ident[1])
        self._pending_2xx[ident] = p
        tkey = f"{ident[0]}|{ident[1]}"
        # over TCP no retransmission, but the ACK is still awaited for 64*T1
        self._arm("x", tkey, "2xx", now + (64 * t.t1 if rel else t.t1))
        if rel:
            p.interval = 64 * t.t1

    def _retransmit_2xx(self, tkey: str, now: float) -> None:
        call_id, _, seq = tkey.rpartition("|")
        p = self._pending_2xx.get((call_id, int(seq)))
        if p is None:
            return
        if now >= p.deadline:
            del self._pending_2xx[(call_id, int(seq))]
            self._events.append(AckTimeout(call_id, int(seq)))
            return
        self._out.append((p.data, p.dest))
        p.interval = min(2 * p.interval, self.timers.t2)
        self._arm("x", tkey, "2xx", min(now + p.interval, p.deadline))

    def _pending_2xx_done(self, call_id: str, seq: int) -> None:
        if self._pending_2xx.pop((call_id, seq), None) is not None:
            self._disarm("x", f"{call_id}|{seq}", "2xx")

    def awaiting_ack(self, call_id: str, seq: int) -> bool:
        return (call_id, seq) in self._pending_2xx
