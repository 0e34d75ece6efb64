"""``CallSession`` (rcml's VoiceCall over a Leg) with real RTP on loopback: a second RtpEndpoint is
the caller's phone. The SIP side is a stand-in (the session never speaks SIP except through the
leg's answer/hang-up, covered by the integration tests)."""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.wav import read_wav
from restcomm.rcml.call import Callback
from restcomm.voice.leg import Leg, LegState
from restcomm.voice.session import CallSession, OpenRecording


class FakeSip:
    """What a Leg needs of a SIP call: INFO digits and the ended future."""

    def __init__(self) -> None:
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.info_cb: Any = None

    def on_info(self, cb: Any) -> None:
        self.info_cb = cb

    def on_reinvite(self, cb: Any) -> None:
        self.reinvite_cb = cb

    async def bye(self) -> None:
        if not self.ended.done():
            self.ended.set_result("local")


class Sources:
    async def say(self, text: str, voice: str, language: str) -> bytes:
        return bytes(1600)

    async def fetch(self, url: str) -> bytes:
        return bytes(1600)


class Sink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.closed: list[tuple[str, float]] = []

    async def open(self, call_sid: str) -> OpenRecording:
        return OpenRecording("RE1", self.folder / "RE1.wav", "http://x/RE1.wav")

    async def close(self, recording: OpenRecording, duration: float, callback: Callback | None) -> None:
        self.closed.append((recording.sid, duration))


def tone(seconds: float, hz: float = 440.0) -> bytes:
    return b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * hz * i / 8000)))
                    for i in range(int(8000 * seconds)))


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[CallSession, RtpEndpoint, FakeSip, Sink]]:
    ports = PortAllocator(31000, 31999)
    ours = await RtpEndpoint.create(ports, "127.0.0.1")
    phone = await RtpEndpoint.create(ports, "127.0.0.1")
    ours.set_remote_address("127.0.0.1", phone.local_port)
    phone.set_remote_address("127.0.0.1", ours.local_port)
    sip = FakeSip()
    leg = Leg("CA1", sip, ours, direction="inbound")  # type: ignore[arg-type]
    leg.state, leg.answered_at = LegState.ANSWERED, time.monotonic()
    sink = Sink(tmp_path)
    yield CallSession(leg, media=Sources(), recordings=sink), phone, sip, sink
    await ours.close()
    await phone.close()


async def test_a_digit_cuts_a_prompt_and_is_returned(pair: Any) -> None:
    session, phone, _, _ = pair
    started = time.monotonic()
    play = asyncio.ensure_future(session.play(bytes(16000 * 5), stop_on_digit=True))
    await phone.send_digits("5")
    assert await asyncio.wait_for(play, 3) == "5"
    assert time.monotonic() - started < 3


async def test_info_digits_share_the_queue(pair: Any) -> None:
    session, _, sip, _ = pair
    sip.info_cb("9")
    assert await session.next_digit(1) == "9"


async def test_next_digit_times_out_and_ends_with_the_call(pair: Any) -> None:
    session, _, sip, _ = pair
    assert await session.next_digit(0.05) is None
    waiting = asyncio.ensure_future(session.next_digit(30))
    sip.ended.set_result("bye")
    assert await asyncio.wait_for(waiting, 2) is None
    assert session.hung_up.is_set()


async def test_record_stops_after_silence(pair: Any) -> None:
    session, phone, _, sink = pair
    talk = asyncio.ensure_future(phone.play(tone(1.0)))
    result = await asyncio.wait_for(session.record(max_length=20, silence_timeout=0.6, finish_on_key="#",
                                                   play_beep=False), 10)
    await talk
    assert 1.0 <= result.duration < 3.0 and result.digits == "" and result.url == "http://x/RE1.wav"
    assert sink.closed == [("RE1", result.duration)]
    assert len(read_wav((sink.folder / "RE1.wav").read_bytes())) >= 16000  # the tone is in the file


async def test_record_finish_key_and_hangup(pair: Any) -> None:
    session, phone, sip, _ = pair
    rec = asyncio.ensure_future(session.record(max_length=20, silence_timeout=0, finish_on_key="#",
                                               play_beep=True))
    await phone.send_digits("1#")  # 1 is not a finish key: recorded over
    result = await asyncio.wait_for(rec, 10)
    assert result.digits == "#"
    rec = asyncio.ensure_future(session.record(max_length=20, silence_timeout=0, finish_on_key="#",
                                               play_beep=False))
    await asyncio.sleep(0)  # let the recording start (an ordering, not a timing)
    sip.ended.set_result("bye")
    assert (await asyncio.wait_for(rec, 5)).digits == "hangup"
