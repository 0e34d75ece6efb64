"""The asyncio ESME: a :class:`Carrier` is one SMS carrier reached over one or more SMPP binds.

This module only moves bytes and timers for :class:`restcomm.smpp.session.EsmeSession`; all
protocol rules live there. What it adds is the policy a messaging pipeline needs:

* **Binds and reconnects.** ``binds`` transceiver binds, each reconnected forever with jittered
  exponential backoff (``reconnect_initial`` .. ``reconnect_max``). Restcomm waits a flat 30 s and
  sends all traffic through the most recently bound session; here every bound bind carries
  traffic, chosen by free window.
* **Flow control.** A per-bind ``window`` of outstanding submit_sm, and one token bucket of
  ``max_tps`` shared by all binds of the carrier (carriers contract TPS per account, not per
  bind). ``ESME_RTHROTTLED``/``ESME_RMSGQFUL`` pause the whole carrier with exponential backoff
  and re-send the segment: Restcomm fails the message instead, which turns a carrier's flow
  control into customer-visible failures.
* **Retries.** A segment whose response times out, whose bind drops before the answer, or that
  gets ``ESME_RSYSERR``/``ESME_RX_T_APPN``, is re-sent, up to ``max_attempts`` sends. The SMSC may
  have accepted the first copy, so a duplicate is possible; a silent loss would be worse.
* **Segmentation.** Long texts are sent as one submit_sm per segment with a concatenation UDH
  (8-bit reference, ``esm_class`` 0x40), ``data_coding`` 0 (GSM-7, unpacked) or 8 (UCS-2), always
  ``registered_delivery`` 1 unless the message says otherwise. Never SAR, never message_payload.
* **Addresses.** ``+digits`` is international (TON 1, NPI 1, ``+`` stripped); all digits is
  TON 0 (unknown), NPI 1 (E.164) and lets the carrier apply its national rules; anything else is
  an alphanumeric sender (TON 5, NPI 0).
* **Inbound.** Receipts are parsed (:mod:`restcomm.smpp.receipt`); MO parts (UDH 8/16-bit or SAR)
  are reassembled carrier-wide, with a timeout after which what arrived is delivered with
  ``missing`` set (error 30009). ``on_deliver`` is awaited *before* the deliver_sm_resp is sent: if
  it raises, the SMSC gets ``ESME_RX_T_APPN`` and re-delivers later, so nothing is lost when the
  store is down. Parts of an MO reassembled here are acknowledged once buffered in memory (lost
  on a crash); with ``mo_parts=True`` each part goes to ``on_deliver`` as a :class:`MoPart`
  instead, for a handler that stores it before it returns (restcomm.smpp.mo.MoParts).

Submit error codes (``SubmitOutcome.error_code``), for statuses that are not retried or whose
retries ran out: ESME_RTHROTTLED/ESME_RMSGQFUL -> 30001 (queue overflow), ESME_RINVDSTADR,
ESME_RINVDSTTON, ESME_RINVDSTNPI -> 30005, ESME_RX_R_APPN -> 30007, ESME_RDELIVERYFAILURE ->
30006 (as Restcomm), anything else -> 30008.

Public interface (what the pipeline calls)::

    carrier = Carrier(CarrierConfig.from_mapping(cfg), on_deliver)
    await carrier.start()
    outcome = await carrier.submit(OutboundMessage(source, destination, body))
    carrier.state()
    await carrier.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

from restcomm.encoding import (
    Encoding,
    EncodingError,
    Reassembled,
    Reassembler,
    UdhError,
    build_udh,
    decode_data_coding,
    segment,
)

from .pdu import ESM_UDHI, InboundMessage, Status, SubmitSm, split_user_data, status_name
from .receipt import DeliveryReceipt, parse_receipt
from .session import (
    Bound,
    Closed,
    DeliverReceived,
    EsmeSession,
    Event,
    SessionState,
    SubmitResult,
    Throttled,
    Timeout,
)

log = logging.getLogger("restcomm.smpp")

#: Statuses retried like a timeout (bounded by max_attempts), on the assumption they are transient.
TRANSIENT_STATUSES = frozenset({Status.ESME_RSYSERR, Status.ESME_RX_T_APPN})

_SUBMIT_ERROR_CODES: dict[int, int] = {
    Status.ESME_RTHROTTLED: 30001,
    Status.ESME_RMSGQFUL: 30001,
    Status.ESME_RINVDSTADR: 30005,
    Status.ESME_RINVDSTTON: 30005,
    Status.ESME_RINVDSTNPI: 30005,
    Status.ESME_RX_R_APPN: 30007,
    Status.ESME_RDELIVERYFAILURE: 30006,
}


def submit_error_code(status: int) -> int:
    """Twilio error code for a submit_sm refusal (see the module docstring)."""
    return _SUBMIT_ERROR_CODES.get(status, 30008)


def address_ton_npi(address: str) -> tuple[str, int, int]:
    """``(address as sent, TON, NPI)``: ``+`` international, digits unknown/E.164, else alphanumeric."""
    if address.startswith("+") and address[1:].isdigit():
        return address[1:], 1, 1
    if address.isdigit():
        return address, 0, 1
    if not address:
        return address, 0, 0
    return address, 5, 0


# --- configuration and public data types ----------------------------------------------------


@dataclass(frozen=True)
class CarrierConfig:
    """One carrier. The first ten fields are the operator-facing keys; the rest are tuning knobs.

    ``window`` is per bind; ``max_tps`` is for the whole carrier (all binds). ``prefixes`` is
    for the router that picks a carrier for a destination; the Carrier itself does not use it.
    Timeouts are in seconds.
    """

    name: str
    host: str
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    binds: int = 1
    window: int = 10
    max_tps: float = 0.0  # 0 means no limit
    prefixes: tuple[str, ...] = ()
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    bind_timeout: float = 10.0
    connect_timeout: float = 10.0
    unbind_timeout: float = 5.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    throttle_initial: float = 0.1
    throttle_max: float = 5.0
    max_attempts: int = 3
    submit_timeout: float = 120.0
    drain_timeout: float = 10.0
    max_queue: int = 100_000
    mo_reassembly_timeout: float = 60.0
    deliver_concurrency: int = 64

    def __post_init__(self) -> None:
        if self.binds < 1 or self.window < 1:
            raise ValueError("binds and window must be at least 1")
        if self.max_tps < 0:
            raise ValueError("max_tps must be >= 0")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CarrierConfig:
        """Build from a config file section; unknown keys are an error so typos do not go unnoticed."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown carrier settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "prefixes" in values:
            p = values["prefixes"]
            values["prefixes"] = (p,) if isinstance(p, str) else tuple(p)
        return cls(**values)


@dataclass(frozen=True)
class OutboundMessage:
    """What the pipeline asks us to send. ``encoding`` forces GSM-7 or UCS-2 (else automatic)."""

    source: str
    destination: str
    body: str
    encoding: Encoding | None = None
    registered_delivery: bool = True


OutcomeStatus = Literal["accepted", "rejected", "unavailable"]


@dataclass(frozen=True)
class SubmitOutcome:
    """The result of :meth:`Carrier.submit`.

    * ``accepted``: every segment got a message_id (in segment order), receipts will follow.
    * ``rejected``: the carrier refused a segment for good (``smpp_status``, ``error_code``);
      ``message_ids`` holds segments accepted before that, to correlate their receipts.
    * ``unavailable``: nothing was accepted and it is safe to try again later (no bind, timeouts,
      queue full, closing). The pipeline's outbox keeps the message.
    """

    status: OutcomeStatus
    message_ids: tuple[str, ...] = ()
    segments: int = 0
    encoding: Encoding | None = None
    smpp_status: int | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True)
class MoMessage:
    """An inbound (mobile-originated) message, already reassembled when it came in parts."""

    carrier: str
    source: str
    destination: str
    body: str
    alphabet: str
    segments: int = 1
    missing: tuple[int, ...] = ()
    #: TON of the addresses as received (1 = international: the number is E.164 without its "+").
    source_ton: int = 0
    destination_ton: int = 0

    @property
    def error_code(self) -> int | None:
        return 30009 if self.missing else None


@dataclass(frozen=True)
class MoPart:
    """One part of a concatenated MO, for an ``on_deliver`` that reassembles (``mo_parts=True``)."""

    carrier: str
    source: str
    destination: str
    body: str
    alphabet: str
    data_coding: int
    reference: int
    total: int
    seq: int
    source_ton: int = 0
    destination_ton: int = 0
    #: The carrier's ``mo_reassembly_timeout``: how long the message may wait for its other parts.
    timeout: float = 60.0


@dataclass(frozen=True)
class ReceiptReceived:
    carrier: str
    receipt: DeliveryReceipt
    source: str = ""
    destination: str = ""


Inbound = MoMessage | ReceiptReceived | MoPart
OnDeliver = Callable[[Inbound], Awaitable[None]]


@dataclass(frozen=True)
class CarrierState:
    name: str
    binds: int
    bound: int
    window: int
    window_in_use: int
    queued: int
    max_tps: float
    tps: float
    counters: dict[str, int]


# --- internals ------------------------------------------------------------------------------


class TokenBucket:
    """Rate limiter shared by a carrier's binds. ``reserve`` books a token and says how long to wait.

    Booking ahead (tokens may go negative) makes the waits exact under contention: each caller
    sleeps until its own token exists. ``burst`` is a tenth of a second of traffic, so a carrier
    that counts per wall-clock second never sees more than ``rate * 1.1``.
    """

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.burst
        self.last = now

    def reserve(self, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(eq=False)
class _Message:
    segments: int
    jobs: list[_Job] = field(default_factory=list)
    failed: bool = False


@dataclass(eq=False)
class _Job:
    pdu: SubmitSm
    future: asyncio.Future[tuple[str, int, str | None]]
    message: _Message
    attempts: int = 0
    in_flight: bool = False

    def resolve(self, kind: str, status: int, message_id: str | None) -> None:
        if not self.future.done():
            self.future.set_result((kind, status, message_id))


class _JobQueue:
    """FIFO with push-to-front (retries keep their place) and a single awaiting consumer."""

    def __init__(self) -> None:
        self._items: deque[_Job] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def put(self, job: _Job) -> None:
        self._items.append(job)
        self._wake()

    def put_front(self, job: _Job) -> None:
        self._items.appendleft(job)
        self._wake()

    def drain(self) -> list[_Job]:
        items = list(self._items)
        self._items.clear()
        return items

    async def get(self) -> _Job:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class _BindProtocol(asyncio.Protocol):
    """Feeds one TCP connection into one EsmeSession and drains its events into the carrier."""

    def __init__(self, carrier: Carrier, index: int) -> None:
        self.carrier = carrier
        self.index = index
        self.loop = asyncio.get_running_loop()
        cfg = carrier.config
        self.session = EsmeSession(
            cfg.system_id,
            cfg.password,
            system_type=cfg.system_type,
            window=cfg.window,
            enquire_link_interval=cfg.enquire_link_interval,
            response_timeout=cfg.response_timeout,
            bind_timeout=cfg.bind_timeout,
            unbind_timeout=cfg.unbind_timeout,
        )
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[str] = self.loop.create_future()
        self.was_bound = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._flush_scheduled = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.session.connection_made(self.loop.time())
        self.pump()

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, self.loop.time())
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.connection_lost(self.loop.time(), f"connection lost: {exc}" if exc else "connection closed")
        self.pump()

    # driving the session

    @property
    def bound(self) -> bool:
        return self.session.state is SessionState.BOUND

    def send(self, job: _Job) -> None:
        job.in_flight = True
        job.attempts += 1
        self.session.send_submit(job.pdu, self.loop.time(), job)
        self.schedule_flush()

    def schedule_flush(self) -> None:
        """Write on the next loop iteration, so every PDU queued in this one goes in one write
        (one syscall per deliver_sm_resp cost more than everything else at a few thousand/s)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.pump)

    def pump(self) -> None:
        self._flush_scheduled = False
        session = self.session
        data = session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        while (event := session.next_event()) is not None:
            self.carrier._on_event(self, event)
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        deadline = self.session.get_timer()
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        # Only move the timer earlier; a timer that fires early just re-arms itself.
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.handle_timer(self.loop.time())
        self.pump()

    def on_closed(self, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()
        if not self.closed.done():
            self.closed.set_result(reason)


class Carrier:
    """One carrier: its binds, its queue, its rate limit, and its inbound handling.

    * ``await start()`` launches the binds and returns at once; a carrier that is down at boot
      must not hold up the application. ``await wait_bound(n)`` is there for readiness checks.
    * ``await submit(message)`` never raises for carrier trouble; it returns a
      :class:`SubmitOutcome` (accepted / rejected / unavailable). Call it concurrently: the
      window, the TPS bucket and the retries are shared by all callers.
    * ``on_deliver(item)`` receives a :class:`MoMessage` or a :class:`ReceiptReceived`; the
      SMSC is acknowledged after it returns, and asked to re-deliver if it raises. Receipts are
      per segment: a 3-part message gets 3 receipts, one per id in ``SubmitOutcome.message_ids``.
    * ``state()`` is cheap and synchronous (for a status endpoint or metrics).
    * ``await close()`` drains, unbinds, and resolves anything left as ``unavailable``.
    """

    def __init__(
        self,
        config: CarrierConfig,
        on_deliver: OnDeliver,
        *,
        rng: random.Random | None = None,
        mo_parts: bool = False,
    ) -> None:
        self.config = config
        self._on_deliver = on_deliver
        self._mo_parts = mo_parts  # hand MO parts to on_deliver instead of reassembling them here
        self._rng = rng or random.Random()
        self._queue = _JobQueue()
        self._binds: list[_BindProtocol | None] = [None] * config.binds
        self._tasks: list[asyncio.Task[None]] = []
        self._deliver_tasks: set[asyncio.Task[None]] = set()
        self._deliver_sem: asyncio.Semaphore | None = None
        self._room: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._bucket: TokenBucket | None = None
        self._paused_until = 0.0
        self._throttle_backoff = 0.0
        self._closing = False
        self._started = False
        self._ref = self._rng.randrange(256)
        self._reassembler = Reassembler(config.mo_reassembly_timeout)
        self._mo_timer: asyncio.TimerHandle | None = None
        self._sent_times: deque[float] = deque()
        self._state_waiters: list[asyncio.Future[None]] = []
        self._live: set[_Message] = set()
        self._held: _Job | None = None  # taken from the queue, waiting for a pause, a bind or a token
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "submitted",
                "accepted",
                "rejected",
                "throttled",
                "throttle_pauses",
                "timeouts",
                "retries",
                "connects",
                "connect_failures",
                "bind_failures",
                "disconnects",
                "receipts",
                "mo",
                "mo_parts",
                "deliver_errors",
                "late_responses",
            ),
            0,
        )

    # --- public API -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting every bind; returns at once (see :meth:`wait_bound`)."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._deliver_sem = asyncio.Semaphore(self.config.deliver_concurrency)
        self._bucket = TokenBucket(self.config.max_tps, loop.time())
        for i in range(self.config.binds):
            self._tasks.append(asyncio.create_task(self._run_bind(i), name=f"smpp-{self.config.name}-bind{i}"))
        self._tasks.append(asyncio.create_task(self._dispatch(), name=f"smpp-{self.config.name}-dispatch"))

    async def wait_bound(self, count: int = 1) -> None:
        """Wait until at least ``count`` binds are bound; bound it with ``asyncio.wait_for``."""
        await self.wait_until(lambda state: state.bound >= count)

    async def wait_until(self, predicate: Callable[[CarrierState], bool]) -> None:
        """Wait until ``predicate(self.state())`` holds, re-checked on every bind, answer,
        timeout or disconnect; no polling. Bound it with ``asyncio.wait_for``."""
        while not predicate(self.state()):
            fut = asyncio.get_running_loop().create_future()
            self._state_waiters.append(fut)
            await fut

    def bound_count(self) -> int:
        return sum(1 for b in self._binds if b is not None and b.bound)

    async def submit(self, message: OutboundMessage) -> SubmitOutcome:
        """Send one message (all its segments); returns when every segment has an answer.

        Raises :class:`EncodingError` if ``message.encoding`` forces GSM-7 on text that needs UCS-2.
        """
        seg = segment(message.body, message.encoding)
        if self._closing or not self._started:
            return SubmitOutcome("unavailable", segments=seg.num_segments, encoding=seg.encoding,
                                 error_message="carrier is not running")
        if seg.num_segments > 255:
            return SubmitOutcome("rejected", segments=seg.num_segments, encoding=seg.encoding,
                                 error_code=30008, error_message="more than 255 segments")
        if len(self._queue) + seg.num_segments > self.config.max_queue:
            return SubmitOutcome("unavailable", segments=seg.num_segments, encoding=seg.encoding,
                                 error_code=30001, error_message="carrier queue full")
        pdus = self._build_pdus(message, seg.payloads(), seg.data_coding)
        loop = asyncio.get_running_loop()
        msg = _Message(len(pdus))
        for pdu in pdus:
            job = _Job(pdu, loop.create_future(), msg)
            msg.jobs.append(job)
            self._queue.put(job)
        self._live.add(msg)
        try:
            futures = [j.future for j in msg.jobs]
            await asyncio.wait(futures, timeout=self.config.submit_timeout)
        finally:
            self._live.discard(msg)
            if any(not j.future.done() for j in msg.jobs):
                msg.failed = True  # queued segments are skipped; late answers are ignored
                for j in msg.jobs:
                    j.resolve("unavailable", Status.ESME_RSYSERR, None)
        return self._outcome(msg, seg.encoding)

    def state(self) -> CarrierState:
        now = time.monotonic()
        while self._sent_times and self._sent_times[0] < now - 1.0:
            self._sent_times.popleft()
        binds = [b for b in self._binds if b is not None]
        return CarrierState(
            name=self.config.name,
            binds=self.config.binds,
            bound=sum(1 for b in binds if b.bound),
            window=self.config.window,
            window_in_use=sum(b.session.window_in_use for b in binds),
            queued=len(self._queue),
            max_tps=self.config.max_tps,
            tps=float(len(self._sent_times)),
            counters={**self.counters, "late_responses": sum(b.session.late_responses for b in binds)
                      + self.counters["late_responses"]},
        )

    async def close(self) -> None:
        """Stop taking messages, let queued and in-flight segments finish (up to ``drain_timeout``),
        then unbind every bind and wait for the unbind_resp (up to ``unbind_timeout``)."""
        if not self._started or self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_timeout
        while (
            (len(self._queue) or self._in_flight() or self._held is not None)
            and loop.time() < deadline
            and self.bound_count()
        ):
            fut = loop.create_future()
            self._state_waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
        assert self._stop is not None
        self._stop.set()
        for job in self._queue.drain():
            job.resolve("unavailable", Status.ESME_RSYSERR, None)
        closing: list[asyncio.Future[str]] = []
        for b in self._binds:
            if b is not None and b.session.state is not SessionState.CLOSED:
                b.session.unbind(loop.time())
                b.pump()
                closing.append(b.closed)
        if closing:
            await asyncio.wait(closing, timeout=self.config.unbind_timeout + 1.0)
        for b in self._binds:
            if b is not None and b.transport is not None:
                b.transport.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for msg in list(self._live):  # e.g. the segment the dispatcher held when it was cancelled
            msg.failed = True
            for j in msg.jobs:
                j.resolve("unavailable", Status.ESME_RSYSERR, None)
        if self._deliver_tasks:
            await asyncio.wait(self._deliver_tasks, timeout=self.config.unbind_timeout)
        if self._mo_timer is not None:
            self._mo_timer.cancel()

    # --- building submits --------------------------------------------------------------------

    def _build_pdus(self, message: OutboundMessage, payloads: list[bytes], data_coding: int) -> list[SubmitSm]:
        src, s_ton, s_npi = address_ton_npi(message.source)
        dst, d_ton, d_npi = address_ton_npi(message.destination)
        rd = 1 if message.registered_delivery else 0
        total = len(payloads)
        if total > 1:
            ref = self._ref
            self._ref = (self._ref + 1) & 0xFF
        pdus = []
        for i, payload in enumerate(payloads, start=1):
            pdus.append(
                SubmitSm(
                    source_addr_ton=s_ton,
                    source_addr_npi=s_npi,
                    source_addr=src,
                    dest_addr_ton=d_ton,
                    dest_addr_npi=d_npi,
                    destination_addr=dst,
                    esm_class=ESM_UDHI if total > 1 else 0,
                    registered_delivery=rd,
                    data_coding=data_coding,
                    short_message=(build_udh(ref, total, i) + payload) if total > 1 else payload,
                )
            )
        return pdus

    def _outcome(self, msg: _Message, encoding: Encoding) -> SubmitOutcome:
        results = [j.future.result() for j in msg.jobs]
        ids = tuple(mid for kind, _, mid in results if kind == "accepted" and mid is not None)
        rejected = next(((k, s) for k, s, _ in results if k == "rejected"), None)
        if rejected is None and len(ids) == len(results):
            return SubmitOutcome("accepted", ids, len(results), encoding)
        if rejected is not None:
            status = rejected[1]
            code = submit_error_code(status)
            return SubmitOutcome("rejected", ids, len(results), encoding, status, code,
                                 f"{status_name(status)}")
        if ids:
            # Some parts went out and others could not: retrying would duplicate the sent parts.
            return SubmitOutcome("rejected", ids, len(results), encoding, None, 30008,
                                 "only some segments were accepted before the carrier became unavailable")
        last = next((s for k, s, _ in results if k == "unavailable"), None)
        return SubmitOutcome("unavailable", (), len(results), encoding, last, None,
                             "carrier unavailable (no bind, timeouts or throttling beyond submit_timeout)")

    # --- dispatch ----------------------------------------------------------------------------

    def _in_flight(self) -> int:
        return sum(b.session.window_in_use for b in self._binds if b is not None)

    def _pick_bind(self) -> _BindProtocol | None:
        best: _BindProtocol | None = None
        room = 0
        for b in self._binds:
            if b is not None and (r := b.session.window_available) > room:
                best, room = b, r
        return best

    async def _dispatch(self) -> None:
        """The one task that moves segments from the queue to binds, honouring window and TPS."""
        loop = asyncio.get_running_loop()
        assert self._room is not None and self._bucket is not None
        while True:
            self._held = None
            if self._closing:
                self._wake()  # close() waits for the held segment to go out
            job = await self._queue.get()
            if job.message.failed or job.future.done():
                continue
            self._held = job
            delay = self._paused_until - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            bind = self._pick_bind()
            while bind is None:
                self._room.clear()
                await self._room.wait()
                bind = self._pick_bind()
            if job.message.failed or job.future.done():
                continue
            wait = self._bucket.reserve(loop.time())
            if wait > 0:
                await asyncio.sleep(wait)
                if not bind.bound or bind.session.window_available <= 0:
                    self._queue.put_front(job)
                    continue
            try:
                bind.send(job)
            except ValueError as exc:  # a field SMPP cannot carry: permanent for this message
                job.in_flight = False
                self._fail_job(job, "rejected", Status.ESME_RINVPARLEN)
                log.warning("carrier %s: cannot encode submit_sm: %s", self.config.name, exc)
                continue
            self.counters["submitted"] += 1
            self._sent_times.append(time.monotonic())
            if len(self._sent_times) > 100_000:
                self._sent_times.popleft()

    def _fail_job(self, job: _Job, kind: str, status: int) -> None:
        job.resolve(kind, status, None)
        if kind == "rejected":
            job.message.failed = True
            for other in job.message.jobs:
                if not other.in_flight:
                    other.resolve("skipped", status, None)

    def _retry(self, job: _Job, delay: float = 0.0) -> None:
        job.in_flight = False
        if job.message.failed or job.future.done() or self._closing and self._stop and self._stop.is_set():
            job.resolve("unavailable", Status.ESME_RSYSERR, None)
            return
        self.counters["retries"] += 1
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._queue.put_front, job)
        else:
            self._queue.put_front(job)

    def _wake(self) -> None:
        if self._room is not None:
            self._room.set()
        if self._state_waiters:
            waiters, self._state_waiters = self._state_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    # --- session events --------------------------------------------------------------------

    def _on_event(self, bind: _BindProtocol, event: Event) -> None:
        if isinstance(event, SubmitResult):
            job: _Job = event.tag
            if event.status == Status.ESME_ROK:
                job.in_flight = False
                self.counters["accepted"] += 1
                self._throttle_backoff = 0.0
                job.resolve("accepted", 0, event.message_id or "")
            elif event.status in TRANSIENT_STATUSES and job.attempts < self.config.max_attempts:
                self._retry(job, self._backoff(self.config.throttle_initial * 2**job.attempts))
            else:
                job.in_flight = False
                self.counters["rejected"] += 1
                self._fail_job(job, "rejected", event.status)
            self._wake()
        elif isinstance(event, Throttled):
            self.counters["throttled"] += 1
            now = asyncio.get_running_loop().time()
            if now >= self._paused_until:
                # Escalate once per pause: the other answers to segments already in flight say
                # the same thing and must not double the backoff a dozen times in one round trip.
                cfg = self.config
                self._throttle_backoff = min(cfg.throttle_max, max(cfg.throttle_initial, self._throttle_backoff * 2))
                self._paused_until = now + self._backoff(self._throttle_backoff)
                self.counters["throttle_pauses"] += 1
            self._retry(event.tag)
            self._wake()
        elif isinstance(event, Timeout):
            self.counters["timeouts"] += 1
            self._requeue_lost(event.tag)
            self._wake()
        elif isinstance(event, DeliverReceived):
            self._spawn_deliver(bind, event.pdu)
        elif isinstance(event, Bound):
            bind.was_bound = True
            log.info("carrier %s bind %d bound to %s", self.config.name, bind.index, event.system_id)
            self._wake()
        elif isinstance(event, Closed):
            if bind.was_bound and not self._closing:
                self.counters["disconnects"] += 1
            for job in event.unacknowledged:
                self._requeue_lost(job)
            self.counters["late_responses"] += bind.session.late_responses
            bind.session.late_responses = 0
            bind.on_closed(event.reason)
            self._wake()
        else:  # BindFailed
            self.counters["bind_failures"] += 1
            log.warning("carrier %s bind %d failed: %s", self.config.name, bind.index, event)
            self._wake()

    def _requeue_lost(self, job: _Job) -> None:
        if job.attempts >= self.config.max_attempts:
            job.in_flight = False
            job.resolve("unavailable", Status.ESME_RSYSERR, None)
        else:
            self._retry(job)

    def _backoff(self, base: float) -> float:
        return base * self._rng.uniform(0.8, 1.2)

    # --- bind lifecycle ----------------------------------------------------------------------

    async def _run_bind(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        assert self._stop is not None
        delay = cfg.reconnect_initial
        while not self._stop.is_set():
            proto: _BindProtocol | None = None

            def factory() -> _BindProtocol:
                # Registered here, not after create_connection returns: the bind_resp can be
                # processed before this coroutine resumes, and its wake-up must find the bind.
                nonlocal proto
                proto = self._binds[index] = _BindProtocol(self, index)
                return proto

            try:
                await asyncio.wait_for(loop.create_connection(factory, cfg.host, cfg.port), cfg.connect_timeout)
            except (OSError, TimeoutError) as exc:
                self.counters["connect_failures"] += 1
                log.warning("carrier %s bind %d: connect to %s:%d failed: %s", cfg.name, index, cfg.host, cfg.port, exc)
                if proto is not None and proto.transport is not None:
                    proto.transport.close()
                proto = None
            if proto is not None:
                self.counters["connects"] += 1
                await proto.closed
                if proto.was_bound:
                    delay = cfg.reconnect_initial
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._backoff(delay))
            delay = min(cfg.reconnect_max, delay * 2)

    # --- inbound -----------------------------------------------------------------------------

    def _spawn_deliver(self, bind: _BindProtocol, pdu: InboundMessage) -> None:
        task = asyncio.create_task(self._handle_deliver(bind, pdu))
        self._deliver_tasks.add(task)
        task.add_done_callback(self._deliver_tasks.discard)

    async def _handle_deliver(self, bind: _BindProtocol, pdu: InboundMessage) -> None:
        assert self._deliver_sem is not None
        status = Status.ESME_ROK
        async with self._deliver_sem:
            try:
                inbound = self._interpret(pdu)
                if inbound is not None:
                    await self._on_deliver(inbound)
            except (UdhError, EncodingError) as exc:
                # The PDU itself is broken: re-delivery would fail the same way.
                log.warning("carrier %s: unreadable deliver_sm: %s", self.config.name, exc)
                status = Status.ESME_RX_P_APPN
                self.counters["deliver_errors"] += 1
            except Exception:
                log.exception("carrier %s: on_deliver failed; asking the SMSC to re-deliver", self.config.name)
                status = Status.ESME_RX_T_APPN
                self.counters["deliver_errors"] += 1
        bind.session.acknowledge(pdu, status)
        bind.schedule_flush()

    def _interpret(self, pdu: InboundMessage) -> Inbound | None:
        if pdu.is_receipt:
            receipt = parse_receipt(pdu)
            if receipt is None:
                log.warning("carrier %s: receipt without a message id: %r", self.config.name, pdu.text_bytes[:80])
                return None
            self.counters["receipts"] += 1
            return ReceiptReceived(self.config.name, receipt, pdu.source_addr, pdu.destination_addr)
        data, concat = split_user_data(pdu)
        text, alphabet = decode_data_coding(data, pdu.data_coding)
        if concat is None or concat.total == 1:
            self.counters["mo"] += 1
            return MoMessage(self.config.name, pdu.source_addr, pdu.destination_addr, text, alphabet,
                             source_ton=pdu.source_addr_ton, destination_ton=pdu.dest_addr_ton)
        self.counters["mo_parts"] += 1
        if self._mo_parts:
            return MoPart(self.config.name, pdu.source_addr, pdu.destination_addr, text, alphabet, pdu.data_coding,
                          concat.ref, concat.total, concat.seq, pdu.source_addr_ton, pdu.dest_addr_ton,
                          self.config.mo_reassembly_timeout)
        key = (pdu.source_addr, pdu.destination_addr, concat.ref, concat.total, alphabet,
               pdu.source_addr_ton, pdu.dest_addr_ton)
        loop = asyncio.get_running_loop()
        whole = self._reassembler.add(key, concat.total, concat.seq, text, loop.time())
        self._arm_mo_timer()
        if whole is None:
            return None
        self.counters["mo"] += 1
        return self._mo_from(whole)

    def _mo_from(self, whole: Reassembled) -> MoMessage:
        source, destination, _, _, alphabet, source_ton, destination_ton = whole.key
        return MoMessage(self.config.name, str(source), str(destination), whole.text, str(alphabet),
                         whole.total, whole.missing, int(source_ton), int(destination_ton))

    def _arm_mo_timer(self) -> None:
        if self._mo_timer is not None:
            return
        deadline = self._reassembler.next_deadline()
        if deadline is not None:
            self._mo_timer = asyncio.get_running_loop().call_at(deadline, self._expire_mo)

    def _expire_mo(self) -> None:
        self._mo_timer = None
        for partial in self._reassembler.expire(asyncio.get_running_loop().time()):
            self.counters["mo"] += 1
            task = asyncio.create_task(self._deliver_partial(self._mo_from(partial)))
            self._deliver_tasks.add(task)
            task.add_done_callback(self._deliver_tasks.discard)
        self._arm_mo_timer()

    async def _deliver_partial(self, mo: MoMessage) -> None:
        try:
            await self._on_deliver(mo)
        except Exception:
            # The parts were acknowledged already; nothing can be re-delivered. Log and move on.
            log.exception("carrier %s: on_deliver failed for an incomplete MO", self.config.name)


def carriers_from_config(
    sections: Iterable[Mapping[str, Any]], on_deliver: OnDeliver
) -> list[Carrier]:
    """Convenience for the app: one Carrier per configured section."""
    return [Carrier(CarrierConfig.from_mapping(s), on_deliver) for s in sections]
