"""voice.store on both databases: a call's life, and calls left live by a node that died.

Each test gets a fresh database (a SQLite file, or a throwaway PostgreSQL database), migrated to
head, and drives the store the way the voice engine and the recovery sweep do.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.config import SipTrunk, load_settings
from restcomm.store import db
from restcomm.store.schema import gateways, notifications, status_callbacks
from restcomm.voice import store as vs
from tests.support.postgres import pg_create_database, pg_drop_database, require_postgres

T0 = datetime(2026, 3, 1, 12, 0, 0)
Job = Callable[[AsyncConnection], Awaitable[Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Job], Any]]:
    """Runs a job in one transaction on a fresh, migrated database of the backend."""
    name = None
    env = {"RESTCOMM_DATA_DIR": tempfile.mkdtemp(prefix="voice-store-")}
    if request.param == "postgres":
        require_postgres()
        name, url = pg_create_database()
        env["RESTCOMM_DATABASE_URL"] = url
    settings = load_settings(env=env)
    asyncio.run(_upgrade(settings))

    def go(job: Job) -> Any:
        async def once() -> Any:
            engine = db.create_engine(settings)
            try:
                async with engine.begin() as conn:
                    return await job(conn)
            finally:
                await engine.dispose()

        return asyncio.run(once())

    try:
        yield go
    finally:
        if name is not None:
            pg_drop_database(name)
        else:
            for p in Path(env["RESTCOMM_DATA_DIR"]).glob("*"):
                p.unlink()


async def _upgrade(settings: Any) -> None:
    engine = db.create_engine(settings)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()


def _call(conn: AsyncConnection, **kw: Any) -> Awaitable[dict[str, Any]]:
    values: dict[str, Any] = {"account_sid": "AC" + "1" * 32, "from_number": "+15550001111",
                              "to_number": "+15550002222", "direction": "outbound-api"}
    values.update(kw)
    return vs.create_call(conn, T0, **values)


async def _callbacks(conn: AsyncConnection, sid: str) -> list[dict[str, str]]:
    rows = await conn.execute(select(status_callbacks.c.params).where(status_callbacks.c.message_sid == sid)
                              .order_by(status_callbacks.c.seq))
    return [orjson.loads(p) for (p,) in rows]


def test_a_call_from_start_to_end(run: Callable[[Job], Any]) -> None:
    async def job(conn: AsyncConnection) -> None:
        row = await _call(conn, status_callback="http://app.example/cb", status_callback_events="ringing,completed")
        assert row["status"] == vs.QUEUED and row["start_time"] is None
        assert await vs.call_initiated(conn, row["sid"], T0, node="n1", lease_seconds=30) is not None
        assert await vs.call_initiated(conn, row["sid"], T0, node="n2", lease_seconds=30) is None  # taken once
        await vs.set_call_status(conn, row["sid"], vs.RINGING, T0 + timedelta(seconds=2))
        await vs.set_call_status(conn, row["sid"], vs.IN_PROGRESS, T0 + timedelta(seconds=5))
        done = await vs.set_call_status(conn, row["sid"], vs.COMPLETED, T0 + timedelta(seconds=65))
        assert done is not None and done["duration"] == 60 and done["ring_duration"] == 5
        assert done["node"] is None and done["end_time"] == T0 + timedelta(seconds=65)
        # A final status never changes again.
        assert await vs.set_call_status(conn, row["sid"], vs.FAILED, T0 + timedelta(seconds=70)) is None
        sent = await _callbacks(conn, row["sid"])
        assert [(p["CallStatus"], p["SequenceNumber"]) for p in sent] == [("ringing", "0"), ("completed", "1")]
        assert sent[-1]["CallDuration"] == "60" and sent[-1]["Duration"] == "1"
        # Never answered: busy, with completed still reported.
        busy = await _call(conn, status=vs.RINGING, status_callback="http://app.example/cb")
        end = await vs.set_call_status(conn, busy["sid"], vs.BUSY, T0 + timedelta(seconds=9))
        assert end is not None and end["duration"] == 0 and end["ring_duration"] == 9
        assert [p["CallStatus"] for p in await _callbacks(conn, busy["sid"])] == ["busy"]

    run(job)


def test_parse_events() -> None:
    assert vs.parse_events(None) == "completed"
    assert vs.parse_events("answered initiated") == "initiated,answered,completed"
    assert vs.parse_events("ringing, completed") == "ringing,completed"
    with pytest.raises(ValueError):
        vs.parse_events("initiated hungup")


def test_calls_of_a_dead_node_do_not_stay_live(run: Callable[[Job], Any]) -> None:
    now = T0 + timedelta(minutes=10)

    async def setup(conn: AsyncConnection) -> dict[str, str]:
        sids = {}
        for name, node, status, lease in (
            ("dead_answered", "dead", vs.IN_PROGRESS, 600), ("dead_ringing", "dead", vs.RINGING, 600),
            ("expired", "gone", vs.IN_PROGRESS, -1), ("alive", "alive", vs.IN_PROGRESS, 600),
        ):
            row = await _call(conn, status_callback="http://app.example/cb")
            await vs.call_initiated(conn, row["sid"], T0, node=node, lease_seconds=600)
            if status == vs.IN_PROGRESS:
                await vs.set_call_status(conn, row["sid"], vs.IN_PROGRESS, T0 + timedelta(seconds=10))
            else:
                await vs.set_call_status(conn, row["sid"], vs.RINGING, T0 + timedelta(seconds=1))
            await vs.renew_call_leases(conn, node, [row["sid"]], now, lease)
            sids[name] = row["sid"]
        sids["untaken"] = (await _call(conn))["sid"]  # queued, no engine took it: left alone
        return sids

    sids = run(setup)

    async def recover(conn: AsyncConnection) -> list[Any]:
        return await vs.close_orphaned_calls(conn, now, dead_nodes=["dead"])

    closed = run(recover)
    assert {r["sid"] for r in closed} == {sids["dead_answered"], sids["dead_ringing"], sids["expired"]}

    async def check(conn: AsyncConnection) -> None:
        answered = await vs.get_call(conn, sids["dead_answered"])
        assert answered is not None and answered["status"] == vs.COMPLETED and answered["duration"] == 590
        assert "node dead stopped" in answered["end_reason"]
        ringing = await vs.get_call(conn, sids["dead_ringing"])
        assert ringing is not None and ringing["status"] == vs.FAILED and ringing["error_code"] == vs.NODE_STOPPED
        for key, status in (("expired", vs.COMPLETED), ("alive", vs.IN_PROGRESS), ("untaken", vs.QUEUED)):
            row = await vs.get_call(conn, sids[key])
            assert row is not None and row["status"] == status, key
        notes = (await conn.execute(select(notifications.c.call_sid, notifications.c.error_code))).all()
        assert sorted(notes) == sorted((sids[k], vs.NODE_STOPPED) for k in ("dead_answered", "dead_ringing", "expired"))
        last = (await _callbacks(conn, sids["dead_ringing"]))[-1]
        assert last["CallStatus"] == "failed" and last["ErrorCode"] == str(vs.NODE_STOPPED)

    run(check)
    assert run(recover) == []  # nothing left to close: a second sweep (or another node) finds nothing


def test_trunks_from_the_file_and_the_api(run: Callable[[Job], Any]) -> None:
    async def job(conn: AsyncConnection) -> list[SipTrunk]:
        for name, host in (("carrier-b", "10.0.0.2"), ("carrier-a", "10.0.0.9")):
            await conn.execute(gateways.insert().values(
                sid="GW" + name[-1] * 32, name=name, host=host, port=5070, transport="tcp", username="u",
                password="p", register=True, ttl=600, prefixes="+44,+33", inbound_addresses="10.0.0.0/24",
                date_created=T0, date_updated=T0))
        return await vs.sip_trunks(conn, [SipTrunk(name="carrier-a", host="192.0.2.1")])

    trunks = run(job)
    assert [(t.name, t.host) for t in trunks] == [("carrier-a", "192.0.2.1"), ("carrier-b", "10.0.0.2")]
    b = trunks[1]
    assert b.prefixes == ("+44", "+33") and b.inbound_addresses == ("10.0.0.0/24",) and b.transport == "tcp"


def test_registrations_refresh_in_order_and_expire(run: Callable[[Job], Any]) -> None:
    org = "OR" + "9" * 32

    async def job(conn: AsyncConnection) -> None:
        async def save(contact: str, call_id: str, cseq: int, expires: int, at: datetime = T0) -> bool:
            return await vs.save_binding(conn, at, organization_sid=org, aor="alice", contact=contact,
                                         expires_at=at + timedelta(seconds=expires), call_id=call_id, cseq=cseq,
                                         transport="udp", source_address="192.0.2.5:5060", user_agent="phone/1")

        assert await save("sip:alice@192.0.2.5:5060", "c1", 1, 300)
        assert await save("sip:alice@192.0.2.6:5060", "c2", 1, 60)  # a second device
        assert await save("sip:alice@192.0.2.5:5060", "c1", 2, 600, T0 + timedelta(seconds=5))  # refresh
        assert not await save("sip:alice@192.0.2.5:5060", "c1", 2, 10)  # retransmitted or late: ignored
        assert not await save("sip:alice@192.0.2.5:5060", "c1", 1, 10)
        assert await save("sip:alice@192.0.2.5:5060", "c9", 1, 600)  # a new Call-ID (the phone rebooted)
        now = T0 + timedelta(seconds=90)
        found = await vs.current_bindings(conn, org, "alice", now)
        assert [b["contact"] for b in found] == ["sip:alice@192.0.2.5:5060"]  # the other expired
        assert found[0]["call_id"] == "c9" and found[0]["user_agent"] == "phone/1"
        assert await vs.purge_expired_bindings(conn, now) == 1
        # Un-register with an older CSeq of the same Call-ID does not remove a newer refresh.
        assert await vs.remove_bindings(conn, organization_sid=org, aor="alice", contact="sip:alice@192.0.2.5:5060",
                                        call_id="c9", cseq=1) == 0
        assert await vs.remove_bindings(conn, organization_sid=org, aor="alice") == 1  # Contact: *
        assert await vs.current_bindings(conn, org, "alice", now) == []

    run(job)
