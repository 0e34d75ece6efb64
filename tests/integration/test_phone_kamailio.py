"""Kamailio (Debian ``kamailio``) in front of a node, as docs/operations.md describes: a Client's
call through the proxy is challenged by the node (digest end to end), answered, and the node's BYE
comes back through the proxy with the Route the proxy recorded (Record-Route honoured both ways).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import IN_CI
from tests.support.sms_app import Answer
from tests.support.voice_peers import VoiceServer, sip_port, start_voice_server

KAMAILIO = shutil.which("kamailio")
CONFIG = Path(__file__).resolve().parent.parent / "peers" / "kamailio.cfg"
PASSWORD = "Str0ng-Passw0rd!"

if KAMAILIO is None:
    if IN_CI:
        raise RuntimeError("kamailio (Debian package kamailio) is required in CI")
    pytest.skip("kamailio not installed (apt-get install kamailio)", allow_module_level=True)


@pytest.fixture(scope="module")
def vs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path_factory.mktemp("kamailio-node"), "sqlite")
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def answers_options(port: int) -> bool:
    """One OPTIONS to the proxy (relayed to the node); True if any response came within 0.3 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.3)
        me = s.getsockname()[1]
        s.sendto((f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{me}{time.time_ns()}\r\n"
                  f"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: probe{time.time_ns()}\r\n"
                  "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0")
        except OSError:
            return False


@pytest.fixture
def proxy(vs: VoiceServer, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = sip_port()
    (tmp_path / "dispatcher.list").write_text(f"1 sip:127.0.0.1:{vs.sip_port}\n")
    modules = sorted(glob.glob("/usr/lib/*/kamailio/modules/"))[0]
    cfg = (CONFIG.read_text().replace("@PORT@", str(port)).replace("@MODULES@", modules)
           .replace("@DISPATCHER@", str(tmp_path / "dispatcher.list")))
    (tmp_path / "kamailio.cfg").write_text(cfg)
    log = tmp_path / "kamailio.log"
    proc = subprocess.Popen([KAMAILIO or "kamailio", "-f", str(tmp_path / "kamailio.cfg"), "-DD", "-E"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not answers_options(port):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        yield port, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def test_client_call_through_kamailio(vs: VoiceServer, proxy: tuple[int, Path], tmp_path: Path) -> None:
    port, log = proxy
    login = f"alice{port}"
    with vs.client() as c:
        assert c.post(f"/Accounts/{vs.account_sid}/Clients.json",
                      data={"Login": login, "Password": PASSWORD}).status_code == 200
    path = vs.app.new_path("hello")
    vs.app.route(path, Answer("<Response><Say>hello world</Say></Response>"), token=vs.token)
    number = vs.number(VoiceUrl=vs.app.url(path))
    done = subprocess.run([sys.executable, "-m", "restcomm", "phone", "dial", number, "--server", f"127.0.0.1:{port}",
                           "--user", login, "--password", PASSWORD, "--stay", "--hangup-after", "15"],
                          capture_output=True, text=True, timeout=40, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "hung up (remote)" in done.stdout, done.stdout + done.stderr
    seen = [ln for ln in log.read_text(errors="replace").splitlines() if "REQ " in ln]
    # ACK of the 200 from the phone and BYE from the node both went through the proxy's Route
    assert any(f"REQ ACK sip:127.0.0.1:{vs.sip_port}" in ln and f"127.0.0.1:{port};lr" in ln for ln in seen), seen
    assert any("REQ BYE" in ln and f"from 127.0.0.1:{vs.sip_port}" in ln and f"127.0.0.1:{port};lr" in ln
               for ln in seen), seen
    assert vs.wait_call(number, {"completed"})["direction"] == "inbound"
