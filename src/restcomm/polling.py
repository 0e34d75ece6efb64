"""The wake-or-poll worker: the one loop every background worker of the server runs.

A worker polls a table for work (the send queue, the application queue, the status-callback and
email outboxes, stored MO parts, parked receipts). Polling alone would be slow to react, so a
writer that commits work *wakes* the worker through an ``asyncio.Event``; polling alone catches
what the event cannot see (work left by a dead node, retries falling due, other nodes' commits).

The loop, in one place::

    while not stopping:
        woken = wake.is_set(); wake.clear()
        delay = await run_pass(woken)      # one pass; the seconds to wait before the next
        if stopping: break
        if delay is None: wait for a wake  # nothing can be done until something changes
        elif delay > 0: wait for a wake, at most ``delay`` seconds   (``pause``)
                                           # 0: the pass was full, run the next one now

The event is cleared *before* the pass, so a wake that comes during a pass is not lost: the wait
after it returns at once. A pass handles its own failures (logging them and choosing how long to
back off), because what a failure means differs from worker to worker.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wake_or_poll(event: asyncio.Event, delay: float | None) -> bool:
    """Wait until ``event`` is set or ``delay`` seconds pass (forever when None); True if woken."""
    if delay is None:
        await event.wait()
        return True
    try:
        await asyncio.wait_for(event.wait(), delay)
    except TimeoutError:
        return False
    return True


class PollingWorker:
    """Base of the background workers: the task, the wake event and the loop (see the module doc).

    Subclasses implement :meth:`run_pass`; they may override :meth:`pause` (a worker whose next
    deadline can move while it waits). ``stopping`` is True from :meth:`stop_loop` on.
    """

    task_name = "polling-worker"

    def __init__(self, wake: asyncio.Event | None = None) -> None:
        self.wake_event = wake if wake is not None else asyncio.Event()
        self.stopping = False
        self._task: asyncio.Task[None] | None = None

    async def run_pass(self, woken: bool) -> float | None:
        """One pass over the work; returns the seconds to wait for a wake before the next (0: none,
        None: until woken). ``woken`` says whether a wake came since the previous pass."""
        raise NotImplementedError

    async def pause(self, delay: float | None) -> None:
        await wake_or_poll(self.wake_event, delay)

    def wake(self) -> None:
        self.wake_event.set()

    def start_loop(self) -> None:
        self.stopping = False
        self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop_loop(self, *, cancel: bool = False, grace: float | None = None) -> None:
        """Stop the loop: let the pass in hand finish (``cancel=False``; cancelled anyway after
        ``grace`` seconds when one is given), or cancel it at once (``cancel=True``)."""
        self.stopping = True
        self.wake_event.set()
        task, self._task = self._task, None
        if task is None:
            return
        if cancel:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        if grace is None:
            await task
            return
        try:
            await asyncio.wait_for(task, timeout=grace)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while not self.stopping:
            woken = self.wake_event.is_set()
            self.wake_event.clear()
            delay = await self.run_pass(woken)
            if self.stopping:
                break
            if delay is None or delay > 0:
                await self.pause(delay)
