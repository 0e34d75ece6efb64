"""Observability and operations over real HTTP against real server processes: /health and /ready,
Prometheus metrics, request ids in responses, the audit log and the logs, secrets kept out of the
logs, TLS serving, CORS, and the admin CLI run as subprocesses against the servers' databases.

Servers: the shared ``server`` (defaults, SQLite and PostgreSQL); ``ops``, configured as production
would be (TLS with a certificate from a throwaway CA, JSON logs at DEBUG with the access log, CORS
for one console origin, a metrics token); ``carrier`` with one SMPP carrier whose SMSC is started
only when the test wants it bound; and a PostgreSQL server whose database is taken away.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.peers.carrier_server import carriers_toml
from tests.peers.smsc import Smsc
from tests.support.hardened_server import Hardened, launch, new_account
from tests.support.metrics import metrics
from tests.support.ports import free_port
from tests.support.postgres import require_postgres
from tests.support.server import Server, Tenant
from tests.support.sms_app import add_number, send, wait_until

CONSOLE = "https://console.example.com"
METRICS_TOKEN = "scrape-" + uuid.uuid4().hex




def admin_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "restcomm", "admin", *args], env=env, capture_output=True,
                          text=True, timeout=60)


# ---------------------------------------------------------------------------------------------
# Health, readiness, metrics and request ids on the shared server (both databases)


def test_health_and_ready_are_unauthenticated(server: Server) -> None:
    assert httpx.get(server.base_url + "/health").json() == {"status": "ok"}
    r = httpx.get(server.base_url + "/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "carriers": "none configured"}}


def test_metrics_count_requests_by_route_template_and_status(server: Server, tenant: Tenant) -> None:
    route = "/restcomm/2012-04-24/Accounts/{AccountSid}/Clients"
    ok = f'restcomm_http_request_duration_seconds_count{{method="GET",route="{route}",status="200"}}'
    denied = f'restcomm_http_request_duration_seconds_count{{method="GET",route="{route}",status="401"}}'
    unmatched = 'restcomm_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}'
    before = metrics(server.base_url)
    with tenant.client() as c:
        for _ in range(3):
            assert c.get(f"/Accounts/{tenant.sid}/Clients.json").status_code == 200
        assert c.get("/No/Such/Thing.json").status_code == 404
    assert httpx.get(f"{server.api}/Accounts/{tenant.sid}/Clients.json").status_code == 401
    after = metrics(server.base_url)
    assert after[ok] - before.get(ok, 0) == 3
    assert after[denied] - before.get(denied, 0) == 1
    assert after[unmatched] - before.get(unmatched, 0) == 1
    bucket = f'restcomm_http_request_duration_seconds_bucket{{method="GET",route="{route}",status="200",le="+Inf"}}'
    assert after[bucket] == after[ok]
    # Gauges read from the tables and the process are exported too.
    for name in ('restcomm_message_queue_depth{status="queued"}', 'restcomm_message_queue_depth{status="sending"}',
                 "restcomm_status_callbacks_pending", "restcomm_email_queue_depth", "restcomm_process_start_time_seconds"):
        assert name in after, name
    assert after["restcomm_process_start_time_seconds"] > 1.6e9


def test_request_ids(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        mine = "req-" + uuid.uuid4().hex
        r = c.get(f"/Accounts/{tenant.sid}.json", headers={"X-Request-Id": mine})
        assert r.headers["X-Request-Id"] == mine
        generated = c.get(f"/Accounts/{tenant.sid}.json").headers["X-Request-Id"]
        assert re.fullmatch(r"RQ[0-9a-f]{28}", generated)
        assert c.get(f"/Accounts/{tenant.sid}.json").headers["X-Request-Id"] != generated
        # An id that could break a log line is replaced, not echoed.
        bad = c.get(f"/Accounts/{tenant.sid}.json", headers={"X-Request-Id": "a b\tc" + "x" * 200})
        assert re.fullmatch(r"RQ[0-9a-f]{28}", bad.headers["X-Request-Id"])
        # Errors carry one too; and the audit log records the id of the request that made a change.
        assert c.get("/Nope.json").headers["X-Request-Id"].startswith("RQ")
        change = "change-" + uuid.uuid4().hex
        r = c.post(f"/Accounts/{tenant.sid}.json", data={"FriendlyName": "renamed"}, headers={"X-Request-Id": change})
        assert r.status_code == 200
        trail = c.get(f"/Accounts/{tenant.sid}/AuditLog.json").json()
        events = trail[next(k for k, v in trail.items() if isinstance(v, list))]
        assert any(e.get("request_id") == change for e in events), events
        created = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={"Login": f"rid{uuid.uuid4().hex[:8]}",
                                                                        "Password": "Cl1ent-Passw0rd!"})
        assert created.status_code == 200
        rid = created.headers["X-Request-Id"]
        trail = c.get(f"/Accounts/{tenant.sid}/AuditLog.json").json()
        events = trail[next(k for k, v in trail.items() if isinstance(v, list))]
        assert any(e.get("request_id") == rid for e in events), "a generated id reaches the audit log too"


def test_cors_is_off_by_default(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}.json", headers={"Origin": CONSOLE})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = httpx.options(f"{server.api}/Accounts.json", headers={"Origin": CONSOLE, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}  # what the path does support


# ---------------------------------------------------------------------------------------------
# The admin CLI against the shared server's database


def test_admin_create_account_and_rotate_token(server: Server) -> None:
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    out = admin_cli(server.env, "create-account", "--email", email, "--password", "Cl1-Passw0rd-ok", "--json")
    assert out.returncode == 0, out.stderr
    account = json.loads(out.stdout)
    assert account["email_address"] == email and account["parent_sid"] == server.admin_sid
    sid, token = account["sid"], account["auth_token"]
    # The running server sees it at once (same database): token and password both work.
    with server.client(sid, token) as c:
        assert c.get(f"/Accounts/{sid}.json").status_code == 200
    with server.client(email, "Cl1-Passw0rd-ok") as c:
        assert c.get(f"/Accounts/{sid}.json").status_code == 200
    # A sub-account of it; the API's rules apply (a weak password).
    child = admin_cli(server.env, "create-account", "--email", "c" + email, "--password", "Ch1ld-Passw0rd!",
                      "--parent", sid)
    assert child.returncode == 0 and re.search(r"Account created: AC[0-9a-f]{32}", child.stdout), child.stderr
    child_sid = re.search(r"Account created: (AC[0-9a-f]{32})", child.stdout).group(1)
    with server.client(sid, token) as c:
        assert c.get(f"/Accounts/{child_sid}.json").json()["parent_sid"] == sid
    taken = admin_cli(server.env, "create-account", "--email", email, "--password", "weak")
    assert taken.returncode == 1 and "22001" in taken.stderr  # the password is checked first

    rotated = admin_cli(server.env, "rotate-token", sid, "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["auth_token"]
    assert new != token
    with server.client(sid, token) as c:
        assert c.get(f"/Accounts/{sid}.json").status_code == 401
    with server.client(sid, new) as c:
        assert c.get(f"/Accounts/{sid}.json").json()["auth_token"] == new
        audit = c.get(f"/Accounts/{sid}/AuditLog.json").text
        assert "cli-" in audit and new not in audit  # the CLI's requests are marked; tokens never recorded
    # Graceful rotation in two steps.
    staged = admin_cli(server.env, "rotate-token", sid, "--secondary", "--json")
    secondary = json.loads(staged.stdout)["secondary_auth_token"]
    for t in (new, secondary):
        assert server.client(sid, t).get(f"/Accounts/{sid}.json").status_code == 200
    assert admin_cli(server.env, "rotate-token", sid, "--promote").returncode == 0
    assert server.client(sid, new).get(f"/Accounts/{sid}.json").status_code == 401
    assert server.client(sid, secondary).get(f"/Accounts/{sid}.json").status_code == 200


def test_admin_carriers_and_queue_without_carriers(server: Server) -> None:
    out = admin_cli(server.env, "carriers", "--url", server.base_url)
    assert out.returncode == 0 and out.stdout.startswith("none configured"), out.stderr
    nobody = admin_cli(server.env, "carriers", "--url", f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1 and "no server answered" in nobody.stderr
    queue = admin_cli(server.env, "queue", "--json")
    assert queue.returncode == 0, queue.stderr
    report = json.loads(queue.stdout)
    assert set(report["messages"]) == {"queued", "sending"} and "status_callbacks_pending" in report


# ---------------------------------------------------------------------------------------------
# A production-like server: TLS, JSON logs at DEBUG with the access log, CORS, a metrics token


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    srv = launch(tmp_path_factory.mktemp("ops"), tls=True, args=("--access-log",), env={
        "RESTCOMM_LOG_FORMAT": "json", "RESTCOMM_LOG_LEVEL": "DEBUG",
        "RESTCOMM_CORS_ALLOWED_ORIGINS": f"{CONSOLE}, https://other.example.com",
        "RESTCOMM_METRICS_TOKEN": METRICS_TOKEN,
    })
    yield srv
    srv.close()


def test_tls(ops: Hardened) -> None:
    assert ops.base_url.startswith("https://")
    with ops.client() as c:
        assert c.get(f"/Accounts/{ops.admin_sid}.json").status_code == 200
    with pytest.raises(httpx.ConnectError):  # the certificate is not one the system trusts
        httpx.get(ops.base_url + "/health", timeout=5)
    plain = ops.base_url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
        httpx.get(plain + "/health", timeout=5)
    # The admin CLI reaches a TLS server given the CA.
    out = admin_cli(ops.env, "carriers", "--url", ops.base_url, "--cafile", str(ops.data_dir / "tls" / "ca.pem"))
    assert out.returncode == 0 and out.stdout.startswith("none configured"), out.stderr


def test_secrets_never_reach_the_logs(ops: Hardened) -> None:
    sid, token, email, password = new_account(ops, "secret")
    marker = "marker-" + uuid.uuid4().hex
    with ops.client(sid, token) as c:
        r = c.get(f"/Accounts/{sid}.json", headers={"X-Request-Id": marker})
        assert r.status_code == 200
        # Secrets in a query string (the access log prints it), in form bodies, in a failing request.
        c.get(f"/Accounts/{sid}.json", params={"Password": password, "AuthToken": token})
        assert c.post(f"/Accounts/{sid}.json", data={"Password": "weak"}).status_code == 400
        assert c.post(f"/Accounts/{sid}.json", data={"Password": "N3w-Passw0rd-" + marker[-6:]}).status_code == 200
        secondary = c.post(f"/Accounts/{sid}/AuthTokens/Secondary.json").json()["secondary_auth_token"]
        key = c.post(f"/Accounts/{sid}/Keys.json", data={"FriendlyName": "k"}).json()
        client_password = "Cl1ent-" + uuid.uuid4().hex[:10]
        c.post(f"/Accounts/{sid}/Clients.json", data={"Login": f"l{uuid.uuid4().hex[:8]}", "Password": client_password})
    with ops.client(sid, "wrong-" + token[:10]) as c:
        assert c.get(f"/Accounts/{sid}.json").status_code == 401
    with ops.client(key["sid"], key["secret"]) as c:
        assert c.get(f"/Accounts/{sid}.json").status_code == 200
    # A request that ends the log: once its line is there, every earlier line is too.
    end = "end-" + uuid.uuid4().hex
    with ops.client() as c:
        c.get(f"/Accounts/{ops.admin_sid}.json", headers={"X-Request-Id": end})
    log = wait_until(ops.log, lambda text: end in text, what="the access log line of the last request")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    # The access log line of a request carries its id.
    assert any(line.get("request_id") == marker and line["logger"] == "uvicorn.access" for line in lines)
    basic = base64.b64encode(f"{sid}:{token}".encode()).decode()
    for secret in (token, password, secondary, key["secret"], basic, client_password, ops.admin_token,
                   "N3w-Passw0rd-" + marker[-6:]):
        assert secret not in log, f"a secret reached the log: {secret[:6]}..."
    assert "[REDACTED]" in log  # the query string secrets were there to mask


def test_cors(ops: Hardened) -> None:
    with httpx.Client(verify=ops.verify, timeout=10) as c:
        pre = c.options(f"{ops.api}/Accounts/{ops.admin_sid}/SMS/Messages.json", headers={
            "Origin": CONSOLE, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == CONSOLE
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        denied = c.options(f"{ops.api}/Accounts.json", headers={
            "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
        assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers
        r = c.get(f"{ops.api}/Accounts/{ops.admin_sid}.json", auth=(ops.admin_sid, ops.admin_token),
                  headers={"Origin": CONSOLE})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == CONSOLE
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        other = c.get(f"{ops.api}/Accounts/{ops.admin_sid}.json", auth=(ops.admin_sid, ops.admin_token),
                      headers={"Origin": "https://evil.example.com"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        # Errors are readable by the console too (a 404 the browser could not read would look like CORS).
        missing = c.get(f"{ops.api}/Nope.json", headers={"Origin": CONSOLE})
        assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == CONSOLE


def test_metrics_token(ops: Hardened) -> None:
    r = httpx.get(ops.base_url + "/metrics", verify=ops.verify)
    assert r.status_code == 401 and "restcomm_" not in r.text
    wrong = httpx.get(ops.base_url + "/metrics", verify=ops.verify, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    got = metrics(ops.base_url, verify=ops.verify, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert any(k.startswith("restcomm_http_request_duration_seconds_count") for k in got)


# ---------------------------------------------------------------------------------------------
# Readiness, the queue and the carriers with a real carrier


@pytest.fixture(scope="module")
def smsc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def carrier(tmp_path_factory: pytest.TempPathFactory, smsc_port: int) -> Iterator[Hardened]:
    config = carriers_toml([{"name": "acme", "port": smsc_port, "binds": 1, "prefixes": [""]}])
    srv = launch(tmp_path_factory.mktemp("carrier"), config=config + "\n[sms]\npoll_interval = 0.2\n")
    yield srv
    srv.close()


def test_ready_queue_and_carriers_follow_the_carrier(carrier: Hardened, smsc_port: int) -> None:
    # The SMSC is not there yet: the carrier is down, so the node is not ready.
    r = httpx.get(carrier.base_url + "/ready")
    assert r.status_code == 503 and r.json()["checks"] == {"database": "ok", "carriers": {"acme": "down"}}
    down = admin_cli(carrier.env, "carriers", "--url", carrier.base_url)
    assert down.returncode == 0 and re.search(r"^acme\s+down\s+0/1", down.stdout, re.M), down.stdout + down.stderr
    # Messages wait in the queue meanwhile.
    sid, token, _, _ = new_account(carrier, "queue")
    sender = "+1555" + str(uuid.uuid4().int)[:7]
    with carrier.client(sid, token) as c:
        add_number(c, sid, sender)
        sent = [send(c, sid, sender, "+447700900" + str(100 + i), f"queued {i}").json()["sid"] for i in range(3)]

    def queue() -> dict[str, Any]:
        out = admin_cli(carrier.env, "queue", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    report = queue()
    waiting = report["messages"]["queued"]["count"] + report["messages"]["sending"]["count"]
    assert waiting == 3, report
    assert any(m["oldest_age_seconds"] is not None and m["oldest_age_seconds"] >= 0 for m in report["messages"].values())
    gauges = metrics(carrier.base_url)
    assert gauges['restcomm_message_queue_depth{status="queued"}'] + gauges['restcomm_message_queue_depth{status="sending"}'] == 3
    assert gauges['restcomm_smpp_binds{carrier="acme",state="configured"}'] == 1
    assert gauges['restcomm_smpp_binds{carrier="acme",state="bound"}'] == 0
    # The SMSC comes up: the carrier binds, the node becomes ready, the queue drains.
    smsc = Smsc.simulator(port=smsc_port).start()
    try:
        wait_until(lambda: httpx.get(carrier.base_url + "/ready"), lambda r: r.status_code == 200,
                   what="the carrier to bind")
        assert httpx.get(carrier.base_url + "/ready").json()["checks"]["carriers"] == {"acme": "up"}
        smsc.wait("accepted", 3)
        with carrier.client(sid, token) as c:
            wait_until(lambda: [c.get(f"/Accounts/{sid}/SMS/Messages/{m}.json").json()["status"] for m in sent],
                       lambda statuses: all(s in ("sent", "delivered") for s in statuses), what="the queue to drain")
        report = queue()
        assert report["messages"]["queued"]["count"] == report["messages"]["sending"]["count"] == 0, report
        up = admin_cli(carrier.env, "carriers", "--url", carrier.base_url, "--json")
        state = json.loads(up.stdout)[0]
        assert state["name"] == "acme" and state["status"] == "up" and state["submitted"] >= 3
        gauges = metrics(carrier.base_url)
        assert gauges['restcomm_smpp_binds{carrier="acme",state="bound"}'] == 1
        assert gauges['restcomm_smpp_submitted_total{carrier="acme"}'] >= 3
    finally:
        smsc.kill()


def test_not_ready_when_the_database_is_gone(tmp_path_factory: pytest.TempPathFactory) -> None:
    require_postgres()
    srv = launch(tmp_path_factory.mktemp("ready-pg"), backend="postgres")
    try:
        assert httpx.get(srv.base_url + "/ready").status_code == 200
        from tests.support.postgres import pg_drop_database

        assert srv.db_name
        pg_drop_database(srv.db_name)  # terminates the server's connections and removes the database
        r = httpx.get(srv.base_url + "/ready", timeout=10)
        assert r.status_code == 503, r.text
        assert r.json()["checks"]["database"].startswith("failed")
        assert httpx.get(srv.base_url + "/health").status_code == 200  # alive, just not ready
    finally:
        srv.close()
