"""What the inbound voice tests share: a ``restcomm serve`` with SIP and RTP on free ports, a trunk
at 127.0.0.2 (SIPp binds there to be a trusted carrier), loopback applications, SIPp runs and
audio files made with the platform's own TTS.

Every wait is bounded: SIPp gets ``-timeout``, baresip waits on its events, the API is polled with
``sms_app.wait_until``.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from restcomm.media.wav import write_wav
from tests.support.hardened_server import Hardened, launch, new_account
from tests.support.ports import free_port
from tests.support.postgres import IN_CI
from tests.support.server import TEST_CONFIG
from tests.support.sms_app import AppServer, add_number, unique_number
from tests.support.waiting import wait_until

SCENARIOS = Path(__file__).resolve().parent.parent / "peers" / "sipp"
SIPP = shutil.which("sipp")
BARESIP = shutil.which("baresip")
TRUNK_HOST = "127.0.0.2"


def require(tool: str | None, name: str) -> None:
    if tool is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (scripts/test installs it)")
        pytest.skip(f"{name} not installed")


VOICE_CONFIG = TEST_CONFIG + f"""
[sms]
poll_interval = 0.2
app_timeout = 3.0
callback_backoff = 0.05
callback_backoff_max = 0.2
callback_max_attempts = 4

[voice]
call_lease = 6

[[sip_trunks]]
name = "test-carrier"
host = "{TRUNK_HOST}"
port = 5060
inbound_addresses = ["{TRUNK_HOST}"]
"""


def sip_port() -> int:
    """A port free for both UDP and TCP, below the kernel's ephemeral range (32768-60999), so the
    HTTP port and SIPp's ports, picked there, can never be the same number."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free SIP port")


@dataclass
class VoiceServer:
    srv: Hardened
    sip_port: int
    app: AppServer
    account_sid: str
    token: str
    tmp: Path
    numbers: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return self.srv.client(self.account_sid, self.token)

    def number(self, **fields: str) -> str:
        """A fresh pure-SIP number of the test account with the given voice fields."""
        number = unique_number()
        with self.client() as c:
            add_number(c, self.account_sid, number, **fields)
        return number

    def number_pattern(self, pattern: str, **fields: str) -> None:
        """A pattern number (regex) of the test account."""
        with self.client() as c:
            add_number(c, self.account_sid, pattern, **fields)

    def calls(self, **query: str) -> list[dict[str, Any]]:
        with self.client() as c:
            r = c.get(f"/Accounts/{self.account_sid}/Calls.json", params={"PageSize": "1000", **query})
        assert r.status_code == 200, r.text
        return list(r.json()["calls"])

    def wait_call(self, to: str, statuses: set[str], timeout: float = 15) -> dict[str, Any]:
        found = wait_until(lambda: [c for c in self.calls(To=to) if c["status"] in statuses], bool, timeout,
                           f"a call to {to} in {statuses}")
        return found[0]


def in_db(vs: VoiceServer, job: Any) -> Any:
    """Run ``job(conn)`` in a transaction on the server's own database (SQLite file or PostgreSQL)."""
    import asyncio

    from restcomm.config import load_settings
    from restcomm.store import db

    env = {"RESTCOMM_DATA_DIR": vs.srv.env["RESTCOMM_DATA_DIR"]}
    if "RESTCOMM_DATABASE_URL" in vs.srv.env:
        env["RESTCOMM_DATABASE_URL"] = vs.srv.env["RESTCOMM_DATABASE_URL"]
    settings = load_settings(env=env)

    async def run() -> Any:
        engine = db.create_engine(settings)
        try:
            async with engine.connect() as conn, conn.begin():
                return await job(conn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def start_voice_server(tmp: Path, backend: str, config: str = VOICE_CONFIG) -> VoiceServer:
    port = sip_port()
    base = random.randrange(10000, 19000, 2)  # RTP, also outside the ephemeral range
    srv = launch(tmp / "server", backend=backend, config=config,
                 env={"RESTCOMM_SIP_LISTEN": f"127.0.0.1:{port}", "RESTCOMM_RTP_PORTS": f"{base}-{base + 400}"})
    app = AppServer().start()
    try:
        sid, token, _, _ = new_account(srv, "voice")
    except BaseException:  # the fixture never yields: nothing else would stop them
        app.stop()
        srv.close()
        raise
    return VoiceServer(srv, port, app, sid, token, tmp)


def run_sipp(vs: VoiceServer, scenario: str, service: str, *, local_ip: str = TRUNK_HOST,
             limit: float = 20, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    """One SIPp call to ``service`` at the server; (exit code, message trace)."""
    require(SIPP, "sipp (Debian sip-tester)")
    trace = vs.tmp / f"sipp-{free_port()}.log"
    cmd = [SIPP or "sipp", f"127.0.0.1:{vs.sip_port}", "-sf", str(SCENARIOS / scenario), "-s", service,
           "-i", local_ip, "-p", str(free_port()), "-mp", str(random.randrange(10000, 19000, 2)),
           *(() if "-m" in extra else ("-m", "1")), "-nostdin", "-timeout", f"{int(limit)}s", "-timeout_error", "-trace_msg", "-message_file", str(trace),
           *extra]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=limit + 10, cwd=vs.tmp)
    text = trace.read_text(errors="replace") if trace.exists() else ""
    if proc.returncode != 0:
        print(proc.stderr.decode(errors="replace")[-2000:])
        print(text[-4000:])
    return proc.returncode, text


def silence_wav(path: Path, seconds: float) -> Path:
    path.write_bytes(write_wav(bytes(int(16000 * seconds))))
    return path


def speech_wav(path: Path, text: str, *, lead: float = 0.5, tail: float = 1.0) -> Path:
    """``text`` spoken by the platform's TTS, with silence around it, as an 8 kHz WAV."""
    from restcomm.media.tts import Synthesizer

    synth = Synthesizer(None)
    try:
        pcm = synth.synthesize_sync(text, "man", "en")
    finally:
        synth.close()
    path.write_bytes(write_wav(bytes(int(16000 * lead)) + pcm + bytes(int(16000 * tail))))
    return path
