"""RFC 4733 events: the packets we send, and each received digit reported exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restcomm.media import dtmf


def test_event_packets_for_one_digit() -> None:
    packets = dtmf.event_packets("5", duration_ms=100, volume=10)
    assert [p.payload.hex() for p in packets] == [
        "050a00a0",  # 160
        "050a0140",  # 320
        "050a01e0",  # 480
        "050a0280",  # 640
        "058a0320", "058a0320", "058a0320",  # end bit, final duration 800, three times
    ]
    assert [p.marker for p in packets] == [True] + [False] * 6


def test_short_event_is_only_end_packets_first_marked() -> None:
    packets = dtmf.event_packets("#", duration_ms=20)
    assert [(p.payload.hex(), p.marker) for p in packets] == [("0b8a00a0", True), ("0b8a00a0", False),
                                                              ("0b8a00a0", False)]


@pytest.mark.parametrize(("digit", "code"), [("0", 0), ("9", 9), ("*", 10), ("#", 11), ("A", 12), ("d", 15)])
def test_event_codes(digit: str, code: int) -> None:
    assert dtmf.event_code(digit) == code
    assert dtmf.DtmfEvent(code, True, 0, 0).digit == digit.upper()


@pytest.mark.parametrize("bad", ["", "x", "12", " "])
def test_not_a_digit(bad: str) -> None:
    with pytest.raises(dtmf.DtmfError):
        dtmf.event_code(bad)


def feed_all(rx: dtmf.DtmfReceiver, stream: list[tuple[int, bytes]]) -> str:
    return "".join(d for ts, payload in stream for d in rx.feed(ts, payload))


def stream_for(digits: str, start_ts: int = 1000) -> list[tuple[int, bytes]]:
    out = []
    for i, d in enumerate(digits):
        out += [(start_ts + 2000 * i, p.payload) for p in dtmf.event_packets(d)]
    return out


def test_receiver_reports_each_digit_once_despite_three_end_packets() -> None:
    assert feed_all(dtmf.DtmfReceiver(), stream_for("1234#")) == "1234#"


def test_same_digit_twice_is_two_events() -> None:
    assert feed_all(dtmf.DtmfReceiver(), stream_for("55")) == "55"


def test_lost_end_packets_still_deliver_the_digit_when_the_next_event_starts() -> None:
    stream = [(ts, p) for ts, p in stream_for("78") if not (ts == 1000 and p[1] & 0x80)]
    assert feed_all(dtmf.DtmfReceiver(), stream) == "78"


def test_flush_reports_an_open_event_once() -> None:
    rx = dtmf.DtmfReceiver()
    rx.feed(50, dtmf.DtmfEvent(3, False, 10, 160).encode())
    assert rx.flush() == ["3"]
    assert rx.flush() == []
    assert rx.feed(50, dtmf.DtmfEvent(3, True, 10, 800).encode()) == []  # its late end is a duplicate


def test_reordered_end_before_update_is_not_repeated() -> None:
    rx = dtmf.DtmfReceiver()
    assert rx.feed(9, dtmf.DtmfEvent(1, True, 10, 800).encode()) == ["1"]
    assert rx.feed(9, dtmf.DtmfEvent(1, False, 10, 480).encode()) == []


def test_a_replayed_event_counts_again_once_its_retransmissions_are_over() -> None:
    rx = dtmf.DtmfReceiver(forget_after=1.0)
    stream = stream_for("1")
    assert "".join(d for ts, p in stream for d in rx.feed(ts, p, now=10.0)) == "1"
    assert "".join(d for ts, p in stream for d in rx.feed(ts, p, now=10.5)) == ""  # still a retransmission
    assert "".join(d for ts, p in stream for d in rx.feed(ts, p, now=12.0)) == "1"  # pressed again


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=8)), max_size=50))
def test_receiver_takes_any_payload(stream: list[tuple[int, bytes]]) -> None:
    rx = dtmf.DtmfReceiver()
    for ts, payload in stream:
        for d in rx.feed(ts, payload):
            assert d in dtmf.EVENTS


@given(st.text(alphabet=dtmf.EVENTS, max_size=20))
def test_any_digit_string_round_trips(digits: str) -> None:
    assert feed_all(dtmf.DtmfReceiver(), stream_for(digits)) == digits
