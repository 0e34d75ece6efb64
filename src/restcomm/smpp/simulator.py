"""An SMSC simulator: an asyncio SMPP 3.4 server for development, demos and the test suite.

Why ship one: no SMSC simulator runs on this platform from Debian/PyPI alone (SMPPSim needs
Docker Hub, Kannel's tools only drive Kannel, Jasmin needs RabbitMQ and Redis), and tests need
an SMSC that misbehaves *on purpose and on cue*. It reuses the project's own codec
(:mod:`restcomm.smpp.pdu`) and encoding layer, so the interop tests against ``smpp34`` are what
keep the two honest.

What it does:

* accepts bind_transmitter/receiver/transceiver, optionally checking system_id and password;
* answers submit_sm with a hex message_id and, when ``registered_delivery`` asks, sends a
  receipt (text form plus ``receipted_message_id``/``message_state`` TLVs) after
  ``receipt_delay`` seconds, ``DELIVRD`` or ``UNDELIV`` drawn from a seeded RNG in arrival order;
  a receipt whose bind has gone waits for the next bind of the same system_id;
* reassembles concatenated submits (UDH 8/16-bit, SAR, message_payload) into
  :attr:`SmscSimulator.messages`, so tests check what a handset would show;
* injects MO messages (:meth:`SmscSimulator.inject_mo`), optionally in parts (UDH or SAR);
* re-delivers a deliver_sm answered with ``ESME_RX_T_APPN`` (what real SMSCs do);
* misbehaves: throttle or queue-full every Nth submit, reject or generic_nack every Nth, drop
  (never answer) or delay the answer of every Nth, abort the TCP connection after N PDUs
  (once), or go mute (a hung SMSC whose TCP link stays up); can send receipts as data_sm.

Fault counters are global across connections, so "every 5th submit" means the 5th the
simulator saw, whichever bind carried it.

Run it: ``python -m restcomm.smpp.simulator --port 2775`` (``restcomm smsc-sim`` once wired).
With ``--control-port`` it also listens for a line protocol (see ``_control``): inject MO,
read counters and the messages received, change faults on the fly, wait for a counter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Literal, cast

from restcomm.encoding import (
    Encoding,
    Reassembler,
    UdhError,
    build_udh,
    build_udh16,
    decode_data_coding,
    segment,
)

from .pdu import (
    BIND_RESPONSES,
    ESM_DELIVERY_RECEIPT,
    ESM_UDHI,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
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
    Tag,
    Unbind,
    UnbindResp,
    split_user_data,
    tlv_cstr,
    tlv_int,
)
from .receipt import STAT_TO_STATE, format_receipt_text

log = logging.getLogger("restcomm.smpp.simulator")

@dataclass
class SimulatorConfig:
    """Behaviour knobs. Mutable on a running simulator: tests flip faults on and off mid-run."""

    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str | None = None  # None accepts any system_id
    password: str | None = None  # None accepts any password
    smsc_system_id: str = "RestcommSim"
    receipt_delay: float = 1.0  # negative disables receipts
    undelivered_ratio: float = 0.0
    seed: int = 0
    throttle_every: int = 0
    msgqful_every: int = 0
    reject_every: int = 0
    reject_status: int = Status.ESME_RSUBMITFAIL
    drop_every: int = 0
    delay_every: int = 0
    delay: float = 0.0
    disconnect_after: int = 0  # abort the connection carrying the Nth PDU received (once)
    nack_every: int = 0  # answer every Nth submit with generic_nack(nack_status)
    nack_status: int = Status.ESME_RSYSERR
    mute: bool = False  # read and ignore everything (a hung SMSC with the TCP link still up)
    receipts_as_data_sm: bool = False  # send receipts as data_sm, as Jasmin does by default
    redeliver_delay: float = 0.5
    redeliver_attempts: int = 5
    record: bool = True
    max_records: int = 100_000


@dataclass(frozen=True)
class SubmitRecord:
    """One submit_sm as received (only kept when ``record`` is on)."""

    system_id: str
    message_id: str | None
    status: int
    pdu: SubmitSm


@dataclass(frozen=True)
class SimMessage:
    """A message as the handset would show it, after reassembly."""

    system_id: str
    source: str
    destination: str
    text: str
    alphabet: str
    message_ids: tuple[str, ...]
    segments: int
    data_coding: int


@dataclass
class _PendingDeliver:
    pdu: InboundMessage
    attempts: int
    future: asyncio.Future[int] | None = None


class _Connection(asyncio.Protocol):
    def __init__(self, sim: SmscSimulator) -> None:
        self.sim = sim
        self.decoder = Decoder()
        self.transport: asyncio.Transport | None = None
        self.bound = False
        self.bind_type: type[Pdu] | None = None
        self.system_id = ""
        self._out: list[bytes] = []
        self._seq = 0
        self._flush_scheduled = False
        self.pending: dict[int, _PendingDeliver] = {}

    @property
    def can_receive(self) -> bool:
        return self.bound and self.bind_type is not BindTransmitter and not self.closed

    @property
    def closed(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.sim._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._connections.discard(self)
        self.bound = False
        for p in self.pending.values():
            if p.future is not None and not p.future.done():
                p.future.set_result(-1)
            elif p.future is None:
                self.sim._queue_receipt(self.system_id, p.pdu)  # re-send on the next bind
        self.pending.clear()
        self.sim._notify()

    def write(self, data: bytes) -> None:
        """Queue ``data``; it goes out in one write per loop iteration (receipts, timers and
        responses queued together share a syscall, which matters at thousands per second)."""
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def data_received(self, data: bytes) -> None:
        try:
            pdus = self.decoder.feed(data)
        except PduError as exc:
            log.warning("simulator: dropping connection after protocol error: %s", exc)
            if exc.sequence_number is not None:
                self.write(GenericNack(exc.sequence_number, Status.ESME_RINVCMDLEN).encode())
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        if self.sim.config.mute:
            self.sim.stats["ignored"] += len(pdus)
            self.sim._notify()
            return
        for pdu in pdus:
            if self.sim._count_pdu():
                # Misbehave: vanish mid-stream without answering, like a crashed SMSC.
                self._out.clear()
                if self.transport is not None:
                    self.transport.abort()
                return
            self.sim._handle(self, pdu)
            if self.closed:
                break
        self.flush()


class SmscSimulator:
    """The simulator. ``async with SmscSimulator(cfg) as sim:`` or ``start()``/``stop()``."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._rng = random.Random(self.config.seed)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._pdu_count = 0
        self._submit_count = 0
        self._next_id = 0
        self._pending_receipts: dict[str, list[InboundMessage]] = {}
        self._reassembler = Reassembler(timeout=300.0)
        self._part_ids: dict[tuple[object, ...], list[str]] = {}
        self.submits: deque[SubmitRecord] = deque(maxlen=self.config.max_records)
        self.messages: deque[SimMessage] = deque(maxlen=self.config.max_records)
        self.deliver_statuses: deque[int] = deque(maxlen=self.config.max_records)
        #: message_id -> wall-clock time its receipt was first sent (``record`` only; benchmarks).
        self.receipt_times: dict[str, float] = {}
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "binds",
                "bind_failures",
                "submits",
                "accepted",
                "throttled",
                "rejected",
                "dropped",
                "delayed",
                "delayed_sent",
                "disconnects",
                "receipts_sent",
                "receipts_acked",
                "receipts_queued",
                "mo_sent",
                "deliver_errors",
                "redeliveries",
                "enquire_links",
                "nacked",
                "ignored",
            ),
            0,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.config.host, self.config.port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        for c in list(self._connections):
            if c.transport is not None:
                c.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- waiting (tests) ------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; re-checked after every state change.

        Bound it with ``asyncio.wait_for`` in tests; there is no sleeping or polling.
        """
        while not predicate():
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((predicate, fut))
            await fut

    def _notify(self) -> None:
        if not self._waiters:
            return
        keep = []
        for pred, fut in self._waiters:
            if fut.done():
                continue
            if pred():
                fut.set_result(None)
            else:
                keep.append((pred, fut))
        self._waiters = keep

    # --- Python API -------------------------------------------------------------------------

    def bound_connections(self, system_id: str | None = None) -> list[_Connection]:
        return [
            c for c in self._connections if c.can_receive and (system_id is None or c.system_id == system_id)
        ]

    def disconnect_all(self) -> None:
        """Abort every connection now (tests of the ESME's reconnect)."""
        for c in list(self._connections):
            if c.transport is not None:
                c.transport.abort()

    async def inject_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        encoding: Encoding | None = None,
        concat: Literal["udh", "udh16", "sar", "payload"] = "udh",
        system_id: str | None = None,
        ref: int | None = None,
        order: list[int] | None = None,
    ) -> list[int]:
        """Send an MO to one bound receiver; returns the deliver_sm_resp status of each part.

        A text longer than one segment goes in parts by ``concat`` (UDH with 8- or 16-bit
        reference, SAR TLVs) or whole in ``message_payload``. ``order`` (1-based part numbers)
        sends parts out of order, or only some of them, to test reassembly and its timeout.
        """
        conns = self.bound_connections(system_id)
        if not conns:
            raise RuntimeError("no bound receiver to deliver an MO to")
        conn = conns[0]
        seg = segment(text, encoding)
        src, s_ton, s_npi = _ton_npi(source)
        dst, d_ton, d_npi = _ton_npi(destination)

        def base(short_message: bytes, esm: int = 0, tlvs: dict[int, bytes] | None = None) -> DeliverSm:
            return DeliverSm(
                source_addr_ton=s_ton, source_addr_npi=s_npi, source_addr=src,
                dest_addr_ton=d_ton, dest_addr_npi=d_npi, destination_addr=dst,
                esm_class=esm, data_coding=seg.data_coding, short_message=short_message,
                tlvs=tlvs or {},
            )

        payloads = seg.payloads()
        total = len(payloads)
        pdus: list[DeliverSm] = []
        reference = self._rng.randrange(0x10000) if ref is None else ref
        if total == 1:
            pdus.append(base(payloads[0]))
        elif concat == "payload":
            pdus.append(base(b"", tlvs={Tag.MESSAGE_PAYLOAD: b"".join(payloads)}))
        else:
            for i, p in enumerate(payloads, 1):
                if concat == "udh":
                    pdus.append(base(build_udh(reference & 0xFF, total, i) + p, ESM_UDHI))
                elif concat == "udh16":
                    pdus.append(base(build_udh16(reference, total, i) + p, ESM_UDHI))
                else:
                    pdus.append(base(p, 0, {
                        Tag.SAR_MSG_REF_NUM: tlv_int(reference, 2),
                        Tag.SAR_TOTAL_SEGMENTS: tlv_int(total, 1),
                        Tag.SAR_SEGMENT_SEQNUM: tlv_int(i, 1),
                    }))
        if order is not None:
            pdus = [pdus[i - 1] for i in order]
        loop = asyncio.get_running_loop()
        futures = []
        for pdu in pdus:
            fut: asyncio.Future[int] = loop.create_future()
            self._send_deliver(conn, pdu, fut)
            futures.append(fut)
        conn.flush()
        self.stats["mo_sent"] += 1
        return list(await asyncio.gather(*futures))

    # --- protocol handling --------------------------------------------------------------------

    def _count_pdu(self) -> bool:
        """Count a received PDU; True when the configured disconnect point is reached."""
        self._pdu_count += 1
        n = self.config.disconnect_after
        if n and self._pdu_count >= n:
            self.config.disconnect_after = 0  # one-shot
            self.stats["disconnects"] += 1
            return True
        return False

    def _handle(self, conn: _Connection, pdu: Pdu) -> None:
        seq = pdu.sequence_number
        if isinstance(pdu, SubmitSm):
            if not conn.bound or conn.bind_type is BindReceiver:
                conn.write(SubmitSmResp(seq, Status.ESME_RINVBNDSTS).encode())
            else:
                self._on_submit(conn, pdu)
        elif isinstance(pdu, DeliverSmResp | DataSmResp):
            self._on_deliver_resp(conn, pdu)
        elif isinstance(pdu, EnquireLink):
            self.stats["enquire_links"] += 1
            conn.write(EnquireLinkResp(seq).encode())
            self._notify()
        elif isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            self._on_bind(conn, pdu)
        elif isinstance(pdu, Unbind):
            conn.write(UnbindResp(seq).encode())
            conn.bound = False
            conn.flush()
            if conn.transport is not None:
                conn.transport.close()
        elif isinstance(pdu, EnquireLinkResp | UnbindResp | GenericNack):
            pass
        elif not pdu.is_response:
            conn.write(GenericNack(seq, Status.ESME_RINVCMDID).encode())

    def _on_bind(self, conn: _Connection, pdu: BindTransmitter | BindReceiver | BindTransceiver) -> None:
        cfg = self.config
        status = Status.ESME_ROK
        if conn.bound:
            status = Status.ESME_RALYBND
        elif cfg.system_id is not None and pdu.system_id != cfg.system_id:
            status = Status.ESME_RINVSYSID
        elif cfg.password is not None and pdu.password != cfg.password:
            status = Status.ESME_RINVPASWD
        resp = BIND_RESPONSES[pdu.command_id](pdu.sequence_number, status, cfg.smsc_system_id if status == 0 else "")
        conn.write(resp.encode())
        if status != Status.ESME_ROK:
            self.stats["bind_failures"] += 1
            return
        conn.bound = True
        conn.bind_type = type(pdu)
        conn.system_id = pdu.system_id
        self.stats["binds"] += 1
        if conn.can_receive:
            for receipt in self._pending_receipts.pop(conn.system_id, []):
                self._send_deliver(conn, receipt, None)
        self._notify()

    def _on_submit(self, conn: _Connection, pdu: SubmitSm) -> None:
        cfg = self.config
        self._submit_count += 1
        n = self._submit_count
        self.stats["submits"] += 1
        seq = pdu.sequence_number
        status: int = Status.ESME_ROK
        if cfg.throttle_every and n % cfg.throttle_every == 0:
            status = Status.ESME_RTHROTTLED
            self.stats["throttled"] += 1
        elif cfg.msgqful_every and n % cfg.msgqful_every == 0:
            status = Status.ESME_RMSGQFUL
            self.stats["throttled"] += 1
        elif cfg.reject_every and n % cfg.reject_every == 0:
            status = cfg.reject_status
            self.stats["rejected"] += 1
        elif cfg.nack_every and n % cfg.nack_every == 0:
            self.stats["nacked"] += 1
            conn.write(GenericNack(seq, cfg.nack_status).encode())
            if cfg.record:
                self.submits.append(SubmitRecord(conn.system_id, None, cfg.nack_status, pdu))
            self._notify()
            return
        elif cfg.drop_every and n % cfg.drop_every == 0:
            self.stats["dropped"] += 1
            if cfg.record:
                self.submits.append(SubmitRecord(conn.system_id, None, -1, pdu))
            self._notify()
            return
        if status != Status.ESME_ROK:
            conn.write(SubmitSmResp(seq, status).encode())
            if cfg.record:
                self.submits.append(SubmitRecord(conn.system_id, None, status, pdu))
            self._notify()
            return
        self._next_id += 1
        message_id = format(self._next_id, "08x")
        self.stats["accepted"] += 1
        resp = SubmitSmResp(seq, 0, message_id).encode()
        if cfg.delay_every and n % cfg.delay_every == 0 and cfg.delay > 0:
            self.stats["delayed"] += 1
            self._later(cfg.delay, self._late_write, conn, resp)
        else:
            conn.write(resp)
        if cfg.record:
            self.submits.append(SubmitRecord(conn.system_id, message_id, 0, pdu))
            self._record_message(conn, pdu, message_id)
        if pdu.registered_delivery & 0x01 and cfg.receipt_delay >= 0:
            stat = "UNDELIV" if self._rng.random() < cfg.undelivered_ratio else "DELIVRD"
            self._later(cfg.receipt_delay, self._send_receipt, conn, pdu, message_id, stat, datetime.now(UTC))
        self._notify()

    def _late_write(self, conn: _Connection, data: bytes) -> None:
        conn.write(data)
        self.stats["delayed_sent"] += 1
        self._notify()

    def _record_message(self, conn: _Connection, pdu: SubmitSm, message_id: str) -> None:
        try:
            data, concat = split_user_data(pdu)
        except UdhError:  # recorded as sent: the test looking at it will see the garbage
            data, concat = pdu.text_bytes, None
        text, alphabet = decode_data_coding(data, pdu.data_coding)
        if concat is None or concat.total == 1:
            self.messages.append(SimMessage(conn.system_id, pdu.source_addr, pdu.destination_addr, text,
                                            alphabet, (message_id,), 1, pdu.data_coding))
            return
        ref, total, part = concat.ref, concat.total, concat.seq
        key = (conn.system_id, pdu.source_addr, pdu.destination_addr, ref, total)
        ids = self._part_ids.setdefault(key, [""] * total)
        ids[part - 1] = message_id
        whole = self._reassembler.add(key, total, part, text, asyncio.get_running_loop().time())
        if whole is not None:
            del self._part_ids[key]
            self.messages.append(SimMessage(conn.system_id, pdu.source_addr, pdu.destination_addr, whole.text,
                                            alphabet, tuple(ids), total, pdu.data_coding))

    def _send_receipt(self, conn: _Connection, submit: SubmitSm, message_id: str, stat: str,
                      submitted: datetime) -> None:
        done = datetime.now(UTC)
        if self.config.record and len(self.receipt_times) < self.config.max_records:
            self.receipt_times.setdefault(message_id, time.time())
        text = format_receipt_text(message_id, stat, 0, submitted, done, "")
        tlvs: dict[int, bytes] = {
            Tag.RECEIPTED_MESSAGE_ID: tlv_cstr(message_id),
            Tag.MESSAGE_STATE: tlv_int(STAT_TO_STATE[stat], 1),
        }
        receipt: InboundMessage
        if self.config.receipts_as_data_sm:
            receipt = DataSm(
                source_addr_ton=submit.dest_addr_ton, source_addr_npi=submit.dest_addr_npi,
                source_addr=submit.destination_addr, dest_addr_ton=submit.source_addr_ton,
                dest_addr_npi=submit.source_addr_npi, destination_addr=submit.source_addr,
                esm_class=ESM_DELIVERY_RECEIPT, tlvs={**tlvs, Tag.MESSAGE_PAYLOAD: text.encode("latin-1")},
            )
        else:
            receipt = DeliverSm(
                source_addr_ton=submit.dest_addr_ton, source_addr_npi=submit.dest_addr_npi,
                source_addr=submit.destination_addr, dest_addr_ton=submit.source_addr_ton,
                dest_addr_npi=submit.source_addr_npi, destination_addr=submit.source_addr,
                esm_class=ESM_DELIVERY_RECEIPT, short_message=text.encode("latin-1"), tlvs=tlvs,
            )
        target = conn if conn.can_receive else next(iter(self.bound_connections(conn.system_id)), None)
        if target is None:
            self._queue_receipt(conn.system_id, receipt)
            return
        self._send_deliver(target, receipt, None)

    def _queue_receipt(self, system_id: str, receipt: InboundMessage) -> None:
        self._pending_receipts.setdefault(system_id, []).append(receipt)
        self.stats["receipts_queued"] += 1
        self._notify()

    def _send_deliver(self, conn: _Connection, pdu: InboundMessage, future: asyncio.Future[int] | None,
                      attempts: int = 1) -> None:
        seq = conn.next_seq()
        pdu.sequence_number = seq
        conn.pending[seq] = _PendingDeliver(pdu, attempts, future)
        if future is None:
            self.stats["receipts_sent"] += 1
        conn.write(pdu.encode())

    def _on_deliver_resp(self, conn: _Connection, resp: DeliverSmResp | DataSmResp) -> None:
        pending = conn.pending.pop(resp.sequence_number, None)
        if pending is None:
            return
        status = resp.command_status
        if self.config.record:
            self.deliver_statuses.append(status)
        if status != Status.ESME_ROK:
            self.stats["deliver_errors"] += 1
        if status == Status.ESME_RX_T_APPN and pending.attempts < self.config.redeliver_attempts:
            self.stats["redeliveries"] += 1
            self._later(self.config.redeliver_delay, self._redeliver, conn, pending)
        elif pending.future is not None:
            if not pending.future.done():
                pending.future.set_result(status)
        elif status == Status.ESME_ROK:
            self.stats["receipts_acked"] += 1
        self._notify()

    def _redeliver(self, conn: _Connection, pending: _PendingDeliver) -> None:
        target = conn if conn.can_receive else next(iter(self.bound_connections(conn.system_id)), None)
        if target is None:
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(-1)
            else:
                self._queue_receipt(conn.system_id, pending.pdu)
            return
        self._send_deliver(target, pending.pdu, pending.future, pending.attempts + 1)

    def _later(self, delay: float, fn: Callable[..., None], *args: object) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def run() -> None:
            assert handle is not None
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(delay, run)
        self._timers.add(handle)

    def snapshot(self) -> dict[str, int]:
        return {**self.stats, "connections": len(self._connections),
                "pending_receipts": sum(len(v) for v in self._pending_receipts.values())}


def _ton_npi(address: str) -> tuple[str, int, int]:
    if address.startswith("+"):
        return address[1:], 1, 1
    if address.isdigit():
        return address, 0, 1
    return address, 5, 0


# --- control line protocol -------------------------------------------------------------------


async def _control(sim: SmscSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One line in, one line out:

    * ``MO <from> <to> <text>`` -> ``OK <statuses>``: inject an MO (parts by UDH when long);
    * ``MOX <json>`` -> ``OK <statuses>``: the same with every :meth:`SmscSimulator.inject_mo`
      option, e.g. ``{"source": "+1555", "destination": "1666", "text": "...", "concat": "sar",
      "encoding": "UCS-2", "order": [1, 3], "ref": 7}``;
    * ``STATS`` -> JSON counters;
    * ``MESSAGES`` -> JSON list of the messages as a handset shows them (kept unless ``--no-record``);
    * ``RECEIPTS`` -> JSON ``{message_id: unix time the receipt was first sent}`` (the same);
    * ``SET <setting> <json value>`` -> ``OK``: change a :class:`SimulatorConfig` knob on the
      fly, e.g. ``SET throttle_every 5`` or ``SET mute true``;
    * ``WAIT <counter> <n> [seconds]`` -> ``OK <stats>`` once ``STATS[counter] >= n``, or
      ``ERR timeout <stats>`` (an event wait, no polling: scripts and tests need no sleeps);
    * ``DISCONNECT`` -> ``OK``: abort every connection now;
    * ``HELP`` -> the commands, one line;
    * ``QUIT`` closes the control connection.

    ``restcomm smsc-sim inject`` (:func:`inject_main`) is a client of this port that returns.
    """
    try:
        while line := await reader.readline():
            cmd, _, rest = line.decode("utf-8", "replace").strip().partition(" ")
            cmd = cmd.upper()
            reply: str | None = None
            if cmd in ("MO", "MOX"):
                try:
                    if cmd == "MO":
                        parts = rest.split(" ", 2)
                        if len(parts) < 3:
                            raise ValueError("usage: MO <from> <to> <text>")
                        kwargs: dict[str, object] = {"source": parts[0], "destination": parts[1], "text": parts[2]}
                    else:
                        kwargs = json.loads(rest)
                        if not isinstance(kwargs, dict):
                            raise ValueError("MOX takes a JSON object")
                    statuses = await asyncio.wait_for(sim.inject_mo(**kwargs), 10)  # type: ignore[arg-type]
                    reply = f"OK {','.join(str(s) for s in statuses)}"
                except (RuntimeError, TimeoutError, ValueError, TypeError) as exc:
                    reply = f"ERR {exc or 'timeout'}"
            elif cmd == "STATS":
                reply = json.dumps(sim.snapshot())
            elif cmd in ("MESSAGES", "RECEIPTS") and not sim.config.record:
                reply = "ERR nothing is recorded: the simulator was started with --no-record"
            elif cmd == "HELP":
                reply = CONTROL_HELP
            elif cmd == "MESSAGES":
                reply = json.dumps([
                    {"system_id": m.system_id, "source": m.source, "destination": m.destination, "text": m.text,
                     "alphabet": m.alphabet, "message_ids": list(m.message_ids), "segments": m.segments,
                     "data_coding": m.data_coding}
                    for m in sim.messages
                ])
            elif cmd == "RECEIPTS":
                reply = json.dumps(sim.receipt_times)
            elif cmd == "SET":
                reply = _set(sim, rest)
            elif cmd == "WAIT":
                reply = await _wait(sim, rest)
            elif cmd == "DISCONNECT":
                sim.disconnect_all()
                reply = "OK"
            elif cmd == "QUIT":
                break
            elif cmd:
                reply = f"ERR unknown command {cmd!r}; {CONTROL_HELP}"
            if reply is not None:
                writer.write(reply.encode() + b"\n")
                await writer.drain()
    finally:
        writer.close()


CONTROL_HELP = ("commands: MO <from> <to> <text> | MOX <json> | STATS | MESSAGES | RECEIPTS | "
                "SET <setting> <json> | WAIT <counter> <n> [seconds] | DISCONNECT | HELP | QUIT")


def _set(sim: SmscSimulator, rest: str) -> str:
    name, _, raw = rest.strip().partition(" ")
    known = {f.name: f for f in fields(SimulatorConfig)}
    if name not in known or name in ("host", "port"):
        return f"ERR no setting {name!r}"
    try:
        value = json.loads(raw)
    except ValueError:
        return "ERR the value must be JSON (5, 0.5, true, null, \"text\")"
    setattr(sim.config, name, value)
    sim._notify()
    return "OK"


async def _wait(sim: SmscSimulator, rest: str) -> str:
    parts = rest.split()
    if len(parts) not in (2, 3) or parts[0] not in sim.stats:
        return "ERR usage: WAIT <counter> <n> [seconds]"
    key, target = parts[0], int(parts[1])
    timeout = float(parts[2]) if len(parts) == 3 else 30.0
    try:
        await asyncio.wait_for(sim.wait_for(lambda: sim.stats[key] >= target), timeout)
    except TimeoutError:
        return f"ERR timeout {json.dumps(sim.snapshot())}"
    return f"OK {json.dumps(sim.snapshot())}"


# --- CLI -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restcomm smsc-sim", description="SMPP 3.4 SMSC simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2775)
    p.add_argument("--system-id", default=None, help="accept only this system_id (default: any)")
    p.add_argument("--password", default=None, help="accept only this password (default: any)")
    p.add_argument("--receipt-delay", type=float, default=1.0, help="seconds; negative disables receipts")
    p.add_argument("--undelivered-ratio", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--throttle-every", type=int, default=0, help="answer every Nth submit with ESME_RTHROTTLED")
    p.add_argument("--msgqful-every", type=int, default=0, help="answer every Nth submit with ESME_RMSGQFUL")
    p.add_argument("--reject-every", type=int, default=0, help="answer every Nth submit with ESME_RSUBMITFAIL")
    p.add_argument("--drop-every", type=int, default=0, help="never answer every Nth submit")
    p.add_argument("--nack-every", type=int, default=0, help="answer every Nth submit with generic_nack")
    p.add_argument("--receipts-as-data-sm", action="store_true", help="send receipts as data_sm")
    p.add_argument("--delay-every", type=int, default=0, help="answer every Nth submit after --delay seconds")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--disconnect-after", type=int, default=0, help="abort the connection at the Nth PDU (once)")
    p.add_argument("--control-port", type=int, default=None,
                   help="line protocol: MO, MOX, STATS, MESSAGES, RECEIPTS, SET, WAIT, DISCONNECT, HELP, QUIT "
                   "(`restcomm smsc-sim inject` is its client)")
    record = p.add_mutually_exclusive_group()
    record.add_argument("--record", action="store_true",
                        help="keep received messages in memory (the default with --control-port)")
    record.add_argument("--no-record", action="store_true", help="keep nothing (MESSAGES answers ERR)")
    p.add_argument("--max-records", type=int, default=10_000, help="messages kept, oldest dropped first")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = SimulatorConfig(
        host=args.host, port=args.port, system_id=args.system_id, password=args.password,
        receipt_delay=args.receipt_delay, undelivered_ratio=args.undelivered_ratio, seed=args.seed,
        throttle_every=args.throttle_every, msgqful_every=args.msgqful_every, reject_every=args.reject_every,
        drop_every=args.drop_every, delay_every=args.delay_every, delay=args.delay,
        disconnect_after=args.disconnect_after, nack_every=args.nack_every, max_records=args.max_records,
        record=not args.no_record and (args.record or args.control_port is not None),
        receipts_as_data_sm=args.receipts_as_data_sm,
    )

    async def run() -> None:
        sim = SmscSimulator(cfg)
        await sim.start()
        control = None
        if args.control_port is not None:
            control = await asyncio.start_server(lambda r, w: _control(sim, r, w), args.host, args.control_port)
        line = f"smsc-sim listening on {args.host}:{sim.port}"
        if control is not None:
            port = control.sockets[0].getsockname()[1]
            line += f", control port {args.host}:{port} (HELP lists its commands; `restcomm smsc-sim inject` sends)"
        print(line, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if control is not None:
            control.close()
        await sim.stop()
        print(json.dumps(sim.snapshot()), flush=True)

    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(run())
            return 0
    asyncio.run(run())
    return 0


# --- `restcomm smsc-sim inject`: a control-port client that returns ------------------------------


def build_inject_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="restcomm smsc-sim inject",
        description="Send a message from a handset through a running simulator (its --control-port) "
                    "and, with --wait-reply, print the first message the simulator receives for that "
                    "handset afterwards (an application's reply).")
    p.add_argument("source", metavar="FROM", help="the handset's number, e.g. +447700900001")
    p.add_argument("destination", metavar="TO", help="the number it sends to (one of yours)")
    p.add_argument("text", metavar="TEXT", nargs="+", help="the message")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--control-port", type=int, default=2776)
    p.add_argument("--wait-reply", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for a message to FROM and print it (0: do not wait)")
    return p


def inject_main(argv: list[str] | None = None) -> int:
    """Exit 0 when the simulator delivered the message (and a reply came, if waited for), else 1."""
    args = build_inject_parser().parse_args(argv)
    text = " ".join(args.text)
    try:
        return asyncio.run(_inject(args.host, args.control_port, args.source, args.destination, text,
                                   args.wait_reply))
    except OSError as exc:
        print(f"smsc-sim inject: no simulator control port at {args.host}:{args.control_port} ({exc})",
              file=sys.stderr)
        return 1


async def _inject(host: str, port: int, source: str, destination: str, text: str, wait: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)

    async def ask(line: str) -> str:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await reader.readline()).decode().strip()

    try:
        recorded = await ask("MESSAGES") if wait > 0 else "[]"
        if recorded.startswith("ERR"):
            print(f"smsc-sim inject: cannot wait for a reply: {recorded[4:]}", file=sys.stderr)
            return 1
        before = len(json.loads(recorded))
        submits = json.loads(await ask("STATS"))["submits"] if wait > 0 else 0
        answer = await ask(f"MO {source} {destination} {text}")
        if not answer.startswith("OK") or any(s != "0" for s in answer[3:].split(",") if s):
            print(f"smsc-sim inject: the server did not take the message ({answer})", file=sys.stderr)
            return 1
        print(f"delivered {source} -> {destination}: {text}", flush=True)
        if wait <= 0:
            return 0
        deadline = asyncio.get_running_loop().time() + wait
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            submits += 1  # the next message the simulator receives, whoever it is for
            if not (await ask(f"WAIT submits {submits} {left:.3f}")).startswith("OK"):
                break
            messages = json.loads(await ask("MESSAGES"))[before:]
            replies = [m for m in messages if m["destination"].lstrip("+") == source.lstrip("+")]
            if replies:
                print(f"reply {replies[0]['source']} -> {replies[0]['destination']}: {replies[0]['text']}")
                return 0
        print(f"smsc-sim inject: no message to {source} within {wait:g} s", file=sys.stderr)
        return 1
    finally:
        writer.write(b"QUIT\n")
        writer.close()


if __name__ == "__main__":
    sys.exit(main())
