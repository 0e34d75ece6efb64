"""The wake-or-poll loop every background worker runs (restcomm.polling)."""

from __future__ import annotations

import asyncio

from restcomm.polling import PollingWorker, wake_or_poll

LONG = 60.0  # a poll interval no test waits out: progress comes from wakes only


class Scripted(PollingWorker):
    """Returns the scripted delays in turn, recording whether each pass was woken."""

    def __init__(self, delays: list[float | None]) -> None:
        super().__init__()
        self.delays = delays
        self.passes: list[bool] = []
        self.entered = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def run_pass(self, woken: bool) -> float | None:
        self.passes.append(woken)
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        return self.delays.pop(0) if self.delays else LONG


async def _passes(worker: Scripted, n: int) -> None:
    async with asyncio.timeout(5):
        while len(worker.passes) < n:
            worker.entered.clear()
            await worker.entered.wait()


def test_wake_or_poll_says_whether_it_was_woken() -> None:
    async def main() -> None:
        event = asyncio.Event()
        assert await wake_or_poll(event, 0.001) is False
        event.set()
        assert await wake_or_poll(event, LONG) is True
        assert await wake_or_poll(event, None) is True

    asyncio.run(main())


def test_a_full_pass_runs_the_next_at_once_and_a_wake_ends_the_wait() -> None:
    async def main() -> None:
        worker = Scripted([0, 0, LONG])
        worker.start_loop()
        await _passes(worker, 3)  # two full passes: no wait between them
        assert worker.passes == [False, False, False]
        worker.wake()
        await _passes(worker, 4)
        assert worker.passes[-1] is True
        await worker.stop_loop()

    asyncio.run(main())


def test_a_wake_during_a_pass_is_not_lost() -> None:
    async def main() -> None:
        worker = Scripted([LONG, LONG])
        worker.release = asyncio.Event()
        worker.start_loop()
        await _passes(worker, 1)
        worker.wake()  # while the pass is in hand
        worker.release.set()
        await _passes(worker, 2)
        assert worker.passes == [False, True]
        await worker.stop_loop()

    asyncio.run(main())


def test_none_waits_for_a_wake_however_long() -> None:
    async def main() -> None:
        worker = Scripted([None])
        worker.start_loop()
        await _passes(worker, 1)
        await asyncio.sleep(0)
        assert len(worker.passes) == 1
        worker.wake()
        await _passes(worker, 2)
        await worker.stop_loop()

    asyncio.run(main())


def test_stop_lets_the_pass_in_hand_finish_or_cancels_it() -> None:
    async def main() -> None:
        worker = Scripted([LONG])
        worker.release = asyncio.Event()
        worker.start_loop()
        await _passes(worker, 1)
        stopping = asyncio.create_task(worker.stop_loop())
        await asyncio.sleep(0)
        assert not stopping.done()  # the pass is still in hand
        worker.release.set()
        await asyncio.wait_for(stopping, 5)
        assert worker.passes == [False]  # no pass after the stop

        hung = Scripted([LONG])
        hung.release = asyncio.Event()  # never set
        hung.start_loop()
        await _passes(hung, 1)
        await asyncio.wait_for(hung.stop_loop(cancel=True), 5)
        grace = Scripted([LONG])
        grace.release = asyncio.Event()
        grace.start_loop()
        await _passes(grace, 1)
        await asyncio.wait_for(grace.stop_loop(grace=0.01), 5)

    asyncio.run(main())


def test_mo_parts_sweep_stops_at_once_while_waiting_for_its_plan() -> None:
    """A stop during the wait for the next planned sweep (10 s away) ends the loop at once: on
    Python 3.11 the cancellation can be dropped by ``asyncio.wait_for`` when it meets the wake
    event set by ``stop_loop``, so the wait itself must see ``stopping``."""
    from restcomm.smpp.mo import PARTS_SWEEP_IDLE, MoParts

    class Idle(MoParts):
        def __init__(self) -> None:
            PollingWorker.__init__(self)
            self._due = None
            self.swept = asyncio.Event()

        async def sweep(self) -> float | None:
            self.swept.set()
            return None  # no parts stored: the next sweep is PARTS_SWEEP_IDLE away

    async def main() -> None:
        worker = Idle()
        await worker.start()
        async with asyncio.timeout(5):
            await worker.swept.wait()
        await asyncio.sleep(0)  # into the wait for the planned sweep
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.timeout(PARTS_SWEEP_IDLE / 2):
            await worker.stop()
        assert loop.time() - start < PARTS_SWEEP_IDLE / 4

    asyncio.run(main())
