"""RTP media cost and pacing: CPU µs per packet, and the interval between packets we send.

    python bench/rtp_pacing.py [--seconds 10] [--endpoints 1 100] [--uvloop]

Part 1 (micro): CPU per packet on the send path (G.711 encode of a 20 ms frame + header + sendto)
and the receive path (parse + decode + voice level, plus recording and bridge relay variants),
calling the endpoint's packet functions directly in a loop.
Part 2 (macro): N endpoints each play a long prompt at once; a receiver in a *separate process*
timestamps every packet on arrival and prints the per-stream interval percentiles (goal from the
voice issue: p99 under 5 ms over 20 ms) together with this process's CPU per packet sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from restcomm.media import g711, rtp
from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator

RECEIVER = r"""
import json, socket, sys, time, collections
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
duration = float(sys.argv[1])
arrivals = collections.defaultdict(list)
s.settimeout(2.0)
end = None
while True:
    try:
        data = s.recv(2048)
    except socket.timeout:
        if end is not None:
            break
        continue
    now = time.monotonic()
    end = end or now + duration
    arrivals[data[8:12]].append(now)
    if now > end + 1:
        break
gaps = []
for times in arrivals.values():
    gaps += [(b - a) * 1000 for a, b in zip(times, times[1:])]
gaps.sort()
pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]
print(json.dumps({"streams": len(arrivals), "packets": sum(map(len, arrivals.values())),
                  "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "p999": pick(0.999), "max": gaps[-1]}))
"""


async def micro(n: int = 20000) -> dict[str, float]:
    ports = PortAllocator(45000, 45999)
    a = await RtpEndpoint.create(ports, "127.0.0.1")
    b = await RtpEndpoint.create(ports, "127.0.0.1")
    c = await RtpEndpoint.create(ports, "127.0.0.1")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    for e in (a, b, c):
        e.set_remote_address("127.0.0.1", sink.getsockname()[1])
    pcm = bytes(range(256)) * 1 + bytes(64)
    out: dict[str, float] = {}

    t = time.process_time()
    for i in range(n):
        a._send_frame(g711.ulaw_encode(pcm), 160, i * 0.02)
        if i % 64 == 0:
            try:
                while sink.recv(2048):
                    pass
            except BlockingIOError:
                pass
    out["send_us"] = (time.process_time() - t) / n * 1e6

    packets = [rtp.encode(0, i & 0xFFFF, 160 * i, 0x1234, g711.ulaw_encode(pcm)) for i in range(n)]
    src = ("127.0.0.1", 9)
    b.latched, b.remote = True, src
    t = time.process_time()
    for p in packets:
        b._on_rtp(p, src)
    out["receive_us"] = (time.process_time() - t) / n * 1e6

    b2 = await RtpEndpoint.create(ports, "127.0.0.1")
    b2.latched, b2.remote = True, src
    with tempfile.TemporaryDirectory() as tmp:
        b2.start_recording(os.path.join(tmp, "r.wav"))
        b2.bridge(c)
        t = time.process_time()
        for p in packets:
            b2._on_rtp(p, src)
            if b2._mixer is not None and len(b2._mixer._tracks[0].buffer) > 3200:
                b2._mixer.pull()
        out["receive_record_bridge_us"] = (time.process_time() - t) / n * 1e6
        await b2.stop_recording()
    for e in (a, b, b2, c):
        await e.close()
    sink.close()
    return out


async def macro(endpoints: int, seconds: float, port: int) -> dict[str, float]:
    ports = PortAllocator(46000, 47999)
    eps = [await RtpEndpoint.create(ports, "127.0.0.1") for _ in range(endpoints)]
    for e in eps:
        e.set_remote_address("127.0.0.1", port)
    prompt = bytes(int(16000 * seconds))
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(e.play(prompt) for e in eps))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    sent = sum(e.stats["sent"] for e in eps)
    for e in eps:
        await e.close()
    return {"endpoints": endpoints, "cpu_us_per_packet": cpu / sent * 1e6, "cpu_share": cpu / wall, "sent": sent}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--endpoints", type=int, nargs="*", default=[1, 100])
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (what uvicorn[standard] serves with)")
    args = ap.parse_args()
    run = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run
    m = run(micro())
    print(f"CPU per packet: send {m['send_us']:.1f} µs, receive {m['receive_us']:.1f} µs, "
          f"receive+record+bridge relay {m['receive_record_bridge_us']:.1f} µs")
    for n in args.endpoints:
        proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(args.seconds)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        r = run(macro(n, args.seconds, port))
        r.update(json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1]))
        print(f"{n:4d} endpoints x {args.seconds:.0f} s: {r['packets']} packets in {r['streams']} streams; interval ms "
              f"p50 {r['p50']:.2f} p90 {r['p90']:.2f} p99 {r['p99']:.2f} p99.9 {r['p999']:.2f} max {r['max']:.2f}; "
              f"sender CPU {r['cpu_us_per_packet']:.1f} µs/packet ({100 * r['cpu_share']:.1f}% of a core)")


if __name__ == "__main__":
    main()
