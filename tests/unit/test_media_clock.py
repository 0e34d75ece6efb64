"""The media clock's thread: streams added from the event loop, results handed back thread-safely,
the barrier that lets a leg close its socket, and a failing stream that does not stop the others.

Bounded waits on asyncio futures only; the clock's own 20 ms tick is real time (a few ticks)."""

from __future__ import annotations

import asyncio
import threading

from restcomm.media.clock import MediaClock


class Counting:
    """Steps `frames` times on the clock thread, then resolves a future on the test's loop."""

    def __init__(self, frames: int, *, fail_at: int | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.frames = frames
        self.fail_at = fail_at
        self.times: list[float] = []
        self.threads: set[str] = set()
        self.done: asyncio.Future[str] = self.loop.create_future()
        self.started: asyncio.Future[None] = self.loop.create_future()

    def _end(self, how: str) -> None:
        self.loop.call_soon_threadsafe(lambda: self.done.done() or self.done.set_result(how))

    def step(self, now: float) -> bool:
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and len(self.times) == self.fail_at:
            raise RuntimeError("boom")
        if len(self.times) >= self.frames:
            self._end("played")
            return False
        self.times.append(now)
        if len(self.times) == 1:
            self.loop.call_soon_threadsafe(self.started.set_result, None)
        return True

    def abort(self) -> None:
        self._end("aborted")


async def test_streams_run_on_the_clock_thread_at_drift_free_deadlines() -> None:
    clock = MediaClock()
    # never re-anchor (a loaded machine may stall the thread for more than 10 frames): the schedule
    # under test is the plain one, t0 + n * 20 ms
    clock.pacer.max_lag = 1 << 30
    a, b = Counting(5), Counting(3)
    clock.add(a)
    clock.add(b)
    assert await asyncio.wait_for(a.done, 5) == "played"
    assert await asyncio.wait_for(b.done, 5) == "played"
    assert a.threads == {"restcomm-media-clock"}
    # deadlines come from the schedule, not from when the thread woke: exactly 20 ms apart
    assert [round(t - a.times[0], 6) for t in a.times] == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert set(b.times) <= set(a.times)  # one tick for every stream (b joined at the first or the next)
    assert clock.ticks >= 5  # the sixth tick (a's end) may not be counted yet when its future resolves


async def test_barrier_resolves_after_a_complete_tick_and_at_once_on_an_idle_clock() -> None:
    clock = MediaClock()
    assert (await asyncio.wait_for(clock.barrier(), 1)) is None  # never ran: nothing to wait for
    s = Counting(50)
    clock.add(s)
    await asyncio.wait_for(s.started, 5)
    seen = len(s.times)
    await asyncio.wait_for(clock.barrier(), 5)
    assert len(s.times) > seen  # at least one more tick ran to its end before the barrier resolved
    s.frames = 0  # ends at its next step
    await asyncio.wait_for(s.done, 5)
    await asyncio.wait_for(clock.barrier(), 5)  # an idle running clock releases barriers too


async def test_a_failing_stream_is_aborted_and_the_others_keep_playing() -> None:
    clock = MediaClock()
    bad, good = Counting(10, fail_at=2), Counting(6)
    clock.add(bad)
    clock.add(good)
    assert await asyncio.wait_for(bad.done, 5) == "aborted"
    assert await asyncio.wait_for(good.done, 5) == "played"
    assert len(good.times) == 6
    # and the clock starts again after going idle
    again = Counting(2)
    clock.add(again)
    assert await asyncio.wait_for(again.done, 5) == "played"


def test_shared_is_one_clock_per_process() -> None:
    assert MediaClock.shared() is MediaClock.shared()
