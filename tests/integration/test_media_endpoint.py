"""RtpEndpoint over real UDP on loopback: endpoint to endpoint, and against an independent peer.

The independent peer is written here with raw sockets and `struct` (no restcomm.media code on its
side of the wire), so a bug shared by our encoder and decoder cannot hide. Audio is proven by ear:
speech synthesised by our TTS is played through RTP, recorded on the far side and recognised by
pocketsphinx with a grammar of the expected words.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from restcomm.media import g711, sdp, tts
from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.wav import read_wav
from tests.peers.asr import recognize_phrase
from tests.peers.rtp import RawPeer, wait_for

# Candidate phrases for the exact check (speech through 8 kHz loses most of "s": avoid six/seven as words).
PHRASES = ["one two three", "four five", "one two three four five", "four five one two three", "hello world",
           "please call me tomorrow", "leave a message after the tone", "goodbye"]


def phrase_of(path: Path) -> str:
    return recognize_phrase(read_wav(path.read_bytes()), PHRASES)


@pytest.fixture(scope="module")
def ports() -> PortAllocator:
    # an odd corner of the range so parallel test runs on this machine rarely meet
    return PortAllocator(41000, 41999)


@pytest.fixture(scope="module")
def synth() -> tts.Synthesizer:
    s = tts.Synthesizer(None)
    yield s
    s.close()


async def connect(a: RtpEndpoint, b: RtpEndpoint, *, codecs: tuple[sdp.Codec, ...] = sdp.SUPPORTED) -> None:
    """Offer from a, answer from b, exactly as the SIP layer will do it."""
    offer = sdp.make_offer("127.0.0.1", a.local_port, codecs=codecs)
    answer = sdp.negotiate(offer, "127.0.0.1", b.local_port)
    b.set_remote(answer)
    a.set_remote(sdp.parse_answer(answer.sdp))


@pytest.fixture
async def pair(ports: PortAllocator) -> AsyncIterator[tuple[RtpEndpoint, RtpEndpoint]]:
    a = await RtpEndpoint.create(ports, "127.0.0.1")
    b = await RtpEndpoint.create(ports, "127.0.0.1")
    await connect(a, b)
    yield a, b
    await a.close()
    await b.close()


async def test_speech_played_by_one_endpoint_is_recorded_and_recognised_by_the_other(
        pair: tuple[RtpEndpoint, RtpEndpoint], synth: tts.Synthesizer, tmp_path: Path) -> None:
    a, b = pair
    pcm = synth.synthesize_sync("one two three four five")
    b.start_recording(tmp_path / "b.wav")
    frames = -(-len(pcm) // 320)
    assert await a.play(pcm) is True
    await wait_for(lambda: b.stats["received"] >= frames)
    seconds = await b.stop_recording()
    assert seconds == pytest.approx(len(pcm) / 16000, abs=0.3)
    assert phrase_of(tmp_path / "b.wav") == "one two three four five"
    assert b.last_voice_activity > 0


async def test_a_stalled_event_loop_loses_no_recorded_audio(
        pair: tuple[RtpEndpoint, RtpEndpoint], synth: tts.Synthesizer, tmp_path: Path) -> None:
    """The sender paces on the media clock's thread, so packets keep coming while the receiving leg's
    event loop is blocked (a busy machine, a slow handler); they wait in the socket's buffer and must
    all reach the recording once the loop runs again."""
    a, b = pair
    pcm = synth.synthesize_sync("one two three four five")
    b.start_recording(tmp_path / "b.wav")
    frames = -(-len(pcm) // 320)
    playing = asyncio.create_task(a.play(pcm))
    await wait_for(lambda: b.stats["received"] >= 10)
    time.sleep(1.0)  # noqa: ASYNC251 -- the loop stalls on purpose: a second of audio piles up unread
    assert await playing is True
    await wait_for(lambda: b.stats["received"] >= frames)
    await b.stop_recording()
    assert phrase_of(tmp_path / "b.wav") == "one two three four five"


async def test_dtmf_round_trip_each_digit_once(pair: tuple[RtpEndpoint, RtpEndpoint]) -> None:
    a, b = pair
    await a.send_digits("19*#0")
    got = [await asyncio.wait_for(b.digits.get(), 2) for _ in range(5)]
    assert "".join(got) == "19*#0"
    await a.play(bytes(640))  # more traffic after the events: no late duplicate shows up
    assert b.digits.empty()
    b.feed_digit("5")
    assert b.digits.get_nowait() == "5"


async def test_play_can_be_cancelled(pair: tuple[RtpEndpoint, RtpEndpoint]) -> None:
    a, b = pair
    cancel = asyncio.Event()
    task = asyncio.create_task(a.play(bytes(16000 * 5), cancel=cancel))
    await wait_for(lambda: b.stats["received"] >= 5)
    cancel.set()
    assert await asyncio.wait_for(task, 1) is False
    assert b.stats["received"] < 60


async def test_bridge_relays_and_transcodes_and_a_bridge_recording_hears_both(
        ports: PortAllocator, synth: tts.Synthesizer, tmp_path: Path) -> None:
    a, b, c, d = [await RtpEndpoint.create(ports, "127.0.0.1") for _ in range(4)]
    try:
        await connect(a, b, codecs=(sdp.PCMU,))  # leg 1 speaks PCMU
        await connect(d, c, codecs=(sdp.PCMA,))  # leg 2 speaks PCMA: the bridge transcodes
        assert (b.codec.name, c.codec.name) == ("PCMU", "PCMA")
        b.bridge(c)
        b.start_recording(tmp_path / "bridge.wav")
        d.start_recording(tmp_path / "d.wav")
        a.start_recording(tmp_path / "a.wav")
        first = synth.synthesize_sync("one two three")
        second = synth.synthesize_sync("four five")
        await a.play(first)
        await wait_for(lambda: d.stats["received"] >= -(-len(first) // 320))
        await d.play(second)
        await wait_for(lambda: a.stats["received"] >= -(-len(second) // 320))
        await b.stop_recording()
        await d.stop_recording()
        await a.stop_recording()
        assert phrase_of(tmp_path / "d.wav") == "one two three"
        assert phrase_of(tmp_path / "a.wav") == "four five"
        assert phrase_of(tmp_path / "bridge.wav") == "one two three four five"  # both directions, in order
        b.unbridge()
        assert b.bridged_to is None and c.bridged_to is None
    finally:
        for e in (a, b, c, d):
            await e.close()


async def test_close_releases_the_port_pair(ports: PortAllocator) -> None:
    before = ports.in_use
    e = await RtpEndpoint.create(ports, "127.0.0.1")
    assert e.local_port % 2 == 0 and ports.in_use == before + 1
    await e.close()
    assert ports.in_use == before
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # both sockets are really gone
        s.bind(("127.0.0.1", e.local_port))
    assert await e.play(b"\x00" * 320) is False


# ---- against an independent peer -------------------------------------------------------------


@pytest.fixture
async def raw(ports: PortAllocator) -> AsyncIterator[tuple[RtpEndpoint, RawPeer]]:
    peer = RawPeer()
    ep = await RtpEndpoint.create(ports, "127.0.0.1", rtcp_interval=0.2)
    offer = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             f"m=audio {peer.port} RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n")
    ep.set_remote(sdp.negotiate(offer, "127.0.0.1", ep.local_port))
    peer.listen()
    yield ep, peer
    await ep.close()
    peer.close()


async def test_headers_continuous_across_prompts_with_markers(raw: tuple[RtpEndpoint, RawPeer]) -> None:
    ep, peer = raw
    assert ep.codec == sdp.PCMA and ep.dtmf_pt == 96  # offer order and the peer's event type
    await ep.play(bytes(320 * 5))
    await ep.play(bytes(320 * 3 + 100))  # not a whole frame: padded
    await ep.send_digits("7")
    await wait_for(lambda: (peer.drain(), len(peer.packets))[1] >= 8 + 7)
    h = peer.headers()
    audio = [x for x in h if x[1] == 8]
    events = [x for x in h if x[1] == 96]
    assert len(audio) == 9 and len(events) == 7
    assert [m for m, *_ in audio] == [1, 0, 0, 0, 0, 1, 0, 0, 0]  # marker on each prompt's first frame
    seqs = [s for _, _, s, _, _ in h]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    ts = [t for _, _, _, t, _ in audio]
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in zip(ts, ts[1:], strict=False))  # back-to-back prompts
    assert {t for *_, t, _ in events[:1]} and len({t for _, _, _, t, _ in events}) == 1  # one event timestamp
    assert len({s for *_, s in h}) == 1
    payload = peer.packets[-1][1][12:]
    assert payload == bytes([7, 0x80 | 10, 0x03, 0x20])  # end bit, volume 10, 800 samples
    assert peer.packets[0][1][12:] == bytes([0xD5]) * 160  # A-law silence


async def test_timestamp_follows_the_media_clock_across_an_idle_gap(raw: tuple[RtpEndpoint, RawPeer]) -> None:
    ep, _ = raw
    now = ep._loop.time()
    ep._last_sent_at = now - 1.0
    before = ep._next_ts
    ts, marker = ep._timestamp_for(now, 160)
    assert marker and (ts - before) & 0xFFFFFFFF == pytest.approx(8000 - 160, abs=1)
    ep._last_sent_at = now - 0.02
    assert ep._timestamp_for(now, 160) == (before, False)


async def test_pacing_against_the_wall_clock(raw: tuple[RtpEndpoint, RawPeer]) -> None:
    ep, peer = raw
    await ep.play(bytes(320 * 50))  # one second
    await wait_for(lambda: (peer.drain(), len(peer.packets))[1] >= 50)
    arrivals = [t for t, _ in peer.packets]
    assert arrivals[-1] - arrivals[0] == pytest.approx(0.98, abs=0.08)  # no drift over 49 intervals


async def test_receives_audio_digits_from_the_independent_peer_and_latches(
        raw: tuple[RtpEndpoint, RawPeer], synth: tts.Synthesizer, tmp_path: Path) -> None:
    ep, peer = raw
    # the peer sends from a second socket (a NAT rewrote its port): we must answer there
    nat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nat.bind(("127.0.0.1", 0))
    nat.setblocking(False)
    try:
        ep.start_recording(tmp_path / "in.wav")
        speech = g711.alaw_encode(synth.synthesize_sync("please call me tomorrow", "alice"))
        to = ("127.0.0.1", ep.local_port)
        seq, ts = 1000, 50000
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(0, len(speech), 160):
            nat.sendto(struct.pack("!BBHII", 0x80, 8 | (0x80 if i == 0 else 0), seq, ts, 0x5EED) + speech[i:i + 160], to)
            seq, ts = seq + 1, ts + 160
            await asyncio.sleep(max(0.0, t0 + (i // 160 + 1) * 0.02 - loop.time()))  # the peer's own pacing
        # RFC 4733 digit 4 as the RFC shows it: three updates, then the end packet three times
        for dur, end in ((160, 0), (320, 0), (480, 0), (640, 1), (640, 1), (640, 1)):
            nat.sendto(struct.pack("!BBHIIBBH", 0x80, 96, seq, ts, 0x5EED, 4, (end << 7) | 10, dur), to)
            seq += 1
        assert await asyncio.wait_for(ep.digits.get(), 2) == "4"
        # a third party injecting packets is ignored after the latch
        peer.send(to, 8, 1, 1, b"\x00" * 160, ssrc=0xBAD)
        await wait_for(lambda: ep.stats["foreign"] >= 1)
        await ep.stop_recording()
        assert ep.digits.empty()
        assert recognize_phrase(read_wav((tmp_path / "in.wav").read_bytes()), PHRASES) == "please call me tomorrow"
        # our replies go where the packets came from, not to the SDP address
        await ep.play(bytes(320))
        got: list[bytes] = []

        def poll() -> bool:
            try:
                got.append(nat.recv(2048))
            except BlockingIOError:
                pass
            return bool(got)

        await wait_for(poll)
        assert got[0][1] & 0x7F == 8
    finally:
        nat.close()


async def test_rtcp_sender_reports_go_out_and_peer_reports_are_read(raw: tuple[RtpEndpoint, RawPeer]) -> None:
    ep, peer = raw
    await ep.play(bytes(320 * 3))
    await wait_for(lambda: (peer.drain(), any(p[1] == 200 for p in peer.rtcp_packets))[1], within=3)
    sr = next(p for p in peer.rtcp_packets if p[1] == 200)
    ssrc, _ntp, _rtpts, count, octets = struct.unpack("!IQIII", sr[4:28])
    assert count >= 3 and octets >= 480
    # the peer reports 2 lost packets of ours with a receiver report to our RTCP port
    rr = struct.pack("!BBHI", 0x81, 201, 7, 0x5EED) + struct.pack("!IIIIII", ssrc, (5 << 24) | 2, 1234, 9, 0, 0)
    peer.rtcp.sendto(rr, ("127.0.0.1", ep.local_port + 1))
    await wait_for(lambda: ep.last_report is not None)
    assert ep.last_report is not None and (ep.last_report.cumulative_lost, ep.last_report.jitter) == (2, 9)


async def test_silence_detection_and_hold(raw: tuple[RtpEndpoint, RawPeer], synth: tts.Synthesizer) -> None:
    ep, peer = raw
    loud = g711.alaw_encode(synth.synthesize_sync("hello"))
    for i in range(0, len(loud), 160):
        peer.send(("127.0.0.1", ep.local_port), 8, i // 160, i, loud[i:i + 160])
    await wait_for(lambda: ep.stats["received"] >= len(loud) // 160)
    spoke = ep.last_voice_activity
    assert spoke > ep._loop.time() - 1
    assert await asyncio.wait_for(ep.wait_silence(0.2), 2) is True
    assert ep._loop.time() - spoke >= 0.2
    cancel = asyncio.Event()
    cancel.set()
    assert await ep.wait_silence(10, cancel) is False
    # the peer puts us on hold: we stop sending but keep time
    offer = (f"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             f"m=audio {peer.port} RTP/AVP 8\r\na=sendonly\r\n")
    ep.set_remote(sdp.negotiate(offer, "127.0.0.1", ep.local_port))
    peer.drain()
    sent = ep.stats["sent"]
    assert await ep.play(bytes(320 * 3)) is True
    assert ep.stats["sent"] == sent


async def test_garbage_datagrams_never_break_the_endpoint(raw: tuple[RtpEndpoint, RawPeer]) -> None:
    import random

    ep, peer = raw
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    rng = random.Random(4733)
    to = ("127.0.0.1", ep.local_port)
    for i in range(1500):
        n = rng.randrange(0, 300)
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if i % 3 == 0 and n >= 2:  # make many of them look like RTP/RTCP version 2
            data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
        peer.rtp.sendto(data, to)
        if i % 2 == 0:
            peer.rtp.sendto(data, ("127.0.0.1", ep.local_port + 1))
        await asyncio.sleep(0)  # let the loop read (one datagram per read) so the socket buffer never overflows
    # the endpoint still works: a digit sent now arrives, and nothing raised in the protocol callbacks
    seq = 60000
    for dur, end in ((160, 0), (800, 1), (800, 1), (800, 1)):
        peer.send(to, 96, seq, 777777, bytes([9, (end << 7) | 10]) + dur.to_bytes(2, "big"))
        seq += 1
        await asyncio.sleep(0)
    digits = []
    while True:
        d = await asyncio.wait_for(ep.digits.get(), 2)
        if d == "9":
            break
        digits.append(d)  # random bytes can form valid telephone-events: fine, they are digits
    loop.set_exception_handler(previous)
    assert errors == []  # an exception in a datagram callback would only have been logged
    assert ep.stats["received"] > 0


async def test_reordered_and_lost_packets_keep_the_recording_in_time(raw: tuple[RtpEndpoint, RawPeer],
                                                                     tmp_path: Path) -> None:
    ep, peer = raw
    frames = [g711.alaw_encode(struct.pack("<h", 1000 * (i + 1)) * 160) for i in range(8)]
    order = [0, 1, 3, 2, 4, 6, 7]  # 2 arrives late (dropped), 5 is lost: both become silence
    ep.start_recording(tmp_path / "r.wav")
    to = ("127.0.0.1", ep.local_port)
    for n, i in enumerate(order):
        peer.send(to, 8, 500 + i, 160 * i, frames[i])
        await wait_for(lambda n=n: ep.stats["received"] >= n + 1)
    await ep.stop_recording()
    pcm = read_wav((tmp_path / "r.wav").read_bytes())
    start = pcm.index(g711.alaw_decode(frames[0]))
    levels = [struct.unpack_from("<h", pcm, start + 320 * k)[0] for k in range(8)]
    expected = [0 if i in (2, 5) else struct.unpack("<h", g711.alaw_decode(frames[i])[:2])[0] for i in range(8)]
    assert levels == expected
    assert ep.stats["dropped"] == 1
