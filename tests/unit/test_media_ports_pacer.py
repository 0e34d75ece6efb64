"""RTP port allocation and drift-free pacing (fake clock, no sleeps)."""

from __future__ import annotations

import pytest

from restcomm.media.pacer import Pacer
from restcomm.media.ports import PortAllocator, PortsExhausted


def test_even_ports_round_robin_and_release() -> None:
    ports = PortAllocator(20001, 20008)  # odd start rounds up; 20002..20008 -> 3 pairs (last RTCP 20007)
    assert ports.capacity == 3
    assert [ports.allocate() for _ in range(3)] == [20002, 20004, 20006]
    with pytest.raises(PortsExhausted):
        ports.allocate()
    ports.release(20004)
    ports.release(20004)  # twice is harmless
    assert ports.allocate() == 20004
    ports.release(20002)
    ports.release(20006)
    assert ports.allocate() == 20006  # round robin continues after the last handed out, not lowest first
    assert ports.in_use == 2


@pytest.mark.parametrize(("text", "first", "last"), [("20000-29999", 20000, 29999), ("30000-30003", 30000, 30003)])
def test_parse(text: str, first: int, last: int) -> None:
    p = PortAllocator.parse(text)
    assert (p.first, p.last) == (first, last)


@pytest.mark.parametrize("bad", [(20000, 20000), (80, 100), (60000, 70000)])
def test_bad_ranges(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        PortAllocator(*bad)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadlines_do_not_accumulate_wakeup_lateness() -> None:
    clock = FakeClock()
    pacer = Pacer(0.020, clock=clock)
    pacer.start()
    sent = []
    for _ in range(500):
        clock.now += pacer.delay() + 0.0013  # every wake-up is 1.3 ms late
        sent.append(clock.now)
        pacer.advance()
    # frame n goes out at t0 + n*20 ms + 1.3 ms: lateness does not grow
    assert sent[-1] - 100.0 == pytest.approx(499 * 0.020 + 0.0013)
    assert pacer.skipped == 0


def test_a_stall_reanchors_instead_of_bursting() -> None:
    clock = FakeClock()
    pacer = Pacer(0.020, clock=clock, max_lag=5)
    pacer.start()
    pacer.advance()
    clock.now += 1.0  # the process froze for a second
    assert pacer.delay() == 0.0
    assert pacer.skipped == 49
    pacer.advance()
    assert pacer.delay() == pytest.approx(0.0, abs=0.021)
    assert pacer.deadline() >= clock.now - 0.02


def test_small_lateness_is_caught_up_without_skipping() -> None:
    clock = FakeClock()
    pacer = Pacer(0.020, clock=clock, max_lag=5)
    pacer.start()
    clock.now += 0.065  # three frames late: send them back to back
    delays = []
    for _ in range(4):
        delays.append(pacer.delay())
        pacer.advance()
    assert delays == [0.0, 0.0, 0.0, 0.0]
    assert pacer.delay() == pytest.approx(0.015)
    assert pacer.skipped == 0
