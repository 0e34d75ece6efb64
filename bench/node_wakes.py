"""Pickup latency across nodes: polling vs PostgreSQL LISTEN/NOTIFY (store/wakeups.py).

Two server processes on one fresh PostgreSQL database, each with one SMS application slot. A slow
application holds node A's slot for the whole run; then, round after round, a message for another
(fast) application is sent through A's API: A delivers it internally and stores the session
'pending' (no slot here), and node B runs it. The latency is from just before A's API call to the
application's receiving B's request. Modes, run alternately:

* ``poll``: ``db_notify = false``, ``poll_interval = 1.0`` (the default): B finds it at its poll.
* ``notify``: ``db_notify = true``, ``poll_interval = 1.0``: A's NOTIFY wakes B.
* ``notify-30``: ``db_notify = true``, ``poll_interval = 30``: the same with a long safety-net poll.

Also measured: both servers' CPU per round, and the database round trips both nodes make per
second while idle (their polls; ``restcomm_db_round_trips_total`` over ``--idle`` seconds).

    .venv/bin/python bench/node_wakes.py [--rounds 40] [--runs 3] [--idle 10] [--modes poll,notify,notify-30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import (  # noqa: E402
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    database_env,
    start_server,
    stop_server,
    wait_ready,
)
from tests.support.sms_app import Answer, AppServer, add_number  # noqa: E402

MODES = {
    "poll": "db_notify = false\n[sms]\npoll_interval = 1.0\n",
    "notify": "db_notify = true\n[sms]\npoll_interval = 1.0\n",
    "notify-30": "db_notify = true\n[sms]\npoll_interval = 30.0\n",
}
COMMON = "app_concurrency = 1\napp_timeout = 600\n"
_TRIPS = re.compile(r"^restcomm_db_round_trips_total(?:\{\})? ([0-9.e+]+)$", re.M)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 1/100 s


def round_trips(base: str) -> float:
    match = _TRIPS.search(httpx.get(base + "/metrics", timeout=10).text)
    return float(match.group(1)) if match else 0.0


def run_mode(mode: str, rounds: int, idle: float) -> dict[str, float | list[float]]:
    with tempfile.TemporaryDirectory(prefix="node-wakes-") as tmp:
        data = Path(tmp)
        config = data / "restcomm.toml"
        config.write_text(MODES[mode] + COMMON)
        with database_env("postgres", data, config) as env:
            apps = AppServer().start()
            a, base_a, log_a = start_server(env, data / "a", wait=False)
            wait_ready(a, base_a, log_a, timeout=180)  # a loaded machine starts slowly
            b, base_b, log_b = start_server(env, data / "b", wait=False)
            wait_ready(b, base_b, log_b, timeout=180)
            try:
                me = httpx.get(f"{base_a}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD),
                               timeout=10).json()
                account, token = me["sid"], me["auth_token"]
                with httpx.Client(base_url=base_a + API, auth=(account, token), timeout=30) as c:
                    slow, fast = apps.new_path("slow"), apps.new_path("fast")
                    add_number(c, account, "+15557770001", SmsUrl=apps.route(slow, Answer(delay=900), token=token))
                    add_number(c, account, "+15557770002", SmsUrl=apps.route(fast, Answer(), token=token))
                    add_number(c, account, "+15557770003")

                    def send(to: str) -> None:
                        r = c.post(f"/Accounts/{account}/SMS/Messages.json",
                                   data={"From": "+15557770003", "To": to, "Body": "hi"})
                        r.raise_for_status()

                    send("+15557770001")
                    apps.wait(slow, 1, timeout=60)
                    # Idle: what the two nodes' polls cost the database.
                    first = [round_trips(base_a), round_trips(base_b)]
                    trips0 = [round_trips(base_a), round_trips(base_b)]
                    scrape = [t - f for t, f in zip(trips0, first, strict=True)]  # what a scrape costs itself
                    time.sleep(idle)
                    trips1 = [round_trips(base_a), round_trips(base_b)]
                    idle_trips = sum(t1 - t0 - k for t1, t0, k in zip(trips1, trips0, scrape, strict=True)) / idle
                    cpu0 = cpu_seconds(a.pid) + cpu_seconds(b.pid)
                    latencies: list[float] = []
                    for i in range(1, rounds + 1):
                        start = time.monotonic()
                        send("+15557770002")
                        seen = apps.wait(fast, i, timeout=120)
                        latencies.append(seen[i - 1].at - start)
                        time.sleep(0.2)  # B's session ends and its slot frees before the next one
                    cpu = cpu_seconds(a.pid) + cpu_seconds(b.pid) - cpu0
            finally:
                stop_server(b)
                a.kill()  # it holds the slow application's session
                a.wait()
                apps.stop()
    return {"latencies": latencies, "cpu_ms_per_round": 1e3 * cpu / rounds, "idle_trips_per_s": idle_trips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--modes", default="poll,notify,notify-30")
    args = parser.parse_args()
    modes = args.modes.split(",")
    results: dict[str, list[dict[str, float | list[float]]]] = {m: [] for m in modes}
    for run in range(args.runs):
        for mode in modes:  # alternating, so the machine's noise falls on every mode alike
            r = run_mode(mode, args.rounds, args.idle)
            lat = sorted(r["latencies"])  # type: ignore[arg-type]
            print(f"run {run + 1} {mode:>9}: p50 {1e3 * statistics.median(lat):7.1f} ms  "
                  f"p90 {1e3 * lat[int(0.9 * (len(lat) - 1))]:7.1f} ms  max {1e3 * lat[-1]:7.1f} ms  "
                  f"CPU/round {r['cpu_ms_per_round']:.1f} ms  idle round trips {r['idle_trips_per_s']:.1f}/s",
                  flush=True)
            results[mode].append(r)
    print("\nmedians over runs:")
    for mode in modes:
        runs = results[mode]
        p50 = statistics.median(statistics.median(r["latencies"]) for r in runs)  # type: ignore[arg-type]
        mx = statistics.median(max(r["latencies"]) for r in runs)  # type: ignore[type-var]
        cpu = statistics.median(r["cpu_ms_per_round"] for r in runs)  # type: ignore[misc]
        trips = statistics.median(r["idle_trips_per_s"] for r in runs)  # type: ignore[misc]
        print(f"{mode:>9}: p50 {1e3 * p50:7.1f} ms  max {1e3 * mx:7.1f} ms  CPU/round {cpu:.1f} ms  "
              f"idle round trips {trips:.1f}/s")


if __name__ == "__main__":
    main()
