"""Sample-rate and channel conversion to the platform's linear PCM (8 kHz, mono, 16-bit).

miniaudio's converter (a C library shipped in its wheel, also our MP3 decoder) runs a linear
resampler behind a 4th-order low-pass filter, so 22.05/44.1 kHz sources do not alias into the
telephone band the way a bare interpolator (audioop.ratecv) does.
"""

from __future__ import annotations

import miniaudio

RATE = 8000


def to_mono_8k(pcm16: bytes, rate: int, channels: int = 1) -> bytes:
    """Interleaved 16-bit PCM at any rate/channel count -> mono 8 kHz 16-bit."""
    frame = 2 * channels
    pcm16 = pcm16[: len(pcm16) - len(pcm16) % frame]
    if rate == RATE and channels == 1:
        return bytes(pcm16)
    if not pcm16:
        return b""
    out = miniaudio.convert_frames(
        miniaudio.SampleFormat.SIGNED16, channels, rate, bytes(pcm16),
        miniaudio.SampleFormat.SIGNED16, 1, RATE,
    )
    return bytes(out)
