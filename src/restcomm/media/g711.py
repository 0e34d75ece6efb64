"""G.711 μ-law (PCMU) and A-law (PCMA) over linear PCM (16-bit signed little-endian, mono).

CPython's `audioop` does this in C (about 1 µs per 20 ms frame); it exists up to 3.12 and comes back
on 3.13+ through the `audioop-lts` wheel (a conditional dependency). When neither is importable, a
table-driven fallback gives the same bytes (the unit tests compare both over every input), slower
but correct, so the platform never lacks a codec.

PCMU <-> PCMA transcoding (a bridge between legs that negotiated different codecs) is one
`bytes.translate` over a 256-entry table, cheaper than decoding and re-encoding.
"""

from __future__ import annotations

import sys
import warnings
from array import array

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as _audioop
except ImportError:  # pragma: no cover - Python 3.13+ without audioop-lts
    _audioop = None  # type: ignore[assignment]

_LITTLE = sys.byteorder == "little"

# ---- reference algorithms (the classic Sun/CCITT code audioop also implements) -----------------

_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for i, end in enumerate(ends):
        if value <= end:
            return i
    return 8


def _ulaw_from_sample(sample: int) -> int:
    pcm = sample >> 2  # 14-bit magnitude domain
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + 33
    seg = _segment(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _sample_from_ulaw(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def _alaw_from_sample(sample: int) -> int:
    pcm = sample >> 3  # 13-bit domain
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    seg = _segment(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm >> 1) if seg < 2 else (pcm >> seg)) & 0x0F
    return aval ^ mask


def _sample_from_alaw(code: int) -> int:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _unsigned_index(u: int) -> int:
    return u - 65536 if u >= 32768 else u


# Encode tables indexed by the sample read as unsigned 16-bit; decode tables hold 256 samples.
_ULAW_ENC = bytes(_ulaw_from_sample(_unsigned_index(u)) for u in range(65536))
_ALAW_ENC = bytes(_alaw_from_sample(_unsigned_index(u)) for u in range(65536))
_ULAW_DEC = array("h", (_sample_from_ulaw(c) for c in range(256)))
_ALAW_DEC = array("h", (_sample_from_alaw(c) for c in range(256)))

ULAW_TO_ALAW = bytes(_ALAW_ENC[_ULAW_DEC[c] & 0xFFFF] for c in range(256))
ALAW_TO_ULAW = bytes(_ULAW_ENC[_ALAW_DEC[c] & 0xFFFF] for c in range(256))

#: One 20 ms frame of digital silence in each law (what the encoder gives for sample 0).
ULAW_SILENCE_BYTE = _ULAW_ENC[0]
ALAW_SILENCE_BYTE = _ALAW_ENC[0]


def _samples(pcm16: bytes) -> array:
    if len(pcm16) % 2:
        pcm16 = pcm16[:-1]  # a trailing half sample carries no information
    a = array("H")
    a.frombytes(pcm16)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a


def _to_bytes(samples: array) -> bytes:
    if not _LITTLE:  # pragma: no cover
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def ulaw_encode_pure(pcm16: bytes) -> bytes:
    """Table fallback for `ulaw_encode` (also the reference the tests compare against)."""
    return bytes(map(_ULAW_ENC.__getitem__, _samples(pcm16)))


def alaw_encode_pure(pcm16: bytes) -> bytes:
    return bytes(map(_ALAW_ENC.__getitem__, _samples(pcm16)))


def ulaw_decode_pure(data: bytes) -> bytes:
    return _to_bytes(array("h", map(_ULAW_DEC.__getitem__, data)))


def alaw_decode_pure(data: bytes) -> bytes:
    return _to_bytes(array("h", map(_ALAW_DEC.__getitem__, data)))


if _audioop is not None:

    def ulaw_encode(pcm16: bytes) -> bytes:
        """Linear PCM -> μ-law, one byte per sample."""
        if len(pcm16) % 2:
            pcm16 = pcm16[:-1]
        return _audioop.lin2ulaw(pcm16, 2)

    def ulaw_decode(data: bytes) -> bytes:
        """μ-law -> linear PCM."""
        return _audioop.ulaw2lin(data, 2)

    def alaw_encode(pcm16: bytes) -> bytes:
        """Linear PCM -> A-law, one byte per sample."""
        if len(pcm16) % 2:
            pcm16 = pcm16[:-1]
        return _audioop.lin2alaw(pcm16, 2)

    def alaw_decode(data: bytes) -> bytes:
        """A-law -> linear PCM."""
        return _audioop.alaw2lin(data, 2)

else:  # pragma: no cover - exercised only where audioop is missing
    ulaw_encode = ulaw_encode_pure
    ulaw_decode = ulaw_decode_pure
    alaw_encode = alaw_encode_pure
    alaw_decode = alaw_decode_pure


def ulaw_to_alaw(data: bytes) -> bytes:
    """Transcode PCMU -> PCMA without going through linear PCM."""
    return data.translate(ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes) -> bytes:
    return data.translate(ALAW_TO_ULAW)


def rms(pcm16: bytes) -> int:
    """Root mean square of a linear PCM frame: the level used for voice-activity detection."""
    if _audioop is not None:
        return _audioop.rms(pcm16[: len(pcm16) & ~1], 2)
    s = array("h")  # pragma: no cover
    s.frombytes(pcm16[: len(pcm16) & ~1])  # pragma: no cover
    return int((sum(x * x for x in s) / len(s)) ** 0.5) if s else 0  # pragma: no cover


def add(a: bytes, b: bytes) -> bytes:
    """Mix two linear PCM buffers with saturation (the shorter is padded with silence)."""
    if len(a) < len(b):
        a, b = b, a
    if len(b) < len(a):
        b = b + bytes(len(a) - len(b))
    if _audioop is not None:
        return _audioop.add(a, b, 2)
    x, y = array("h"), array("h")  # pragma: no cover
    x.frombytes(a)  # pragma: no cover
    y.frombytes(b)  # pragma: no cover
    return array("h", (max(-32768, min(32767, p + q)) for p, q in zip(x, y, strict=True))).tobytes()  # pragma: no cover
