"""Calls placed through the Calls API, end to end: real ``restcomm serve`` (SQLite and PostgreSQL).

* ``To=client:…``: baresip, registered with digest, auto-answers; the application's ``<Say>``
  comes back out of baresip's recording through a speech recognizer; the status callbacks
  initiated, ringing, answered, completed arrive in order at a loopback receiver.
* ``To=`` a number: routed to a ``[[sip_trunks]]`` trunk that is a SIPp UAS; with two trunks the
  one with the longer prefix answers 503 and the call completes through the next.
* Twilio's SDK: ``calls.create`` then ``calls(sid).update(url=…)`` redirects the live call (the new
  document is requested) and ``update(status="completed")`` ends it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from twilio.rest import Client

from restcomm.media.wav import read_wav
from tests.peers.asr import recognize_phrase
from tests.support.sms_app import Answer
from tests.support.voice_calls import (
    PHRASES,
    client_login,
    create_call,
    registered_phone,
    sipp_uas,
    sipp_uas_for_registration,
    wait_registered,
    wait_status,
)
from tests.support.voice_peers import VOICE_CONFIG, VoiceServer, silence_wav, sip_port, start_voice_server

FAILING_TRUNK_PORT = sip_port()
GOOD_TRUNK_PORT = sip_port()
AUTH_TRUNK_PORT = sip_port()
TRUNKS = f"""
[[sip_trunks]]
name = "down-carrier"
host = "127.0.0.1"
port = {FAILING_TRUNK_PORT}
prefixes = ["+1999"]

[[sip_trunks]]
name = "good-carrier"
host = "127.0.0.1"
port = {GOOD_TRUNK_PORT}
prefixes = ["+199"]

[[sip_trunks]]
name = "auth-carrier"
host = "127.0.0.1"
port = {AUTH_TRUNK_PORT}
prefixes = ["+1888"]
username = "trunkuser"
password = "trunkpass"
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def vs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path_factory.mktemp(f"outbound-{request.param}"), request.param,
                                config=VOICE_CONFIG + TRUNKS)
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def test_api_call_to_a_registered_client_runs_the_app(vs: VoiceServer, tmp_path: Path) -> None:
    status = vs.app.new_path("status")
    vs.app.route(status, Answer("", 204, "text/plain"))
    app = vs.app.new_path("say")
    vs.app.route(app, Answer(f"<Response><Say>{PHRASES[1]}</Say></Response>"), token=vs.token)
    login = client_login(vs, "alice")
    with registered_phone(vs, tmp_path / "alice", login, silence_wav(tmp_path / "s.wav", 30)) as p:
        wait_registered(vs, p)
        call = create_call(vs, f"client:{login}", vs.app.url(app), StatusCallback=vs.app.url(status),
                           StatusCallbackEvent="initiated ringing answered completed", Record="true")
        p.wait_event("CALL_ESTABLISHED")
        p.wait_event("CALL_CLOSED", timeout=20)  # the document ended: the server hung up
        heard = read_wav(p.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[1]
    (request,) = vs.app.requests(app)
    assert request.signature_valid
    params = request.params
    assert params["CallSid"] == call["sid"] and params["Direction"] == "outbound-api"
    assert params["CallStatus"] == "in-progress" and params["To"] == f"client:{login}"
    done = wait_status(vs, call["sid"], {"completed"})
    assert int(done["duration"]) >= 1
    callbacks = vs.app.wait(status, 4)
    ordered = sorted(callbacks, key=lambda s: int(s.params["SequenceNumber"]))
    assert [s.params["StatusCallbackEvent"] for s in ordered] == ["initiated", "ringing", "answered", "completed"]
    assert int(ordered[-1].params["CallDuration"]) >= 1
    with vs.client() as c:  # Record=true: the answered call was recorded
        r = c.get(f"/Accounts/{vs.account_sid}/Calls/{call['sid']}/Recordings.json")
    assert r.status_code == 200, r.text
    body = r.json()
    (recording,) = body if isinstance(body, list) else body["recordings"]
    assert float(recording["duration"]) >= 1


def test_api_call_to_a_number_goes_through_its_trunk(vs: VoiceServer) -> None:
    app = vs.app.new_path("trunk")
    vs.app.route(app, Answer("<Response><Pause length=\"1\"/></Response>"))
    with sipp_uas(vs, None, GOOD_TRUNK_PORT) as uas:
        call = create_call(vs, "+1995550100", vs.app.url(app))
        done = wait_status(vs, call["sid"], {"completed", "failed", "busy", "no-answer"})
    assert uas.returncode == 0, (uas.stderr.read() if uas.stderr else b"").decode(errors="replace")[-2000:]
    assert done["status"] == "completed"
    assert vs.app.requests(app)


def test_a_503_trunk_fails_over_to_the_next(vs: VoiceServer) -> None:
    app = vs.app.new_path("failover")
    vs.app.route(app, Answer("<Response><Pause length=\"1\"/></Response>"))
    with sipp_uas(vs, "uas_503.xml", FAILING_TRUNK_PORT) as down, sipp_uas(vs, None, GOOD_TRUNK_PORT) as good:
        call = create_call(vs, "+19995550100", vs.app.url(app))
        done = wait_status(vs, call["sid"], {"completed", "failed", "busy", "no-answer"})
    assert down.returncode == 0 and good.returncode == 0
    assert done["status"] == "completed"


def test_busy_number_is_busy_and_not_failed_over(vs: VoiceServer) -> None:
    app = vs.app.new_path("busy")
    vs.app.route(app, Answer("<Response/>"))
    with sipp_uas(vs, "uas_486.xml", FAILING_TRUNK_PORT) as busy:
        call = create_call(vs, "+19995550101", vs.app.url(app))
        done = wait_status(vs, call["sid"], {"completed", "failed", "busy", "no-answer"})
    assert busy.returncode == 0
    assert done["status"] == "busy"
    assert not vs.app.requests(app)


def test_twilio_sdk_redirects_and_ends_a_live_call(vs: VoiceServer, tmp_path: Path) -> None:
    first = vs.app.new_path("long")
    vs.app.route(first, Answer("<Response><Pause length=\"30\"/></Response>"))
    second = vs.app.new_path("redirected")
    vs.app.route(second, Answer("<Response><Pause length=\"30\"/></Response>"))
    client = Client(vs.account_sid, vs.token)
    client.api.base_url = vs.srv.base_url
    login = client_login(vs, "bob")
    with registered_phone(vs, tmp_path / "bob", login, silence_wav(tmp_path / "s.wav", 30)) as p:
        wait_registered(vs, p)
        call = client.calls.create(to=f"client:{login}", from_=vs.number(), url=vs.app.url(first))
        p.wait_event("CALL_ESTABLISHED")
        vs.app.wait(first, 1)
        wait_status(vs, call.sid, {"in-progress"})
        client.calls(call.sid).update(url=vs.app.url(second), method="POST")
        (req,) = vs.app.wait(second, 1)
        assert req.params["CallSid"] == call.sid and req.params["CallStatus"] == "in-progress"
        client.calls(call.sid).update(status="completed")
        p.wait_event("CALL_CLOSED", timeout=10)
    assert wait_status(vs, call.sid, {"completed"})["status"] == "completed"


def test_api_call_not_answered_within_timeout_is_no_answer(vs: VoiceServer) -> None:
    app = vs.app.new_path("never")
    with sipp_uas(vs, "uas_ring_cancel.xml", GOOD_TRUNK_PORT) as ringer:
        call = create_call(vs, "+1995550102", vs.app.url(app), Timeout="2")
        done = wait_status(vs, call["sid"], {"completed", "failed", "busy", "no-answer", "canceled"})
    assert ringer.returncode == 0  # it saw the CANCEL
    assert done["status"] == "no-answer" and int(done["duration"]) == 0
    assert not vs.app.requests(app)


def test_status_canceled_while_ringing_cancels_the_invite(vs: VoiceServer) -> None:
    app = vs.app.new_path("canceled")
    with sipp_uas(vs, "uas_ring_cancel.xml", GOOD_TRUNK_PORT) as ringer:
        call = create_call(vs, "+1995550103", vs.app.url(app), Timeout="30")
        wait_status(vs, call["sid"], {"ringing"})
        with vs.client() as c:
            r = c.post(f"/Accounts/{vs.account_sid}/Calls/{call['sid']}.json", data={"Status": "canceled"})
        assert r.status_code == 200, r.text
        done = wait_status(vs, call["sid"], {"completed", "failed", "busy", "no-answer", "canceled"})
    assert ringer.returncode == 0
    assert done["status"] == "canceled"


def test_trunk_credentials_answer_the_carriers_challenge(vs: VoiceServer) -> None:
    app = vs.app.new_path("auth")
    vs.app.route(app, Answer("<Response><Pause length=\"1\"/></Response>"))
    with sipp_uas(vs, "uas_auth.xml", AUTH_TRUNK_PORT) as carrier:
        call = create_call(vs, "+18885550100", vs.app.url(app))
        done = wait_status(vs, call["sid"], {"completed", "failed", "busy", "no-answer"})
    assert carrier.returncode == 0
    assert done["status"] == "completed"


def test_trunk_with_register_registers_to_the_carrier(tmp_path: Path) -> None:
    """``register = true``: the server registers the trunk's username (digest) when it starts."""
    port = sip_port()
    config = VOICE_CONFIG + f"""
[[sip_trunks]]
name = "registering-carrier"
host = "127.0.0.1"
port = {port}
prefixes = ["+1777"]
username = "trunkuser"
password = "trunkpass"
register = true
"""
    with sipp_uas_for_registration(tmp_path, port) as registrar:
        server = start_voice_server(tmp_path, "sqlite", config=config)
        try:
            registrar.wait(timeout=15)
        finally:
            server.app.stop()
            server.srv.close()
    assert registrar.returncode == 0, (registrar.stderr.read() if registrar.stderr else b"").decode()[-2000:]
