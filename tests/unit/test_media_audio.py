"""WAV reading/writing and decode_audio (WAV variants, raw G.711, MP3), checked by value and by ear (ASR)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcomm.media import g711, wav
from restcomm.media.audiofile import AudioFormatError, decode_audio
from tests.peers.asr import recognize

DATA = Path(__file__).resolve().parent.parent / "data"


def wav_bytes(tag: int, channels: int, rate: int, bits: int, samples: bytes, *, extensible: bool = False,
              extra_chunk: bool = False) -> bytes:
    align = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", tag) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:
        chunks += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size: padded
    chunks += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def tone(rate: int, seconds: float = 0.5, freq: float = 400.0, amp: int = 8000) -> list[int]:
    return [int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * seconds))]


def level(pcm: bytes) -> int:
    return g711.rms(pcm)


def test_native_format_is_passed_through() -> None:
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    assert wav.read_wav(wav_bytes(1, 1, 8000, 16, pcm)) == pcm
    assert wav.read_wav(wav.write_wav(pcm)) == pcm


@pytest.mark.parametrize(
    ("samples", "tag", "out"),
    [
        (bytes([0xFF, 0x7F, 0x00]), 7, g711.ulaw_decode(bytes([0xFF, 0x7F, 0x00]))),
        (bytes([0xD5, 0x2A]), 6, g711.alaw_decode(bytes([0xD5, 0x2A]))),
        (bytes([0x80, 0xFF, 0x00]), 1, struct.pack("<3h", 0, 32512, -32768)),  # 8-bit is unsigned
    ],
)
def test_eight_bit_formats_by_value(samples: bytes, tag: int, out: bytes) -> None:
    assert wav.read_wav(wav_bytes(tag, 1, 8000, 8, samples)) == out


@pytest.mark.parametrize(
    ("tag", "channels", "rate", "bits", "pack"),
    [
        (1, 2, 16000, 16, lambda s: struct.pack(f"<{2 * len(s)}h", *[v for x in s for v in (x, x)])),
        (1, 1, 44100, 16, lambda s: struct.pack(f"<{len(s)}h", *s)),
        (1, 1, 22050, 24, lambda s: b"".join(struct.pack("<i", x << 8)[:3] for x in s)),
        (1, 1, 11025, 32, lambda s: struct.pack(f"<{len(s)}i", *[x << 16 for x in s])),
        (3, 1, 48000, 32, lambda s: struct.pack(f"<{len(s)}f", *[x / 32768 for x in s])),
        (7, 1, 16000, 8, lambda s: g711.ulaw_encode(struct.pack(f"<{len(s)}h", *s))),
    ],
)
@pytest.mark.parametrize("extensible", [False, True])
def test_any_rate_width_and_channels_become_8k_mono(tag, channels, rate, bits, pack, extensible) -> None:
    samples = tone(rate)
    pcm = wav.read_wav(wav_bytes(tag, channels, rate, bits, pack(samples), extensible=extensible, extra_chunk=True))
    assert abs(len(pcm) - 8000) <= 8  # 0.5 s at 8 kHz, 16-bit
    assert 5000 < level(pcm[400:-400]) < 6300  # a 8000-peak sine has rms ~5657; no gain change


def test_resampling_filters_out_of_band_tones() -> None:
    # a 6 kHz tone cannot exist at 8 kHz; a bare interpolator would fold it to 2 kHz at nearly full level
    pcm = wav.read_wav(wav_bytes(1, 1, 44100, 16, struct.pack("<22050h", *tone(44100, freq=6000))))
    assert level(pcm[400:-400]) < 1500


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF\x00\x00\x00\x00WAVE", b"RIFX" + bytes(40), wav_bytes(2, 1, 8000, 4, b"\x00" * 10),
     b"RIFF\x0e\x00\x00\x00WAVEdata\x02\x00\x00\x00\x00\x00",  # data before fmt
     wav_bytes(7, 1, 8000, 16, b"\x00\x00")],
)
def test_unreadable_wavs(data: bytes) -> None:
    with pytest.raises(wav.WavError):
        wav.read_wav(data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_wav_reader_never_crashes(data: bytes) -> None:
    try:
        wav.read_wav(b"RIFF" + data[:4] + b"WAVE" + data[4:])
    except wav.WavError:
        pass


def test_streaming_writer_keeps_a_valid_file_after_every_flush(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "call.wav"
    w = wav.WavWriter(path, flush_bytes=320)
    assert wav.read_wav(path.read_bytes()) == b""
    w.write(b"\x01\x00" * 100)  # below the flush threshold: buffered
    w.write(b"\x02\x00" * 100)  # crosses it: on disk with a correct header
    on_disk = path.read_bytes()
    assert struct.unpack_from("<I", on_disk, 40)[0] == 400
    assert struct.unpack_from("<I", on_disk, 4)[0] == 436
    assert wav.read_wav(on_disk) == b"\x01\x00" * 100 + b"\x02\x00" * 100
    w.write(b"\x03\x00" * 10)
    assert w.duration == pytest.approx(210 / 8000)
    # a crash now (no close) loses only the buffered 10 samples; the file still parses
    assert len(wav.read_wav(path.read_bytes())) == 400
    assert w.close() == pytest.approx(210 / 8000)
    assert len(wav.read_wav(path.read_bytes())) == 420
    with pytest.raises(ValueError):
        w.write(b"\x00\x00")


def test_reader_accepts_a_header_never_fixed_up() -> None:
    assert wav.read_wav(wav.wav_header(0) + b"\x05\x00\x06\x00") == b"\x05\x00\x06\x00"


def test_decode_audio_mp3_fixture_is_intelligible() -> None:
    pcm = decode_audio((DATA / "one_two_three.mp3").read_bytes(), "audio/mpeg")
    assert 0.6 < len(pcm) / 16000 < 1.2
    assert recognize(pcm, "one two three four five six seven eight nine".split()) == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (bytes([0xFF, 0x00]), "audio/basic", g711.ulaw_decode(bytes([0xFF, 0x00]))),
        (bytes([0xD5]), "audio/x-alaw", g711.alaw_decode(bytes([0xD5]))),
        (wav.write_wav(b"\x07\x00"), "application/octet-stream", b"\x07\x00"),  # sniffed by RIFF magic
        (wav.write_wav(b"\x07\x00"), "audio/x-wav; charset=binary", b"\x07\x00"),
    ],
)
def test_decode_audio_by_type(data: bytes, content_type: str, expected: bytes) -> None:
    assert decode_audio(data, content_type) == expected


@pytest.mark.parametrize(("data", "content_type"), [(b"", "audio/mpeg"), (b"<html>nope</html>" * 20, "text/html"),
                                                    (b"RIFF\x00", "audio/wav")])
def test_decode_audio_rejects(data: bytes, content_type: str) -> None:
    with pytest.raises(AudioFormatError):
        decode_audio(data, content_type)
