"""The media clock: one thread per process that sends every playing prompt's next frame each 20 ms.

Why a thread. The tick used to run on the application's event loop, so every callback that ran
long there (an application fetch, a call record written, a burst of SIP) pushed the next 20 ms
frame of every call back by as much: at 45 calls/s the RTP interval p99 reached 53 ms
(docs/performance.md, "Voice"). On its own thread the tick waits for the loop only as long as
CPython lets one thread keep the GIL while another wants it (`sys.getswitchinterval()`: CPython's
default 5 ms, 1 ms in a serving process, restcomm/runtime.py), not for a whole callback, and the
loop keeps doing everything else.

The contract with the thread:

- a stream is anything with `step(now) -> bool` (send the frame due at `now`; False when over);
  `add()` may be called from any thread; streams join at the next tick (the first tick after an
  idle clock is immediate), as before;
- a stream runs only on the clock thread, so whatever it sends with and whatever it changes while
  it plays belongs to that thread until it reports itself over (the endpoint resolves its asyncio
  future with `loop.call_soon_threadsafe`);
- `barrier()` returns a future (of the caller's loop) that resolves once a tick that began after
  the call has finished: a caller that first marks its streams stopped (the endpoint's `closed`)
  then knows no frame of them is being sent any more, and may close the socket.

Pacing is the drift-free `Pacer` on `time.monotonic`, so lateness of one tick is absorbed by the
next and a long stall re-anchors the schedule instead of bursting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from typing import Protocol

from .pacer import Pacer

log = logging.getLogger("restcomm.media")

FRAME_SECONDS = 0.020


class Stream(Protocol):
    def step(self, now: float) -> bool:
        """Send the frame due at `now`; False when the stream is over (it is then dropped)."""

    def abort(self) -> None:
        """`step` raised: end the stream (its owner must not wait for it forever)."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MediaClock:
    """A drift-free 20 ms tick on a daemon thread; runs only while something is playing."""

    _shared: MediaClock | None = None
    _shared_lock = threading.Lock()

    def __init__(self, interval: float = FRAME_SECONDS) -> None:
        self.pacer = Pacer(interval, clock=time.monotonic)
        self._pending: collections.deque[Stream] = collections.deque()  # from any thread
        self._barriers: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = collections.deque()
        self._streams: list[Stream] = []  # the clock thread's own
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.ticks = 0
        self.late_ticks = 0  # ticks that began more than one frame after their deadline

    @classmethod
    def shared(cls) -> MediaClock:
        """The process-wide clock (one thread whatever the number of loops and calls)."""
        clock = cls._shared
        if clock is None:
            with cls._shared_lock:
                clock = cls._shared
                if clock is None:
                    clock = cls._shared = cls()
        return clock

    @property
    def running(self) -> bool:
        return self._thread is not None

    def add(self, stream: Stream) -> None:
        self._pending.append(stream)
        self._ensure_thread()
        self._wake.set()

    def barrier(self) -> asyncio.Future[None]:
        """A future resolved after the next complete tick (at once when the clock never ran)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._thread is None:
            future.set_result(None)
            return future
        self._barriers.append((loop, future))
        self._wake.set()
        return future

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(target=self._run, name="restcomm-media-clock", daemon=True)
                    thread.start()
                    self._thread = thread

    def _release_barriers(self, count: int) -> None:
        for _ in range(count):
            loop, future = self._barriers.popleft()
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future)

    def _run(self) -> None:
        pacer, wake, pending = self.pacer, self._wake, self._pending
        while True:
            if not self._streams:
                wake.clear()
                if not pending:
                    self._release_barriers(len(self._barriers))
                    wake.wait()
                    continue
                pacer.start()
            # barriers asked for before this tick are released after it
            waiting = len(self._barriers)
            delay = pacer.delay()
            if delay > 0:
                time.sleep(delay)
            now = pacer.deadline()
            if time.monotonic() - now > pacer.interval:
                self.late_ticks += 1
            while pending:
                self._streams.append(pending.popleft())
            self._streams = self._tick(now)
            pacer.advance()
            self.ticks += 1
            if waiting:
                self._release_barriers(waiting)

    def _tick(self, now: float) -> list[Stream]:
        alive = []
        for stream in self._streams:
            try:
                if stream.step(now):
                    alive.append(stream)
            except Exception:  # a bug in one stream must not silence every call in the process
                log.exception("media stream failed; stopped")
                with contextlib.suppress(Exception):
                    stream.abort()
        return alive
