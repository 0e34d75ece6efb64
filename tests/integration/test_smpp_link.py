"""The ESME (Carrier) against SMSCs over real TCP on 127.0.0.1: our simulator, and smpp34 as a
second, independent implementation run in a subprocess.

No sleeps: every wait is on an event (simulator state, a delivered item, a bind) bounded by
asyncio.wait_for. Timeouts in the configs are short so the failure paths run in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from restcomm.encoding import UCS2, decode_gsm7, parse_udh
from restcomm.smpp.esme import (
    Carrier,
    CarrierConfig,
    Inbound,
    MoMessage,
    OutboundMessage,
    ReceiptReceived,
)
from restcomm.smpp.pdu import Status
from restcomm.smpp.simulator import SimulatorConfig, SmscSimulator
from tests.support.ports import free_port

PEERS = Path(__file__).resolve().parent.parent / "peers"
WAIT = 10.0  # upper bound for any single wait; tests normally finish in milliseconds


class Inbox:
    """Collects on_deliver items and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.items: list[Inbound] = []
        self._changed = asyncio.Event()
        self.fail_next = 0

    async def __call__(self, item: Inbound) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("store unavailable")
        self.items.append(item)
        self._changed.set()

    @property
    def receipts(self) -> list[ReceiptReceived]:
        return [i for i in self.items if isinstance(i, ReceiptReceived)]

    @property
    def mos(self) -> list[MoMessage]:
        return [i for i in self.items if isinstance(i, MoMessage)]

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), WAIT)


@contextlib.asynccontextmanager
async def simulator(**kw: Any) -> AsyncIterator[SmscSimulator]:
    cfg = SimulatorConfig(port=0, receipt_delay=0.0, **kw)
    async with SmscSimulator(cfg) as sim:
        yield sim


@contextlib.asynccontextmanager
async def carrier(port: int, inbox: Inbox, *, wait_binds: int | None = None, **kw: Any) -> AsyncIterator[Carrier]:
    settings: dict[str, Any] = dict(
        name="test", host="127.0.0.1", port=port, system_id="esme", password="pw", binds=2, window=10,
        response_timeout=2.0, reconnect_initial=0.02, reconnect_max=0.2, throttle_initial=0.005,
        throttle_max=0.05, submit_timeout=WAIT, drain_timeout=2.0, unbind_timeout=1.0,
    )
    settings.update(kw)
    c = Carrier(CarrierConfig(**settings), inbox)
    await c.start()
    try:
        n = settings["binds"] if wait_binds is None else wait_binds
        if n:
            await asyncio.wait_for(c.wait_bound(n), WAIT)
        yield c
    finally:
        await asyncio.wait_for(c.close(), WAIT)


async def until(sim: SmscSimulator, predicate: Callable[[], bool]) -> None:
    await asyncio.wait_for(sim.wait_for(predicate), WAIT)


# --- MT and receipts -------------------------------------------------------------------------


async def test_mt_with_receipts_mixed_outcomes() -> None:
    inbox = Inbox()
    async with simulator(undelivered_ratio=0.5, seed=7) as sim, carrier(sim.port, inbox) as c:
        outcomes = await asyncio.gather(
            *(c.submit(OutboundMessage("+15550001111", f"+1555000{i:04d}", f"msg {i}")) for i in range(40))
        )
        assert all(o.ok and o.segments == 1 and len(o.message_ids) == 1 for o in outcomes)
        ids = {o.message_ids[0] for o in outcomes}
        assert len(ids) == 40
        await inbox.wait(lambda: len(inbox.receipts) == 40)
        assert {r.receipt.message_id for r in inbox.receipts} == ids
        statuses = {r.receipt.status for r in inbox.receipts}
        assert statuses == {"delivered", "undelivered"}  # seed 7 gives a mix
        undelivered = [r.receipt for r in inbox.receipts if r.receipt.status == "undelivered"]
        assert all(r.error_code == 30003 for r in undelivered)
        await until(sim, lambda: sim.stats["receipts_acked"] == 40)
        state = c.state()
        assert state.bound == 2 and state.counters["accepted"] == 40 and state.counters["receipts"] == 40
        assert state.window_in_use == 0


async def test_submit_fields_on_the_wire() -> None:
    inbox = Inbox()
    async with simulator() as sim, carrier(sim.port, inbox) as c:
        await c.submit(OutboundMessage("ACME", "+447700900123", "hi"))
        await c.submit(OutboundMessage("15550001111", "5551234", "hi", registered_delivery=False))
        await until(sim, lambda: len(sim.submits) == 2)
        a, b = (r.pdu for r in sim.submits)
        assert (a.source_addr, a.source_addr_ton, a.source_addr_npi) == ("ACME", 5, 0)
        assert (a.destination_addr, a.dest_addr_ton, a.dest_addr_npi) == ("447700900123", 1, 1)
        assert (a.esm_class, a.data_coding, a.registered_delivery) == (0, 0, 1)
        assert (b.source_addr_ton, b.source_addr_npi, b.dest_addr_ton, b.registered_delivery) == (0, 1, 0, 0)


async def test_long_gsm7_and_ucs2_are_reassembled_at_the_smsc() -> None:
    gsm = "Price: 10€ [promo] {code}~ " * 20  # extension chars: 2 septets each
    ucs = "Привет 😀 " * 30  # surrogate pairs
    inbox = Inbox()
    async with simulator() as sim, carrier(sim.port, inbox) as c:
        o1, o2 = await asyncio.gather(
            c.submit(OutboundMessage("+15550001111", "+15550002222", gsm)),
            c.submit(OutboundMessage("+15550001111", "+15550003333", ucs)),
        )
        assert o1.ok and o1.encoding == "GSM-7" and o1.segments == len(o1.message_ids) > 1
        assert o2.ok and o2.encoding == UCS2 and o2.segments == len(o2.message_ids) > 1
        await until(sim, lambda: len(sim.messages) == 2)
        by_dst = {m.destination: m for m in sim.messages}
        m1, m2 = by_dst["15550002222"], by_dst["15550003333"]
        assert (m1.text, m1.segments, m1.data_coding) == (gsm, o1.segments, 0)
        assert (m2.text, m2.segments, m2.data_coding) == (ucs, o2.segments, 8)
        assert set(m1.message_ids) == set(o1.message_ids)
        for rec in sim.submits:
            udh, payload = parse_udh(rec.pdu.short_message)
            assert rec.pdu.esm_class == 0x40 and udh.concat is not None
            if rec.pdu.data_coding == 0:
                assert len(payload) <= 153 and payload[-1:] != b"\x1b"
                decode_gsm7(payload)  # strict: a split escape pair would still decode, checked above
            else:
                assert len(payload) <= 134
                payload.decode("utf-16-be")  # strict: raises on a split surrogate pair
        await inbox.wait(lambda: len(inbox.receipts) == o1.segments + o2.segments)


# --- flow control and failures ------------------------------------------------------------


async def test_throttling_is_retried_not_failed() -> None:
    inbox = Inbox()
    async with simulator(throttle_every=4, msgqful_every=7) as sim, carrier(sim.port, inbox) as c:
        outcomes = await asyncio.gather(*(c.submit(OutboundMessage("+1555", "+1666", f"t{i}")) for i in range(60)))
        assert all(o.ok for o in outcomes)
        assert sim.stats["throttled"] > 10
        assert c.state().counters["throttled"] == sim.stats["throttled"]
        assert sim.stats["accepted"] == 60


async def test_a_throttled_burst_pauses_once_not_per_answer() -> None:
    inbox = Inbox()
    async with simulator(throttle_every=1) as sim, carrier(
        sim.port, inbox, throttle_initial=0.01, throttle_max=10.0, binds=1, window=20
    ) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tasks = [asyncio.create_task(c.submit(OutboundMessage("+1555", "+1666", f"p{i}"))) for i in range(20)]
        await until(sim, lambda: sim.stats["throttled"] >= 20)  # the whole window came back throttled
        sim.config.throttle_every = 0
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert all(o.ok for o in outcomes)
        # one pause of ~0.01-0.02 s per round of answers; escalating per answer would reach seconds
        assert loop.time() - t0 < 1.0
        assert c.state().counters["throttle_pauses"] <= 3


async def test_generic_nack_transient_is_retried_permanent_is_not() -> None:
    inbox = Inbox()
    async with simulator(nack_every=3) as sim, carrier(sim.port, inbox) as c:
        outcomes = await asyncio.gather(*(c.submit(OutboundMessage("+1555", "+1666", f"n{i}")) for i in range(12)))
        assert all(o.ok for o in outcomes)  # generic_nack(ESME_RSYSERR): retried
        assert sim.stats["nacked"] >= 4 and c.state().counters["retries"] >= sim.stats["nacked"]
        sim.config.nack_every, sim.config.nack_status = 1, Status.ESME_RINVCMDID
        o = await c.submit(OutboundMessage("+1555", "+1666", "bad"))
        assert (o.status, o.smpp_status, o.error_code) == ("rejected", Status.ESME_RINVCMDID, 30008)


async def test_receipts_sent_as_data_sm() -> None:
    inbox = Inbox()
    async with simulator(receipts_as_data_sm=True, undelivered_ratio=1.0) as sim, carrier(sim.port, inbox) as c:
        o = await c.submit(OutboundMessage("+1555", "+1666", "via data_sm"))
        await inbox.wait(lambda: len(inbox.receipts) == 1)
        r = inbox.receipts[0].receipt
        assert (r.message_id, r.status, r.error_code) == (o.message_ids[0], "undelivered", 30003)
        await until(sim, lambda: sim.stats["receipts_acked"] == 1)


async def test_hung_smsc_is_detected_by_enquire_link_and_replaced() -> None:
    inbox = Inbox()
    async with simulator() as sim, carrier(
        sim.port, inbox, binds=1, enquire_link_interval=0.05, response_timeout=0.1
    ) as c:
        sim.config.mute = True  # TCP stays up, nothing is answered any more
        await until(sim, lambda: sim.stats["ignored"] >= 1)  # the probe went unanswered
        sim.config.mute = False
        await asyncio.wait_for(c.wait_until(lambda st: st.counters["disconnects"] == 1 and st.bound == 1), WAIT)
        assert c.state().counters["connects"] == 2
        assert (await c.submit(OutboundMessage("+1555", "+1666", "after"))).ok


async def test_permanent_rejection() -> None:
    inbox = Inbox()
    async with simulator(reject_every=1) as sim, carrier(sim.port, inbox) as c:
        o = await c.submit(OutboundMessage("+1555", "+1666", "no"))
        assert (o.status, o.smpp_status, o.error_code, o.message_ids) == (
            "rejected", Status.ESME_RSUBMITFAIL, 30008, ())
        # second segment refused: the first one's id is reported for its receipt
        sim.config.reject_every = 0
        o = await c.submit(OutboundMessage("+1555", "+1666", "x"))
        assert o.ok
        sim.config.reject_every = 2  # the submit counter is now 2: parts 3 and 4 → 4th refused
        o = await c.submit(OutboundMessage("+1555", "+1666", "y" * 300, ))
        assert o.status == "rejected" and len(o.message_ids) == 1


async def test_response_timeouts_are_retried() -> None:
    inbox = Inbox()
    async with simulator(drop_every=3) as sim, carrier(sim.port, inbox, response_timeout=0.15) as c:
        outcomes = await asyncio.gather(*(c.submit(OutboundMessage("+1555", "+1666", f"d{i}")) for i in range(12)))
        assert all(o.ok for o in outcomes)
        assert c.state().counters["timeouts"] == sim.stats["dropped"] > 0


async def test_response_timeouts_exhausted_give_unavailable() -> None:
    inbox = Inbox()
    async with simulator(drop_every=1) as sim, carrier(sim.port, inbox, response_timeout=0.05, max_attempts=2) as c:
        o = await c.submit(OutboundMessage("+1555", "+1666", "lost"))
        assert o.status == "unavailable" and o.message_ids == ()
        assert sim.stats["dropped"] == 2


async def test_late_response_after_timeout_is_ignored() -> None:
    inbox = Inbox()
    async with simulator(delay_every=1, delay=0.2) as sim, carrier(
        sim.port, inbox, response_timeout=0.05, max_attempts=1, binds=1
    ) as c:
        o = await c.submit(OutboundMessage("+1555", "+1666", "slow"))
        assert o.status == "unavailable"
        sim.config.delay_every = 0
        await until(sim, lambda: sim.stats["delayed_sent"] == 1)  # the slow one was accepted after all
        # one bind: this answer comes after the late one on the same TCP stream
        o = await c.submit(OutboundMessage("+1555", "+1666", "fast"))
        assert o.ok
        assert c.state().counters["late_responses"] == 1


async def test_disconnect_mid_burst_then_reconnect() -> None:
    inbox = Inbox()
    async with simulator(disconnect_after=30) as sim, carrier(sim.port, inbox) as c:
        outcomes = await asyncio.gather(*(c.submit(OutboundMessage("+1555", "+1666", f"b{i}")) for i in range(150)))
        assert all(o.ok for o in outcomes)
        await asyncio.wait_for(c.wait_bound(2), WAIT)
        state = c.state()
        assert sim.stats["disconnects"] == 1 and state.counters["disconnects"] == 1
        assert state.counters["connects"] == 3
        # receipts for messages accepted before the drop still arrive (on the new bind)
        await inbox.wait(lambda: len({r.receipt.message_id for r in inbox.receipts}) >= sim.stats["accepted"])


async def test_max_tps_is_honoured() -> None:
    inbox = Inbox()
    async with simulator() as sim, carrier(sim.port, inbox, max_tps=100) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        outcomes = await asyncio.gather(*(c.submit(OutboundMessage("+1555", "+1666", f"r{i}")) for i in range(40)))
        elapsed = loop.time() - t0
        assert all(o.ok for o in outcomes)
        # 10-token burst, then 100/s: the last of 40 cannot go before 0.3 s
        assert elapsed >= 0.29


async def test_keepalive_enquire_link() -> None:
    inbox = Inbox()
    async with simulator() as sim, carrier(sim.port, inbox, enquire_link_interval=0.05, binds=1):
        await until(sim, lambda: sim.stats["enquire_links"] >= 3)


async def test_bind_refused_then_unavailable() -> None:
    inbox = Inbox()
    async with simulator(system_id="esme", password="right") as sim, carrier(
        sim.port, inbox, wait_binds=0, submit_timeout=0.3
    ) as c:
        await until(sim, lambda: sim.stats["bind_failures"] >= 4)
        assert c.bound_count() == 0 and c.state().counters["bind_failures"] >= 2
        o = await c.submit(OutboundMessage("+1555", "+1666", "nobody"))
        assert o.status == "unavailable"


async def test_garbage_from_the_smsc_drops_the_bind_and_reconnects() -> None:
    connections = 0
    seen = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(100)
        writer.write(bytes.fromhex("00000005") + b"garbage!!!!!")
        await writer.drain()
        if connections >= 2:
            seen.set()
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        inbox = Inbox()
        async with carrier(port, inbox, binds=1, wait_binds=0) as c:
            await asyncio.wait_for(seen.wait(), WAIT)
            assert c.bound_count() == 0 and c.state().counters["bind_failures"] >= 1
    finally:
        server.close()


async def test_close_drains_in_flight_then_unbinds() -> None:
    inbox = Inbox()
    async with simulator(delay_every=1, delay=0.1) as sim:
        c_cm = carrier(sim.port, inbox)
        c = await c_cm.__aenter__()
        tasks = [asyncio.create_task(c.submit(OutboundMessage("+1555", "+1666", f"c{i}"))) for i in range(5)]
        await until(sim, lambda: sim.stats["submits"] == 5)
        await c_cm.__aexit__(None, None, None)  # close() while all 5 answers are pending
        outcomes = [t.result() for t in tasks]
        assert all(o.ok for o in outcomes)
        await until(sim, lambda: not sim._connections)  # unbound and disconnected
        after = await c.submit(OutboundMessage("+1555", "+1666", "late"))
        assert after.status == "unavailable"


async def test_close_drains_segments_waiting_for_tps_tokens() -> None:
    inbox = Inbox()
    async with simulator() as sim:
        c_cm = carrier(sim.port, inbox, max_tps=20)
        c = await c_cm.__aenter__()
        tasks = [asyncio.create_task(c.submit(OutboundMessage("+1555", "+1666", f"q{i}"))) for i in range(6)]
        await until(sim, lambda: sim.stats["submits"] >= 1)
        await c_cm.__aexit__(None, None, None)  # most segments are still queued or waiting for a token
        assert [t.result().status for t in tasks] == ["accepted"] * 6
        assert sim.stats["accepted"] == 6


# --- MO --------------------------------------------------------------------------------------


@pytest.mark.parametrize("concat", ["udh", "udh16", "sar", "payload"])
async def test_mo_single_and_concatenated(concat: str) -> None:
    long_text = "Hello from the handset, this is a long message. " * 5
    inbox = Inbox()
    async with simulator() as sim, carrier(sim.port, inbox) as c:
        assert await sim.inject_mo("+15550001111", "15550002222", "hi €", concat=concat) == [0]  # type: ignore[arg-type]
        statuses = await sim.inject_mo("+15550001111", "15550002222", long_text, concat=concat)  # type: ignore[arg-type]
        assert statuses == [0] * len(statuses)
        ucs = "Grüße 😀 " * 20
        await sim.inject_mo("+15550001111", "15550002222", ucs, concat=concat, order=None)  # type: ignore[arg-type]
        await inbox.wait(lambda: len(inbox.mos) == 3)
        first, second, third = inbox.mos
        assert (first.source, first.destination, first.body, first.alphabet) == ("15550001111", "15550002222", "hi €", "GSM-7")
        assert second.body == long_text and second.missing == ()
        assert third.body == ucs and third.alphabet == UCS2
        assert c.state().counters["mo"] == 3


async def test_mo_parts_out_of_order_and_missing_segment() -> None:
    text = "abcdefghij" * 40  # 3 GSM-7 parts
    inbox = Inbox()
    async with simulator() as sim, carrier(sim.port, inbox, mo_reassembly_timeout=0.2):
        await sim.inject_mo("+1555", "1666", text, order=[3, 1, 2], ref=5)
        await inbox.wait(lambda: len(inbox.mos) == 1)
        assert inbox.mos[0].body == text and inbox.mos[0].segments == 3
        await sim.inject_mo("+1555", "1666", text, order=[1, 3], ref=6)
        await inbox.wait(lambda: len(inbox.mos) == 2)
        partial = inbox.mos[1]
        assert partial.missing == (2,) and partial.error_code == 30009
        assert partial.body == text[:153] + text[306:]


async def test_on_deliver_failure_makes_the_smsc_redeliver() -> None:
    inbox = Inbox()
    inbox.fail_next = 1
    async with simulator(redeliver_delay=0.01) as sim, carrier(sim.port, inbox, binds=1) as c:
        o = await c.submit(OutboundMessage("+1555", "+1666", "dlr"))
        await inbox.wait(lambda: len(inbox.receipts) == 1)
        assert inbox.receipts[0].receipt.message_id == o.message_ids[0]
        assert sim.stats["redeliveries"] == 1 and Status.ESME_RX_T_APPN in sim.deliver_statuses
        assert c.state().counters["deliver_errors"] == 1


# --- a second, independent SMSC: smpp34 ------------------------------------------------------


async def test_interop_with_smpp34_server() -> None:
    pytest.importorskip("smpp34")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PEERS / "smpp34_smsc.py"), str(port), "hello from smpp34",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    events: list[dict[str, Any]] = []
    changed = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            events.append(json.loads(line))
            changed.set()

    async def wait_events(pred: Callable[[list[dict[str, Any]]], bool]) -> None:
        async def loop() -> None:
            while not pred(events):
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(loop(), WAIT)

    reader = asyncio.create_task(read())
    try:
        await wait_events(lambda ev: any(e["event"] == "ready" for e in ev))
        inbox = Inbox()
        async with carrier(port, inbox, binds=2) as c:
            await inbox.wait(lambda: len(inbox.mos) == 1)
            assert (inbox.mos[0].source, inbox.mos[0].body) == ("15550001111", "hello from smpp34")
            short = await c.submit(OutboundMessage("+15550001111", "+15550002222", "hi [smpp34]"))
            long = await c.submit(OutboundMessage("ACME", "+15550002222", "ç" * 100))
            assert short.ok and short.message_ids == ("s34-1",)
            assert long.ok and long.segments == 2 and len(long.message_ids) == 2
            await inbox.wait(lambda: len(inbox.receipts) == 3)
            assert {r.receipt.message_id for r in inbox.receipts} == {*short.message_ids, *long.message_ids}
            assert all(r.receipt.status == "delivered" for r in inbox.receipts)
        submits = [e for e in events if e["event"] == "submit"]
        assert bytes.fromhex(submits[0]["sm"]) == b"hi \x1b\x3csmpp34\x1b\x3e"
        assert (submits[0]["src_ton"], submits[0]["dst_ton"], submits[0]["rd"]) == (1, 1, 1)
        parts = [parse_udh(bytes.fromhex(e["sm"])) for e in submits[1:]]
        assert all(e["esm"] == 0x40 and e["dc"] == 8 for e in submits[1:])
        assert sorted(u.concat.seq for u, _ in parts if u.concat) == [1, 2]
        assert "".join(p.decode("utf-16-be") for _, p in sorted(parts, key=lambda x: x[0].concat.seq)) == "ç" * 100  # type: ignore[union-attr]
        await wait_events(lambda ev: sum(e["event"] == "unbound" for e in ev) == 2)
    finally:
        proc.kill()
        await proc.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def test_runs_on_uvloop() -> None:
    """Regression: uvloop's transports are not asyncio.Transport subclasses (an isinstance
    assert in connection_made killed every bind). The app runs under uvicorn with uvloop."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        inbox = Inbox()
        async with simulator() as sim, carrier(sim.port, inbox) as c:
            o = await c.submit(OutboundMessage("+1555", "+1666", "uv" * 100))
            assert o.ok and o.segments == 2
            await sim.inject_mo("+1555", "1666", "mo")
            await inbox.wait(lambda: len(inbox.receipts) == 2 and len(inbox.mos) == 1)

    uvloop.run(scenario())


async def test_simulator_cli_and_control_port() -> None:
    """main() as the CLI runs it, in its own process: bind, MT, MO through the line protocol."""
    port, control = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "restcomm.smpp.simulator", "--port", str(port), "--control-port", str(control),
        "--receipt-delay", "0", "--system-id", "esme", "--password", "pw", "--no-uvloop",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        assert f"listening on 127.0.0.1:{port}" in line.decode()
        inbox = Inbox()
        async with carrier(port, inbox, binds=1) as c:
            assert (await c.submit(OutboundMessage("+1555", "+1666", "cli"))).ok
            reader, writer = await asyncio.open_connection("127.0.0.1", control)
            writer.write(b"MO +15550001111 15550002222 hello via control\nSTATS\nBOGUS\nQUIT\n")
            replies = [(await asyncio.wait_for(reader.readline(), WAIT)).decode().strip() for _ in range(3)]
            writer.close()
            assert replies[0] == "OK 0"
            assert json.loads(replies[1])["accepted"] == 1
            assert replies[2].startswith("ERR")
            await inbox.wait(lambda: len(inbox.mos) == 1 and len(inbox.receipts) == 1)
            assert inbox.mos[0].body == "hello via control"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), WAIT)
    assert proc.returncode == 0
