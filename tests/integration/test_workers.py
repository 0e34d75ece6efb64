"""``restcomm serve --workers 2``: two processes on one port, each a node with its share of the binds.

Against the SMSC simulator over TCP, on SQLite and PostgreSQL: messages sent through both workers
are each delivered once with their callbacks in order; a worker killed with ``kill -9`` is replaced
and its work is finished; SIGTERM stops the whole server; a carrier with fewer binds than workers
is refused at start with a clear message.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.peers.carrier_server import (
    SMS,
    CarrierServer,
    app_server,
    carriers_toml,
    send_many,
    wait_final,
)
from tests.peers.smsc import Smsc
from tests.support import waiting
from tests.support.metrics import metrics
from tests.support.postgres import pg_create_database, require_postgres
from tests.support.server import API, base_env, start_server
from tests.support.sms_app import Answer, AppServer


def children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    # A connection the killed worker had accepted fails: that is "not yet".
    waiting.wait_for(predicate, timeout, what, ignore=(httpx.TransportError,))


@pytest.fixture(scope="module")
def smsc() -> Iterator[Smsc]:
    sim = Smsc.simulator("--receipt-delay", "0.1").start()
    yield sim
    sim.kill()


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    yield from app_server()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, smsc: Smsc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CarrierServer]:
    data_dir = tmp_path_factory.mktemp(f"workers-{request.param}")
    config = SMS + carriers_toml([{"name": "sim", "port": smsc.port, "binds": 2, "prefixes": [""]}])
    path = data_dir / "restcomm.toml"
    path.write_text(config)
    db_name = database_url = None
    if request.param == "postgres":
        require_postgres()
        db_name, database_url = pg_create_database(migrated=True)
    env = base_env(data_dir, database_url, path)
    env["RESTCOMM_WORKERS"] = "2"
    server = CarrierServer(request.param, data_dir, config, env=env, db_name=db_name).start()
    yield server
    server.close()


def carrier_views(srv: CarrierServer, n: int = 12) -> list[dict[str, object]]:
    """The carrier as several workers see it (a new connection per request: the kernel spreads them)."""
    out = []
    for _ in range(n):
        r = httpx.get(f"{srv.base_url}{API}/Accounts/{srv.admin_sid}/Carriers.json",
                      auth=(srv.admin_sid, srv.admin_token), timeout=10)
        assert r.status_code == 200, r.text
        out.append(r.json()[0])
    return out


def test_two_workers_each_open_their_share_of_the_binds_and_deliver_once(
    srv: CarrierServer, smsc: Smsc, apps: AppServer
) -> None:
    assert srv.proc is not None
    wait_for(lambda: len(children(srv.proc.pid)) == 2, what="two workers")
    # One bind per worker; every worker answers for the whole server: both binds.
    wait_for(lambda: all(v["bound"] == 2 for v in carrier_views(srv)), what="each worker's bind")
    assert {v["binds"] for v in carrier_views(srv)} == {2}
    tag = uuid.uuid4().hex[:8]
    path = f"/cb-{tag}"
    apps.route(path, Answer(status=204, body=""))
    bodies = [f"w-{tag}-{i:03d}" for i in range(60)]
    sent = send_many(srv, "WORKERS", ["+447700900001"], bodies, apps.url(path), threads=6)
    outcomes = wait_final(apps, path, [m["sid"] for m in sent])
    for o in outcomes.values():
        assert o.statuses == ["sending", "sent", "delivered"], o
    assert smsc.texts(f"w-{tag}-") == {b: 1 for b in bodies}


def test_every_worker_answers_for_the_whole_server(srv: CarrierServer, smsc: Smsc, apps: AppServer) -> None:
    """/metrics, /ready and the Carriers API give the same answer whichever worker takes the
    connection: counters summed over the workers, the carrier's binds and counters merged."""
    tag = uuid.uuid4().hex[:8]
    path = f"/cb-{tag}"
    apps.route(path, Answer(status=204, body=""))
    sent = send_many(srv, "WORKERS", ["+447700900003"], [f"v-{tag}-{i:03d}" for i in range(40)], apps.url(path),
                     threads=4)
    wait_final(apps, path, [m["sid"] for m in sent])
    # Every worker answers /ready for both (a new connection per request: the kernel spreads them).
    answered_by: set[int] = set()

    def ready() -> bool:
        r = httpx.get(srv.base_url + "/ready", timeout=10)
        assert r.status_code == 200, r.text
        checks = r.json()["checks"]
        assert checks["workers"] == {"0": "ready", "1": "ready"}, checks
        assert checks["carriers"] == {"sim": "up"}, checks
        answered_by.add(checks["answered_by"])
        return answered_by == {0, 1}

    wait_for(ready, what="/ready answered by each worker")
    # The carrier and the metrics: the same from every worker, and the sum of both workers' parts.
    views = [{k: v for k, v in view.items() if k != "tps"} for view in carrier_views(srv, 16)]  # tps: the last second
    assert all(v == views[0] for v in views), views
    view = views[0]
    assert view["bound"] == view["binds"] == 2 and view["status"] == "up"
    assert view["submitted"] >= 40 and view["messages_sent"] >= 40

    def scrape() -> dict[str, float]:
        return metrics(srv.base_url)

    scrapes = [scrape() for _ in range(16)]
    key = 'restcomm_smpp_submitted_total{carrier="sim"}'
    sent_key = 'restcomm_messages_total{direction="outbound-api",status="sent"}'
    assert {s["restcomm_workers_reporting"] for s in scrapes} == {2}
    assert {s[key] for s in scrapes} == {view["submitted"]}, [s[key] for s in scrapes]
    assert len({s[sent_key] for s in scrapes}) == 1 and scrapes[0][sent_key] >= 40
    assert {s['restcomm_smpp_binds{carrier="sim",state="bound"}'] for s in scrapes} == {2}
    # Requests on new connections (both workers take some): every scrape counts all of them.
    health = 'restcomm_http_request_duration_seconds_count{method="GET",route="/health",status="200"}'
    before = scrape().get(health, 0)
    for _ in range(20):
        assert httpx.get(srv.base_url + "/health", timeout=10).status_code == 200
    assert {scrape()[health] - before for _ in range(8)} == {20}


def test_a_worker_killed_is_replaced_and_nothing_is_lost(srv: CarrierServer, smsc: Smsc, apps: AppServer) -> None:
    assert srv.proc is not None
    before = children(srv.proc.pid)
    assert len(before) == 2
    tag = uuid.uuid4().hex[:8]
    path = f"/cb-{tag}"
    apps.route(path, Answer(status=204, body=""))
    first = send_many(srv, "WORKERS", ["+447700900002"], [f"k-{tag}-a{i:03d}" for i in range(30)],
                      apps.url(path), threads=4)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(children(srv.proc.pid)) == 2 and victim not in children(srv.proc.pid),  # type: ignore[union-attr]
             what="a replacement worker")
    wait_for(lambda: all(v["bound"] == 2 for v in carrier_views(srv, 6)), what="the replacement's bind")
    second = send_many(srv, "WORKERS", ["+447700900002"], [f"k-{tag}-b{i:03d}" for i in range(30)],
                       apps.url(path), threads=4)
    # Whatever the killed worker had in hand is finished by a node once its lease expires
    # (lease_seconds = 2 in these tests): delivered, or failed 30008 when it may have reached the SMSC.
    outcomes = wait_final(apps, path, [m["sid"] for m in first + second], timeout=30)
    assert all(o.final in ("delivered", "failed") for o in outcomes.values())
    assert all(o.final == "delivered" for o in (outcomes[m["sid"]] for m in second))
    for o in outcomes.values():
        if o.final == "failed":
            assert o.error_code == "30008", o
    counts = smsc.texts(f"k-{tag}-")
    assert all(n == 1 for n in counts.values()), counts  # never submitted twice


def test_sigterm_stops_every_worker(srv: CarrierServer) -> None:
    assert srv.proc is not None
    pids = children(srv.proc.pid)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    srv.proc = None


def test_fewer_binds_than_workers_is_refused_at_start(tmp_path: Path, smsc: Smsc) -> None:
    path = tmp_path / "restcomm.toml"
    path.write_text(SMS + carriers_toml([{"name": "one", "port": smsc.port, "binds": 1, "prefixes": [""]}]))
    env = base_env(tmp_path, None, path)
    env["RESTCOMM_WORKERS"] = "2"
    proc, _, log_path = start_server(env, tmp_path, wait=False)
    assert proc.wait(30) != 0
    assert "fewer than the 2 server processes" in log_path.read_text()
