"""RtpEndpoint against aiortp, an independent asyncio RTP stack (PyPI, test-only): audio and RFC 4733 both ways.

aiortp has its own G.711 tables, jitter buffer and DTMF code, so agreement here means we follow
the RFCs rather than our own reading of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from restcomm.media import sdp, tts
from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.wav import read_wav
from tests.peers.asr import recognize_phrase
from tests.peers.rtp import wait_for

aiortp = pytest.importorskip("aiortp")

PHRASES = ["one two three", "four five", "one two three four five", "hello world", "please call me tomorrow",
           "leave a message after the tone", "goodbye"]


@pytest.fixture
async def peers() -> AsyncIterator[tuple[RtpEndpoint, object, list[bytes], list[str]]]:
    ep = await RtpEndpoint.create(PortAllocator(44000, 44999), "127.0.0.1")
    session = await aiortp.RTPSession.create(local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", ep.local_port),
                                             payload_type=0, paced=True, plc=False, jitter_prefetch=0)
    port = session._rtp_transport._transport.get_extra_info("sockname")[1]
    heard: list[bytes] = []
    digits: list[str] = []
    session.on_audio = lambda pcm, ts: heard.append(pcm)
    session.on_dtmf = lambda digit, duration: digits.append(digit)
    offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    ep.set_remote(sdp.negotiate(offer, "127.0.0.1", ep.local_port))
    yield ep, session, heard, digits
    await session.close()
    await ep.close()


async def test_aiortp_speech_and_digits_reach_us(peers, tmp_path: Path) -> None:
    ep, session, _, _ = peers
    speech = tts.Synthesizer(None).synthesize_sync("please call me tomorrow")
    ep.start_recording(tmp_path / "in.wav")
    for i in range(0, len(speech) - 319, 320):
        session.send_audio_pcm_auto(speech[i:i + 320])
    await session.drain()  # aiortp paces the queue itself
    # aiortp sends a whole event at once; each digit gets its own event timestamp as RFC 4733 wants
    session.send_dtmf("8", timestamp=1_000_000)
    session.send_dtmf("#", timestamp=1_002_000)
    got = [await asyncio.wait_for(ep.digits.get(), 2) for _ in range(2)]
    await ep.stop_recording()
    assert got == ["8", "#"] and ep.digits.empty()
    assert recognize_phrase(read_wav((tmp_path / "in.wav").read_bytes()), PHRASES) == "please call me tomorrow"


async def test_our_speech_and_digits_reach_aiortp(peers) -> None:
    ep, _, heard, digits = peers
    speech = tts.Synthesizer(None).synthesize_sync("one two three")
    assert await ep.play(speech)
    await ep.send_digits("4*")
    await wait_for(lambda: len(digits) >= 2)
    assert digits == ["4", "*"]
    assert recognize_phrase(b"".join(heard), PHRASES) == "one two three"
