"""WAV in (any PCM width, float, μ-law, A-law; any rate and channel count) and WAV out, streamed.

Reading normalises to the platform's linear PCM (8 kHz mono 16-bit). Writing is for recordings:
the header's sizes are rewritten every time buffered audio reaches the disk, so the file on disk is
always a valid WAV of everything written so far — a crash mid-call keeps the recording up to the
last flush (at most `flush_bytes` of audio, 100 ms by default). Readers here also accept a file
whose header still says 0 bytes (a writer that died before its first fix-up).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import miniaudio

from . import g711
from .resample import to_mono_8k

PCM, FLOAT, ALAW, ULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_MA = {
    (PCM, 8): miniaudio.SampleFormat.UNSIGNED8,
    (PCM, 16): miniaudio.SampleFormat.SIGNED16,
    (PCM, 24): miniaudio.SampleFormat.SIGNED24,
    (PCM, 32): miniaudio.SampleFormat.SIGNED32,
    (FLOAT, 32): miniaudio.SampleFormat.FLOAT32,
}


class WavError(ValueError):
    """Not a WAV file we can read."""


def parse_wav(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(format tag, channels, rate, bits per sample, sample bytes) of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        cid, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError("truncated fmt chunk")
            tag, channels, rate, _brate, _align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == EXTENSIBLE and size >= 40 and body + 40 <= len(data):
                tag = struct.unpack_from("<H", data, body + 24)[0]  # first 2 bytes of the sub-format GUID
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            end = len(data) if size in (0, 0xFFFFFFFF) else min(len(data), body + size)
            tag, channels, rate, bits = fmt
            if channels < 1 or rate < 1:
                raise WavError("bad channel count or sample rate")
            return tag, channels, rate, bits, bytes(data[body:end])
        offset = body + size + (size & 1)  # chunks are word aligned
    raise WavError("no data chunk")


def read_wav(data: bytes) -> bytes:
    """Any supported WAV -> linear PCM 8 kHz mono 16-bit."""
    tag, channels, rate, bits, samples = parse_wav(data)
    if tag in (ULAW, ALAW):
        if bits != 8:
            raise WavError(f"G.711 WAV with {bits} bits per sample")
        pcm = g711.ulaw_decode(samples) if tag == ULAW else g711.alaw_decode(samples)
        return to_mono_8k(pcm, rate, channels)
    fmt = _MA.get((tag, bits))
    if fmt is None:
        raise WavError(f"unsupported WAV encoding (format {tag}, {bits} bits)")
    width = bits // 8 * channels
    samples = samples[: len(samples) - len(samples) % width]
    if not samples:
        return b""
    if fmt is miniaudio.SampleFormat.SIGNED16:
        return to_mono_8k(samples, rate, channels)
    out = miniaudio.convert_frames(fmt, channels, rate, samples, miniaudio.SampleFormat.SIGNED16, 1, 8000)
    return bytes(out)


def wav_header(data_bytes: int, *, rate: int = 8000, channels: int = 1, bits: int = 16, tag: int = PCM) -> bytes:
    """A 44-byte canonical header."""
    align = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, tag, channels, rate,
        rate * align, align, bits, b"data", data_bytes,
    )


def write_wav(pcm: bytes, *, rate: int = 8000) -> bytes:
    """Linear PCM -> a complete WAV file in memory."""
    return wav_header(len(pcm), rate=rate) + pcm


class WavWriter:
    """Streaming 8 kHz mono 16-bit WAV writer whose on-disk header is always current."""

    def __init__(self, path: str | os.PathLike[str], *, flush_bytes: int = 1600) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.write(self._fd, wav_header(0))
        self._buffer = bytearray()
        self.flush_bytes = flush_bytes
        self.data_bytes = 0

    @property
    def duration(self) -> float:
        """Seconds of audio written (including what is still buffered)."""
        return (self.data_bytes + len(self._buffer)) / 16000

    def write(self, pcm: bytes) -> None:
        if self._fd is None:
            raise ValueError("WAV writer is closed")
        self._buffer += pcm
        if len(self._buffer) >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Append buffered audio, then rewrite the RIFF and data sizes in place."""
        if self._fd is None or not self._buffer:
            return
        data = bytes(self._buffer[: len(self._buffer) & ~1])
        del self._buffer[: len(data)]
        os.write(self._fd, data)
        self.data_bytes += len(data)
        os.pwrite(self._fd, struct.pack("<I", 36 + self.data_bytes), 4)
        os.pwrite(self._fd, struct.pack("<I", self.data_bytes), 40)

    def close(self) -> float:
        """Flush and close; returns the duration in seconds."""
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None
        return self.duration
