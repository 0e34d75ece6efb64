"""Inbound calls end to end: real ``restcomm serve`` (SQLite and PostgreSQL), real peers.

* baresip registers as a Client with digest and calls a number; the words ``<Say>`` speaks come
  back out of baresip's recording through a speech recognizer; the WAV baresip plays into
  ``<Record>`` comes back out of the recording the API serves; its digits reach ``<Gather>``.
* SIPp, bound to 127.0.0.2 (a trunk's ``inbound_addresses``), drives the protocol paths: a late offer
  (INVITE without SDP; what ``<Say>`` speaks is recognised at the port the ACK named), hold and
  resume by re-INVITE with the media moved (recognised at the new port), RFC 4733
  digits from SIPp's own capture, retransmitted INVITE, CANCEL before answer, BYE during ``<Play>``,
  the application down (fallback) or answering garbage; from 127.0.0.1 without credentials it is
  challenged and no call is made.
* The call records (Calls API) and the ``completed`` status callback are checked on the way.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from restcomm.media.wav import read_wav
from restcomm.store.schema import accounts
from restcomm.util import utcnow
from restcomm.voice import store
from tests.peers.asr import recognize_phrase
from tests.peers.baresip import Baresip
from tests.support.ports import free_port
from tests.support.sms_app import Answer, messages, notifications
from tests.support.voice_peers import (
    BARESIP,
    SIPP,
    VoiceServer,
    in_db,
    require,
    run_sipp,
    silence_wav,
    speech_wav,
    start_voice_server,
)
from tests.support.waiting import wait_until

PASSWORD = "Str0ng-Passw0rd!"
PHRASES = ["the quick brown fox", "seven green apples", "hello world"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def vs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path_factory.mktemp(f"voice-{request.param}"), request.param)
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def client_login(vs: VoiceServer, name: str) -> str:
    login = f"{name}{free_port()}"
    with vs.client() as c:
        r = c.post(f"/Accounts/{vs.account_sid}/Clients.json", data={"Login": login, "Password": PASSWORD})
    assert r.status_code == 200, r.text
    return login


def phone(vs: VoiceServer, folder: Path, login: str, source: Path, password: str = PASSWORD) -> Baresip:
    require(BARESIP, "baresip (Debian baresip-core)")
    return Baresip(folder, login, source, register=f"sip:{login}@127.0.0.1:{vs.sip_port}", password=password,
                   answer="manual")


def registered(p: Baresip, ok: bool = True) -> None:
    """Wait (bounded) for baresip's registration result. Its log, not the REGISTER_OK event: the
    first REGISTER often completes before the control connection is up, and the event is lost."""
    def outcome() -> str | None:
        log = p.log()
        if "200 OK" in log and "binding" in log:
            return "ok"
        if "reg: " in log and ("401" in log or "403" in log or "failed" in log.lower()):
            return "failed"
        return None

    assert wait_until(outcome, bool, 15, "baresip's registration") == ("ok" if ok else "failed"), p.log()[-1500:]


# ---------------------------------------------------------------------------------------------
# baresip: registration, Say, Gather, Record


def test_registered_client_hears_say(vs: VoiceServer, tmp_path: Path) -> None:
    status = vs.app.new_path("status")
    vs.app.route(status, Answer("", 204, "text/plain"))
    path = vs.app.new_path("say")
    vs.app.route(path, Answer(f"<Response><Say>{PHRASES[0]}</Say></Response>"), token=vs.token)
    number = vs.number(VoiceUrl=vs.app.url(path), StatusCallback=vs.app.url(status))
    login = client_login(vs, "alice")
    with phone(vs, tmp_path / "alice", login, silence_wav(tmp_path / "silence.wav", 30)) as p:
        registered(p)
        p.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        p.wait_event("CALL_ESTABLISHED")
        p.wait_event("CALL_CLOSED", timeout=20)  # the document ended: the server hung up
        heard = read_wav(p.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[0]
    (request,) = vs.app.requests(path)
    assert request.signature_valid
    params = request.params
    assert params["To"] == number and params["From"] == login and params["Direction"] == "inbound"
    assert params["CallStatus"] == "ringing" and params["AccountSid"] == vs.account_sid
    call = vs.wait_call(number, {"completed"})
    assert call["direction"] == "inbound" and call["sid"] == params["CallSid"]
    (cb,) = vs.app.wait(status, 1)
    assert cb.params["CallStatus"] == "completed" and cb.params["CallSid"] == call["sid"]
    assert int(cb.params["CallDuration"]) >= 1


def test_play_of_a_wav_url_is_heard(vs: VoiceServer, tmp_path: Path) -> None:
    """<Play> fetches the WAV (here 16 kHz, resampled for the call), and the caller hears it."""
    from restcomm.media.wav import write_wav

    speech = read_wav(speech_wav(tmp_path / "p.wav", PHRASES[1], tail=0.3).read_bytes())
    wide = bytes(b for i in range(0, len(speech), 2) for b in speech[i:i + 2] * 2)  # 8 -> 16 kHz, sample doubled
    audio = vs.app.new_path("prompt.wav")
    vs.app.route(audio, Answer(write_wav(wide, rate=16000), content_type="audio/wav"))
    path = vs.app.new_path("play")
    vs.app.route(path, Answer(f"<Response><Play>{vs.app.url(audio)}</Play></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    login = client_login(vs, "hank")
    with phone(vs, tmp_path / "hank", login, silence_wav(tmp_path / "silence.wav", 30)) as p:
        registered(p)
        p.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        p.wait_event("CALL_ESTABLISHED")
        p.wait_event("CALL_CLOSED", timeout=20)
        heard = read_wav(p.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[1]


def test_speech_gather_recognises_what_the_caller_says(vs: VoiceServer, tmp_path: Path) -> None:
    """baresip plays speech into the call; ``<Gather input="speech">`` with the phrases as hints
    hears it and its action gets ``SpeechResult`` and ``Confidence``."""
    path, action = vs.app.new_path("speech"), vs.app.new_path("heard")
    hints = ", ".join(PHRASES)
    vs.app.route(path, Answer(f'<Response><Gather input="speech" hints="{hints}" timeout="5" speechTimeout="1" '
                              f'action="{action}"/></Response>'))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    login = client_login(vs, "erin")
    source = speech_wav(tmp_path / "speech.wav", PHRASES[1], tail=4.0)
    with phone(vs, tmp_path / "erin", login, source) as p:
        registered(p)
        p.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        p.wait_event("CALL_ESTABLISHED")
        p.wait_event("CALL_CLOSED", timeout=20)
    (request,) = vs.app.wait(action, 1)
    assert request.params["SpeechResult"] == PHRASES[1]
    assert 0 < float(request.params["Confidence"]) <= 1 and "Digits" not in request.params


def test_baresip_digits_reach_gather(vs: VoiceServer, tmp_path: Path) -> None:
    path, action = vs.app.new_path("gather"), vs.app.new_path("gathered")
    vs.app.route(path, Answer(f'<Response><Gather numDigits="1" timeout="10" action="{action}">'
                              "<Pause length=\"10\"/></Gather></Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    login = client_login(vs, "bob")
    with phone(vs, tmp_path / "bob", login, silence_wav(tmp_path / "silence.wav", 30)) as p:
        registered(p)
        p.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        p.wait_event("CALL_ESTABLISHED")
        p.send_digits("7")
        p.wait_event("CALL_CLOSED", timeout=20)
    (request,) = vs.app.wait(action, 1)
    assert request.params["Digits"] == "7"


def test_record_hears_what_the_caller_says(vs: VoiceServer, tmp_path: Path) -> None:
    path, action, done = vs.app.new_path("record"), vs.app.new_path("recorded"), vs.app.new_path("rec-status")
    vs.app.route(path, Answer(f'<Response><Record playBeep="false" timeout="5" action="{action}" '
                              f'recordingStatusCallback="{done}"/></Response>'))
    vs.app.route(action, Answer("<Response/>"))
    vs.app.route(done, Answer("", 204, "text/plain"), token=vs.token)
    number = vs.number(VoiceUrl=vs.app.url(path))
    login = client_login(vs, "carol")
    source = speech_wav(tmp_path / "speech.wav", PHRASES[1])
    with phone(vs, tmp_path / "carol", login, source) as p:
        registered(p)
        p.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        p.wait_event("CALL_ESTABLISHED")
        p.wait_event("CALL_CLOSED", timeout=20)  # its file ended: baresip hung up
    (request,) = vs.app.wait(action, 1)
    params = request.params
    assert params["Digits"] == "hangup" and params["RecordingUrl"].endswith(".wav")
    assert int(params["RecordingDuration"]) >= 1
    r = httpx.get(params["RecordingUrl"], timeout=10)
    assert r.status_code == 200
    out = tmp_path / "got.wav"
    out.write_bytes(r.content)
    with wave.open(str(out)) as w:
        assert w.getframerate() == 8000
    assert recognize_phrase(read_wav(r.content), PHRASES) == PHRASES[1]
    with vs.client() as c:
        rec = c.get(f"/Accounts/{vs.account_sid}/Recordings/{params['RecordingSid']}.json").json()
    assert rec["call_sid"] == params["CallSid"] and rec["status"] == "completed"
    (status,) = vs.app.wait(done, 1)
    assert status.signature_valid and status.params["RecordingStatus"] == "completed"
    assert status.params["RecordingSid"] == params["RecordingSid"]
    assert status.params["RecordingUrl"] == params["RecordingUrl"]


def test_bindings_are_in_the_database(vs: VoiceServer, tmp_path: Path) -> None:
    """Two phones registered as one Client: two contacts, stored where every node reads them;
    a phone that stops un-registers its own contact only."""
    login = client_login(vs, "dave")
    org = in_db(vs, lambda conn: _org_of(conn, vs.account_sid))

    def contacts() -> list[str]:
        rows = in_db(vs, lambda conn: store.current_bindings(conn, org, login, utcnow()))
        return sorted(r["contact"] for r in rows)

    silence = silence_wav(tmp_path / "s.wav", 30)
    with phone(vs, tmp_path / "d1", login, silence) as one:
        registered(one)
        with phone(vs, tmp_path / "d2", login, silence) as two:
            registered(two)
            both = wait_until(contacts, lambda c: len(c) == 2, 10, "two bindings")
            assert all(f":{p.port}" in " ".join(both) for p in (one, two))
        left = wait_until(contacts, lambda c: len(c) == 1, 10, "one binding left")
        assert f":{one.port}" in left[0]


def test_client_calls_client_with_a_voice_url(vs: VoiceServer, tmp_path: Path) -> None:
    path = vs.app.new_path("client-app")
    vs.app.route(path, Answer(f"<Response><Say>{PHRASES[2]}</Say></Response>"))
    callee = client_login(vs, "erin")
    with vs.client() as c:
        r = c.post(f"/Accounts/{vs.account_sid}/Clients/{_client_sid(vs, callee)}.json",
                   data={"VoiceUrl": vs.app.url(path)})
        assert r.status_code == 200, r.text
    caller = client_login(vs, "frank")
    with phone(vs, tmp_path / "frank", caller, silence_wav(tmp_path / "s.wav", 30)) as p:
        registered(p)
        p.dial(f"sip:{callee}@127.0.0.1:{vs.sip_port}")
        p.wait_event("CALL_ESTABLISHED")
        p.wait_event("CALL_CLOSED", timeout=20)
        heard = read_wav(p.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[2]
    (request,) = vs.app.requests(path)
    assert request.params["From"] == caller and request.params["To"] == callee


async def _org_of(conn: Any, account_sid: str) -> str:
    return str((await conn.execute(select(accounts.c.organization_sid).where(accounts.c.sid == account_sid))).scalar_one())


def _client_sid(vs: VoiceServer, login: str) -> str:
    with vs.client() as c:
        r = c.get(f"/Accounts/{vs.account_sid}/Clients.json")
    body = r.json()
    rows = body if isinstance(body, list) else body["clients"]  # Restcomm lists Clients as a bare array
    return str(next(x["sid"] for x in rows if x["login"] == login))


# ---------------------------------------------------------------------------------------------
# SIPp: protocol and failure paths


def test_sipp_rfc4733_capture_reaches_gather(vs: VoiceServer) -> None:
    path, action = vs.app.new_path("gather"), vs.app.new_path("gathered")
    vs.app.route(path, Answer(f'<Response><Gather numDigits="1" timeout="8" action="{action}"/></Response>'))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_dtmf_pcap.xml", number)
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.wait(action, 1)
    assert request.params["Digits"] == "1"
    assert request.params["SipHeader_X-Test-Case"] == "engine"


def test_record_max_length_and_finish_key(vs: VoiceServer) -> None:
    """maxLength ends a silent caller's recording; a finishOnKey digit (SIPp's RFC 4733 capture,
    after the beep) ends another one and is reported as Digits."""
    path, action = vs.app.new_path("rec-max"), vs.app.new_path("rec-max-done")
    vs.app.route(path, Answer(f'<Response><Record playBeep="false" maxLength="2" timeout="30" action="{action}"/>'
                              "</Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", vs.number(VoiceUrl=vs.app.url(path)))
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.wait(action, 1)
    assert request.params["RecordingDuration"] == "2" and request.params["Digits"] == ""

    path, action = vs.app.new_path("rec-key"), vs.app.new_path("rec-key-done")
    vs.app.route(path, Answer(f'<Response><Record finishOnKey="1" timeout="30" action="{action}"/></Response>'))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    rc, trace = run_sipp(vs, "uac_dtmf_pcap.xml", vs.number(VoiceUrl=vs.app.url(path)))
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.wait(action, 1)
    assert request.params["Digits"] == "1"


def test_sip_info_digits_reach_gather(vs: VoiceServer) -> None:
    """SIP INFO (application/dtmf-relay) digits land in the same queue as RFC 4733 ones."""
    path, action = vs.app.new_path("gather"), vs.app.new_path("gathered")
    vs.app.route(path, Answer(f'<Response><Gather finishOnKey="#" timeout="8" action="{action}"/></Response>'))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_info_wait_bye.xml", number)
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.wait(action, 1)
    assert request.params["Digits"] == "4"


def test_caller_name_and_forwarded_from(vs: VoiceServer) -> None:
    path = vs.app.new_path("hangup")
    vs.app.route(path, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number)
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.requests(path)
    assert request.params["CallerName"] == "sipp" and request.params["ForwardedFrom"] == "+15557654321"
    assert vs.wait_call(number, {"completed"})["forwarded_from"] == "+15557654321"


def test_call_over_tcp(vs: VoiceServer) -> None:
    path = vs.app.new_path("tcp")
    vs.app.route(path, Answer("<Response><Say>over tcp</Say></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number, extra=("-t", "t1"))
    assert rc == 0, trace[-3000:]
    assert "TCP message received" in trace or "TCP message sent" in trace
    assert vs.wait_call(number, {"completed"})["direction"] == "inbound"


def test_twenty_concurrent_calls(vs: VoiceServer) -> None:
    """Calls overlap (SIPp starts 20 at 20 per second, each lasting the spoken prompt): every one
    is answered, spoken to and recorded completed."""
    path = vs.app.new_path("many")
    vs.app.route(path, Answer("<Response><Say>one moment please</Say></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number, limit=30, extra=("-m", "20", "-r", "20", "-l", "20"))
    assert rc == 0, trace[-3000:]
    calls = wait_until(lambda: [c for c in vs.calls(To=number) if c["status"] == "completed"],
                       lambda found: len(found) == 20, 15, "20 completed calls")
    assert len({c["sid"] for c in calls}) == 20 and len(vs.app.requests(path)) == 20


def test_sms_in_a_call_goes_through_the_sms_pipeline(vs: VoiceServer) -> None:
    path = vs.app.new_path("sms")
    vs.app.route(path, Answer('<Response><Sms to="+15551230000">sent from a call</Sms><Hangup/></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number)
    assert rc == 0, trace[-3000:]
    vs.wait_call(number, {"completed"})
    with vs.client() as c:
        found = wait_until(lambda: messages(c, vs.account_sid, To="+15551230000"), bool, 10, "the message")
    (message,) = [m for m in found if m["body"] == "sent from a call"]
    assert message["from"] == number and message["direction"] == "outbound-call"


def test_number_dialled_without_plus_is_matched_and_reported_as_hosted(vs: VoiceServer) -> None:
    path = vs.app.new_path("e164")
    vs.app.route(path, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number.removeprefix("+"))
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.requests(path)
    assert request.params["To"] == number and request.params["Called"] == number


def test_pattern_number_takes_the_call(vs: VoiceServer) -> None:
    path = vs.app.new_path("pattern")
    vs.app.route(path, Answer("<Response><Hangup/></Response>"))
    prefix = "+1777" + str(free_port())
    vs.number_pattern(prefix + "[0-9]*", VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", prefix + "42")
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.requests(path)
    assert request.params["To"] == prefix + "42"  # the number dialled, not the pattern


def test_retransmitted_invite_makes_one_call(vs: VoiceServer) -> None:
    path = vs.app.new_path("hangup")
    vs.app.route(path, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_retransmit.xml", number)
    assert rc == 0, trace[-3000:]
    assert trace.count("INVITE sip:") >= 2
    vs.wait_call(number, {"completed"})
    assert len(vs.calls(To=number)) == 1
    assert len(vs.app.requests(path)) == 1


def test_cancel_before_answer(vs: VoiceServer) -> None:
    path = vs.app.new_path("pause")
    vs.app.route(path, Answer('<Response><Pause length="10"/><Say>too late</Say></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_cancel.xml", number)
    assert rc == 0, trace[-3000:]
    call = vs.wait_call(number, {"canceled"})
    assert call["duration"] in (0, "0", None)


def test_bye_during_long_play(vs: VoiceServer, tmp_path: Path) -> None:
    audio = vs.app.new_path("long.wav")
    vs.app.route(audio, Answer(silence_wav(tmp_path / "long.wav", 30).read_bytes(), content_type="audio/wav"))
    path = vs.app.new_path("play")
    vs.app.route(path, Answer(f"<Response><Play>{vs.app.url(audio)}</Play></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_talk_bye.xml", number)
    assert rc == 0, trace[-3000:]
    call = vs.wait_call(number, {"completed"})
    assert int(call["duration"]) >= 1


def test_application_down_uses_fallback(vs: VoiceServer) -> None:
    fallback = vs.app.new_path("fallback")
    vs.app.route(fallback, Answer("<Response><Say>fallback</Say></Response>"))
    number = vs.number(VoiceUrl=f"http://127.0.0.1:{free_port()}/down", VoiceFallbackUrl=vs.app.url(fallback))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number)
    assert rc == 0, trace[-3000:]
    assert len(vs.app.requests(fallback)) == 1
    call = vs.wait_call(number, {"completed"})
    with vs.client() as c:
        found = wait_until(lambda: [n for n in notifications(c, vs.account_sid) if n.get("call_sid") == call["sid"]],
                           bool, 10, "a notification for the call")
    assert found[0]["error_code"] in ("11200", "11205", 11200, 11205)


def test_garbage_rcml_is_12100_and_the_call_ends(vs: VoiceServer) -> None:
    path = vs.app.new_path("garbage")
    vs.app.route(path, Answer("<Response><Say>unclosed"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number)
    assert rc == 0, trace[-3000:]
    call = vs.wait_call(number, {"completed"})
    with vs.client() as c:
        found = wait_until(lambda: [n for n in notifications(c, vs.account_sid, ErrorCode="12100")
                                    if n.get("call_sid") == call["sid"]], bool, 10, "notification 12100")
    assert found


def test_unknown_source_without_credentials_is_challenged(vs: VoiceServer) -> None:
    path = vs.app.new_path("never")
    vs.app.route(path, Answer("<Response><Say>never</Say></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_no_auth.xml", number, local_ip="127.0.0.1")
    assert rc == 0, trace[-3000:]
    assert "SIP/2.0 407" in trace or "SIP/2.0 403" in trace
    assert vs.calls(To=number) == [] and vs.app.requests(path) == []


def test_client_with_credentials_cannot_present_another_number(vs: VoiceServer) -> None:
    """A Client answering the 407 gets its call; the application sees its login as From, not the
    number its From header claimed."""
    path = vs.app.new_path("auth")
    vs.app.route(path, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    login = client_login(vs, "gina")
    rc, trace = run_sipp(vs, "uac_auth_invite.xml", number, local_ip="127.0.0.1",
                         extra=("-au", login, "-ap", PASSWORD))
    assert rc == 0, trace[-3000:]
    (request,) = vs.app.requests(path)
    assert request.params["From"] == login
    assert vs.wait_call(number, {"completed"})["from"] == login


@pytest.mark.parametrize(("reason", "code", "status"), [("busy", "486", "busy"), ("rejected", "603", "failed")])
def test_reject_refuses_without_answering(vs: VoiceServer, reason: str, code: str, status: str) -> None:
    path = vs.app.new_path("reject")
    vs.app.route(path, Answer(f'<Response><Reject reason="{reason}"/></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_refused.xml", number)
    assert rc == 0, trace[-3000:]
    assert f"SIP/2.0 {code}" in trace and "SIP/2.0 200" not in trace
    call = vs.wait_call(number, {status})
    assert int(call["duration"] or 0) == 0


def test_no_common_codec_is_488(vs: VoiceServer) -> None:
    path = vs.app.new_path("g729")
    vs.app.route(path, Answer("<Response><Say>never</Say></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_g729.xml", number)
    assert rc == 0, trace[-3000:]
    assert vs.calls(To=number) == [] and vs.app.requests(path) == []


def test_unknown_number_is_404(vs: VoiceServer) -> None:
    require(SIPP, "sipp")
    rc, trace = run_sipp(vs, "uac_refused.xml", "+15550000000")
    assert rc == 0 and "SIP/2.0 404" in trace
    counted = httpx.get(vs.srv.base_url + "/metrics", timeout=10).text
    assert 'restcomm_voice_inbound_calls_total{outcome="refused_404"}' in counted


# Last: it gets 127.0.0.1 throttled for the rest of this server's life.
def test_wrong_password_does_not_register(vs: VoiceServer, tmp_path: Path) -> None:
    login = client_login(vs, "mallory")
    with phone(vs, tmp_path / "m", login, silence_wav(tmp_path / "s.wav", 5), password="wrong-Passw0rd") as p:
        registered(p, ok=False)
        # baresip answers each new challenge with the same wrong password: the source is soon
        # refused outright (403) rather than challenged again (the registrar's failure throttle)
        assert wait_until(lambda: "too many failed attempts" in p.log(), bool, 15, "the throttle")


def _ulaw_to_linear(payload: bytes) -> bytes:
    """G.711 μ-law to 16-bit linear PCM, written out here so the check does not lean on our codec."""
    out = bytearray()
    for byte in payload:
        u = ~byte & 0xFF
        sample = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        out += (-sample if u & 0x80 else sample).to_bytes(2, "little", signed=True)
    return bytes(out)


class RtpSink:
    """Collects the RTP sent to one UDP port, in a thread (SIPp runs as a blocking subprocess)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.packets.append(self.sock.recv(2048))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def sipp_heard(vs: VoiceServer, scenario: str, number: str) -> tuple[str, bytes]:
    """Run a SIPp scenario whose SDP names ``[rtp_port]`` for its media; (its trace, the PCMU audio
    that reached that port, as linear PCM)."""
    sink = RtpSink()
    try:
        rc, trace = run_sipp(vs, scenario, number, extra=("-key", "rtp_port", str(sink.port)))
    finally:
        sink.close()
    assert rc == 0, trace[-3000:]
    voice = [p for p in sink.packets if p[1] & 0x7F == 0]
    assert len(voice) > 25, f"only {len(sink.packets)} packets reached the port the SDP named"
    return trace, _ulaw_to_linear(b"".join(p[12:] for p in voice))


def test_late_offer_the_ok_carries_our_offer_and_the_ack_answer_is_used(vs: VoiceServer) -> None:
    """An INVITE without SDP (a delayed offer, as some PBXs and trunks send): the 200 OK offers,
    SIPp answers in its ACK with a port of the test's, and what <Say> speaks arrives there."""
    path = vs.app.new_path("late-offer")
    vs.app.route(path, Answer(f"<Response><Say>{PHRASES[2]}</Say></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    trace, heard = sipp_heard(vs, "uac_late_offer.xml", number)
    ok = trace[trace.index("SIP/2.0 200 OK"):]
    assert "Content-Type: application/sdp" in ok and "a=rtpmap:0 PCMU/8000" in ok  # the offer
    assert recognize_phrase(heard, PHRASES) == PHRASES[2]
    call = vs.wait_call(number, {"completed"})
    assert call["direction"] == "inbound"


def test_late_offer_without_an_answer_in_the_ack_is_hung_up(vs: VoiceServer) -> None:
    path = vs.app.new_path("late-offer-none")
    vs.app.route(path, Answer(f"<Response><Say>{PHRASES[2]}</Say></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_late_offer_no_answer.xml", number)  # waits for our BYE
    assert rc == 0, trace[-3000:]
    call = vs.wait_call(number, {"completed", "failed"})
    assert call["status"] == "failed" and int(call["duration"]) == 0


def test_reinvite_hold_then_resume_with_the_media_moved(vs: VoiceServer) -> None:
    """The caller holds us (re-INVITE ``sendonly``: we answer ``recvonly``), then resumes with its
    media on another port: what ``<Say>`` speaks afterwards arrives at the new port."""
    path = vs.app.new_path("reinvite")
    vs.app.route(path, Answer(f'<Response><Pause length="1"/><Say>{PHRASES[2]}</Say></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path))
    _, heard = sipp_heard(vs, "uac_reinvite_hold_move.xml", number)
    assert recognize_phrase(heard, PHRASES) == PHRASES[2]
    assert vs.wait_call(number, {"completed"})["status"] == "completed"
