"""SMS over SMPP, side by side in one run: the raw link and the full path through the server.

    .venv/bin/python bench/sms_smpp.py [--rate 1000] [--duration 30] [--binds 2] [--window 10]
                                       [--receipt-delay 0.5] [--raw-seconds 10] [--profile]
                                       [--database-url postgresql+asyncpg://...]

1. **Raw link**: a :class:`~restcomm.smpp.esme.Carrier` alone (2 binds x window 10 by default)
   pushes submit_sm at the SMSC simulator as fast as it answers, receipts on, for ``--raw-seconds``.
   This is the ceiling the SMPP layer sets on this machine.
2. **Full path**: ``restcomm serve`` with one ``[[carriers]]`` entry pointing at the same simulator
   (``restcomm smsc-sim``, a separate process). A load generator (another process) POSTs
   ``/SMS/Messages.json`` at ``--rate`` per second, open loop, for ``--duration`` seconds, each
   with a ``StatusCallback`` to a loopback HTTP app in this process. Every message goes
   API -> store -> dispatcher -> SMPP submit -> receipt -> status callbacks (sending, sent,
   delivered). Measured:

   * messages/s accepted by the API, submitted to the SMSC, and *delivered end to end* (final
     callback received), over the load window and in steady state;
   * loss: accepted messages without a ``delivered`` callback after the drain; duplicates at the
     SMSC (a text submitted twice);
   * the queue (``queued`` + ``sending`` rows, sampled every second from the database): does it grow?
   * latency receipt -> status callback (the SMSC's send time of the receipt, from the simulator's
     record, to the arrival of the ``delivered`` callback here) and API -> delivered callback;
   * CPU seconds per process (server, simulator, load generator, this process), and with
     ``--profile`` a py-spy sample of the server: where its time goes, by component.

The ratio full path / raw link is printed at the end. All processes share the machine's cores
over loopback (2 on the reference machine): read the numbers as this machine's, not as capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NO_CONTENT, LoopbackApp, free_port, wait_up  # noqa: E402

EMAIL, PASSWORD = "bench@example.com", "Bench-Passw0rd!"
API = "/restcomm/2012-04-24"
TO = "+447700900123"
FROM = "BENCH"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PY_SPY = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU of a process, and with ``children`` of its children too (the workers of
    ``restcomm serve --workers N``)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or (children and fields[1] == str(pid)):
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


def worker_pids(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                out.append(int(stat.parent.name))
        except OSError:
            continue
    return sorted(out) or [pid]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


# --- the simulator -----------------------------------------------------------------------------


class Simulator:
    def __init__(self, receipt_delay: float) -> None:
        self.port, self.control_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restcomm", "smsc-sim", "--port", str(self.port), "--control-port",
             str(self.control_port), "--receipt-delay", str(receipt_delay)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening" not in line:
            self.proc.kill()
            raise SystemExit(f"simulator did not start: {line!r}")
        self.sock = socket.create_connection(("127.0.0.1", self.control_port))
        self.file = self.sock.makefile("rw")

    def cmd(self, line: str) -> str:
        self.file.write(line + "\n")
        self.file.flush()
        return self.file.readline().strip()

    def stats(self) -> dict[str, int]:
        return json.loads(self.cmd("STATS"))

    def stop(self) -> None:
        self.file.write("QUIT\n")
        self.file.flush()
        self.sock.close()
        self.proc.terminate()
        self.proc.wait(10)


# --- 1. raw link --------------------------------------------------------------------------------


async def raw_link(sim: Simulator, args: argparse.Namespace) -> dict[str, float]:
    from restcomm.smpp.esme import Carrier, CarrierConfig, Inbound, OutboundMessage

    receipts = 0
    done = asyncio.Event()
    target = [0]

    async def on_deliver(item: Inbound) -> None:
        nonlocal receipts
        receipts += 1
        if target[0] and receipts >= target[0]:
            done.set()

    carrier = Carrier(CarrierConfig(name="raw", host="127.0.0.1", port=sim.port, system_id="raw", password="raw",
                                    binds=args.binds, window=args.window), on_deliver)
    await carrier.start()
    await asyncio.wait_for(carrier.wait_bound(args.binds), 10)
    sent = failures = 0
    stop_at = time.perf_counter() + args.raw_seconds

    async def worker() -> None:
        nonlocal sent, failures
        while time.perf_counter() < stop_at:
            outcome = await carrier.submit(OutboundMessage("BENCH", TO, "Your verification code is 123456"))
            sent += 1
            failures += not outcome.ok

    cpu0 = cpu_seconds(os.getpid())
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.window * args.binds * 2)))
    elapsed = time.perf_counter() - t0
    target[0] = sent
    if receipts < sent:
        await asyncio.wait_for(done.wait(), 60)
    with_receipts = time.perf_counter() - t0
    cpu = cpu_seconds(os.getpid()) - cpu0
    await carrier.close()
    return {"messages": sent, "failures": failures, "seconds": elapsed, "rate": sent / elapsed,
            "rate_with_receipts": sent / with_receipts, "cpu_us_per_message": cpu / max(sent, 1) * 1e6}


# --- 2. full path ---------------------------------------------------------------------------------


class CallbackApp(LoopbackApp):
    """Records status callbacks and answers 204."""

    def __init__(self, records: list[tuple[float, str, str]], counts: Counter[str]) -> None:
        super().__init__()
        self.records = records  # (arrival wall time, status, Body)
        self.counts = counts

    def answer(self, path: str, form: dict[str, str]) -> bytes:
        status = form.get("MessageStatus", "?")
        self.counts[status] += 1
        if status in ("delivered", "undelivered", "failed"):
            self.records.append((time.time(), status, form.get("Body", "")))
        return NO_CONTENT


class QueueProbe(threading.Thread):
    """Samples message counts by status once a second straight from the database (read-only)."""

    def __init__(self, db: Path | None, database_url: str | None) -> None:
        super().__init__(daemon=True)
        self.db, self.url = db, database_url
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        if self.db is not None:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, check_same_thread=False)

            def sample() -> dict[str, int]:
                return dict(conn.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall())
        else:
            import asyncpg

            loop = asyncio.new_event_loop()
            pg = loop.run_until_complete(asyncpg.connect(self.url.replace("+asyncpg", "")))  # type: ignore[union-attr]

            def sample() -> dict[str, int]:
                rows = loop.run_until_complete(pg.fetch("SELECT status, count(*) FROM messages GROUP BY status"))
                return {r[0]: r[1] for r in rows}
        while not self.stop_event.wait(1.0):
            try:
                self.samples.append((time.time(), sample()))
            except Exception as exc:  # the database is busy or gone: note it, keep sampling
                print(f"queue probe: {exc}", file=sys.stderr)


def start_server(args: argparse.Namespace, sim: Simulator, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "restcomm.toml"
    config.write_text(f"""
[sms]
alphanumeric_senders = true
poll_interval = 0.5
{args.sms}

[[carriers]]
name = "bench"
host = "127.0.0.1"
port = {sim.port}
system_id = "bench"
password = "bench"
binds = {args.binds}
window = {args.window}
max_tps = 0
prefixes = [""]
{args.carrier}
""")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_CONFIG=str(config), RESTCOMM_DATA_DIR=str(workdir / "data"), RESTCOMM_ADMIN_EMAIL=EMAIL,
               RESTCOMM_ADMIN_PASSWORD=PASSWORD, RESTCOMM_LOG_LEVEL="WARNING", RESTCOMM_SIP_LISTEN="127.0.0.1:0", PYTHONPATH=str(ROOT / "src"))
    if args.database_url:
        env["RESTCOMM_DATABASE_URL"] = args.database_url
        env["RESTCOMM_AUTO_MIGRATE"] = "true"
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen([sys.executable, "-m", "restcomm", "serve", "--port", str(port),
                             "--workers", str(args.workers)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"

    wait_up(base + "/health", proc, workdir / "server.log")
    return proc, base


async def full_path(sim: Simulator, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import httpx

    sim.cmd("SET record true")
    proc, base = start_server(args, sim, workdir)
    try:
        r = httpx.get(f"{base}{API}/Accounts/{EMAIL}.json", auth=(EMAIL, PASSWORD), timeout=10)  # noqa: ASYNC210
        sid, token = r.json()["sid"], r.json()["auth_token"]
        # Wait for the binds (the Carriers API), so the run does not start against a carrier coming up.
        # With workers, each answers for its own share: ask until several in a row say "up".
        up = 0
        for _ in range(200):
            carriers = httpx.get(f"{base}{API}/Accounts/{sid}/Carriers.json", auth=(sid, token),  # noqa: ASYNC210
                                 timeout=5).json()
            up = up + 1 if carriers and carriers[0]["bound"] == carriers[0]["binds"] else 0
            if up >= 4 * args.workers:
                break
            await asyncio.sleep(0.05)
        records: list[tuple[float, str, str]] = []
        counts: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        cb_port = free_port()
        cb_server = await loop.create_server(lambda: CallbackApp(records, counts), "127.0.0.1", cb_port)
        db = None if args.database_url else workdir / "data" / "restcomm.db"
        probe = QueueProbe(db, args.database_url)
        probe.start()
        out_file = workdir / "loadgen.json"
        pids = {"server": proc.pid, "simulator": sim.proc.pid, "bench (callback app)": os.getpid()}
        gen = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, __file__, "--loadgen", base, sid, token, str(args.rate), str(args.duration),
             f"http://127.0.0.1:{cb_port}/cb", str(out_file)])
        pids["load generator"] = gen.pid
        cpu0 = {k: cpu_seconds(p, children=k == "server") for k, p in pids.items()}
        sim0 = sim.stats()
        t0 = time.time()
        profiler = None
        if args.profile:
            await asyncio.sleep(min(5.0, args.duration / 3))  # profile the steady state
            spy_log = open(workdir / "py-spy.log", "wb")  # noqa: ASYNC230, SIM115 - the profiler owns it
            profiler = subprocess.Popen(  # noqa: ASYNC220
                [str(PY_SPY), "record", "-p", str(worker_pids(proc.pid)[0]), "-d", str(int(args.profile_seconds)), "-r", "50",
                 "-f", "raw", "-o", str(workdir / "profile.txt")], stdout=subprocess.DEVNULL, stderr=spy_log)
        while gen.poll() is None:  # noqa: ASYNC110 - a subprocess, not an asyncio event
            await asyncio.sleep(0.2)
        load_end = time.time()
        cpu_load = {k: cpu_seconds(p, children=k == "server") - cpu0[k] for k, p in pids.items()}
        callbacks_at_load_end = dict(counts)
        sim_load = sim.stats()
        gen_result = json.loads(out_file.read_text())
        cpu_load["load generator"] = gen_result["summary"]["cpu_seconds"]
        accepted = gen_result["accepted"]
        # Drain: wait for the last final callbacks (bounded).
        drain_deadline = time.time() + args.drain_seconds
        while len(records) < accepted and time.time() < drain_deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        drained = time.time()
        probe.stop_event.set()
        carrier_state = await asyncio.to_thread(
            lambda: httpx.get(f"{base}{API}/Accounts/{sid}/Carriers.json", auth=(sid, token), timeout=5).json())
        if profiler is not None:
            profiler.wait(args.profile_seconds + 30)
        cb_server.close()

        # ---- analysis
        sent_at: dict[str, float] = gen_result["sent_at"]
        finals = Counter(status for _, status, _ in records)
        final_at = {body: t for t, _, body in records}
        in_window = [t for t, _, _ in records if t0 <= t <= load_end]
        steady = [t for t in in_window if t >= t0 + min(5.0, args.duration / 3)]
        steady_rate = len(steady) / max(load_end - (t0 + min(5.0, args.duration / 3)), 1e-9)
        messages = json.loads(sim.cmd("MESSAGES"))
        receipt_times: dict[str, float] = json.loads(sim.cmd("RECEIPTS"))
        by_text: dict[str, list[str]] = {}
        dup = 0
        for m in messages:
            if m["text"] in by_text:
                dup += 1
            by_text.setdefault(m["text"], m["message_ids"])
        receipt_to_callback = []
        api_to_final = []
        for body, t in final_at.items():
            ids = by_text.get(body)
            if ids:
                sent_receipts = [receipt_times[i] for i in ids if i in receipt_times]
                if sent_receipts:
                    receipt_to_callback.append(t - max(sent_receipts))
            if body in sent_at:
                api_to_final.append(t - sent_at[body])
        depth = [(t - t0, s.get("queued", 0) + s.get("sending", 0), s.get("sent", 0)) for t, s in probe.samples]
        load_depth = [d for t, d, _ in depth if 0 <= t <= load_end - t0]
        half = len(load_depth) // 2
        return {
            "load": gen_result["summary"],
            "accepted": accepted,
            "delivered": finals.get("delivered", 0),
            "undelivered_or_failed": finals.get("undelivered", 0) + finals.get("failed", 0),
            "not_final_after_drain": accepted - sum(finals.values()),
            "duplicates_at_smsc": dup,
            "submitted_during_load": sim_load["accepted"] - sim0["accepted"],
            "receipts_stored_during_load": sim_load["receipts_acked"] - sim0["receipts_acked"],
            "callbacks_at_load_end": callbacks_at_load_end,
            "e2e_rate_load_window": len(in_window) / max(load_end - t0, 1e-9),
            "e2e_rate_steady": steady_rate,
            "e2e_rate_overall": sum(finals.values()) / max((max(final_at.values()) if final_at else drained) - t0,
                                                           1e-9),
            "drain_seconds": (max(final_at.values()) - load_end) if final_at else None,
            "queue_depth": {"first_half_avg": statistics.mean(load_depth[:half]) if half else 0,
                            "second_half_avg": statistics.mean(load_depth[half:]) if load_depth[half:] else 0,
                            "max": max(load_depth, default=0), "samples": depth},
            "receipt_to_callback_ms": {"p50": pct(receipt_to_callback, 50) * 1e3,
                                       "p99": pct(receipt_to_callback, 99) * 1e3,
                                       "max": max(receipt_to_callback, default=float("nan")) * 1e3,
                                       "n": len(receipt_to_callback)},
            "api_to_delivered_ms": {"p50": pct(api_to_final, 50) * 1e3, "p99": pct(api_to_final, 99) * 1e3},
            "callbacks": dict(counts),
            "carrier": {k: carrier_state[0].get(k) for k in ("submitted", "accepted", "retries", "receipts",
                                                             "receipts_parked", "reconnects", "errors")},
            "cpu_seconds_during_load": cpu_load,
            "load_seconds": load_end - t0,
            "profile": summarize_profile(workdir / "profile.txt") if args.profile else None,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- profile summary --------------------------------------------------------------------------------

CATEGORIES = [  # first match from the innermost frame outward wins
    ("SQLite / asyncpg driver", ("sqlite3", "aiosqlite", "asyncpg")),
    ("SQLAlchemy (statement compile, result rows)", ("sqlalchemy",)),
    ("webhook HTTP client (aiohttp)", ("aiohttp", "yarl", "multidict")),
    ("HTTP server (uvicorn, starlette)", ("uvicorn", "httptools", "starlette", "h11")),
    ("JSON (orjson)", ("orjson",)),
    ("SMPP (codec, session, carrier)", ("restcomm/smpp",)),
    ("messaging pipeline (dispatcher, store, writer)", ("restcomm/messaging",)),
    ("status callbacks", ("restcomm/webhooks",)),
    ("REST API (framework, resources)", ("restcomm/api",)),
    ("other restcomm", ("restcomm/",)),
    ("event loop (asyncio, uvloop)", ("asyncio", "uvloop")),
]


FLOWS = [  # which part of the pipeline a sample works for: first match over the whole stack
    ("receipts (ReceiptRecorder, parking)", ("ReceiptRecorder", "ParkedReceipts", "record_receipt")),
    ("status callbacks (outbox claim, HTTP, record)", ("messaging/callbacks", "webhooks/fetch")),
    ("dispatcher (claim, route, record the carrier's answer)", ("messaging/dispatcher",)),
    ("SMPP link (ESME, codec, transport)", ("restcomm/smpp/",)),
    ("API accept (HTTP, auth, checks, insert)", ("restcomm/api/", "uvicorn", "starlette", "restcomm/app.py",
                                                 "store/reader", "messaging/reads", "Messaging.submit")),
    ("group-commit writer (begin, commit)", ("messaging/writer",)),
    ("other threads (fsync, aiosqlite, executors)", ("Thread._bootstrap",)),
]


def summarize_profile(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    flows: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        total += count
        joined = ";".join(frames)
        flows[next((name for name, needles in FLOWS if any(n in joined for n in needles)), "other")] += count
        leaf = frames[-1]
        leaves[re.sub(r" \(.*/site-packages/", " (", leaf)] += count
        for name, needles in CATEGORIES:
            if any(any(needle in f for needle in needles) for f in frames[-6:]):
                cats[name] += count
                break
        else:
            cats["other (idle, interpreter)"] += count
    if not total:
        return None
    return {"samples": total,
            "by_flow_pct": {k: round(v * 100 / total, 1) for k, v in flows.most_common()},
            "by_component_pct": {k: round(v * 100 / total, 1) for k, v in cats.most_common()},
            "top_functions_pct": {k: round(v * 100 / total, 1) for k, v in leaves.most_common(15)}}


# --- load generator (a subprocess) ------------------------------------------------------------------


def loadgen(argv: list[str]) -> None:
    base, sid, token, rate_s, duration_s, callback, out = argv
    rate, duration = float(rate_s), float(duration_s)

    async def run() -> None:
        import base64
        from urllib.parse import urlencode

        import yarl

        from restcomm.webhooks.lean import LeanClient

        url = yarl.URL(f"{base}{API}/Accounts/{sid}/SMS/Messages.json")
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        accepted = 0
        behind = 0
        # The platform's own keep-alive client (webhooks/lean.py): a load generator sharing the two
        # cores with the server should cost as little as it can (aiohttp took ~5x the CPU per request).
        headers = {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode(),
                   "Content-Type": "application/x-www-form-urlencoded"}
        session = LeanClient()
        if True:
            sem = asyncio.Semaphore(256)
            tasks: set[asyncio.Task[None]] = set()

            async def one(i: int) -> None:
                nonlocal accepted
                body = f"bench {i:07d} your code is {i % 1000000:06d}"
                t = time.time()
                try:
                    form = urlencode({"From": FROM, "To": TO, "Body": body, "StatusCallback": callback}).encode()
                    async with session.request("POST", url, data=form, headers=headers) as r:
                        if r.status == 200:
                            accepted += 1
                            sent_at[body] = t
                            latencies.append(time.time() - t)
                        else:
                            errors[str(r.status)] += 1
                except Exception as exc:
                    errors[type(exc).__name__] += 1
                finally:
                    sem.release()

            t0 = time.perf_counter()
            n = int(rate * duration)
            for i in range(n):
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if sem.locked():
                    behind += 1
                await sem.acquire()
                task = asyncio.create_task(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - t0
            await session.close()
        summary = {"requested": n, "accepted": accepted, "errors": dict(errors), "seconds": elapsed,
                   "accepted_rate": accepted / elapsed, "api_p50_ms": pct(latencies, 50) * 1e3,
                   "api_p99_ms": pct(latencies, 99) * 1e3, "waits_for_a_free_slot": behind,
                   "cpu_seconds": cpu_seconds(os.getpid())}
        result = {"accepted": accepted, "summary": summary, "sent_at": sent_at}
        Path(out).write_text(json.dumps(result))  # noqa: ASYNC240 - once, at the end

    import uvloop

    uvloop.run(run())


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        loadgen(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=1000.0, help="API sends per second (open loop)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load on the full path")
    p.add_argument("--raw-seconds", type=float, default=10.0)
    p.add_argument("--binds", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="server processes (restcomm serve --workers)")
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--receipt-delay", type=float, default=0.5, help="seconds from submit to receipt at the SMSC")
    p.add_argument("--drain-seconds", type=float, default=60.0)
    p.add_argument("--database-url", default=None, help="PostgreSQL instead of the embedded SQLite")
    p.add_argument("--profile", action="store_true", help="sample the server with py-spy during the load")
    p.add_argument("--profile-seconds", type=float, default=10.0)
    p.add_argument("--skip-raw", action="store_true")
    p.add_argument("--carrier", default="", help='extra [[carriers]] settings, e.g. "deliver_concurrency = 512"')
    p.add_argument("--sms", default="", help='extra [sms] settings, e.g. "callback_concurrency = 256"')
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (server log, profile)")
    args = p.parse_args()
    if args.profile and not PY_SPY:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    sim = Simulator(args.receipt_delay)
    workdir = Path(tempfile.mkdtemp(prefix="bench-sms-smpp-"))
    import uvloop

    try:
        raw = None
        if not args.skip_raw:
            sim.cmd("SET record false")
            raw = uvloop.run(raw_link(sim, args))
            print(f"raw link: {raw['rate']:,.0f} submit_sm/s ({raw['rate_with_receipts']:,.0f}/s with every receipt in), "
                  f"{raw['messages']} messages, {raw['failures']} failures, "
                  f"{raw['cpu_us_per_message']:.0f} us CPU per message in the ESME", flush=True)
        full = uvloop.run(full_path(sim, args, workdir))
    finally:
        sim.stop()
    report(args, raw, full)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "raw": raw, "full": full}, indent=2, default=str))
    if args.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def report(args: argparse.Namespace, raw: dict[str, Any] | None, full: dict[str, Any]) -> None:
    load = full["load"]
    print(f"\nfull path ({'PostgreSQL' if args.database_url else 'SQLite'}, {args.binds} binds x window {args.window}, "
          f"{args.workers} server process{'es' if args.workers > 1 else ''}, "
          f"receipt delay {args.receipt_delay}s, target {args.rate:.0f}/s for {args.duration:.0f}s):")
    print(f"  API accepted      {full['accepted']} of {load['requested']} ({load['accepted_rate']:,.0f}/s, "
          f"p50 {load['api_p50_ms']:.1f} ms, p99 {load['api_p99_ms']:.1f} ms, errors {load['errors']})")
    print(f"  by the end of the load window: {full['submitted_during_load']} submitted to the SMSC, "
          f"{full['receipts_stored_during_load']} receipts stored (acknowledged to the SMSC), status callbacks "
          f"received: {full['callbacks_at_load_end']}")
    print(f"  delivered e2e     {full['delivered']} (+{full['undelivered_or_failed']} undelivered/failed), "
          f"without a final callback after the {args.drain_seconds:.0f} s drain {full['not_final_after_drain']}, "
          f"duplicates at the SMSC {full['duplicates_at_smsc']}")
    print(f"  e2e rate          {full['e2e_rate_load_window']:,.0f}/s over the load window, "
          f"{full['e2e_rate_steady']:,.0f}/s steady state, {full['e2e_rate_overall']:,.0f}/s until the last callback "
          f"(drain {full['drain_seconds'] or 0:.1f} s after the load)")
    q = full["queue_depth"]
    print(f"  queue (queued+sending) avg {q['first_half_avg']:.0f} in the first half, {q['second_half_avg']:.0f} in "
          f"the second, max {q['max']}")
    rc = full["receipt_to_callback_ms"]
    print(f"  receipt -> callback p50 {rc['p50']:.0f} ms, p99 {rc['p99']:.0f} ms, max {rc['max']:.0f} ms "
          f"(n={rc['n']}); API -> delivered callback p50 {full['api_to_delivered_ms']['p50']:.0f} ms, "
          f"p99 {full['api_to_delivered_ms']['p99']:.0f} ms")
    print(f"  carrier counters{' (one worker)' if args.workers > 1 else ''}: {full['carrier']}")
    cpu = full["cpu_seconds_during_load"]
    print("  CPU during the load: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items())
          + f" (of {full['load_seconds'] * os.cpu_count():.0f} core-seconds)")
    if full.get("profile"):
        prof = full["profile"]
        print(f"  server profile ({prof['samples']} samples), by part of the pipeline:")
        for k, v in prof["by_flow_pct"].items():
            print(f"    {v:5.1f}%  {k}")
        print("  by component:")
        for k, v in prof["by_component_pct"].items():
            print(f"    {v:5.1f}%  {k}")
        print("  hottest functions:")
        for k, v in list(prof["top_functions_pct"].items())[:10]:
            print(f"    {v:5.1f}%  {k}")
    if raw:
        base = raw["rate_with_receipts"]
        print(f"\nratio full path / raw link: {full['e2e_rate_steady'] / base:.3f} in the steady state "
              f"({full['e2e_rate_steady']:,.0f} / {base:,.0f} messages/s), {full['e2e_rate_overall'] / base:.3f} "
              f"until the last callback ({full['e2e_rate_overall']:,.0f} / {base:,.0f})")
    goal = (full["e2e_rate_steady"] >= 1000 and full["not_final_after_drain"] == 0 and rc["p99"] < 1000
            and q["second_half_avg"] <= max(q["first_half_avg"] * 1.5, 50))
    print(f"goal (>= 1,000/s e2e sustained, zero loss, flat queue, receipt->callback p99 < 1 s): "
          f"{'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
