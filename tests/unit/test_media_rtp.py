"""RTP and RTCP wire formats, byte for byte, and decoders fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcomm.media import rtcp, rtp

# (packet, bytes) pairs written out by hand from RFC 3550 §5.1
RTP_CASES = [
    (rtp.RtpPacket(0, 1, 160, 0x11223344, b"\xff\xff"),
     bytes.fromhex("80 00 0001 000000a0 11223344 ffff")),
    (rtp.RtpPacket(8, 0xFFFF, 0xFFFFFFFF, 1, b"\xd5", marker=True),
     bytes.fromhex("80 88 ffff ffffffff 00000001 d5")),
    (rtp.RtpPacket(101, 7, 8000, 2, b"\x01\x8a\x00\xa0", csrc=(0xAABBCCDD, 5)),
     bytes.fromhex("82 65 0007 00001f40 00000002 aabbccdd 00000005 018a00a0")),
    (rtp.RtpPacket(0, 3, 480, 9, b"\x7f", extension=(0xBEDE, b"\x10\xab\x00\x00")),
     bytes.fromhex("90 00 0003 000001e0 00000009 bede0001 10ab0000 7f")),
    (rtp.RtpPacket(0, 3, 480, 9, b"\x7f\x7f", padding=4),
     bytes.fromhex("a0 00 0003 000001e0 00000009 7f7f 000000 04")),
]


@pytest.mark.parametrize(("packet", "wire"), RTP_CASES)
def test_rtp_encode_and_decode(packet: rtp.RtpPacket, wire: bytes) -> None:
    assert packet.encode() == wire
    assert rtp.decode(wire) == packet


def test_fast_encode_matches_dataclass() -> None:
    p = rtp.RtpPacket(8, 65535, 2**32 - 160, 0xDEADBEEF, b"abc", marker=True)
    assert rtp.encode(8, 65535, 2**32 - 160, 0xDEADBEEF, b"abc", True) == p.encode()


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x80\x00\x00", "shorter"),
        (bytes.fromhex("40 00 0001 000000a0 11223344"), "version"),
        (bytes.fromhex("81 00 0001 000000a0 11223344"), "CSRC"),
        (bytes.fromhex("90 00 0001 000000a0 11223344 bede0002 00000000"), "extension"),
        (bytes.fromhex("a0 00 0001 000000a0 11223344 ff 09"), "padding"),
        (bytes.fromhex("a0 00 0001 000000a0 11223344 ff 00"), "padding"),
    ],
)
def test_rtp_rejects_malformed(wire: bytes, message: str) -> None:
    with pytest.raises(rtp.RtpError, match=message):
        rtp.decode(wire)


@pytest.mark.parametrize(("a", "b", "newer"), [(1, 0, True), (0, 65535, True), (65535, 0, False), (5, 5, False),
                                               (0x8000, 0, False), (0x7FFF, 0, True)])
def test_sequence_wraparound(a: int, b: int, newer: bool) -> None:
    assert rtp.seq_newer(a, b) is newer


def test_rtcp_multiplexing_detection() -> None:
    assert rtp.is_rtcp(bytes([0x80, 200, 0, 6]))
    assert not rtp.is_rtcp(rtp.encode(0, 1, 1, 1, b""))
    assert not rtp.is_rtcp(rtp.encode(96, 1, 1, 1, b"", marker=True))  # 0xE0 = 224


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_rtp_decoder_never_crashes(data: bytes) -> None:
    try:
        p = rtp.decode(data)
    except rtp.RtpError:
        return
    assert len(p.payload) <= len(data) - 12


@given(st.integers(0, 127), st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.binary(max_size=200), st.booleans(), st.lists(st.integers(0, 2**32 - 1), max_size=15),
       st.integers(0, 255))
def test_rtp_round_trip(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool,
                        csrc: list[int], padding: int) -> None:
    p = rtp.RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrc), None, padding)
    assert rtp.decode(p.encode()) == p


# ---- RTCP -----------------------------------------------------------------------------------

BLOCK = rtcp.ReportBlock(0x0A0B0C0D, 25, -3, 0x00010203, 44, 0x11112222, 65536)
SR_WIRE = bytes.fromhex(
    "81 c8 000c"  # V=2 RC=1 PT=200 length=12
    "00000001"  # SSRC
    "e7b1c9aa 80000000"  # NTP
    "000003e8 00000032 00001f40"  # RTP ts 1000, 50 packets, 8000 octets
    "0a0b0c0d 19fffffd 00010203 0000002c 11112222 00010000"
)


def test_sender_report_bytes() -> None:
    sr = rtcp.SenderReport(1, 0xE7B1C9AA80000000, 1000, 50, 8000, (BLOCK,))
    assert rtcp.encode_sr(sr) == SR_WIRE
    assert rtcp.decode(SR_WIRE) == [sr]


def test_compound_rr_sdes_bye() -> None:
    rr = rtcp.ReceiverReport(7, (BLOCK,))
    wire = rtcp.encode_rr(rr) + rtcp.encode_sdes_cname(7, "media@example") + rtcp.encode_bye(rtcp.Bye((7,), "done"))
    assert rtcp.encode_rr(rtcp.ReceiverReport(7))[:4] == bytes.fromhex("80 c9 0001")
    assert rtcp.encode_bye(rtcp.Bye((7,), "done")) == bytes.fromhex("81 cb 0003 00000007 04 646f6e65 000000")
    assert rtcp.decode(wire) == [rr, rtcp.Bye((7,), "done")]  # SDES is skipped


def test_ntp_timestamp() -> None:
    assert rtcp.ntp_now(0.5) == (2208988800 << 32) | 0x80000000


@pytest.mark.parametrize(
    "wire",
    [b"\x80", bytes.fromhex("40 c8 0000"), bytes.fromhex("81 c8 0006 00000001"), bytes.fromhex("80 c9 0001 0000"),
     bytes.fromhex("80 c9 0000 00")],
)
def test_rtcp_rejects_malformed(wire: bytes) -> None:
    with pytest.raises(rtcp.RtcpError):
        rtcp.decode(wire)


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_rtcp_decoder_never_crashes(data: bytes) -> None:
    try:
        rtcp.decode(data)
    except rtcp.RtcpError:
        pass
