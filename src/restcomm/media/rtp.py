"""RTP packets (RFC 3550 §5.1): encode and a tolerant decode.

Decode accepts what real peers send — CSRC lists, a header extension (RFC 8285 or any profile),
padding — and rejects only what cannot be RTP (wrong version, truncated header, padding longer
than the packet). RTCP multiplexed on the RTP port (RFC 5761) is recognised by the caller through
`is_rtcp`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")


class RtpError(ValueError):
    """Not a well-formed RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    #: (profile-defined 16 bits, extension data whose length is a multiple of 4), or None
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    def encode(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range")
        if len(self.csrc) > 15:
            raise RtpError("at most 15 CSRCs")
        b0 = 0x80 | len(self.csrc)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [HEADER.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)]
        parts.extend(struct.pack("!I", c) for c in self.csrc)
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise RtpError("header extension length must be a multiple of 4")
            parts.append(_EXT.pack(profile, len(data) // 4) + data)
        parts.append(self.payload)
        if self.padding:
            if not 1 <= self.padding <= 255:
                raise RtpError("padding must be 1..255 bytes")
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def encode(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    """Fast path for the common packet (no CSRC, extension or padding): one struct.pack."""
    return HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc) + payload


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: RTCP packet types 192-223 sit where RTP has marker+payload type 64-95."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def decode(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raises RtpError."""
    n = len(data)
    if n < 12:
        raise RtpError("shorter than the RTP header")
    b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError(f"RTP version {b0 >> 6}")
    offset = 12
    cc = b0 & 0x0F
    csrc: tuple[int, ...] = ()
    if cc:
        if n < offset + 4 * cc:
            raise RtpError("truncated CSRC list")
        csrc = struct.unpack_from(f"!{cc}I", data, offset)
        offset += 4 * cc
    extension = None
    if b0 & 0x10:
        if n < offset + 4:
            raise RtpError("truncated header extension")
        profile, words = _EXT.unpack_from(data, offset)
        offset += 4
        if n < offset + 4 * words:
            raise RtpError("truncated header extension")
        extension = (profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    end = n
    padding = 0
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > n:
            raise RtpError("bad padding length")
        end -= padding
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80), csrc, extension, padding)


def seq_newer(a: int, b: int) -> bool:
    """True when 16-bit sequence number `a` comes after `b` (RFC 3550 wrap-around arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000
