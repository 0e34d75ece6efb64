"""Minimal RTCP (RFC 3550 §6): sender/receiver reports and BYE, compound parse.

Enough to keep peers and middleboxes content (an SR every ~5 s, BYE at close) and to read the
loss/jitter a peer reports about us. SDES is emitted with a CNAME because RFC 3550 §6.1 requires it
in every compound packet; other packet types are skipped on input.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

SR, RR, SDES, BYE = 200, 201, 202, 203
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


class RtcpError(ValueError):
    """Not a well-formed RTCP packet."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def encode(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return struct.pack(
            "!IIIIII", self.ssrc, (self.fraction_lost << 24) | lost, self.highest_sequence,
            self.jitter, self.last_sr, self.delay_since_last_sr,
        )

    @classmethod
    def decode(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, lost_word, hseq, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, hseq, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str = ""


def ntp_now(now: float | None = None) -> int:
    """64-bit NTP timestamp for a Unix time (default: the wall clock)."""
    t = time.time() if now is None else now
    seconds = int(t) + _NTP_EPOCH_OFFSET
    fraction = int((t % 1) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds & 0xFFFFFFFF) << 32) | fraction


def _header(count: int, ptype: int, body_len: int) -> bytes:
    if body_len % 4:
        raise RtcpError("RTCP body must be 32-bit aligned")
    return struct.pack("!BBH", 0x80 | count, ptype, body_len // 4)


def encode_sr(sr: SenderReport) -> bytes:
    body = struct.pack(
        "!IQIII", sr.ssrc, sr.ntp_timestamp, sr.rtp_timestamp & 0xFFFFFFFF, sr.packet_count & 0xFFFFFFFF,
        sr.octet_count & 0xFFFFFFFF,
    ) + b"".join(r.encode() for r in sr.reports)
    return _header(len(sr.reports), SR, len(body)) + body


def encode_rr(rr: ReceiverReport) -> bytes:
    body = struct.pack("!I", rr.ssrc) + b"".join(r.encode() for r in rr.reports)
    return _header(len(rr.reports), RR, len(body)) + body


def encode_sdes_cname(ssrc: int, cname: str) -> bytes:
    text = cname.encode()[:255]
    item = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\0"  # CNAME, then end of list
    item += bytes(-len(item) % 4)
    return _header(1, SDES, len(item)) + item


def encode_bye(bye: Bye) -> bytes:
    body = b"".join(struct.pack("!I", s) for s in bye.ssrcs)
    if bye.reason:
        reason = bye.reason.encode()[:255]
        body += bytes([len(reason)]) + reason
        body += bytes(-len(body) % 4)
    return _header(len(bye.ssrcs), BYE, len(body)) + body


def decode(data: bytes) -> list[SenderReport | ReceiverReport | Bye]:
    """Parse a compound RTCP packet; unknown packet types are skipped, malformed input raises."""
    out: list[SenderReport | ReceiverReport | Bye] = []
    offset = 0
    n = len(data)
    if n < 4:
        raise RtcpError("shorter than an RTCP header")
    while offset < n:
        if n - offset < 4:
            raise RtcpError("trailing bytes after the last RTCP packet")
        b0, ptype, words = struct.unpack_from("!BBH", data, offset)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version {b0 >> 6}")
        length = 4 * (words + 1)
        if offset + length > n:
            raise RtcpError("truncated RTCP packet")
        count = b0 & 0x1F
        body = offset + 4
        end = offset + length
        if b0 & 0x20:  # padding: only legal on the last packet; the count is in the last byte
            end -= data[end - 1]
            if end < body:
                raise RtcpError("bad RTCP padding")
        if ptype == SR:
            if body + 24 + 24 * count > end:
                raise RtcpError("truncated sender report")
            ssrc, ntp, rtp_ts, pc, oc = struct.unpack_from("!IQIII", data, body)
            blocks = tuple(ReportBlock.decode(data, body + 24 + 24 * i) for i in range(count))
            out.append(SenderReport(ssrc, ntp, rtp_ts, pc, oc, blocks))
        elif ptype == RR:
            if body + 4 + 24 * count > end:
                raise RtcpError("truncated receiver report")
            (ssrc,) = struct.unpack_from("!I", data, body)
            blocks = tuple(ReportBlock.decode(data, body + 4 + 24 * i) for i in range(count))
            out.append(ReceiverReport(ssrc, blocks))
        elif ptype == BYE:
            if body + 4 * count > end:
                raise RtcpError("truncated BYE")
            ssrcs = struct.unpack_from(f"!{count}I", data, body)
            reason = ""
            r = body + 4 * count
            if r < end:
                rlen = data[r]
                reason = bytes(data[r + 1 : min(end, r + 1 + rlen)]).decode("utf-8", "replace")
            out.append(Bye(tuple(ssrcs), reason))
        offset += length
    return out
