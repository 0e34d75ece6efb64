"""The seam between the Calls API and the voice engine: what a CallPlacer and a CallControl receive.

The server runs in-process (Starlette's TestClient, lifespan included) on a fresh SQLite database,
with a recording engine in the container's ``call_placer``/``call_control`` slots, where the real one will be wired (voice/ports.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from restcomm.app import build_app
from restcomm.config import load_settings
from restcomm.container import Services
from restcomm.store import db
from restcomm.voice.ports import CallControl, CallNotHere, CallPlacer, OutboundCall

API = "/restcomm/2012-04-24"


@dataclass
class Engine:
    placed: list[OutboundCall] = field(default_factory=list)
    actions: list[tuple[str, ...]] = field(default_factory=list)
    refuse: bool = False
    here: bool = True

    async def place(self, call: OutboundCall) -> None:
        if self.refuse:
            raise RuntimeError("no route to the destination")
        self.placed.append(call)

    async def redirect(self, call_sid: str, url: str, method: str) -> None:
        if not self.here:
            raise CallNotHere(call_sid)
        self.actions.append(("redirect", call_sid, url, method))

    async def hangup(self, call_sid: str, status: str) -> None:
        if not self.here:
            raise CallNotHere(call_sid)
        self.actions.append(("hangup", call_sid, status))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, Engine, Services]]:
    settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path), "RESTCOMM_ADMIN_PASSWORD": "Adm1n-Pa55word!",
                                  "RESTCOMM_ADMIN_EMAIL": "admin@example.com", "RESTCOMM_SIP_LISTEN": "127.0.0.1:0"})
    services = Services(settings=settings, engine=db.create_engine(settings))
    engine = Engine()
    services.call_placer = engine
    services.call_control = engine
    with TestClient(build_app(settings, services), base_url="http://testserver") as client:
        client.auth = ("admin@example.com", "Adm1n-Pa55word!")
        yield client, engine, services


def _account(client: TestClient) -> str:
    sid: str = client.get(f"{API}/Accounts/admin@example.com.json").json()["sid"]
    r = client.post(f"{API}/Accounts/{sid}/IncomingPhoneNumbers.json", data={"PhoneNumber": "+15550100100",
                                                                          "isSIP": "true"})
    assert r.status_code == 200, r.text
    return sid


def _call(client: TestClient, sid: str, call_sid: str) -> dict[str, Any]:
    r = client.get(f"{API}/Accounts/{sid}/Calls/{call_sid}.json")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_engine_satisfies_the_protocols() -> None:
    assert isinstance(Engine(), CallPlacer) and isinstance(Engine(), CallControl)


def test_create_hands_the_committed_call_to_the_placer(world: tuple[TestClient, Engine, Services]) -> None:
    client, engine, _ = world
    sid = _account(client)
    r = client.post(f"{API}/Accounts/{sid}/Calls.json", data={
        "From": "+15550100100", "To": "sip:bob@192.0.2.1:5070?X-Ticket=42&Other=no", "Url": "http://app.example/a",
        "Method": "GET", "FallbackUrl": "http://app.example/f", "Timeout": "25", "Record": "true",
        "Username": "bob", "Password": "pw"})
    assert r.status_code == 200, r.text
    (placed,) = engine.placed
    assert placed.sid == r.json()["sid"] and placed.account_sid == sid
    assert placed.to == "sip:bob@192.0.2.1:5070" and dict(placed.sip_headers) == {"X-Ticket": "42"}
    assert (placed.url, placed.method, placed.fallback_url, placed.fallback_method) == (
        "http://app.example/a", "GET", "http://app.example/f", "POST")
    assert placed.timeout == 25 and placed.record and (placed.username, placed.password) == ("bob", "pw")
    assert _call(client, sid, placed.sid)["status"] == "queued"  # the engine reports from here on


def test_a_refused_call_fails_with_a_notification(world: tuple[TestClient, Engine, Services]) -> None:
    client, engine, _ = world
    sid = _account(client)
    engine.refuse = True
    r = client.post(f"{API}/Accounts/{sid}/Calls.json", data={"From": "+15550100100", "To": "+15550100200",
                                                              "Url": "http://app.example/a"})
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert _call(client, sid, r.json()["sid"])["status"] == "failed"
    notes = client.get(f"{API}/Accounts/{sid}/Notifications.json").json()["notifications"]
    assert notes[0]["error_code"] == 19101 and "no route to the destination" in notes[0]["message_text"]


def test_live_modification_goes_to_the_control(world: tuple[TestClient, Engine, Services]) -> None:
    import asyncio

    from restcomm.voice import store as vs

    client, engine, services = world
    sid = _account(client)
    call_sid = client.post(f"{API}/Accounts/{sid}/Calls.json", data={
        "From": "+15550100100", "To": "+15550100200", "Url": "http://app.example/a"}).json()["sid"]

    async def answered() -> None:  # what the engine writes as the call progresses (its own connection)
        engine_db = db.create_engine(services.settings)
        try:
            async with engine_db.begin() as conn:
                now = services.clock()
                await vs.call_initiated(conn, call_sid, now, node="here", lease_seconds=30)
                await vs.set_call_status(conn, call_sid, vs.IN_PROGRESS, now)
        finally:
            await engine_db.dispose()

    asyncio.run(answered())
    r = client.post(f"{API}/Accounts/{sid}/Calls/{call_sid}.json", data={"Url": "http://app.example/b"})
    assert r.status_code == 200 and r.json()["status"] == "in-progress"
    r = client.post(f"{API}/Accounts/{sid}/Calls/{call_sid}.json", data={"Status": "completed"})
    assert r.status_code == 200
    assert engine.actions == [("redirect", call_sid, "http://app.example/b", "POST"),
                              ("hangup", call_sid, "completed")]
    engine.here = False  # the call runs on another node
    assert client.post(f"{API}/Accounts/{sid}/Calls/{call_sid}.json", data={"Status": "completed"}).status_code == 503
