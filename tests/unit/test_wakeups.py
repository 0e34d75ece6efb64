"""The pure parts of the wake-ups between nodes (store/wakeups.py); the connection itself is tested
with two real servers on PostgreSQL (tests/integration/test_node_wakes.py)."""

from __future__ import annotations

import asyncio

import pytest

from restcomm.store.wakeups import NodeWakes, asyncpg_dsn, decode, encode


def test_payload_is_the_sorted_known_topics() -> None:
    assert encode(["email", "apps", "apps", "bogus"]) == "apps,email"
    assert decode("apps,email") == ["apps", "email"]
    assert decode("apps,from-a-newer-node,,callbacks") == ["apps", "callbacks"]
    assert decode("") == []


def test_dsn_from_the_sqlalchemy_url() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://postgres:pw@127.0.0.1:5432/db") == "postgresql://postgres:pw@127.0.0.1:5432/db"
    assert asyncpg_dsn("sqlite+aiosqlite:////tmp/x.db") is None


def test_without_a_database_it_is_inert() -> None:
    async def run() -> None:
        wakes = NodeWakes(None)
        woken: list[str] = []
        wakes.subscribe("apps", lambda: woken.append("apps"))
        await wakes.start()
        wakes.publish("apps")  # nobody to tell, nothing kept
        await wakes.stop()
        assert not wakes.enabled and woken == [] and not wakes._pending

    asyncio.run(run())


def test_unknown_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown wake topic"):
        NodeWakes(None).subscribe("voice", lambda: None)


def test_heard_wakes_the_topics_of_other_nodes_only() -> None:
    wakes = NodeWakes(None)
    woken: list[str] = []
    wakes.subscribe("apps", lambda: woken.append("apps"))
    wakes.subscribe("email", lambda: woken.append("email"))
    wakes._pid = 42
    wakes._heard(None, 42, "restcomm_wake", "apps")  # our own
    assert woken == []
    wakes._heard(None, 7, "restcomm_wake", "apps,callbacks,email")
    assert woken == ["apps", "email"]
