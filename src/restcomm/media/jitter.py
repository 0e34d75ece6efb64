"""Inbound stream bookkeeping (RFC 3550 §6.4.1, A.1, A.8): what to drop, how much silence to insert.

We do not delay audio to reorder it: the consumers (recording mixer, bridge, voice-activity) want
low latency, and the mixer already absorbs arrival jitter with its own prefill. So a packet older
than the newest one seen is dropped (duplicates, late reordering), and a forward jump in the RTP
timestamp is reported as a gap to fill with silence (bounded, so a peer that jumps its timestamp
after hold does not make us write minutes of silence). The same state gives the loss and
interarrival-jitter figures for receiver reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_GAP_SAMPLES = 8000  # fill at most 1 s of loss with silence


@dataclass
class InboundStream:
    clock_rate: int = 8000
    ssrc: int | None = None
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    next_ts: int | None = None  # the timestamp right after the last accepted frame
    jitter: float = 0.0  # in timestamp units
    _transit: float | None = field(default=None, repr=False)
    _expected_prior: int = field(default=0, repr=False)
    _received_prior: int = field(default=0, repr=False)

    def accept(self, seq: int, timestamp: int, ssrc: int, samples: int, arrival: float) -> int | None:
        """Returns None to drop the packet, else the number of silent samples to insert before it."""
        if ssrc != self.ssrc:  # new source (first packet, or the peer restarted its stream)
            self.ssrc, self.base_seq, self.max_seq, self.cycles = ssrc, seq, seq, 0
            self.received, self.next_ts, self._transit, self.jitter = 0, None, None, 0.0
            self._expected_prior = self._received_prior = 0
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta == 0 or delta >= 0x8000:
                return None  # duplicate or late
            if seq < self.max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq
        self.received += 1
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16
        self._transit = transit
        gap = 0
        if self.next_ts is not None:
            ahead = (timestamp - self.next_ts) & 0xFFFFFFFF
            if 0 < ahead < 0x80000000:
                gap = min(ahead, MAX_GAP_SAMPLES)
        self.next_ts = (timestamp + samples) & 0xFFFFFFFF
        return gap

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    def report(self) -> tuple[int, int, int, int]:
        """(fraction lost 0..255 since the last report, cumulative lost, extended highest seq, jitter)."""
        expected = self.extended_max - self.base_seq + 1 if self.ssrc is not None else 0
        lost = expected - self.received
        exp_int = expected - self._expected_prior
        rec_int = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_int = exp_int - rec_int
        fraction = (lost_int << 8) // exp_int if exp_int > 0 and lost_int > 0 else 0
        return min(fraction, 255), max(-0x800000, min(lost, 0x7FFFFF)), self.extended_max & 0xFFFFFFFF, int(self.jitter)
