"""``restcomm phone`` against a real ``restcomm serve`` (SQLite and PostgreSQL): the README's first
call. The phone registers as a Client with digest, then dials a number as that Client (answering
the server's digest challenge); the number's application says a phrase and gathers a digit, the
phone presses it, and the words come back out of the phone's recording through the recognizer.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from restcomm.media.wav import read_wav
from tests.peers.asr import recognize
from tests.support.ports import free_port
from tests.support.sms_app import Answer
from tests.support.voice_peers import VoiceServer, in_db, start_voice_server

PASSWORD = "Str0ng-Passw0rd!"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def vs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path_factory.mktemp(f"phone-{request.param}"), request.param)
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def phone(*args: str, cwd: Path, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "restcomm", "phone", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def new_client(vs: VoiceServer) -> str:
    login = f"alice{free_port()}"
    with vs.client() as c:
        r = c.post(f"/Accounts/{vs.account_sid}/Clients.json", data={"Login": login, "Password": PASSWORD})
    assert r.status_code == 200, r.text
    return login


def bindings(vs: VoiceServer, login: str) -> int:
    from sqlalchemy import func, select

    from restcomm.store.schema import sip_registrations

    async def count(conn):  # type: ignore[no-untyped-def]
        return (await conn.execute(select(func.count()).select_from(sip_registrations)
                                   .where(sip_registrations.c.aor == login))).scalar_one()

    return int(in_db(vs, count))


def test_register_then_call_a_number_and_press_a_key(vs: VoiceServer, tmp_path: Path) -> None:
    login = new_client(vs)
    aor = f"sip:{login}@127.0.0.1:{vs.sip_port}"

    # registers (digest), is a binding in the database while it waits, un-registers on Ctrl-C
    waiting = subprocess.Popen([sys.executable, "-m", "restcomm", "phone", "--register", aor, "--password", PASSWORD],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        assert waiting.stdout is not None
        lines = []
        for line in waiting.stdout:  # bounded by the phone's own registration timeout (32 s)
            lines.append(line)
            if "waiting for calls" in line or "result" in line:
                break
        assert any("registered (expires" in ln for ln in lines), lines
        assert bindings(vs, login) == 1
        waiting.send_signal(signal.SIGINT)
        rest, _ = waiting.communicate(timeout=15)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert "unregistered" in rest and waiting.returncode == 7, rest
    assert bindings(vs, login) == 0

    bad = phone("listen", "--register", aor, "--password", "wrong-Passw0rd", cwd=tmp_path)
    assert bad.returncode == 1 and "registration refused: SIP 40" in bad.stdout, bad.stdout + bad.stderr

    action = vs.app.new_path("action")
    vs.app.route(action, Answer("<Response><Say>hello world</Say></Response>"), token=vs.token)
    gather = vs.app.new_path("gather")
    vs.app.route(gather, Answer(f'<Response><Gather numDigits="1" timeout="10" action="{vs.app.url(action)}">'
                                "<Say>seven green apples</Say></Gather></Response>"), token=vs.token)
    number = vs.number(VoiceUrl=vs.app.url(gather))
    done = phone("dial", number, "--server", f"127.0.0.1:{vs.sip_port}", "--user", login, "--password", PASSWORD,
                 "--digits", "7", "--digits-delay", "2.5", "--record", "heard.wav", "--stay",
                 "--hangup-after", "20", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for event in ("answered", "digits sent 7", "hung up (remote)", "result completed"):
        assert event in done.stdout, done.stdout
    (seen,) = vs.app.requests(action)
    assert seen.params["Digits"] == "7" and seen.params["From"] == login
    words = set(recognize(read_wav((tmp_path / "heard.wav").read_bytes()),
                          ["seven", "green", "apples", "hello", "world", "one", "two", "three"]))
    # the grammar lets the loose recognizer map pauses to stray words; the content words must be there
    assert {"apples", "hello", "world"} <= words, words
    call = vs.wait_call(number, {"completed"})
    assert call["direction"] == "inbound"

    wrong = phone("dial", number, "--server", f"127.0.0.1:{vs.sip_port}", "--user", login,
                  "--password", "wrong-Passw0rd", cwd=tmp_path)
    assert wrong.returncode in (5, 6), wrong.stdout
    assert "SIP 40" in wrong.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("reason", "code", "result"), [("busy", 3, "busy"), ("rejected", 5, "rejected")])
def test_reject_is_reported_as_busy_or_rejected(vs: VoiceServer, tmp_path: Path, reason: str, code: int,
                                                result: str) -> None:
    login = new_client(vs)
    path = vs.app.new_path("reject")
    vs.app.route(path, Answer(f'<Response><Reject reason="{reason}"/></Response>'), token=vs.token)
    number = vs.number(VoiceUrl=vs.app.url(path))
    done = phone("dial", number, "--server", f"127.0.0.1:{vs.sip_port}", "--user", login, "--password", PASSWORD,
                 cwd=tmp_path)
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].split("] ", 1)[1].startswith(f"result {result} (SIP ")
