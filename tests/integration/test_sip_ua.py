"""Two real SipStacks talking over loopback UDP/TCP: digest on INVITE, CANCEL from our UAC, reject,
INFO DTMF, re-INVITE, OPTIONS, outbound REGISTER with refresh state and unregister."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from restcomm.sip.message import Headers, Request, make_response, parse_message, parse_uri
from restcomm.sip.registrar import MemoryBindingStore, MemoryCredentials, Registrar
from restcomm.sip.ua import CallFailed, IncomingCall, OutgoingCall, SipStack
from tests.conftest import free_port

SDP_A = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=a\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"
SDP_B = SDP_A.replace("s=a", "s=b").replace("30000", "30002")


class Callee:
    """The far end's behaviour, chosen per test."""

    def __init__(self) -> None:
        self.calls: list[IncomingCall] = []
        self.mode = "answer"
        self.registrar: Registrar | None = None
        self.digits: list[str] = []
        self.reasons: asyncio.Queue[str] = asyncio.Queue()

    async def __call__(self, call: IncomingCall) -> None:
        if self.registrar is not None and await call.challenge(self.registrar) is None:
            return
        self.calls.append(call)
        call.on_info(self.digits.append)
        if self.mode == "reject":
            await call.reject(486)
            return
        await call.ringing()
        if self.mode == "answer":
            await call.answer(SDP_B)
        await self.reasons.put(await call.ended)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipStack, SipStack, Callee]]:
    callee = Callee()
    b = SipStack("127.0.0.1", 0, on_invite=callee)
    a = SipStack("127.0.0.1", 0, on_invite=lambda c: None)
    await a.start()
    await b.start()
    yield a, b, callee
    await a.stop()
    await b.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_call_info_reinvite_and_bye(pair, transport: str) -> None:  # type: ignore[no-untyped-def]
    a, b, callee = pair
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port};transport={transport}",
                          from_uri="sip:alice@127.0.0.1", sdp=SDP_A)
    assert "s=b" in await call.wait_answer(5)
    assert callee.calls[0].source[0] == transport.upper()
    resp = await call.info("Signal=7\r\nDuration=160\r\n")
    assert resp.status == 200 and callee.digits == ["7"]
    assert "s=b" in await call.reinvite(SDP_A)  # answered with the current SDP
    await call.bye()
    assert await asyncio.wait_for(callee.reasons.get(), 5) == "bye"


async def test_callee_hangs_up(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, callee = pair
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A)
    await call.wait_answer(5)
    await callee.calls[0].bye()
    assert await asyncio.wait_for(call.ended, 5) == "bye"


async def test_digest_challenge_on_invite_and_retry(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, callee = pair
    callee.registrar = Registrar("127.0.0.1", MemoryCredentials({"alice": "pw"}), MemoryBindingStore(),
                                 secret=b"z" * 32)
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A,
                          credentials=("alice", "pw"))
    assert "s=b" in await call.wait_answer(5)
    assert len(callee.calls) == 1
    await call.bye()
    bad = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A,
                         credentials=("alice", "nope"))
    with pytest.raises(CallFailed) as exc:
        await bad.wait_answer(5)
    assert exc.value.status == 407


async def test_reject_and_cancel(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, callee = pair
    callee.mode = "reject"
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A)
    with pytest.raises(CallFailed) as exc:
        await call.wait_answer(5)
    assert exc.value.status == 486 and await call.ended == "failed"
    callee.mode = "ring"
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A)
    await asyncio.wait_for(call.ringing.wait(), 5)
    await call.cancel()
    with pytest.raises(CallFailed) as exc:
        await call.wait_answer(5)
    assert exc.value.status == 487
    assert await asyncio.wait_for(call.ended, 5) == "cancel"
    assert await asyncio.wait_for(callee.reasons.get(), 5) == "cancel"


async def test_options_answered_by_default(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    h = Headers()
    h.add("Via", a.via())
    h.add("From", "<sip:a@127.0.0.1>;tag=1")
    h.add("To", "<sip:b@127.0.0.1>")
    h.add("Call-ID", "opt-1")
    h.add("CSeq", "1 OPTIONS")
    h.add("Max-Forwards", "70")
    resp = await a.request(Request(headers=h, method="OPTIONS", uri=parse_uri(f"sip:127.0.0.1:{b.local_port}")),
                           ("UDP", "127.0.0.1", b.local_port))
    assert resp.status == 200 and "INVITE" in (resp.headers.get("Allow") or "")


async def test_outbound_register_with_digest_and_unregister(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    store = MemoryBindingStore()
    b.on_register = Registrar("127.0.0.1", MemoryCredentials({"trunk": "pw"}), store, secret=b"r" * 32,
                              min_expires=60).handle
    reg = await a.register(f"sip:127.0.0.1:{b.local_port}", "sip:trunk@127.0.0.1", ("trunk", "pw"), expires=120)
    assert reg.granted == 120
    bindings = await store.bindings("sip:trunk@127.0.0.1", 0)
    assert [x.contact for x in bindings] == [f"sip:trunk@127.0.0.1:{a.local_port}"]
    await reg.stop()
    assert await store.bindings("sip:trunk@127.0.0.1", time.time()) == []
    with pytest.raises(CallFailed):
        await a.register(f"sip:127.0.0.1:{b.local_port}", "sip:trunk@127.0.0.1", ("trunk", "bad"), expires=120)


async def test_record_route_is_honoured_for_in_dialog_requests(pair) -> None:  # type: ignore[no-untyped-def]
    """The caller's Contact is a black hole; only its Record-Route reaches it. The callee's BYE
    must follow the route set (RFC 3261 §12.2.1.1), or the caller never hears it."""
    a, b, callee = pair
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A,
                          headers=[("Record-Route", f"<sip:127.0.0.1:{a.local_port};lr>"),
                                   ("Contact", "<sip:alice@127.0.0.1:9>")])
    await call.wait_answer(5)
    incoming = callee.calls[0]
    assert incoming.dialog is not None and incoming.dialog.route_set == [f"<sip:127.0.0.1:{a.local_port};lr>"]
    await incoming.bye()
    assert await asyncio.wait_for(call.ended, 5) == "bye"


async def test_max_forwards_zero_gets_483(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    h = Headers()
    h.add("Via", a.via())
    h.add("From", "<sip:a@127.0.0.1>;tag=1")
    h.add("To", "<sip:b@127.0.0.1>")
    h.add("Call-ID", "mf-1")
    h.add("CSeq", "1 OPTIONS")
    h.add("Max-Forwards", "0")
    resp = await a.request(Request(headers=h, method="OPTIONS", uri=parse_uri(f"sip:127.0.0.1:{b.local_port}")),
                           ("UDP", "127.0.0.1", b.local_port))
    assert resp.status == 483


async def test_invite_without_contact_gets_400_and_no_call(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, callee = pair
    h = Headers()
    h.add("Via", a.via())
    h.add("From", "<sip:a@127.0.0.1>;tag=1")
    h.add("To", "<sip:b@127.0.0.1>")
    h.add("Call-ID", "nc-1")
    h.add("CSeq", "1 INVITE")
    h.add("Max-Forwards", "70")
    call_req = Request(headers=h, method="INVITE", uri=parse_uri(f"sip:b@127.0.0.1:{b.local_port}"))
    out = OutgoingCall(a, call_req, ("UDP", "127.0.0.1", b.local_port), None)
    a._start_invite(out)
    with pytest.raises(CallFailed) as exc:
        await out.wait_answer(5)
    assert exc.value.status == 400 and callee.calls == []


async def test_required_unknown_extension_gets_420(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, callee = pair
    call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A,
                          headers=[("Require", "100rel")])
    with pytest.raises(CallFailed) as exc:
        await call.wait_answer(5)
    assert exc.value.status == 420 and callee.calls == []


async def test_a_failing_handler_answers_500() -> None:
    async def broken(call: IncomingCall) -> None:
        raise RuntimeError("app bug")

    a = SipStack("127.0.0.1", 0, on_invite=lambda c: None)
    b = SipStack("127.0.0.1", 0, on_invite=broken)
    await a.start()
    await b.start()
    try:
        call = await a.invite(f"sip:bob@127.0.0.1:{b.local_port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A)
        with pytest.raises(CallFailed) as exc:
            await call.wait_answer(5)
        assert exc.value.status == 500
    finally:
        await a.stop()
        await b.stop()


async def test_outbound_register_follows_423_and_refreshes(pair) -> None:  # type: ignore[no-untyped-def]
    """The registrar demands at least 2 s (423 to a 1 s request); the registration adopts it and refreshes by itself
    (a bounded wait on the registrar seeing the refresh, not a sleep)."""
    a, b, _ = pair
    store = MemoryBindingStore()
    registrar = Registrar("127.0.0.1", MemoryCredentials({"trunk": "pw"}), store, secret=b"r" * 32,
                          min_expires=2)
    seen = asyncio.Event()
    count = 0

    async def on_register(req, source):  # type: ignore[no-untyped-def]
        nonlocal count
        resp = await registrar.handle(req, source)
        if resp.status == 200:
            count += 1
            if count >= 2:
                seen.set()
        return resp

    b.on_register = on_register
    reg = await a.register(f"sip:127.0.0.1:{b.local_port}", "sip:trunk@127.0.0.1", ("trunk", "pw"), expires=1)
    assert reg.expires == 2 and reg.granted == 2
    await asyncio.wait_for(seen.wait(), 5)
    assert reg.refreshed >= 1
    await reg.stop()


async def test_garbage_is_dropped_and_the_stack_keeps_serving(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", b.local_port))
    udp.sendto(b"\x00\xffgarbage\r\n\r\n")
    udp.sendto(b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\n")
    udp.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", b.local_port)
    writer.write(b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKq\r\n\r\n")  # no Content-Length
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # framing lost: connection closed
    writer.close()
    await test_options_answered_by_default((a, b, None))
    assert b.transport.errors >= 3


async def test_refused_tcp_connect_fails_the_call_fast_with_503(pair) -> None:  # type: ignore[no-untyped-def]
    a, _, _ = pair
    call = await a.invite(f"sip:nobody@127.0.0.1:{free_port()};transport=tcp", from_uri="sip:alice@127.0.0.1",
                          sdp=SDP_A)
    with pytest.raises(CallFailed) as exc:
        await call.wait_answer(5)
    assert exc.value.status == 503


async def test_retransmitted_200_is_acked_again(pair) -> None:  # type: ignore[no-untyped-def]
    """A bare UDP peer answers our INVITE with the same 200 twice (its first ACK 'lost'): each
    copy must be ACKed (RFC 3261 §13.2.2.4), and the call is answered once."""
    a, _, _ = pair
    loop = asyncio.get_running_loop()
    acks: asyncio.Queue[bytes] = asyncio.Queue()

    class Peer(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.t = transport

        def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
            msg = parse_message(data)
            if isinstance(msg, Request) and msg.method == "INVITE":
                ok = make_response(msg, 200, to_tag="peer", body=SDP_B.encode(),
                                   extra=[("Contact", f"<sip:peer@127.0.0.1:{port}>"),
                                          ("Content-Type", "application/sdp")])
                self.t.sendto(ok.encode(), addr)
                self.t.sendto(ok.encode(), addr)
            elif isinstance(msg, Request) and msg.method == "ACK":
                acks.put_nowait(data)

    udp, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    port = udp.get_extra_info("sockname")[1]
    try:
        call = await a.invite(f"sip:peer@127.0.0.1:{port}", from_uri="sip:alice@127.0.0.1", sdp=SDP_A)
        assert "s=b" in await call.wait_answer(5)
        first = await asyncio.wait_for(acks.get(), 5)
        second = await asyncio.wait_for(acks.get(), 5)
        assert first == second and parse_message(first).cseq.method == "ACK"
    finally:
        udp.close()
