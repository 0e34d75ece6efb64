"""What the outbound-call and ``<Dial>`` tests share: Clients with a registered baresip, a SIPp UAS
in the background (a trunk or a callee), the Calls API and bounded waits on a call's status."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.peers.baresip import Baresip
from tests.support.ports import free_port
from tests.support.voice_peers import BARESIP, SCENARIOS, SIPP, VoiceServer, require
from tests.support.waiting import wait_until

PASSWORD = "Str0ng-Passw0rd!"
PHRASES = ["the quick brown fox", "seven green apples", "hello world"]


def client_login(vs: VoiceServer, name: str) -> str:
    login = f"{name}{free_port()}"
    with vs.client() as c:
        r = c.post(f"/Accounts/{vs.account_sid}/Clients.json", data={"Login": login, "Password": PASSWORD})
    assert r.status_code == 200, r.text
    return login


def registered_phone(vs: VoiceServer, folder: Path, login: str, source: Path, answer: str = "auto") -> Baresip:
    require(BARESIP, "baresip (Debian baresip-core)")
    return Baresip(folder, login, source, register=f"sip:{login}@127.0.0.1:{vs.sip_port}", password=PASSWORD,
                   answer=answer)


def wait_registered(vs: VoiceServer, p: Baresip) -> None:
    """Bounded wait for the binding to be in the API-visible registrar (baresip's log line)."""
    wait_until(lambda: "200 OK" in p.log() and "binding" in p.log(), bool, 15, "baresip's registration")


@contextmanager
def sipp_uas(vs: VoiceServer, scenario: str | None, port: int, limit: float = 20) -> Iterator[subprocess.Popen[bytes]]:
    """A SIPp UAS on ``port`` for one call (``scenario`` None: SIPp's built-in ``uas``)."""
    require(SIPP, "sipp (Debian sip-tester)")
    how = ["-sn", "uas"] if scenario is None else ["-sf", str(SCENARIOS / scenario)]
    proc = subprocess.Popen([SIPP or "sipp", *how, "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
                             "-mp", str(random.randrange(10000, 19000, 2)), "-timeout", f"{int(limit)}s",
                             "-timeout_error", "-trace_msg", "-message_file", str(vs.tmp / f"sipp-uas-{port}.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=vs.tmp)
    try:
        yield proc
    finally:
        try:
            proc.wait(timeout=limit + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sipp_uas_for_registration(folder: Path, port: int, limit: float = 20) -> Any:
    """A SIPp registrar (``uas_register_auth.xml``) on ``port``, started before the server."""
    require(SIPP, "sipp (Debian sip-tester)")
    return subprocess.Popen([SIPP or "sipp", "-sf", str(SCENARIOS / "uas_register_auth.xml"), "-i", "127.0.0.1",
                             "-p", str(port), "-m", "1", "-nostdin", "-timeout", f"{int(limit)}s", "-timeout_error"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)


def create_call(vs: VoiceServer, to: str, url: str, **extra: str) -> dict[str, Any]:
    frm = vs.number()
    with vs.client() as c:
        r = c.post(f"/Accounts/{vs.account_sid}/Calls.json", data={"From": frm, "To": to, "Url": url, **extra})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def call_of(vs: VoiceServer, sid: str) -> dict[str, Any]:
    with vs.client() as c:
        r = c.get(f"/Accounts/{vs.account_sid}/Calls/{sid}.json")
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_status(vs: VoiceServer, sid: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    return dict(wait_until(lambda: call_of(vs, sid), lambda c: c["status"] in statuses, timeout,
                           f"call {sid} in {statuses}"))
