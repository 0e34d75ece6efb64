"""RFC 4733 telephone-events (DTMF digits carried in RTP).

Sending: one event is a run of packets sharing the event's start timestamp — the first with the
marker bit, then updates with a growing duration every packet time, then the end packet sent three
times (§2.5.1.4: redundancy against loss), all with the same duration.

Receiving: a digit is reported once, when its end packet arrives; the event's RTP timestamp
identifies it, so the three end retransmissions (and any late update) never repeat it. If a new
event starts while the previous one never showed an end (all end packets lost), the previous digit
is reported then, so a lossy path still delivers every key press.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"
_PAYLOAD = struct.Struct("!BBH")


class DtmfError(ValueError):
    """Not an RFC 4733 DTMF event payload, or not a DTMF digit."""


def event_code(digit: str) -> int:
    code = EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return code


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    event: int
    end: bool
    volume: int  # 0..63, -dBm0
    duration: int  # in RTP timestamp units

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None

    def encode(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration & 0xFFFF)


def decode_event(payload: bytes) -> DtmfEvent:
    if len(payload) < 4:
        raise DtmfError("telephone-event payload shorter than 4 bytes")
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return DtmfEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One RTP packet of an event: send `payload` with the event's timestamp and this marker."""

    payload: bytes
    marker: bool


def event_packets(digit: str, *, duration_ms: int = 100, volume: int = 10, ptime_ms: int = 20,
                  clock_rate: int = 8000) -> list[EventPacket]:
    """Packets for one digit: updates every `ptime_ms`, then the end packet three times."""
    code = event_code(digit)
    step = clock_rate * ptime_ms // 1000
    total = max(step, clock_rate * duration_ms // 1000)
    packets = []
    duration = step
    while duration < total:
        packets.append(EventPacket(DtmfEvent(code, False, volume, duration).encode(), not packets))
        duration += step
    end = DtmfEvent(code, True, volume, total).encode()
    packets.extend(EventPacket(end, not packets and i == 0) for i in range(3))
    return packets


class DtmfReceiver:
    """Turns telephone-event packets into digits, each exactly once.

    `forget_after` (seconds, with `now` passed to `feed`) lets the same event timestamp count again
    once its retransmissions are long over: a replayed capture (SIPp's dtmf pcaps pressed twice)
    repeats timestamps exactly, a real retransmission arrives within tens of milliseconds."""

    def __init__(self, memory: int = 16, *, forget_after: float = 1.0) -> None:
        self._reported: deque[tuple[int, float | None]] = deque(maxlen=memory)
        self._open: tuple[int, str] | None = None  # (timestamp, digit) started but not ended
        self.forget_after = forget_after

    def _seen(self, timestamp: int, now: float | None) -> bool:
        for ts, at in self._reported:
            if ts == timestamp:
                return now is None or at is None or now - at < self.forget_after
        return False

    def _report(self, timestamp: int, now: float | None) -> None:
        self._reported = deque(((t, a) for t, a in self._reported if t != timestamp), maxlen=self._reported.maxlen)
        self._reported.append((timestamp, now))

    def feed(self, timestamp: int, payload: bytes, now: float | None = None) -> list[str]:
        """Digits completed by this packet (usually none or one; two if an end was lost)."""
        try:
            ev = decode_event(payload)
        except DtmfError:
            return []
        digit = ev.digit
        if digit is None or self._seen(timestamp, now):
            return []
        out: list[str] = []
        if self._open is not None and self._open[0] != timestamp:
            # a new event began while the previous never ended: its end packets were all lost
            self._report(self._open[0], now)
            out.append(self._open[1])
            self._open = None
        if ev.end:
            self._report(timestamp, now)
            self._open = None
            out.append(digit)
        else:
            self._open = (timestamp, digit)
        return out

    def flush(self, now: float | None = None) -> list[str]:
        """Report a digit still open (call when the stream stops, e.g. a timeout in Gather)."""
        if self._open is None:
            return []
        ts, digit = self._open
        self._open = None
        self._report(ts, now)
        return [digit]


_LOW = (697, 770, 852, 941)
_HIGH = (1209, 1336, 1477, 1633)
_KEYPAD = ("123A", "456B", "789C", "*0#D")


def tone_pcm(digit: str, duration_ms: int = 100, amplitude: int = 6000) -> bytes:
    """In-band DTMF (two sines) as linear PCM 8 kHz, for peers that did not negotiate telephone-event."""
    import math
    from array import array

    event_code(digit)
    d = digit.upper()
    row = next(i for i, keys in enumerate(_KEYPAD) if d in keys)
    low, high = _LOW[row], _HIGH[_KEYPAD[row].index(d)]
    n = 8 * duration_ms
    w1, w2 = 2 * math.pi * low / 8000, 2 * math.pi * high / 8000
    return array("h", (int(amplitude * (math.sin(w1 * i) + math.sin(w2 * i)) / 2) for i in range(n))).tobytes()
