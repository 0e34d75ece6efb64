"""Carriers misbehaving, end to end through a real `restcomm serve`: throttling, response timeouts,
a disconnect in the middle of a burst, and failover to a second carrier when the first is down.

The SMSCs are real subprocesses over TCP, our simulator (`restcomm smsc-sim`) and smpp34's server;
faults are switched on and off through their control ports while the server runs. Every message
must end in a final status (here: delivered) with nothing failed, and the SMSCs' own records say
how many times each text was submitted.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.peers.carrier_server import (
    FAST,
    SMS,
    CarrierServer,
    app_server,
    carriers_toml,
    send_many,
    wait_final,
)
from tests.peers.smsc import Smsc
from tests.support.ports import free_port
from tests.support.postgres import require_postgres
from tests.support.sms_app import Answer, AppServer

PEERS = ["sim", "smpp34"]
PREFIX = {"sim": "+1555", "smpp34": "+1666"}
WINDOW = 2 * FAST["window"]  # outstanding submits across both binds


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, Smsc]]:
    started = {"sim": Smsc.simulator().start(), "smpp34": Smsc.smpp34().start()}
    # Primaries for the failover tests, on ports chosen now but started by the tests (down at first).
    started["p-sim"] = Smsc.simulator(port=free_port())
    started["p-smpp34"] = Smsc.smpp34(port=free_port())
    yield started
    for p in started.values():
        p.kill()


# A primary that dies is noticed fast: probed after 0.3 s of silence, binds time out after 0.5 s,
# and a message queued on it comes back to the pipeline after 1 s.
PRIMARY = {"enquire_link_interval": 0.3, "bind_timeout": 0.5, "connect_timeout": 0.5, "submit_timeout": 1.0,
           "max_attempts": 2, "bind_wait": 0.2}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, peers: dict[str, Smsc],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[CarrierServer]:
    if request.param == "postgres":
        require_postgres()
    config = SMS + carriers_toml([
        {"name": "sim", "port": peers["sim"].port, "prefixes": [PREFIX["sim"]]},
        {"name": "smpp34", "port": peers["smpp34"].port, "prefixes": [PREFIX["smpp34"]]},
        # +1777: the simulator first, smpp34 as the backup; +1778 the other way round.
        {"name": "p-sim", "port": peers["p-sim"].port, "prefixes": ["+1777"], **PRIMARY},
        # The backups log in to the same SMSCs under their own system_id, as a second account would.
        {"name": "b-smpp34", "port": peers["smpp34"].port, "prefixes": ["+1777"], "system_id": "backup"},
        {"name": "p-smpp34", "port": peers["p-smpp34"].port, "prefixes": ["+1778"], **PRIMARY},
        {"name": "b-sim", "port": peers["sim"].port, "prefixes": ["+1778"], "system_id": "backup"},
    ])
    binds = {k: peers[k].stats()["binds"] for k in ("sim", "smpp34")}
    server = CarrierServer(request.param, tmp_path_factory.mktemp(f"carriers-faults-{request.param}"), config).start()
    for k in ("sim", "smpp34"):
        peers[k].wait("binds", binds[k] + 4)  # two carriers of two binds each on each
    yield server
    server.close()


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    yield from app_server()


def state(srv: CarrierServer) -> dict[str, dict[str, Any]]:
    with srv.client() as c:
        r = c.get(f"/Accounts/{srv.admin_sid}/Carriers.json")
        assert r.status_code == 200, r.text
        return {x["name"]: x for x in r.json()}


def burst(srv: CarrierServer, apps: AppServer, prefix: str, label: str, n: int) -> tuple[str, str, list[dict[str, Any]]]:
    path = apps.new_path(label)
    url = apps.route(path, Answer("", 204, "text/plain"))
    tag = f"{label}-{uuid.uuid4().hex[:8]}-"
    to = [prefix + str(random.randrange(10**6, 10**7)) for _ in range(n)]
    return path, tag, send_many(srv, "ACME", to, [f"{tag}{i}" for i in range(n)], url)


def all_delivered(apps: AppServer, path: str, sent: list[dict[str, Any]], srv: CarrierServer | None = None) -> None:
    try:
        outcomes = wait_final(apps, path, [m["sid"] for m in sent], timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ncarriers: {state(srv) if srv else ''}\n{srv.log() if srv else ''}") from None
    bad = [o for o in outcomes.values() if o.statuses != ["sending", "sent", "delivered"]]
    assert not bad, f"{len(bad)} of {len(sent)}: {bad[:5]}\n{srv.log() if srv else ''}"


@pytest.mark.parametrize("peer", PEERS)
def test_throttling_backs_off_and_retries_without_failing_a_message(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, peer: str
) -> None:
    smsc = peers[peer]
    before = state(srv)[peer]["error_counts"]["throttled"]
    smsc.set("throttle_every", 4)  # ESME_RTHROTTLED for every 4th submit_sm
    try:
        path, tag, sent = burst(srv, apps, PREFIX[peer], "throttle", 40)
        all_delivered(apps, path, sent, srv)
    finally:
        smsc.set("throttle_every", 0)
    assert smsc.texts(tag) == {f"{tag}{i}": 1 for i in range(40)}  # each accepted exactly once
    assert state(srv)[peer]["error_counts"]["throttled"] - before >= 10


@pytest.mark.parametrize("peer", PEERS)
def test_response_timeouts_resend_the_submit(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, peer: str
) -> None:
    smsc = peers[peer]
    before = state(srv)[peer]["error_counts"]["timeouts"]
    smsc.set("drop_every", 5)  # every 5th submit_sm is never answered
    try:
        path, tag, sent = burst(srv, apps, PREFIX[peer], "timeout", 20)
        all_delivered(apps, path, sent, srv)
    finally:
        smsc.set("drop_every", 0)
    # The unanswered copies were not accepted by the SMSC, so each text went through exactly once.
    assert smsc.texts(tag) == {f"{tag}{i}": 1 for i in range(20)}
    assert state(srv)[peer]["error_counts"]["timeouts"] - before >= 4


@pytest.mark.parametrize("peer", PEERS)
def test_disconnect_mid_burst_reconnects_and_delivers_everything(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, peer: str
) -> None:
    smsc = peers[peer]
    reconnects = state(srv)[peer]["reconnects"]
    accepted = smsc.stats()["accepted"]
    binds = smsc.stats()["binds"]
    smsc.set("receipt_delay", 0.2)  # receipts still owed when the links drop
    try:
        path = apps.new_path("disconnect")
        url = apps.route(path, Answer("", 204, "text/plain"))
        tag = f"disconnect-{uuid.uuid4().hex[:8]}-"
        n = 80

        result: list[dict[str, Any]] = []
        sender = threading.Thread(target=lambda: result.extend(send_many(
            srv, "ACME", [PREFIX[peer] + str(random.randrange(10**6, 10**7))], [f"{tag}{i}" for i in range(n)], url)))
        sender.start()
        smsc.wait("accepted", accepted + 15)
        smsc.disconnect()  # every bind of this SMSC drops, mid-burst
        sender.join()
        smsc.wait("binds", binds + 4)  # both carriers on this SMSC bound again
        all_delivered(apps, path, result, srv)
    finally:
        smsc.set("receipt_delay", 0)
    counts = smsc.texts(tag)
    assert set(counts) == {f"{tag}{i}" for i in range(n)}
    # A submit in flight when the link dropped may have been accepted without us hearing it: it is
    # sent again (at most once per slot of the window), never lost.
    assert sum(counts.values()) - n <= 2 * WINDOW
    assert state(srv)[peer]["reconnects"] > reconnects


@pytest.mark.parametrize(("primary", "backup", "prefix"), [("sim", "smpp34", "+1777"), ("smpp34", "sim", "+1778")])
def test_failover_to_the_next_carrier_while_the_first_is_down(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, primary: str, backup: str, prefix: str
) -> None:
    p, b = peers[f"p-{primary}"], peers[backup]
    pname = f"p-{primary}"
    # 1. The primary's SMSC is not running: the backup takes the traffic.
    assert state(srv)[pname]["status"] == "down"
    path, tag1, sent = burst(srv, apps, prefix, "down", 10)
    all_delivered(apps, path, sent, srv)
    assert b.texts(tag1) == {f"{tag1}{i}": 1 for i in range(10)}
    # 2. It comes up: the primary binds and takes the traffic back.
    p.start()
    try:
        p.wait("binds", 2)
        path, tag2, sent = burst(srv, apps, prefix, "up", 10)
        all_delivered(apps, path, sent, srv)
        assert p.texts(tag2) == {f"{tag2}{i}": 1 for i in range(10)} and not b.texts(tag2)
        if primary != "sim":
            return  # smpp34's core answers enquire_link itself, so it cannot play a hung SMSC
        # 3. It hangs mid-burst (TCP up, nothing answered, binds probed and dropped): the rest fails over.
        accepted = p.stats()["accepted"]

        result: list[dict[str, Any]] = []
        path = apps.new_path("hang")
        url = apps.route(path, Answer("", 204, "text/plain"))
        tag3 = f"hang-{uuid.uuid4().hex[:8]}-"
        sender = threading.Thread(target=lambda: result.extend(
            send_many(srv, "ACME", [prefix + "1234567"], [f"{tag3}{i}" for i in range(40)], url)))
        sender.start()
        p.wait("accepted", accepted + 5)
        p.set("mute", True)
        sender.join()
        all_delivered(apps, path, result, srv)
        on_p, on_b = p.texts(tag3), b.texts(tag3)
        assert set(on_p) | set(on_b) == {f"{tag3}{i}" for i in range(40)}
        assert not set(on_p) & set(on_b) and all(v == 1 for v in {**on_p, **on_b}.values())
        assert on_b, "nothing failed over"
    finally:
        p.kill()
