"""The metrics registry and its Prometheus text exposition, byte for byte."""

from __future__ import annotations

import asyncio

import pytest

from restcomm.observability import Registry


def test_counter_gauge_histogram_exposition() -> None:
    r = Registry()
    sent = r.counter("restcomm_test_messages_total", "Messages\nsent", ("direction", "status"))
    sent.labels("outbound-api", "sent").inc()
    sent.labels(direction="outbound-api", status="sent").inc(2)
    sent.labels("inbound", 'we"ird\\').inc()
    depth = r.gauge("restcomm_test_queue_depth", "Depth")
    depth.set(7)
    h = r.histogram("restcomm_test_seconds", "Latency", ("route",), buckets=(0.1, 1))
    h.labels("/a").observe(0.05)
    h.labels("/a").observe(0.1)  # a value on a bound counts in that bucket (le)
    h.labels("/a").observe(3)
    assert r.exposition() == (
        "# HELP restcomm_test_messages_total Messages\\nsent\n"
        "# TYPE restcomm_test_messages_total counter\n"
        'restcomm_test_messages_total{direction="outbound-api",status="sent"} 3\n'
        'restcomm_test_messages_total{direction="inbound",status="we\\"ird\\\\"} 1\n'
        "# HELP restcomm_test_queue_depth Depth\n"
        "# TYPE restcomm_test_queue_depth gauge\n"
        "restcomm_test_queue_depth 7\n"
        "# HELP restcomm_test_seconds Latency\n"
        "# TYPE restcomm_test_seconds histogram\n"
        'restcomm_test_seconds_bucket{route="/a",le="0.1"} 2\n'
        'restcomm_test_seconds_bucket{route="/a",le="1"} 2\n'
        'restcomm_test_seconds_bucket{route="/a",le="+Inf"} 3\n'
        'restcomm_test_seconds_sum{route="/a"} 3.15\n'
        'restcomm_test_seconds_count{route="/a"} 3\n'
    )


def test_declaring_again_returns_the_same_family_and_conflicts_are_refused() -> None:
    r = Registry()
    a = r.counter("restcomm_x_total", "x", ("carrier",))
    assert r.counter("restcomm_x_total", "x", ("carrier",)) is a
    with pytest.raises(ValueError):
        r.gauge("restcomm_x_total")
    with pytest.raises(ValueError):
        r.counter("restcomm_x_total", "x", ("other",))
    with pytest.raises(ValueError):
        r.counter("bad name")
    with pytest.raises(ValueError):
        a.labels("one", "two")
    with pytest.raises(ValueError):
        a.labels().inc()
    with pytest.raises(ValueError):
        a.labels("acme").inc(-1)


def test_collectors_run_before_exposition_and_failures_are_contained() -> None:
    r = Registry()
    g = r.gauge("restcomm_y", "y", ("carrier",))
    calls = []

    def sync_collector() -> None:
        calls.append("sync")
        g.labels("acme").set(2)

    async def async_collector() -> None:
        calls.append("async")
        g.labels("beta").set(1)

    def broken() -> None:
        raise RuntimeError("boom")

    for fn in (sync_collector, broken, async_collector):
        r.collector(fn)
    asyncio.run(r.collect())
    assert calls == ["sync", "async"]
    assert 'restcomm_y{carrier="acme"} 2' in r.exposition() and 'restcomm_y{carrier="beta"} 1' in r.exposition()
    r.remove_collector(sync_collector)
    assert r.collectors == [broken, async_collector]
