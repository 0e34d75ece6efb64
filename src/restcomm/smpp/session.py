"""Sans-I/O SMPP ESME session: one bind's state machine, sequence numbers, window and timers.

This is the aioquic shape: the session never touches a socket or a clock. The I/O layer
(:mod:`restcomm.smpp.esme`) calls

* ``connection_made(now)`` once TCP is up (queues the bind),
* ``receive_data(data, now)`` with whatever arrived,
* ``send_submit(pdu, now, tag)`` / ``send_deliver_sm_resp(seq, status)`` / ``unbind(now)``,
* ``handle_timer(now)`` when ``get_timer()``'s deadline passes,
* ``connection_lost(now)`` when TCP goes away,

and after each call drains ``data_to_send()`` to the transport and ``next_event()`` to the
application. ``now`` is any monotonic clock in seconds; tests pass a fake one, so every timeout
and keepalive is checked without sleeping.

States: ``BINDING`` -> ``BOUND`` -> ``UNBINDING`` -> ``CLOSED`` (any state may jump to ``CLOSED``).
When the session closes, every submit still awaiting its response is listed in
:class:`Closed` so the caller can re-queue it elsewhere: the SMSC may or may not have accepted it,
and a possible duplicate is better than a silent loss.

Keepalive: ``enquire_link`` is sent after ``enquire_link_interval`` seconds *without receiving
anything*, so a busy bind sends none, and a bind whose peer stopped answering submits still gets
probed and, without an answer within ``response_timeout``, closed.

Deliveries: ``deliver_sm`` is surfaced as :class:`DeliverReceived` and *not* acknowledged
automatically: the application answers with ``send_deliver_sm_resp`` once it has stored the
message, so a crash before that makes the SMSC re-deliver instead of losing a receipt or an MO.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .pdu import (
    BIND_RESPONSES,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandId,
    DataSm,
    DataSmResp,
    Decoder,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    InboundMessage,
    Pdu,
    PduError,
    Status,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnknownPdu,
    command_id_of,
    status_name,
)

MAX_SEQUENCE = 0x7FFFFFFF

#: submit_sm statuses that mean "slow down and try again", never "this message is bad".
THROTTLE_STATUSES = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})


class SessionState(Enum):
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    CLOSED = "closed"


class BindType(Enum):
    TRANSMITTER = CommandId.BIND_TRANSMITTER
    RECEIVER = CommandId.BIND_RECEIVER
    TRANSCEIVER = CommandId.BIND_TRANSCEIVER


_BIND_PDU = {
    BindType.TRANSMITTER: BindTransmitter,
    BindType.RECEIVER: BindReceiver,
    BindType.TRANSCEIVER: BindTransceiver,
}


class SessionError(Exception):
    """An operation the current state does not allow (submit while unbound, window full)."""


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class Bound(Event):
    system_id: str


@dataclass(frozen=True, slots=True)
class BindFailed(Event):
    """``status`` is the SMSC's bind_resp/generic_nack status, ``None`` for timeout or lost link."""

    status: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class SubmitResult(Event):
    """A submit_sm's answer. ``status`` 0 means accepted with ``message_id``."""

    sequence_number: int
    tag: Any
    status: int
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Throttled(Event):
    """submit_sm refused with ESME_RTHROTTLED or ESME_RMSGQFUL: retry later, not an error."""

    sequence_number: int
    tag: Any
    status: int


@dataclass(frozen=True, slots=True)
class DeliverReceived(Event):
    """An MO or a receipt (deliver_sm, or data_sm); answer it with ``acknowledge(pdu, status)``."""

    pdu: InboundMessage


@dataclass(frozen=True, slots=True)
class Timeout(Event):
    """A request got no response within ``response_timeout``; its window slot is free again."""

    sequence_number: int
    tag: Any
    command_id: int


@dataclass(frozen=True, slots=True)
class Closed(Event):
    """The session is over. ``unacknowledged`` holds the tags of submits that never got an answer."""

    reason: str
    unacknowledged: tuple[Any, ...] = ()


@dataclass(slots=True)
class _Outstanding:
    command_id: int
    deadline: float
    tag: Any


class EsmeSession:
    """One SMPP bind, ESME side. See the module docstring for the calling convention."""

    def __init__(
        self,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        bind_type: BindType = BindType.TRANSCEIVER,
        window: int = 10,
        enquire_link_interval: float = 30.0,
        response_timeout: float = 10.0,
        bind_timeout: float = 10.0,
        unbind_timeout: float = 5.0,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.system_id = system_id
        self.password = password
        self.system_type = system_type
        self.bind_type = bind_type
        self.window = window
        self.enquire_link_interval = enquire_link_interval
        self.response_timeout = response_timeout
        self.bind_timeout = bind_timeout
        self.unbind_timeout = unbind_timeout
        self.addr_ton = addr_ton
        self.addr_npi = addr_npi
        self.address_range = address_range

        self.state = SessionState.BINDING
        self.smsc_system_id: str | None = None
        self.late_responses = 0
        self._decoder = Decoder()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._next_seq = 1
        # Submits and enquire_links share response_timeout, so insertion order is deadline order
        # and the earliest deadline is always the first entry.
        self._outstanding: dict[int, _Outstanding] = {}
        self._submits_out = 0
        self._enquire_seq: int | None = None
        self._bind_seq: int | None = None
        self._bind_deadline: float | None = None
        self._unbind_deadline: float | None = None
        self._last_rx = 0.0
        self._started = False

    # --- queries ---------------------------------------------------------------------------

    @property
    def window_in_use(self) -> int:
        return self._submits_out

    @property
    def window_available(self) -> int:
        if self.state is not SessionState.BOUND:
            return 0
        return self.window - self._submits_out

    @property
    def can_receive(self) -> bool:
        return self.bind_type is not BindType.TRANSMITTER

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` must be called, or ``None``."""
        if self.state is SessionState.CLOSED:
            return None
        if self.state is SessionState.BINDING:
            return self._bind_deadline
        deadlines: list[float] = []
        for entry in self._outstanding.values():
            deadlines.append(entry.deadline)
            break
        if self.state is SessionState.BOUND and self._enquire_seq is None:
            deadlines.append(self._last_rx + self.enquire_link_interval)
        if self.state is SessionState.UNBINDING and self._unbind_deadline is not None:
            deadlines.append(self._unbind_deadline)
        return min(deadlines) if deadlines else None

    # --- inputs ----------------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """TCP is up: send the bind request."""
        if self._started:
            raise SessionError("connection_made called twice")
        self._started = True
        self._last_rx = now
        seq = self._allocate_seq()
        self._bind_seq = seq
        self._bind_deadline = now + self.bind_timeout
        bind = _BIND_PDU[self.bind_type](
            seq,
            0,
            self.system_id,
            self.password,
            self.system_type,
            0x34,
            self.addr_ton,
            self.addr_npi,
            self.address_range,
        )
        self._out.append(bind.encode())

    def send_submit(self, pdu: SubmitSm, now: float, tag: Any = None) -> int:
        """Queue a submit_sm; returns its sequence number. ``tag`` comes back in the result event."""
        if self.state is not SessionState.BOUND:
            raise SessionError(f"cannot submit in state {self.state.value}")
        if self._submits_out >= self.window:
            raise SessionError("window full")
        seq = self._allocate_seq()
        pdu.sequence_number = seq
        data = pdu.encode()  # may raise ValueError: nothing is recorded before it succeeds
        self._outstanding[seq] = _Outstanding(CommandId.SUBMIT_SM, now + self.response_timeout, tag)
        self._submits_out += 1
        self._out.append(data)
        return seq

    def send_deliver_sm_resp(self, sequence_number: int, status: int = Status.ESME_ROK) -> None:
        if self.state is SessionState.CLOSED:
            return
        self._out.append(DeliverSmResp(sequence_number, status).encode())

    def acknowledge(self, pdu: InboundMessage, status: int = Status.ESME_ROK) -> None:
        """Answer a :class:`DeliverReceived` with the response type its request needs."""
        if self.state is SessionState.CLOSED:
            return
        resp = DataSmResp if isinstance(pdu, DataSm) else DeliverSmResp
        self._out.append(resp(pdu.sequence_number, status).encode())

    def unbind(self, now: float) -> None:
        """Start a graceful unbind; the session closes on unbind_resp or after ``unbind_timeout``."""
        if self.state is SessionState.BOUND:
            seq = self._allocate_seq()
            self._out.append(Unbind(seq).encode())
            self.state = SessionState.UNBINDING
            self._unbind_deadline = now + self.unbind_timeout
        elif self.state is SessionState.BINDING:
            self._close("closed before bind completed", bind_failed=True)

    def connection_lost(self, now: float, reason: str = "connection lost") -> None:
        if self.state is not SessionState.CLOSED:
            self._close(reason, bind_failed=self.state is SessionState.BINDING)

    def handle_timer(self, now: float) -> None:
        state = self.state
        if state is SessionState.CLOSED:
            return
        if state is SessionState.BINDING:
            if self._bind_deadline is not None and now >= self._bind_deadline:
                self._close("bind timeout", bind_failed=True)
            return
        if state is SessionState.UNBINDING and self._unbind_deadline is not None and now >= self._unbind_deadline:
            self._close("unbind timeout")
            return
        while self._outstanding:
            seq, entry = next(iter(self._outstanding.items()))
            if entry.deadline > now:
                break
            del self._outstanding[seq]
            if entry.command_id == CommandId.ENQUIRE_LINK:
                self._enquire_seq = None
                self._close("enquire_link timeout")
                return
            self._submits_out -= 1
            self._events.append(Timeout(seq, entry.tag, entry.command_id))
        if (
            self.state is SessionState.BOUND
            and self._enquire_seq is None
            and now >= self._last_rx + self.enquire_link_interval
        ):
            seq = self._allocate_seq()
            self._enquire_seq = seq
            self._outstanding[seq] = _Outstanding(CommandId.ENQUIRE_LINK, now + self.response_timeout, None)
            self._out.append(EnquireLink(seq).encode())

    def receive_data(self, data: bytes, now: float) -> None:
        if self.state is SessionState.CLOSED:
            return
        try:
            pdus = self._decoder.feed(data)
        except PduError as exc:
            if exc.sequence_number is not None:
                self._out.append(GenericNack(exc.sequence_number, Status.ESME_RINVCMDLEN).encode())
            # Process what was complete before the garbage? The decoder raised before returning
            # them, and a peer that sends garbage is not one whose earlier PDUs we should trust.
            self._close(f"protocol error: {exc}", bind_failed=self.state is SessionState.BINDING)
            return
        if pdus:
            self._last_rx = now
        for pdu in pdus:
            self._handle_pdu(pdu, now)
            if self._is_closed():  # an unbind or a refused bind ends the stream here
                break

    # --- internals -------------------------------------------------------------------------

    def _is_closed(self) -> bool:
        # A method, not an inline test: type checkers narrow self.state across _handle_pdu calls.
        return self.state is SessionState.CLOSED

    def _allocate_seq(self) -> int:
        seq = self._next_seq
        while seq in self._outstanding:  # only after 2**31 PDUs with one stuck outstanding
            seq = seq % MAX_SEQUENCE + 1
        self._next_seq = seq % MAX_SEQUENCE + 1
        return seq

    def _close(self, reason: str, bind_failed: bool = False, status: int | None = None) -> None:
        if bind_failed:
            self._events.append(BindFailed(status, reason))
        unacked = tuple(e.tag for e in self._outstanding.values() if e.command_id == CommandId.SUBMIT_SM)
        self._outstanding.clear()
        self._submits_out = 0
        self._enquire_seq = None
        self.state = SessionState.CLOSED
        self._events.append(Closed(reason, unacked))

    def _handle_pdu(self, pdu: Pdu, now: float) -> None:
        cmd = command_id_of(pdu)
        seq = pdu.sequence_number
        if cmd & 0x80000000:
            self._handle_response(pdu, cmd, seq)
            return
        # Requests from the SMSC.
        if isinstance(pdu, EnquireLink):
            self._out.append(EnquireLinkResp(seq).encode())
        elif isinstance(pdu, DeliverSm | DataSm):
            if self.state is SessionState.BINDING or not self.can_receive:
                resp = DataSmResp if isinstance(pdu, DataSm) else DeliverSmResp
                self._out.append(resp(seq, Status.ESME_RINVBNDSTS).encode())
            else:
                self._events.append(DeliverReceived(pdu))
        elif isinstance(pdu, Unbind):
            self._out.append(UnbindResp(seq).encode())
            self._close("unbound by SMSC", bind_failed=self.state is SessionState.BINDING)
        else:
            # submit_sm, bind_*, anything unknown: not something an SMSC sends an ESME.
            self._out.append(GenericNack(seq, Status.ESME_RINVCMDID).encode())

    def _handle_response(self, pdu: Pdu, cmd: int, seq: int) -> None:
        if self.state is SessionState.BINDING:
            if seq != self._bind_seq:
                return
            expected = BIND_RESPONSES[self.bind_type.value].command_id
            if cmd == expected and pdu.command_status == Status.ESME_ROK:
                self.state = SessionState.BOUND
                self.smsc_system_id = getattr(pdu, "system_id", "")
                self._bind_deadline = None
                self._events.append(Bound(self.smsc_system_id or ""))
            else:
                status = pdu.command_status if pdu.command_status else Status.ESME_RBINDFAIL
                self._close(f"bind refused: {status_name(status)}", bind_failed=True, status=status)
            return
        if isinstance(pdu, UnbindResp):
            if self.state is SessionState.UNBINDING:
                self._close("unbound")
            return
        entry = self._outstanding.pop(seq, None)
        if entry is None:
            # Answer to a request we already timed out (or a peer bug): nothing to do.
            if not isinstance(pdu, UnknownPdu):
                self.late_responses += 1
            return
        if entry.command_id == CommandId.ENQUIRE_LINK:
            self._enquire_seq = None
            return
        self._submits_out -= 1
        status = pdu.command_status
        if isinstance(pdu, GenericNack) and status == Status.ESME_ROK:
            status = Status.ESME_RSYSERR  # a nack with status 0 still means "not accepted"
        if status in THROTTLE_STATUSES:
            self._events.append(Throttled(seq, entry.tag, status))
        elif isinstance(pdu, SubmitSmResp):
            self._events.append(SubmitResult(seq, entry.tag, status, pdu.message_id if status == 0 else None))
        else:
            self._events.append(SubmitResult(seq, entry.tag, status or Status.ESME_RSYSERR, None))
