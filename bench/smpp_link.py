"""Push N messages through a Carrier (2 binds x window 10 by default) to the SMSC simulator
running in a separate process, and print messages/s and submit latency percentiles.

    .venv/bin/python bench/smpp_link.py -n 20000
    .venv/bin/python bench/smpp_link.py -n 20000 --receipts      # SMSC also sends a DLR per message
    .venv/bin/python bench/smpp_link.py -n 20000 --no-uvloop     # plain asyncio event loop

Latency is measured per ``Carrier.submit`` call (queue + window wait + round trip) with
``--concurrency`` callers in a closed loop, so it reflects what the pipeline sees rather than the
time a message sat behind thousands of others in one ``gather``. Client and simulator share the
machine's cores over loopback: read the numbers as relative, not as carrier capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from restcomm.smpp.esme import Carrier, CarrierConfig, Inbound, OutboundMessage  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(port: int, receipts: bool, uvloop: bool) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "restcomm.smpp.simulator", "--port", str(port),
            "--receipt-delay", "0" if receipts else "-1"]
    if not uvloop:
        args.append("--no-uvloop")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc


async def run(args: argparse.Namespace, port: int) -> None:
    receipts = 0
    all_receipts = asyncio.Event()

    async def on_deliver(item: Inbound) -> None:
        nonlocal receipts
        receipts += 1
        if receipts >= args.n:
            all_receipts.set()

    carrier = Carrier(
        CarrierConfig(name="bench", host="127.0.0.1", port=port, system_id="bench", password="bench",
                      binds=args.binds, window=args.window, max_tps=args.max_tps),
        on_deliver,
    )
    await carrier.start()
    await asyncio.wait_for(carrier.wait_bound(args.binds), 10)
    latencies: list[float] = []
    remaining = args.n
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            outcome = await carrier.submit(OutboundMessage("+15550001111", "+15550002222", args.text))
            latencies.append(time.perf_counter() - t)
            failures += not outcome.ok

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - t0
    if args.receipts:
        await asyncio.wait_for(all_receipts.wait(), 60)
    elapsed_dlr = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    state = carrier.state()
    await carrier.close()

    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"loop={'uvloop' if args.uvloop else 'asyncio'} binds={args.binds} window={args.window} "
          f"concurrency={args.concurrency} receipts={'on' if args.receipts else 'off'}")
    print(f"messages: {args.n}  failures: {failures}  elapsed: {elapsed:.2f} s")
    print(f"throughput: {args.n / elapsed:,.0f} submit_sm/s"
          + (f"  (with all {args.n} receipts in: {args.n / elapsed_dlr:,.0f} msg/s)" if args.receipts else ""))
    print(f"latency ms: p50 {q[49] * 1e3:.2f}  p90 {q[89] * 1e3:.2f}  p99 {q[98] * 1e3:.2f}  "
          f"max {latencies[-1] * 1e3:.2f}")
    print(f"client CPU: {cpu:.2f} s = {cpu / args.n * 1e6:.0f} us per message "
          f"(machine-load independent; the simulator's CPU is not included)")
    print(f"counters: {state.counters}")


def main() -> None:
    if os.environ.get("BENCH_LOG"):
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--binds", type=int, default=2)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=40, help="callers of Carrier.submit in a closed loop")
    p.add_argument("--max-tps", type=float, default=0.0)
    p.add_argument("--text", default="Your verification code is 123456")
    p.add_argument("--receipts", action="store_true")
    p.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    p.add_argument("--sim-port", type=int, default=None, help="use a simulator already running on this port")
    args = p.parse_args()
    port = args.sim_port or free_port()
    sim = start_simulator(port, args.receipts, args.uvloop) if args.sim_port is None else None
    try:
        if args.uvloop:
            import uvloop

            uvloop.run(run(args, port))
        else:
            asyncio.run(run(args, port))
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(5)


if __name__ == "__main__":
    main()
