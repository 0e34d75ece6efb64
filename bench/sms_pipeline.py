"""The SMS pipeline under load, on SQLite: sends accepted per second (ours vs a bare Starlette
form-POST baseline, side by side), the rate the pipeline drains them through the hosted-number route,
and the latency of the full API → app → reply → app loop at a fixed rate.

    .venv/bin/python bench/sms_pipeline.py [--duration 10] [--connections 64] [--rounds 2]
                                           [--loop-rate 200] [--loop-seconds 10]
                                           [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/NAME]

With ``--database-url`` a second server on PostgreSQL (database NAME created, migrated, dropped at
the end) runs the same accept/drain phase, its rounds interleaved with SQLite's, and the PostgreSQL
figures and their ratio to SQLite's are printed; its queue is sampled from the server's /metrics.

1. Accept: wrk POSTs ``From``/``To``/``Body`` to ``/SMS/Messages.json`` with Basic auth, against our
   server and against a bare Starlette app that parses the same form, checks the credentials in
   memory and answers a fixed JSON (same uvicorn settings: 1 process, uvloop, httptools). Rounds are
   interleaved. Every message ours accepts was committed to SQLite (synchronous=FULL) before the answer.
2. Drain: while wrk runs against ours, the queue depth (``queued`` + ``sending``) and the number of
   messages delivered to the hosted number are sampled straight from the database file; the drain
   rate is delivered messages per second from the first send until the queue is empty again.
3. Group commit off: the same accept/drain phase against a second server configured with
   ``[sms] group_commit_max_batch = 1`` (a transaction and an fsync per write), for comparison.
4. Loop: number A's application answers every message with a ``<Message>`` reply to the sender B;
   B's application receives it. Messages go B → A through the API at ``--loop-rate`` per second; the
   latency is from just before the API request until B's application has the reply.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, wait_up, wrk  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EMAIL, PASSWORD = "bench@example.com", "Bench-Passw0rd!"
API = "/restcomm/2012-04-24"

BARE_APP = textwrap.dedent(
    '''
    import base64, hmac, json, sys
    from urllib.parse import parse_qsl
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    SID, TOKEN = sys.argv[1], sys.argv[2]
    CREDS = {SID: TOKEN}

    async def send(request):
        header = request.headers.get("authorization", "")
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return Response(status_code=401)
        if not hmac.compare_digest(CREDS.get(user, "").encode(), pw.encode()):
            return Response(status_code=401)
        form = dict(parse_qsl((await request.body()).decode()))
        if not form.get("From") or not form.get("To") or not form.get("Body"):
            return Response(status_code=400)
        body = json.dumps({"sid": "SM" + "0" * 32, "from": form["From"], "to": form["To"], "body": form["Body"],
                           "status": "queued"})
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/restcomm/2012-04-24/Accounts/{sid}/SMS/Messages.json", send, methods=["POST"])])
    '''
)

WRK_SCRIPT = textwrap.dedent(
    '''
    wrk.method = "POST"
    wrk.body   = "From=%2B15550000001&To=%2B15550000002&Body=Hello+from+the+benchmark"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    '''
)

SMS_CONFIG = """
[sms]
poll_interval = 0.5
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): a load-independent cost measure."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")








class QueueProbe:
    """Samples the queue straight from the SQLite file (read-only), in a thread, while wrk runs; with
    a server URL instead, from its /metrics (queue depth gauges, delivered outbound messages)."""

    def __init__(self, db: Path | str, to_number: str):
        self.url = db if isinstance(db, str) else None
        self.conn = None if self.url else sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
        self.to = to_number
        self.samples: list[tuple[float, int, int]] = []  # (t, queue depth, delivered)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int]:
        if self.url is not None:
            depth = delivered = 0.0
            for line in httpx.get(self.url + "/metrics", timeout=30).text.splitlines():
                if line.startswith(('restcomm_queue_depth{status="queued"}', 'restcomm_queue_depth{status="sending"}')):
                    depth += float(line.rsplit(" ", 1)[1])
                elif line.startswith('restcomm_messages_total{direction="outbound-api",status="delivered"}'):
                    delivered = float(line.rsplit(" ", 1)[1])
            return int(depth), int(delivered)
        assert self.conn is not None
        depth = self.conn.execute(
            "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')").fetchone()[0]
        delivered = self.conn.execute(
            "SELECT count(*) FROM messages WHERE direction = 'outbound-api' AND status = 'delivered' "
            "AND to_number = ?", (self.to,)).fetchone()[0]
        return depth, delivered

    def start(self) -> None:
        t0 = time.monotonic()

        def run() -> None:
            while not self._stop.is_set():
                depth, delivered = self.sample()
                self.samples.append((time.monotonic() - t0, depth, delivered))
                self._stop.wait(0.5)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def drain_phase(ours_url: str, auth: str, script: Path, args: argparse.Namespace, db: Path | str,
                to: str, pid: int) -> dict[str, Any]:
    probe = QueueProbe(db, to)
    cpu0 = cpu_seconds(pid)
    _, before = probe.sample()
    probe.start()
    t0 = time.monotonic()
    result = wrk(ours_url, auth, args.duration, args.connections, script)
    sent_end = time.monotonic()
    deadline = sent_end + 120
    while time.monotonic() < deadline:
        depth, _ = probe.sample()
        if depth == 0:
            break
        time.sleep(0.05)
    drained_at = time.monotonic()
    probe.stop()
    _, after = probe.sample()
    delivered = after - before
    return {
        "cpu_ms": (cpu_seconds(pid) - cpu0) * 1000 / max(delivered, 1),
        "accepted": result["ok"],
        "accepted_per_s": result["ok"] / (sent_end - t0),
        "delivered": delivered,
        "drained_per_s": delivered / (drained_at - t0),
        "tail_s": drained_at - sent_end,
        "max_depth": max((s[1] for s in probe.samples), default=0),
        "depth_samples": [s[1] for s in probe.samples],
    }


async def loop_phase(api: str, sid: str, token: str, rate: float, seconds: float,
                     conversations: int = 1, prefix: str = "+1555") -> dict[str, float]:
    """B → A via the API; A's app replies; B's app timestamps the reply. Latencies in ms."""
    from aiohttp import ClientSession, web

    arrivals: dict[str, float] = {}
    started: dict[str, float] = {}
    done = asyncio.Event()
    expected = int(rate * seconds)

    async def app_a(request: web.Request) -> web.Response:
        form = await request.post()
        return web.Response(text=f"<Response><Message>{form['Body']}</Message></Response>", content_type="text/xml")

    async def app_b(request: web.Request) -> web.Response:
        form = await request.post()
        arrivals[str(form["Body"])] = time.monotonic()
        if len(arrivals) >= expected:
            done.set()
        return web.Response(text="<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_post("/a", app_a)
    app.router.add_post("/b", app_b)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    a = f"{prefix}0000010"
    senders = [f"{prefix}001{i:04d}" for i in range(conversations)]  # each B number is one conversation with A
    auth = httpx.BasicAuth(sid, token)
    async with httpx.AsyncClient(base_url=api, auth=auth, timeout=30) as c:
        for number, path in [(a, "/a")] + [(b, "/b") for b in senders]:
            r = await c.post(f"/Accounts/{sid}/IncomingPhoneNumbers.json",
                             data={"PhoneNumber": number, "isSIP": "true", "SmsUrl": f"http://127.0.0.1:{port}{path}"})
            r.raise_for_status()
    basic = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    async with ClientSession(headers={"Authorization": basic}) as session:
        url = f"{api}/Accounts/{sid}/SMS/Messages.json"

        async def one(i: int) -> None:
            key = f"loop-{i}"
            started[key] = time.monotonic()
            async with session.post(url, data={"From": senders[i % conversations], "To": a, "Body": key}) as r:
                assert r.status == 200, await r.text()

        tasks = []
        t0 = time.monotonic()
        for i in range(expected):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        try:
            await asyncio.wait_for(done.wait(), 60)
        except TimeoutError:
            pass
    await runner.cleanup()
    lat = sorted((arrivals[k] - started[k]) * 1000 for k in arrivals if k in started)
    if not lat:
        return {"count": 0, "expected": expected}
    return {
        "count": len(lat),
        "expected": expected,
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "max": lat[-1],
    }


def accept_and_drain(ours_url: str, bare_url: str, auth: str, script: Path, args: argparse.Namespace,
                     db: Path, pid: int, pg: tuple[str, str, str, int] | None = None) -> None:
    """``pg``: (send URL, auth, server base URL, pid) of the PostgreSQL server, run in the same rounds."""
    ours_runs: list[dict[str, Any]] = []
    bare_runs: list[dict[str, float]] = []
    pg_runs: list[dict[str, Any]] = []
    for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits both alike
        ours_runs.append(drain_phase(ours_url, auth, script, args, db, "+15550000002", pid))
        bare_runs.append(wrk(bare_url, auth, args.duration, args.connections, script))
        if pg is not None:
            pg_runs.append(drain_phase(pg[0], pg[1], script, args, pg[2], "+15550000002", pg[3]))
    acc = statistics.median(r["accepted_per_s"] for r in ours_runs)
    drained = statistics.median(r["drained_per_s"] for r in ours_runs)
    bare_rps = statistics.median(r["rps"] for r in bare_runs)
    print(f"accept, {args.duration}s x {args.rounds} rounds, {args.connections} connections (median):")
    print(f"  ours (committed, SQLite FULL) {acc:>8.0f} msg/s")
    print(f"  bare Starlette form POST      {bare_rps:>8.0f} req/s")
    print(f"  ratio ours/bare               {acc / bare_rps:>8.2f}")
    for i, r in enumerate(ours_runs):
        print(f"  round {i}: accepted {r['accepted']} ({r['accepted_per_s']:.0f}/s), delivered {r['delivered']}, "
              f"drained {r['drained_per_s']:.0f}/s, queue max {r['max_depth']}, empty {r['tail_s']:.1f}s after "
              f"the last send; server CPU {r['cpu_ms']:.2f} ms/message; depth samples {r['depth_samples'][:12]}")
    print(f"drain via the hosted-number route (median): {drained:.0f} msg/s")
    if pg_runs:
        pacc = statistics.median(r["accepted_per_s"] for r in pg_runs)
        pdrained = statistics.median(r["drained_per_s"] for r in pg_runs)
        print(f"PostgreSQL, same rounds (median): accepted {pacc:.0f} msg/s, drained {pdrained:.0f} msg/s; "
              f"ratio to SQLite: accepted {pacc / acc:.2f}, drained {pdrained / drained:.2f}")
        for i, r in enumerate(pg_runs):
            print(f"  round {i}: accepted {r['accepted']} ({r['accepted_per_s']:.0f}/s), delivered {r['delivered']}, "
                  f"drained {r['drained_per_s']:.0f}/s, queue max {r['max_depth']}, empty {r['tail_s']:.1f}s after "
                  f"the last send; server CPU {r['cpu_ms']:.2f} ms/message")


def start_ours(home: Path, config: str, procs: list[subprocess.Popen[bytes]], database_url: str | None = None
               ) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """Our server on its own SQLite file (or ``database_url``), with a sender and a hosted number (no
    app) provisioned."""
    home.mkdir(parents=True)
    (home / "restcomm.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(home / "data"), RESTCOMM_ADMIN_EMAIL=EMAIL, RESTCOMM_ADMIN_PASSWORD=PASSWORD,
               RESTCOMM_LOG_LEVEL="WARNING", RESTCOMM_SIP_LISTEN="127.0.0.1:0", RESTCOMM_CONFIG=str(home / "restcomm.toml"),
               PYTHONPATH=str(ROOT / "src"))
    if database_url:
        env["RESTCOMM_DATABASE_URL"] = database_url
        out = subprocess.run([sys.executable, "-m", "restcomm", "db", "upgrade"], env=env, capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"db upgrade failed: {out.stdout}\n{out.stderr}")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "restcomm.app:create_app", "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        env=env, cwd=home,
    )
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/health", proc)
    acct = httpx.get(f"{base}{API}/Accounts/{EMAIL}.json", auth=(EMAIL, PASSWORD)).json()
    sid, token = acct["sid"], acct["auth_token"]
    with httpx.Client(base_url=base + API, auth=(sid, token)) as c:
        for number in ("+15550000001", "+15550000002"):  # sender, and a hosted number without an app
            c.post(f"/Accounts/{sid}/IncomingPhoneNumbers.json",
                   data={"PhoneNumber": number, "isSIP": "true"}).raise_for_status()
        probe = c.post(f"/Accounts/{sid}/SMS/Messages.json",
                       data={"From": "+15550000001", "To": "+15550000002", "Body": "probe"})
        assert probe.status_code == 200, probe.text
    return proc, base, sid, token


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--loop-rate", type=float, default=200)
    ap.add_argument("--loop-seconds", type=float, default=10)
    ap.add_argument("--loop-conversations", type=int, default=20,
                    help="senders the loop traffic is spread over (a second loop run uses one)")
    ap.add_argument("--loop-only", action="store_true", help="skip the accept/drain rounds")
    ap.add_argument("--keep", action="store_true", help="keep the data directory (printed) for inspection")
    ap.add_argument("--database-url", default=None,
                    help="also PostgreSQL (postgresql+asyncpg://user@host:port/NAME): NAME is created, used, dropped")
    args = ap.parse_args()
    pg_admin = None
    if args.database_url:
        from mixed_load import pg_admin_url, pg_execute

        pg_admin = pg_admin_url(args.database_url)
        pg_execute(pg_admin[0], f'CREATE DATABASE "{pg_admin[1]}"')
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sms-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ours, base, sid, token = start_ours(tmp / "ours", SMS_CONFIG, procs)
        (tmp / "bare.py").write_text(BARE_APP)
        bport = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c",
             "import sys,uvicorn; sys.argv=['bare', sys.argv[1], sys.argv[2]]; "
             f"sys.path.insert(0, {str(tmp)!r}); import bare; "
             f"uvicorn.run(bare.app, port={bport}, loop='uvloop', http='httptools', access_log=False, "
             "log_level='warning')", sid, token],
            cwd=tmp,
        )
        procs.append(bare)
        wait_up(f"http://127.0.0.1:{bport}/", bare)
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
        ours_url = f"{base}{API}/Accounts/{sid}/SMS/Messages.json"
        bare_url = f"http://127.0.0.1:{bport}{API}/Accounts/{sid}/SMS/Messages.json"
        db = tmp / "ours" / "data" / "restcomm.db"

        if not args.loop_only:
            pg = None
            if args.database_url:
                pgp, pbase, psid, ptoken = start_ours(tmp / "pg", SMS_CONFIG, procs, args.database_url)
                pauth = "Basic " + base64.b64encode(f"{psid}:{ptoken}".encode()).decode()
                pg = (f"{pbase}{API}/Accounts/{psid}/SMS/Messages.json", pauth, pbase, pgp.pid)
            accept_and_drain(ours_url, bare_url, auth, script, args, db, ours.pid, pg)
            # The same accept phase with group commit off: one transaction (and fsync) per message.
            single, sbase, ssid, stoken = start_ours(tmp / "single", SMS_CONFIG + "group_commit_max_batch = 1\n", procs)
            sauth = "Basic " + base64.b64encode(f"{ssid}:{stoken}".encode()).decode()
            r = drain_phase(f"{sbase}{API}/Accounts/{ssid}/SMS/Messages.json", sauth, script, args,
                            tmp / "single" / "data" / "restcomm.db", "+15550000002", single.pid)
            print(f"same, group commit off (a transaction per write): accepted {r['accepted_per_s']:.0f} msg/s, "
                  f"drained {r['drained_per_s']:.0f} msg/s, queue max {r['max_depth']}, "
                  f"server CPU {r['cpu_ms']:.2f} ms/message")
            single.terminate()
            single.wait(timeout=30)
        for n, prefix in ((args.loop_conversations, "+1666"), (1, "+1777")):
            cpu0 = cpu_seconds(ours.pid)
            loop = asyncio.run(loop_phase(base + API, sid, token, args.loop_rate, args.loop_seconds, n, prefix))
            loop["cpu_ms"] = (cpu_seconds(ours.pid) - cpu0) * 1000 / max(loop.get("count", 0), 1)
            what = f"loop API -> app -> reply -> app, {args.loop_rate:.0f} msg/s for {args.loop_seconds:.0f}s, " \
                   f"{n} conversation{'s' if n > 1 else ''}"
            if loop.get("count"):
                print(f"{what}: {loop['count']}/{loop['expected']} replies, p50 {loop['p50']:.1f} ms, "
                      f"p99 {loop['p99']:.1f} ms, max {loop['max']:.1f} ms; server CPU {loop['cpu_ms']:.2f} ms/loop")
            else:
                print(f"{what}: no replies arrived ({loop})")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        if args.keep:
            print(f"data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if pg_admin is not None:
            from mixed_load import pg_execute

            pg_execute(pg_admin[0], f'DROP DATABASE IF EXISTS "{pg_admin[1]}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
