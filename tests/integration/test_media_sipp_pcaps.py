"""RtpEndpoint fed with SIPp's own captures (Debian sip-tester): RFC 4733 digits and 30 ms A-law audio.

These packets were produced by other implementations, not by us: SIPp's DTMF captures repeat the
end packet with one sequence number (ours increments it), and g711a.pcap uses 30 ms packets.
The pcap files are read with struct (classic libpcap, Ethernet/IPv4/UDP).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from restcomm.media import g711, sdp
from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.wav import read_wav
from tests.peers.rtp import rtp_payloads, wait_for

PCAPS = Path("/usr/share/sip-tester")
pytestmark = pytest.mark.skipif(not (PCAPS / "dtmf_2833_1.pcap").exists(),
                                reason="SIPp's captures come with Debian's sip-tester")


@pytest.fixture
async def endpoint() -> RtpEndpoint:
    ep = await RtpEndpoint.create(PortAllocator(42000, 42999), "127.0.0.1")
    offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio 9 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n")
    answer = sdp.negotiate(offer, "127.0.0.1", ep.local_port)
    assert (answer.codec, answer.dtmf_pt, answer.ptime) == (sdp.PCMA, 101, 30)
    ep.set_remote(answer)
    yield ep
    await ep.close()


async def test_sipp_rfc4733_captures_become_digits(endpoint: RtpEndpoint) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for name in ("1", "2", "pound", "star", "9", "0"):
            for packet in rtp_payloads(PCAPS / f"dtmf_2833_{name}.pcap"):
                sock.sendto(packet, ("127.0.0.1", endpoint.local_port))
        got = [await asyncio.wait_for(endpoint.digits.get(), 2) for _ in range(6)]
        assert "".join(got) == "12#*90"
        await wait_for(lambda: endpoint.stats["received"] >= 60, within=2)
        assert endpoint.digits.empty()  # the three end packets gave one digit each time
    finally:
        sock.close()


async def test_sipp_alaw_capture_with_30ms_packets_is_recorded(endpoint: RtpEndpoint, tmp_path: Path) -> None:
    packets = rtp_payloads(PCAPS / "g711a.pcap")[:50]  # 1.5 s
    assert {p[1] & 0x7F for p in packets} == {8} and len(packets[0]) == 12 + 240
    endpoint.start_recording(tmp_path / "in.wav")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for i, packet in enumerate(packets):  # the capture's own 30 ms pacing
            sock.sendto(packet, ("127.0.0.1", endpoint.local_port))
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.03 - loop.time()))
    finally:
        sock.close()
    seconds = await endpoint.stop_recording()
    assert seconds == pytest.approx(1.5, abs=0.25)
    recorded = read_wav((tmp_path / "in.wav").read_bytes())
    sent = b"".join(g711.alaw_decode(p[12:]) for p in packets)
    # every sample of the capture is in the recording, in order (the recorder only adds silence around it)
    assert sent in recorded
