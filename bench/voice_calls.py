"""Voice calls under load: SIPp callers with RTP both ways against our server and, side by side in
the same run, against a minimal asyncio SIP UAS + RTP echo (the ceiling of Python on this machine).

    .venv/bin/python bench/voice_calls.py [--steps 10:100,30:300,45:450] [--limit 250] [--hold 4.5]
                                          [--targets baseline,ours] [--runs 1]

Callers (SIPp, ``bench/sipp/voice_uac.xml``): INVITE offering PCMA + telephone-event, ACK, SIPp's
A-law capture played into the call for ``--hold`` seconds, then SIPp's RFC 4733 capture of "1",
then wait for the server's BYE. ``-r`` calls per second, ``-l`` concurrent limit, ``-m`` total, one
step per ``RATE:TOTAL[:LIMIT]`` (each SIPp run lasts about TOTAL/RATE + hold seconds; keep it under 60).

Targets:

* ``ours``: ``restcomm serve`` (one process, SQLite) with a trunk admitting 127.0.0.1 and a number
  whose application (a loopback HTTP app in this bench) answers
  ``<Gather numDigits="1" timeout="5"><Say>Please press a key</Say></Gather><Hangup/>`` (the prompt
  is synthesised once and cached); the Gather has no action, so the digit is posted back to the same
  URL, which then answers ``<Hangup/>``. Skipped with a note when the server does not answer SIP
  (a build without the voice engine).
* ``baseline``: ``python bench/voice_calls.py baseline-uas`` (separate process): answers INVITE
  with 200 and an SDP, echoes every RTP packet to its sender, sends BYE at the end of the first
  RFC 4733 event. No transactions, no timers, no database: what is left is the cost of asyncio
  moving SIP and RTP datagrams.

Per step and target it prints calls attempted/succeeded/failed (SIPp's counters), the achieved call
setup rate, the probe caller's setup time (INVITE to 200, p50/p99), the peak concurrent calls, server CPU
seconds per call (``/proc/<pid>/stat`` user+system over the step, divided by the calls it handled),
RSS growth per concurrent call (peak RSS during the step minus RSS before it), and the interval
between RTP packets the server sent, measured by a probe caller in this process that places calls
one after another during the step and timestamps every packet on arrival (p50/p99/max over
intervals inside talkspurts; a gap over 200 ms is a talkspurt boundary and is counted, not used).
Then the ratio ours/baseline. With ``--runs N`` every step is repeated N times (targets
interleaved) and medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from common import LoopbackApp, free_port, wait_up  # noqa: E402

SCENARIO = ROOT / "sipp" / "voice_uac.xml"
EMAIL, PASSWORD = "bench@example.com", "Bench-Passw0rd!"
API = "/restcomm/2012-04-24"
NUMBER = "+15550000100"
GATHER = (b'<?xml version="1.0" encoding="UTF-8"?><Response><Gather numDigits="1" timeout="5">'
          b"<Say>Please press a key</Say></Gather><Hangup/></Response>")
HANGUP = b'<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'


# ==================================================================================== baseline UAS

class BaselineUas(asyncio.DatagramProtocol):
    """The minimal SIP UAS: string handling only, one UDP socket per call's RTP, echo, BYE on a digit."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, Call] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        text = data.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        start = lines[0]
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        call_id = (headers.get("call-id") or headers.get("i") or [""])[0]
        if start.startswith("SIP/2.0"):
            call = self.calls.get(call_id)
            if call is not None and " BYE" in (headers.get("cseq") or [""])[0]:
                call.bye_done = True
                self.calls.pop(call_id, None)
            return
        method = start.split(" ", 1)[0]
        if method == "INVITE":
            call = self.calls.get(call_id)
            if call is None:
                call = Call(self, call_id, headers, addr)
                self.calls[call_id] = call
                asyncio.get_running_loop().create_task(call.start(body))
            elif call.ok is not None:
                self.send(call.ok, addr)  # a retransmitted INVITE: the same 200
        elif method == "BYE":
            self.send(self.response(headers, "200 OK"), addr)
            call = self.calls.pop(call_id, None)
            if call is not None:
                call.close()
        elif method in ("OPTIONS", "INFO"):
            self.send(self.response(headers, "200 OK"), addr)

    def response(self, headers: dict[str, list[str]], status: str, *, to_tag: str = "", extra: str = "",
                 body: str = "") -> bytes:
        to = headers["to"][0] + (f";tag={to_tag}" if to_tag and ";tag=" not in headers["to"][0] else "")
        vias = "".join(f"Via: {v}\r\n" for v in headers["via"])
        return (f"SIP/2.0 {status}\r\n{vias}From: {headers['from'][0]}\r\nTo: {to}\r\n"
                f"Call-ID: {headers['call-id'][0]}\r\nCSeq: {headers['cseq'][0]}\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)


@dataclass
class Call:
    uas: BaselineUas
    call_id: str
    headers: dict[str, list[str]]
    source: tuple[str, int]
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    ok: bytes | None = None
    rtp: asyncio.DatagramTransport | None = None
    bye_sent: bool = False
    bye_done: bool = False

    async def start(self, offer: str) -> None:
        m = re.search(r"m=audio (\d+)", offer)
        c = re.search(r"c=IN IP4 ([\d.]+)", offer)
        remote = (c.group(1) if c else self.source[0], int(m.group(1)) if m else 0)
        loop = asyncio.get_running_loop()
        self.rtp, _ = await loop.create_datagram_endpoint(lambda: Echo(self), local_addr=(self.uas.host, 0))
        port = self.rtp.get_extra_info("sockname")[1]
        self.remote = remote
        sdp = (f"v=0\r\no=- 1 1 IN IP4 {self.uas.host}\r\ns=-\r\nc=IN IP4 {self.uas.host}\r\nt=0 0\r\n"
               f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
        contact = f"Contact: <sip:uas@{self.uas.host}:{self.uas.transport.get_extra_info('sockname')[1]}>\r\n"  # type: ignore[union-attr]
        self.ok = self.uas.response(self.headers, "200 OK", to_tag=self.tag,
                                    extra=contact + "Content-Type: application/sdp\r\n", body=sdp)
        self.uas.send(self.ok, self.source)
        loop.call_later(30, self.bye)  # a caller that never presses a key

    def bye(self) -> None:
        if self.bye_sent or self.rtp is None:
            return
        self.bye_sent = True
        h = self.headers
        target = re.search(r"<([^>]+)>", h.get("contact", h.get("m", ["<sip:x>"]))[0])
        uri = target.group(1) if target else f"sip:{self.source[0]}:{self.source[1]}"
        port = self.uas.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        msg = (f"BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {self.uas.host}:{port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
               f"From: {h['to'][0]};tag={self.tag}\r\nTo: {h['from'][0]}\r\nCall-ID: {self.call_id}\r\n"
               f"CSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
        self.uas.send(msg, self.source)
        asyncio.get_running_loop().call_later(0.5, lambda: None if self.bye_done else self.uas.send(msg, self.source))
        self.close()

    def close(self) -> None:
        if self.rtp is not None:
            self.rtp.close()
            self.rtp = None


class Echo(asyncio.DatagramProtocol):
    def __init__(self, call: Call) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        rtp = self.call.rtp
        if rtp is None:
            return
        rtp.sendto(data, addr)
        if len(data) >= 14 and data[1] & 0x7F == 101 and data[13] & 0x80:  # end of an RFC 4733 event
            self.call.bye()


async def serve_baseline(port: int) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", port))
    await loop.create_datagram_endpoint(lambda: BaselineUas("127.0.0.1"), sock=sock)
    await asyncio.Event().wait()


# ==================================================================================== probe caller

class Sink(asyncio.DatagramProtocol):
    """Timestamps RTP arrivals (media payload types only) for the probe call."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        if len(data) >= 12 and data[1] & 0x7F in (0, 8):
            self.arrivals.append(time.monotonic())


async def probe_calls(target: tuple[str, int], stop: asyncio.Event, gaps: list[float], setups: list[float],
                      counters: dict[str, int]) -> None:
    """Place calls one after another until ``stop``: each sends 20 ms PCMA frames for 2.5 s (the
    baseline echoes them; ours plays its prompt meanwhile), then hangs up. Intervals between the
    server's packets go into ``gaps`` (ms), INVITE-to-200 times into ``setups`` (ms)."""
    from restcomm.sip.ua import CallFailed, SipStack

    async def reject(call: Any) -> None:
        await call.reject(486)

    stack = SipStack("127.0.0.1", 0, on_invite=reject, user_agent="bench-probe")
    await stack.start()
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            sink = Sink()
            tr, _ = await loop.create_datagram_endpoint(lambda s=sink: s, local_addr=("127.0.0.1", 0))
            port = tr.get_extra_info("sockname")[1]
            offer = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                     f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
            counters["attempted"] += 1
            sent_at = time.monotonic()
            try:
                call = await stack.invite(f"sip:{NUMBER}@{target[0]}:{target[1]}", from_uri="sip:+15550000002@127.0.0.1",
                                          sdp=offer)
                answer = await call.wait_answer(10)
                setups.append((time.monotonic() - sent_at) * 1000)
            except CallFailed:
                counters["failed"] += 1
                tr.close()
                await asyncio.sleep(0.5)
                continue
            m = re.search(r"m=audio (\d+)", answer)
            remote = ("127.0.0.1", int(m.group(1)) if m else 0)
            seq, ts, ssrc = 0, 0, secrets.randbits(32)
            t0 = loop.time()
            for i in range(125):  # 2.5 s at 20 ms, paced on the loop clock
                if call.ended.done():
                    break
                tr.sendto(struct.pack("!BBHII", 0x80, 8, seq, ts, ssrc) + b"\xd5" * 160, remote)
                seq, ts = seq + 1, ts + 160
                await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - loop.time()))
            await call.bye()
            tr.close()
            counters["completed"] += 1
            times = sink.arrivals
            for a, b in zip(times, times[1:], strict=False):
                gap = (b - a) * 1000
                if gap > 200:
                    counters["talkspurts"] += 1
                else:
                    gaps.append(gap)
    finally:
        await stack.stop()


# ==================================================================================== measurement

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


@dataclass
class StepResult:
    target: str
    attempted: int = 0
    ok: int = 0
    failed: int = 0
    setup_rate: float = 0.0
    setup_ms: float = 0.0
    setup_p99: float = 0.0
    concurrent: int = 0
    cpu_ms_per_call: float = 0.0
    rss_kb_per_call: float = 0.0
    rtp: dict[str, float] = field(default_factory=dict)
    probe: dict[str, int] = field(default_factory=dict)
    sipp_cpu: float = 0.0
    wall: float = 0.0


def run_sipp(target: tuple[str, int], rate: float, limit: int, total: int, hold: float, tmp: Path) -> tuple[
        dict[str, str], int, float, float, float]:
    """One SIPp run; returns (last stat row, peak CurrentCall, achieved calls created per second,
    SIPp CPU seconds, wall seconds)."""
    scenario = tmp / "voice_uac.xml"
    scenario.write_text(re.sub(r'<pause milliseconds="\d+"/>', f'<pause milliseconds="{int(hold * 1000)}"/>',
                               SCENARIO.read_text()))
    stat = tmp / f"stat-{free_port()}.csv"
    duration = total / rate + hold + 20
    cmd = ["sipp", f"{target[0]}:{target[1]}", "-sf", str(scenario), "-s", NUMBER, "-i", "127.0.0.1",
           "-p", str(free_port()), "-mp", str(free_port() // 2 * 2), "-r", f"{rate:g}", "-l", str(limit),
           "-m", str(total), "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1",
           "-timeout", f"{int(duration)}s", "-recv_timeout", "20000", "-max_socket", "4096"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=tmp)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    rows = list(csv.DictReader(stat.open(), delimiter=";")) if stat.exists() else []
    if not rows:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"SIPp produced no statistics (exit {proc.returncode}): {err[-1500:]}")
    peak = max(int(r.get("CurrentCall", 0) or 0) for r in rows)
    return rows[-1], peak, creation_rate(rows), usage.ru_utime + usage.ru_stime, wall


def seconds_of(value: str) -> float:
    """SIPp's 'HH:MM:SS' (or 'HH:MM:SS:uuuuuu') to seconds."""
    parts = [int(p) for p in value.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + parts[2] + (parts[3] / 1e6 if len(parts) > 3 else 0)


def creation_rate(rows: list[dict[str, str]]) -> float:
    """Calls created per second until the last one was created (interpolated between the 1 s
    statistics rows): the setup rate SIPp actually achieved, which falls below -r when the
    concurrency limit (-l) or a slow server holds it back."""
    total = int(rows[-1].get("TotalCallCreated", 0) or 0)
    prev_t, prev_c = 0.0, 0
    for r in rows:
        t, c = seconds_of(r["ElapsedTime(C)"]), int(r.get("TotalCallCreated", 0) or 0)
        if c >= total and total:
            at = prev_t + (total - prev_c) / max(c - prev_c, 1) * (t - prev_t)
            return total / max(at, 1e-3)
        prev_t, prev_c = t, c
    return 0.0


def run_step(name: str, target: tuple[str, int], pid: int, rate: float, limit: int, total: int, hold: float,
             tmp: Path) -> StepResult:
    gaps: list[float] = []
    setups: list[float] = []
    counters = {"attempted": 0, "completed": 0, "failed": 0, "talkspurts": 0}
    rss0 = rss_kb(pid)
    peak_rss = [rss0]
    stop_flag = threading.Event()

    def sample() -> None:
        while not stop_flag.wait(0.25):
            with contextlib.suppress(OSError):
                peak_rss[0] = max(peak_rss[0], rss_kb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    probe_loop = asyncio.new_event_loop()
    stop_probe = asyncio.Event()

    def probe() -> None:
        asyncio.set_event_loop(probe_loop)
        probe_loop.run_until_complete(probe_calls(target, stop_probe, gaps, setups, counters))

    prober = threading.Thread(target=probe, daemon=True)
    cpu0 = cpu_seconds(pid)
    sampler.start()
    prober.start()
    try:
        row, peak, rate_achieved, sipp_cpu, wall = run_sipp(target, rate, limit, total, hold, tmp)
    finally:
        probe_loop.call_soon_threadsafe(stop_probe.set)
        prober.join(15)
        stop_flag.set()
        sampler.join(2)
    cpu = cpu_seconds(pid) - cpu0
    r = StepResult(name)
    r.attempted = int(row.get("TotalCallCreated", 0) or 0)
    r.ok = int(row.get("SuccessfulCall(C)", 0) or 0)
    r.failed = int(row.get("FailedCall(C)", 0) or 0)
    r.setup_rate = rate_achieved
    r.setup_ms = pct(setups, 0.5)
    r.setup_p99 = pct(setups, 0.99)
    r.concurrent = peak
    handled = r.attempted + counters["attempted"]
    r.cpu_ms_per_call = cpu * 1000 / max(handled, 1)
    r.rss_kb_per_call = (peak_rss[0] - rss0) / max(peak, 1)
    r.rtp = {"n": len(gaps), "p50": pct(gaps, 0.5), "p99": pct(gaps, 0.99), "max": max(gaps, default=float("nan"))}
    r.probe = counters
    r.sipp_cpu = sipp_cpu
    r.wall = wall
    return r


# ==================================================================================== targets

def start_baseline(procs: list[subprocess.Popen[bytes]]) -> tuple[tuple[str, int], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "baseline-uas", "--port", str(port)])
    procs.append(proc)
    if not asyncio.run(sip_answers(("127.0.0.1", port), 10)):
        raise SystemExit("baseline UAS did not start")
    return ("127.0.0.1", port), proc.pid


async def sip_answers(target: tuple[str, int], within: float) -> bool:
    """True once the target answers an OPTIONS (bounded)."""
    from restcomm.sip.message import Headers, Request, parse_uri
    from restcomm.sip.ua import CallFailed, SipStack

    stack = SipStack("127.0.0.1", 0, on_invite=lambda call: None)
    await stack.start()
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            h = Headers()
            h.add("Via", stack.via())
            h.add("Max-Forwards", "70")
            h.add("From", f"<sip:bench@127.0.0.1>;tag={secrets.token_hex(4)}")
            h.add("To", f"<sip:{NUMBER}@{target[0]}>")
            h.add("Call-ID", secrets.token_hex(8))
            h.add("CSeq", "1 OPTIONS")
            try:
                await asyncio.wait_for(stack.request(Request(headers=h, method="OPTIONS",
                                                             uri=parse_uri(f"sip:{target[0]}:{target[1]}")),
                                                     ("UDP", *target)), 2)
                return True
            except (CallFailed, TimeoutError):
                await asyncio.sleep(0.3)
        return False
    finally:
        await stack.stop()


class GatherApp(LoopbackApp):
    """The IVR: the Gather document; the Gather (no action) posts the digit back to the same URL,
    which then answers <Hangup/> (otherwise the prompt would start again)."""

    def answer(self, path: str, form: dict[str, str]) -> bytes:
        body = HANGUP if form.get("Digits") else GATHER
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def start_app_thread() -> int:
    """The number's application on a loopback port, in a thread with its own loop (outside the server)."""
    port = free_port()
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(loop.create_server(GatherApp, "127.0.0.1", port))
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(5)
    return port


def start_ours(home: Path, app_port: int, procs: list[subprocess.Popen[bytes]]) -> tuple[tuple[str, int], int] | None:
    import httpx

    home.mkdir(parents=True)
    sip_port = free_port()
    (home / "restcomm.toml").write_text(
        f'[sip]\nlisten = "127.0.0.1:{sip_port}"\n\n[media]\nrtp_ports = "30000-33999"\n\n'
        '[[sip_trunks]]\nname = "bench"\nhost = "127.0.0.1"\nport = 5999\ninbound_addresses = ["127.0.0.1"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(home / "data"), RESTCOMM_ADMIN_EMAIL=EMAIL, RESTCOMM_ADMIN_PASSWORD=PASSWORD,
               RESTCOMM_LOG_LEVEL="WARNING", RESTCOMM_CONFIG=str(home / "restcomm.toml"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "restcomm", "serve", "--port", str(port)], env=env, cwd=home,
                            stdout=(home / "server.log").open("wb"), stderr=subprocess.STDOUT)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/health", proc, home / "server.log")
    acct = httpx.get(f"{base}{API}/Accounts/{EMAIL}.json", auth=(EMAIL, PASSWORD)).json()
    sid, token = acct["sid"], acct["auth_token"]
    with httpx.Client(base_url=base + API, auth=(sid, token)) as c:
        c.post(f"/Accounts/{sid}/IncomingPhoneNumbers.json",
               data={"PhoneNumber": NUMBER, "isSIP": "true", "VoiceUrl": f"http://127.0.0.1:{app_port}/gather",
                     "VoiceMethod": "POST"}).raise_for_status()
    target = ("127.0.0.1", sip_port)
    if not asyncio.run(sip_answers(target, 5)):
        print(f"ours: `restcomm serve` does not answer SIP on 127.0.0.1:{sip_port} (no voice engine in this "
              "build?): skipped")
        return None
    return target, proc.pid


# ==================================================================================== report

def fmt(r: StepResult) -> str:
    rtp = r.rtp
    return (f"{r.target:9} {r.attempted:5d} {r.ok:5d} {r.failed:5d} {r.setup_rate:8.1f} {r.setup_ms:6.1f}/{r.setup_p99:<6.1f} "
            f"{r.concurrent:5d} {r.cpu_ms_per_call:8.2f} {r.rss_kb_per_call:8.1f}  "
            f"{rtp['p50']:5.1f} {rtp['p99']:5.1f} {rtp['max']:6.1f} ({int(rtp['n'])} gaps, "
            f"probe {r.probe['completed']}/{r.probe['attempted']})  sipp cpu {r.sipp_cpu:.1f}s wall {r.wall:.0f}s")


HEADER = ("target    tried    ok  fail  setup/s  setup p50/p99 ms  conc  cpu ms/call  rss KB/conc  "
          "rtp interval p50 p99 max (ms)")


def median_result(runs: list[StepResult]) -> StepResult:
    m = StepResult(runs[0].target)
    for name in ("attempted", "ok", "failed", "concurrent"):
        setattr(m, name, int(statistics.median(getattr(r, name) for r in runs)))
    for name in ("setup_rate", "setup_ms", "setup_p99", "cpu_ms_per_call", "rss_kb_per_call", "sipp_cpu", "wall"):
        setattr(m, name, statistics.median(getattr(r, name) for r in runs))
    m.rtp = {k: statistics.median(r.rtp[k] for r in runs) for k in ("n", "p50", "p99", "max")}
    m.probe = {k: int(statistics.median(r.probe[k] for r in runs)) for k in runs[0].probe}
    return m


def main() -> int:
    if sys.argv[1:2] == ["baseline-uas"]:
        ap = argparse.ArgumentParser()
        ap.add_argument("--port", type=int, required=True)
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.install()
        asyncio.run(serve_baseline(ap.parse_args(sys.argv[2:]).port))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="10:100,30:300,45:450",
                    help="comma-separated RATE:TOTAL[:LIMIT] (calls per second : calls : concurrent at most, "
                         "default --limit); one SIPp run each")
    ap.add_argument("--limit", type=int, default=250, help="SIPp -l: concurrent calls at most")
    ap.add_argument("--hold", type=float, default=4.5,
                    help="seconds of caller audio before the digit; keep it below the prompt + the Gather's 5 s, "
                         "or ours hangs up first and SIPp counts the call failed")
    ap.add_argument("--targets", default="baseline,ours")
    ap.add_argument("--runs", type=int, default=1, help="repeat each step, targets interleaved; medians printed")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write every result to this JSON file")
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp not installed (apt-get install sip-tester)")
    steps = []
    for text in args.steps.split(","):
        parts = text.split(":")
        steps.append((float(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else args.limit))
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}  ({os.cpu_count()} cores)")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="voicebench-"))
    try:
        targets: dict[str, tuple[tuple[str, int], int]] = {}
        recorded: list[dict[str, Any]] = []
        wanted = args.targets.split(",")
        if "baseline" in wanted:
            targets["baseline"] = start_baseline(procs)
        if "ours" in wanted:
            app_port = start_app_thread()
            ours = start_ours(tmp / "ours", app_port, procs)
            if ours is not None:
                targets["ours"] = ours
        for rate, total, limit in steps:
            print(f"\n== {rate:g} calls/s, {total} calls, -l {limit}, hold {args.hold:g} s "
                  f"(load {Path('/proc/loadavg').read_text().split()[0]})")
            print(HEADER)
            results: dict[str, list[StepResult]] = {name: [] for name in targets}
            recorded.append({"rate": rate, "total": total, "limit": limit, "results": results})
            for _ in range(args.runs):
                for name, (target, pid) in targets.items():
                    r = run_step(name, target, pid, rate, limit, total, args.hold, tmp)
                    results[name].append(r)
                    print(fmt(r), flush=True)
            if args.runs > 1:
                print("medians:")
                for name in targets:
                    print(fmt(median_result(results[name])))
            if "ours" in results and "baseline" in results:
                o, b = median_result(results["ours"]), median_result(results["baseline"])
                print(f"ratio ours/baseline: setup rate {o.setup_rate / max(b.setup_rate, 1e-9):.2f}, "
                      f"cpu per call {o.cpu_ms_per_call / max(b.cpu_ms_per_call, 1e-9):.1f}x, "
                      f"rss per concurrent call {o.rss_kb_per_call / max(b.rss_kb_per_call, 1e-9):.1f}x, "
                      f"rtp p99 {o.rtp['p99']:.1f} vs {b.rtp['p99']:.1f} ms")
        print(f"\nload after: {Path('/proc/loadavg').read_text().strip()}")
        if args.json:
            steps_out = [{**step, "results": {k: [dataclasses.asdict(r) for r in v] for k, v in step["results"].items()}}
                         for step in recorded]
            Path(args.json).write_text(json.dumps({"targets": sorted(targets), "steps": steps_out}, indent=1))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not os.environ.get("VOICE_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
