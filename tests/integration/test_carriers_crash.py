"""A server crash (kill -9) in the middle of a burst to a carrier, then a restart on the same database.

At the moment of the kill, messages are in every state: queued, claimed, handed to the carrier
without an answer yet, answered but not yet recorded, recorded and waiting for their receipt,
delivered. After the restart every message the API stored must reach a final status, and the SMSC's
own record must show that no message was submitted twice: once a message may have reached the
carrier it is never sent again (an unrecorded answer makes it "in doubt", failed with 30008 rather
than risk a duplicate), and receipts the SMSC still owes arrive on the new binds.

Against both SMSCs (our simulator and smpp34), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.peers.carrier_server import (
    SMS,
    CarrierServer,
    app_server,
    carriers_toml,
    wait_final,
)
from tests.peers.smsc import Smsc
from tests.support.postgres import require_postgres
from tests.support.sms_app import Answer, AppServer

PEERS = ["sim", "smpp34"]
PREFIX = {"sim": "+1555", "smpp34": "+1666"}
N = 150


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, Smsc]]:
    started = {"sim": Smsc.simulator("--receipt-delay", "0.3").start(),
               "smpp34": Smsc.smpp34("--receipt-delay", "0.3").start()}
    yield started
    for p in started.values():
        p.kill()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, peers: dict[str, Smsc],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[CarrierServer]:
    if request.param == "postgres":
        require_postgres()
    config = SMS + carriers_toml([
        {"name": "sim", "port": peers["sim"].port, "prefixes": [PREFIX["sim"]]},
        {"name": "smpp34", "port": peers["smpp34"].port, "prefixes": [PREFIX["smpp34"]]},
    ])
    server = CarrierServer(request.param, tmp_path_factory.mktemp(f"carriers-crash-{request.param}"), config).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    yield from app_server()


def sender_burst(srv: CarrierServer, sender: str, to: str, bodies: list[str], url: str,
                 accepted: list[dict[str, Any]]) -> None:
    """POST until the server dies; keep what it accepted (answered 200)."""
    with srv.client() as c:
        for body in bodies:
            try:
                r = c.post(f"/Accounts/{srv.admin_sid}/SMS/Messages.json",
                           data={"From": sender, "To": to, "Body": body, "StatusCallback": url})
            except httpx.HTTPError:
                return
            if r.status_code != 200:
                return
            accepted.append(r.json())


@pytest.mark.parametrize("peer", PEERS)
def test_kill_9_mid_burst_then_restart(srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer,
                                        peer: str) -> None:
    smsc = peers[peer]
    binds = smsc.stats()["binds"]
    smsc.wait("binds", 2)
    path = apps.new_path("crash")
    url = apps.route(path, Answer("", 204, "text/plain"))
    tag = uuid.uuid4().hex[:8]
    sender = f"CR{tag[:6]}"  # one sender per run: the list API finds exactly this run's messages
    to = PREFIX[peer] + str(random.randrange(10**6, 10**7))
    accepted: list[dict[str, Any]] = []
    before = smsc.stats()
    thread = threading.Thread(target=sender_burst,
                              args=(srv, sender, to, [f"crash-{tag}-{i}" for i in range(N)], url, accepted))
    thread.start()
    smsc.wait("accepted", before["accepted"] + 40)  # mid-burst: the carrier has taken some, more are on the way
    srv.crash()
    thread.join()
    assert 40 <= len(accepted) < N, "the crash should land in the middle of the burst"
    # Receipts are due 0.3 s after each submit: the SMSC holds some for the next bind.
    smsc.wait("receipts_queued", before["receipts_queued"] + 1, timeout=5)

    srv.start()  # same database, same configuration
    smsc.wait("binds", binds + 2)
    with srv.client() as c:
        stored = c.get(f"/Accounts/{srv.admin_sid}/SMS/Messages.json",
                       params={"From": sender, "PageSize": "1000"}).json()["messages"]
    sids = {m["sid"] for m in stored}
    assert {m["sid"] for m in accepted} <= sids  # everything the API accepted survived the crash
    outcomes = wait_final(apps, path, sids, timeout=30)

    counts = smsc.texts(f"crash-{tag}-")
    with srv.client() as c:
        final = {m["sid"]: m for m in c.get(f"/Accounts/{srv.admin_sid}/SMS/Messages.json",
                                           params={"From": sender, "PageSize": "1000"}).json()["messages"]}
    assert all(m["status"] in ("delivered", "failed") for m in final.values()), \
        {m["status"] for m in final.values()}
    assert all(n == 1 for n in counts.values()), {t: n for t, n in counts.items() if n > 1}  # never twice
    for sid, m in final.items():
        if m["status"] == "delivered":
            assert counts.get(m["body"]) == 1
        else:  # in doubt at the crash: maybe at the carrier, maybe not, but never sent again
            assert m["error_code"] == 30008, m
        assert outcomes[sid].final == m["status"]
    delivered = sum(1 for m in final.values() if m["status"] == "delivered")
    assert delivered >= len(final) - 40, f"{len(final) - delivered} of {len(final)} failed as in doubt"


@pytest.mark.parametrize("peer", PEERS)
def test_sigterm_mid_burst_drains_unbinds_and_loses_nothing(srv: CarrierServer, peers: dict[str, Smsc],
                                                          apps: AppServer, peer: str) -> None:
    """A graceful stop: the dispatcher stops claiming, the sends in hand finish and are recorded, the
    carrier unbinds; after the restart the rest goes out. Nothing is in doubt, nothing is sent twice."""
    smsc = peers[peer]
    binds = smsc.stats()["binds"]
    smsc.wait("binds", 2)
    path = apps.new_path("sigterm")
    url = apps.route(path, Answer("", 204, "text/plain"))
    tag = uuid.uuid4().hex[:8]
    sender = f"ST{tag[:6]}"
    accepted: list[dict[str, Any]] = []
    before = smsc.stats()
    thread = threading.Thread(target=sender_burst, args=(
        srv, sender, PREFIX[peer] + str(random.randrange(10**6, 10**7)), [f"term-{tag}-{i}" for i in range(N)], url,
        accepted))
    thread.start()
    smsc.wait("accepted", before["accepted"] + 40)
    srv.stop()  # SIGTERM, and wait for the process to exit
    thread.join()
    assert smsc.stats()["connections"] == 0  # every bind was unbound, none left dangling
    srv.start()
    smsc.wait("binds", binds + 2)
    with srv.client() as c:
        stored = c.get(f"/Accounts/{srv.admin_sid}/SMS/Messages.json",
                       params={"From": sender, "PageSize": "1000"}).json()["messages"]
    assert {m["sid"] for m in accepted} <= {m["sid"] for m in stored}
    outcomes = wait_final(apps, path, [m["sid"] for m in stored], timeout=30)
    assert {o.final for o in outcomes.values()} == {"delivered"}  # drained: nothing in doubt
    assert smsc.texts(f"term-{tag}-") == {m["body"]: 1 for m in stored}


@pytest.fixture(params=["sqlite", "postgres"])
def slow_srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[CarrierServer, Smsc]
]:
    """A carrier limited to 5 messages/s (1 bind, window 5): its hand-off capacity is 10 messages."""
    if request.param == "postgres":
        require_postgres()
    smsc = Smsc.simulator("--receipt-delay", "0.1").start()
    config = SMS + carriers_toml([{"name": "slow", "port": smsc.port, "binds": 1, "window": 5, "max_tps": 5,
                                   "prefixes": [""]}])
    server = CarrierServer(request.param, tmp_path_factory.mktemp(f"slow-crash-{request.param}"), config).start()
    yield server, smsc
    server.close()
    smsc.kill()


def test_kill_9_behind_a_tps_limited_carrier_puts_in_doubt_only_what_it_held(
    slow_srv: tuple[CarrierServer, Smsc], apps: AppServer
) -> None:
    """60 messages queue behind a 5/s carrier; the kill comes after a few went out. Only the
    messages in the carrier's hands (at most its capacity, 10) may be in doubt; the backlog that
    never left is sent after the restart, once each."""
    srv, smsc = slow_srv
    smsc.wait("binds", 1)
    path = apps.new_path("slow")
    url = apps.route(path, Answer("", 204, "text/plain"))
    tag = uuid.uuid4().hex[:8]
    with srv.client() as c:
        sent = [c.post(f"/Accounts/{srv.admin_sid}/SMS/Messages.json",
                       data={"From": "SLOW", "To": "+15557000001", "Body": f"slow-{tag}-{i}", "StatusCallback": url}
                       ).json() for i in range(60)]
    smsc.wait("accepted", 5)
    srv.crash()
    srv.start()
    outcomes = wait_final(apps, path, [m["sid"] for m in sent], timeout=40)
    counts = smsc.texts(f"slow-{tag}-")
    assert all(n == 1 for n in counts.values()), counts
    in_doubt = [o for o in outcomes.values() if o.final == "failed"]
    assert all(o.error_code == "30008" for o in in_doubt)
    assert len(in_doubt) <= 10, f"{len(in_doubt)} in doubt: more than the carrier could have held"
    assert sum(1 for o in outcomes.values() if o.final == "delivered") >= 50
