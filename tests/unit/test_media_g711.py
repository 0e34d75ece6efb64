"""G.711: the codec in use agrees with the table reference on every input, and known values hold."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restcomm.media import g711

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))
ALL_CODES = bytes(range(256))


def test_encoders_agree_with_reference_on_every_sample() -> None:
    assert g711.ulaw_encode(ALL_SAMPLES) == g711.ulaw_encode_pure(ALL_SAMPLES)
    assert g711.alaw_encode(ALL_SAMPLES) == g711.alaw_encode_pure(ALL_SAMPLES)


def test_decoders_agree_with_reference_on_every_code() -> None:
    assert g711.ulaw_decode(ALL_CODES) == g711.ulaw_decode_pure(ALL_CODES)
    assert g711.alaw_decode(ALL_CODES) == g711.alaw_decode_pure(ALL_CODES)


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),  # digital silence
        (-1, 0x7E, 0x55),  # the arithmetic shift keeps -1 a magnitude-1 negative
        (32767, 0x80, 0xAA),  # positive full scale
        (-32768, 0x00, 0x2A),  # negative full scale
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
    ],
)
def test_known_code_words(sample: int, ulaw: int, alaw: int) -> None:
    pcm = struct.pack("<h", sample)
    assert g711.ulaw_encode(pcm) == bytes([ulaw])
    assert g711.alaw_encode(pcm) == bytes([alaw])


def test_decode_is_idempotent_through_encode() -> None:
    # a decoded code word re-encodes to itself (μ-law has two zeros: 0x7F and 0xFF both decode to 0)
    for code in range(256):
        lin = g711.ulaw_decode(bytes([code]))
        assert g711.ulaw_decode(g711.ulaw_encode(lin)) == lin
        lin = g711.alaw_decode(bytes([code]))
        assert g711.alaw_encode(lin) == bytes([code])


def test_transcoding_tables_match_decode_then_encode() -> None:
    assert g711.ulaw_to_alaw(ALL_CODES) == g711.alaw_encode(g711.ulaw_decode(ALL_CODES))
    assert g711.alaw_to_ulaw(ALL_CODES) == g711.ulaw_encode(g711.alaw_decode(ALL_CODES))


def test_odd_length_input_drops_the_half_sample() -> None:
    assert g711.ulaw_encode(b"\x00\x00\x01") == b"\xff"
    assert g711.ulaw_encode_pure(b"\x00\x00\x01") == b"\xff"


@given(st.binary(max_size=400))
def test_decoders_take_any_bytes(data: bytes) -> None:
    assert len(g711.ulaw_decode(data)) == 2 * len(data)
    assert g711.alaw_decode_pure(data) == g711.alaw_decode(data)


def test_mixing_saturates_and_pads() -> None:
    a = struct.pack("<2h", 30000, -30000)
    b = struct.pack("<1h", 10000)
    assert g711.add(a, b) == struct.pack("<2h", 32767, -30000)
    assert g711.rms(struct.pack("<4h", 100, -100, 100, -100)) == 100
