"""Drift-free packet pacing: frame n is due at t0 + n * interval on a monotonic clock.

Sleeping a fixed 20 ms after each send accumulates every wake-up delay (a 20.3 ms average turns a
60 s prompt into 60.9 s and starves the peer's jitter buffer). Here the deadline is computed from
the start, so lateness of one wake-up is absorbed by the next. If the process stalls so long that
we are more than `max_lag` frames behind, the schedule is re-anchored instead of bursting all the
missed frames at once (a burst would overflow the peer's jitter buffer anyway).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    def __init__(self, interval: float = 0.020, *, clock: Callable[[], float] = time.monotonic,
                 max_lag: int = 10) -> None:
        self.interval = interval
        self.clock = clock
        self.max_lag = max_lag
        self.t0: float | None = None
        self.n = 0
        self.skipped = 0  # frames the schedule jumped over after stalls

    def start(self, t0: float | None = None) -> None:
        self.t0 = self.clock() if t0 is None else t0
        self.n = 0

    def deadline(self) -> float:
        """When the next frame is due."""
        if self.t0 is None:
            self.start()
        assert self.t0 is not None
        return self.t0 + self.n * self.interval

    def delay(self) -> float:
        """Seconds to wait before sending the next frame (0 when it is due or late)."""
        now = self.clock()
        due = self.deadline()
        late = now - due
        if late > self.max_lag * self.interval:
            frames = int(late / self.interval)
            self.skipped += frames
            assert self.t0 is not None
            self.t0 += frames * self.interval
            return 0.0
        return max(0.0, due - now)

    def advance(self) -> None:
        """Mark the current frame as sent."""
        self.n += 1

    async def wait(self) -> None:
        """Sleep until the next frame is due (uses the loop's monotonic clock via asyncio.sleep)."""
        d = self.delay()
        if d > 0:
            await asyncio.sleep(d)
