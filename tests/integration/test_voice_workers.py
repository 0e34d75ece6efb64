"""``restcomm serve --workers 2`` with voice: only the first worker listens for SIP, yet a Calls API
request taken by either worker places the call (the other hands it over, web/peers.py), and a change
to a ringing call (Status=canceled) taken by the second worker reaches the call.

SIPp plays the callees: one answers 486 to every INVITE, one rings until it is cancelled. Which
worker took a request is read from ``/ready`` on the same keep-alive connection (``answered_by``).
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.support.hardened_server import launch, new_account
from tests.support.sms_app import AppServer
from tests.support.voice_peers import SCENARIOS, SIPP, VOICE_CONFIG, VoiceServer, require, sip_port
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def vs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    tmp = tmp_path_factory.mktemp("voice-workers")
    port = sip_port()
    base = random.randrange(10000, 19000, 2)
    srv = launch(tmp / "server", backend="sqlite", config=VOICE_CONFIG,
                 env={"RESTCOMM_SIP_LISTEN": f"127.0.0.1:{port}", "RESTCOMM_RTP_PORTS": f"{base}-{base + 400}",
                      "RESTCOMM_WORKERS": "2"})
    app = AppServer().start()
    try:
        sid, token, _, _ = new_account(srv, "voice")
        yield VoiceServer(srv, port, app, sid, token, tmp)
    finally:
        app.stop()
        srv.close()


def uas(vs: VoiceServer, scenario: str, port: int, calls: int) -> subprocess.Popen[bytes]:
    require(SIPP, "sipp (Debian sip-tester)")
    return subprocess.Popen([SIPP or "sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
                             "-m", str(calls), "-nostdin", "-mp", str(random.randrange(10000, 19000, 2)),
                             "-timeout", "60s", "-timeout_error", "-trace_msg",
                             "-message_file", str(vs.tmp / f"sipp-uas-{port}.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=vs.tmp)


def on_worker(vs: VoiceServer, worker: int | None = None) -> tuple[httpx.Client, int]:
    """A keep-alive client and the worker its connection reached (bounded retries for ``worker``)."""
    for _ in range(60):
        c = vs.client()
        ready = c.get(vs.srv.base_url + "/ready")
        answered_by = int(ready.json()["checks"]["answered_by"])
        if worker is None or answered_by == worker:
            return c, answered_by
        c.close()
    raise AssertionError(f"no connection reached worker {worker}")


def create(c: httpx.Client, vs: VoiceServer, to: str, frm: str | None = None) -> str:
    r = c.post(f"/Accounts/{vs.account_sid}/Calls.json",
               data={"From": frm or vs.number(), "To": to, "Url": vs.app.url("/never")})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["sid"])


def status(vs: VoiceServer, sid: str) -> str:
    with vs.client() as c:
        return str(c.get(f"/Accounts/{vs.account_sid}/Calls/{sid}.json").json()["status"])


def test_calls_created_on_either_worker_are_placed(vs: VoiceServer) -> None:
    port = sip_port()
    per_worker = 2
    busy = uas(vs, "uas_486.xml", port, 2 * per_worker)
    try:
        sids: dict[int, list[str]] = {0: [], 1: []}
        for worker in (0, 1):
            for _ in range(per_worker):
                c, _ = on_worker(vs, worker)
                try:
                    sids[worker].append(create(c, vs, f"sip:busy@127.0.0.1:{port}"))
                finally:
                    c.close()
        for worker, made in sids.items():
            for sid in made:
                wait_until(lambda s=sid: status(vs, s), lambda st: st in ("busy", "failed", "completed"), 20,
                           f"the call {sid} made through worker {worker} to end")
                assert status(vs, sid) == "busy", f"call through worker {worker}: {status(vs, sid)}"
        busy.wait(timeout=20)
        assert busy.returncode == 0, busy.stderr.read().decode(errors="replace") if busy.stderr else ""
    finally:
        if busy.poll() is None:
            busy.kill()
            busy.wait()


def test_a_ringing_call_is_cancelled_through_the_other_worker(vs: VoiceServer) -> None:
    port = sip_port()
    ringer = uas(vs, "uas_ring_cancel.xml", port, 1)
    try:
        c, _ = on_worker(vs, 1)
        try:
            sid = create(c, vs, f"sip:ringing@127.0.0.1:{port}")
            wait_until(lambda: status(vs, sid), lambda st: st == "ringing", 20, "the call to ring")
            r = c.post(f"/Accounts/{vs.account_sid}/Calls/{sid}.json", data={"Status": "canceled"})
            assert r.status_code == 200, r.text
        finally:
            c.close()
        wait_until(lambda: status(vs, sid), lambda st: st == "canceled", 20, "the call to be canceled")
        ringer.wait(timeout=20)
        assert ringer.returncode == 0  # it saw our CANCEL
    finally:
        if ringer.poll() is None:
            ringer.kill()
            ringer.wait()


def test_a_handed_over_call_keeps_its_caller_id(vs: VoiceServer) -> None:
    port = sip_port()
    frm = vs.number()
    busy = uas(vs, "uas_486.xml", port, 1)
    try:
        c, _ = on_worker(vs, 1)
        try:
            sid = create(c, vs, f"sip:busy@127.0.0.1:{port}", frm)
        finally:
            c.close()
        wait_until(lambda: status(vs, sid), lambda st: st == "busy", 20, "the call to end busy")
        busy.wait(timeout=20)
        log = (vs.tmp / f"sipp-uas-{port}.log").read_text(errors="replace")
        assert frm in log  # the caller id reached the callee through the first worker
    finally:
        if busy.poll() is None:
            busy.kill()
            busy.wait()
