"""Inbound stream bookkeeping (drops, gaps, RR figures) and the recording mixer."""

from __future__ import annotations

import struct

from restcomm.media.jitter import MAX_GAP_SAMPLES, InboundStream
from restcomm.media.mixer import FRAME_BYTES, SILENCE, Mixer


def test_in_order_stream_has_no_gaps_and_no_loss() -> None:
    s = InboundStream()
    for i in range(10):
        assert s.accept(100 + i, 1000 + 160 * i, 7, 160, i * 0.02) == 0
    assert s.report() == (0, 0, 109, 0)


def test_duplicates_and_late_packets_are_dropped_gaps_are_reported() -> None:
    s = InboundStream()
    assert s.accept(10, 0, 1, 160, 0.0) == 0
    assert s.accept(12, 320, 1, 160, 0.04) == 160  # seq 11 lost: one frame of silence
    assert s.accept(11, 160, 1, 160, 0.05) is None  # arrives late
    assert s.accept(12, 320, 1, 160, 0.05) is None  # duplicate
    fraction, lost, highest, _ = s.report()
    assert (lost, highest) == (1, 12)
    assert fraction == 256 // 3


def test_sequence_and_timestamp_wraparound() -> None:
    s = InboundStream()
    assert s.accept(65535, 2**32 - 160, 5, 160, 0.0) == 0
    assert s.accept(0, 0, 5, 160, 0.02) == 0
    assert s.extended_max == 65536


def test_new_ssrc_resets_and_huge_jumps_are_bounded() -> None:
    s = InboundStream()
    s.accept(1, 0, 1, 160, 0.0)
    assert s.accept(500, 999999, 2, 160, 1.0) == 0  # another source: fresh start
    assert s.accept(501, 999999 + 160 + 10**7, 2, 160, 1.02) == MAX_GAP_SAMPLES


def test_jitter_grows_with_irregular_arrival() -> None:
    s = InboundStream()
    for i in range(50):
        s.accept(i, 160 * i, 1, 160, i * 0.02 + (0.01 if i % 2 else 0.0))
    assert s.report()[3] > 40  # ~80 timestamp units of alternating delay


def frame(value: int) -> bytes:
    return struct.pack("<h", value) * (FRAME_BYTES // 2)


def test_mixer_prefills_mixes_and_pads() -> None:
    m = Mixer(2, prefill=2)
    m.push(0, frame(100))
    assert m.pull() == SILENCE  # one frame is below the prefill
    m.push(0, frame(200))
    m.push(1, frame(1000) * 2)
    assert m.pull() == frame(1100)
    assert m.pull() == frame(1200)
    assert m.pull() == SILENCE  # both ran dry


def test_mixer_bounds_latency_by_dropping_oldest() -> None:
    m = Mixer(1, prefill=1, max_frames=3)
    for v in range(1, 6):
        m.push(0, frame(v))
    assert [m.pull() for _ in range(3)] == [frame(3), frame(4), frame(5)]


def test_mixer_drain_returns_everything_buffered() -> None:
    m = Mixer(2, prefill=5)
    m.push(0, frame(1))
    m.push(1, frame(2) + frame(3))
    assert m.drain() == frame(3) + frame(3)
    assert m.drain() == b""
