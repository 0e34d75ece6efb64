"""``<Dial>`` end to end: real ``restcomm serve`` (SQLite and PostgreSQL), real peers.

* Two nouns ring at once: a Client's baresip (auto-answer) and a SIPp phone that rings; the
  baresip answers first, SIPp sees the CANCEL; the caller's speech (baresip playing a WAV) is
  heard by the callee through the bridge (speech recognizer); the ``action`` gets
  DialCallStatus/DialCallSid/DialCallDuration and the child call is ``outbound-dial`` with the
  caller as ``ParentCallSid``.
* A callee answering 486 is DialCallStatus=busy; one that only rings past ``timeout`` is no-answer
  (and is CANCELled).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from restcomm.media.wav import read_wav
from tests.peers.asr import recognize_phrase
from tests.peers.baresip import Baresip
from tests.support.sms_app import Answer
from tests.support.voice_calls import (
    PHRASES,
    call_of,
    client_login,
    registered_phone,
    sipp_uas,
    wait_registered,
    wait_status,
)
from tests.support.voice_peers import (
    BARESIP,
    VoiceServer,
    require,
    run_sipp,
    silence_wav,
    sip_port,
    speech_wav,
    start_voice_server,
)
from tests.support.waiting import wait_until


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def vs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path_factory.mktemp(f"dial-{request.param}"), request.param)
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def test_first_to_answer_wins_and_audio_is_bridged(vs: VoiceServer, tmp_path: Path) -> None:
    ringer_port = sip_port()
    callee = client_login(vs, "dave")
    caller = client_login(vs, "carol")
    path, action = vs.app.new_path("dial"), vs.app.new_path("dial-done")
    vs.app.route(path, Answer(f'<Response><Dial timeout="10" timeLimit="5" action="{vs.app.url(action)}">'
                              f"<Client>{callee}</Client><Sip>sip:ringer@127.0.0.1:{ringer_port}</Sip>"
                              "</Dial></Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    speech = speech_wav(tmp_path / "speech.wav", PHRASES[1], lead=1.5, tail=10)
    with registered_phone(vs, tmp_path / "dave", callee, silence_wav(tmp_path / "s.wav", 30)) as d, \
            registered_phone(vs, tmp_path / "carol", caller, speech, answer="manual") as c, \
            sipp_uas(vs, "uas_ring_cancel.xml", ringer_port) as ringer:
        wait_registered(vs, d)
        wait_registered(vs, c)
        c.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        d.wait_event("CALL_ESTABLISHED")
        d.wait_event("CALL_CLOSED", timeout=20)  # timeLimit ended the bridge
        c.wait_event("CALL_CLOSED", timeout=20)  # the action's <Hangup/>
        heard = read_wav(d.heard().read_bytes())
    assert ringer.returncode == 0, (ringer.stderr.read() if ringer.stderr else b"").decode(errors="replace")[-2000:]
    assert recognize_phrase(heard, PHRASES) == PHRASES[1]
    (done,) = vs.app.wait(action, 1)
    params = done.params
    assert params["DialCallStatus"] == "completed"
    assert int(params["DialCallDuration"]) >= 4
    child = wait_status(vs, params["DialCallSid"], {"completed"})
    assert child["direction"] == "outbound-dial" and child["parent_call_sid"] == params["CallSid"]
    assert child["to"] == callee
    others = [x for x in vs.calls(ParentCallSid=params["CallSid"]) if x["sid"] != child["sid"]]
    assert [x["status"] for x in others] == ["canceled"]


def test_busy_callee_is_busy(vs: VoiceServer) -> None:
    port = sip_port()
    path, action = vs.app.new_path("dial-busy"), vs.app.new_path("dial-busy-done")
    vs.app.route(path, Answer(f'<Response><Dial action="{vs.app.url(action)}">'
                              f"<Sip>sip:busy@127.0.0.1:{port}</Sip></Dial></Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    with sipp_uas(vs, "uas_486.xml", port) as busy:
        rc, trace = run_sipp(vs, "uac_wait_bye.xml", vs.number(VoiceUrl=vs.app.url(path)))
    assert rc == 0, trace[-3000:]
    assert busy.returncode == 0
    (done,) = vs.app.wait(action, 1)
    assert done.params["DialCallStatus"] == "busy" and done.params["DialCallDuration"] == "0"
    assert call_of(vs, done.params["DialCallSid"])["status"] == "busy"


def test_no_answer_within_timeout(vs: VoiceServer) -> None:
    port = sip_port()
    path, action = vs.app.new_path("dial-ring"), vs.app.new_path("dial-ring-done")
    vs.app.route(path, Answer(f'<Response><Dial timeout="2" action="{vs.app.url(action)}">'
                              f"<Sip>sip:nobody@127.0.0.1:{port}</Sip></Dial></Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    with sipp_uas(vs, "uas_ring_cancel.xml", port) as ringer:
        rc, trace = run_sipp(vs, "uac_wait_bye.xml", vs.number(VoiceUrl=vs.app.url(path)))
    assert rc == 0, trace[-3000:]
    assert ringer.returncode == 0  # it saw the CANCEL
    (done,) = vs.app.wait(action, 1)
    assert done.params["DialCallStatus"] == "no-answer"
    assert call_of(vs, done.params["DialCallSid"])["status"] == "no-answer"


def test_hangup_on_star_record_and_noun_status_callbacks(vs: VoiceServer, tmp_path: Path) -> None:
    """The caller's ``*`` ends the callee's leg and the caller's call goes on (the action's Say is
    heard); the bridge was recorded; the Client noun's statusCallback got every event in order."""
    callee = client_login(vs, "erin")
    caller = client_login(vs, "frank")
    path, action, status = vs.app.new_path("star"), vs.app.new_path("star-done"), vs.app.new_path("noun-status")
    vs.app.route(path, Answer(f'<Response><Dial hangupOnStar="true" record="record-from-answer" '
                              f'action="{vs.app.url(action)}"><Client statusCallback="{vs.app.url(status)}" '
                              f'statusCallbackEvent="initiated ringing answered completed">{callee}</Client>'
                              "</Dial></Response>"))
    vs.app.route(action, Answer(f"<Response><Say>{PHRASES[2]}</Say></Response>"))
    vs.app.route(status, Answer("", 204, "text/plain"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    with registered_phone(vs, tmp_path / "erin", callee, silence_wav(tmp_path / "s.wav", 30)) as d, \
            registered_phone(vs, tmp_path / "frank", caller, silence_wav(tmp_path / "s2.wav", 30),
                             answer="manual") as c:
        wait_registered(vs, d)
        wait_registered(vs, c)
        c.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        d.wait_event("CALL_ESTABLISHED")
        c.send_digits("*")
        d.wait_event("CALL_CLOSED", timeout=10)  # the star hung up the callee only
        c.wait_event("CALL_CLOSED", timeout=20)  # the action's Say, then the end of the document
        heard = read_wav(c.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[2]
    (done,) = vs.app.wait(action, 1)
    params = done.params
    assert params["DialCallStatus"] == "completed" and params["RecordingUrl"].endswith(".wav")
    with vs.client() as http:
        r = http.get(f"/Accounts/{vs.account_sid}/Recordings/{params['RecordingSid']}.json")
    assert r.status_code == 200, r.text
    assert r.json()["call_sid"] == params["CallSid"]  # (the star came at once: a short recording)
    callbacks = sorted(vs.app.wait(status, 4), key=lambda s: int(s.params["SequenceNumber"]))
    assert [s.params["StatusCallbackEvent"] for s in callbacks] == ["initiated", "ringing", "answered", "completed"]
    assert all(s.params["CallSid"] == params["DialCallSid"] for s in callbacks)
    assert callbacks[-1].params["ParentCallSid"] == params["CallSid"]


def test_screening_url_is_played_to_the_callee_before_the_bridge(vs: VoiceServer, tmp_path: Path) -> None:
    require(BARESIP, "baresip (Debian baresip-core)")
    path, action, screen = vs.app.new_path("screen"), vs.app.new_path("screen-done"), vs.app.new_path("whisper")
    with Baresip(tmp_path / "callee", "grace", silence_wav(tmp_path / "s.wav", 30)) as callee:
        vs.app.route(path, Answer(f'<Response><Dial timeLimit="4" action="{vs.app.url(action)}">'
                                  f'<Sip url="{vs.app.url(screen)}">sip:grace@127.0.0.1:{callee.port}</Sip>'
                                  "</Dial></Response>"))
        vs.app.route(action, Answer("<Response><Hangup/></Response>"))
        vs.app.route(screen, Answer(f"<Response><Say>{PHRASES[2]}</Say></Response>"))
        rc, trace = run_sipp(vs, "uac_wait_bye.xml", vs.number(VoiceUrl=vs.app.url(path)))
        assert rc == 0, trace[-3000:]
        callee.wait_event("CALL_CLOSED", timeout=15)
        heard = read_wav(callee.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[2]
    (done,) = vs.app.wait(action, 1)
    assert done.params["DialCallStatus"] == "completed"
    (whisper,) = vs.app.requests(screen)
    assert whisper.params["CallSid"] == done.params["DialCallSid"]
    assert whisper.params["ParentCallSid"] == done.params["CallSid"]
    assert whisper.params["Direction"] == "outbound-dial" and whisper.params["CallStatus"] == "in-progress"


def test_caller_hanging_up_ends_the_bridge_and_the_action_is_still_requested(vs: VoiceServer, tmp_path: Path) -> None:
    callee = client_login(vs, "heidi")
    caller = client_login(vs, "ivan")
    path, action = vs.app.new_path("bye"), vs.app.new_path("bye-done")
    vs.app.route(path, Answer(f'<Response><Dial action="{vs.app.url(action)}"><Client>{callee}</Client></Dial>'
                              "</Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(path))
    with registered_phone(vs, tmp_path / "heidi", callee, silence_wav(tmp_path / "s.wav", 30)) as d, \
            registered_phone(vs, tmp_path / "ivan", caller, silence_wav(tmp_path / "s2.wav", 30),
                             answer="manual") as c:
        wait_registered(vs, d)
        wait_registered(vs, c)
        c.dial(f"sip:{number}@127.0.0.1:{vs.sip_port}")
        d.wait_event("CALL_ESTABLISHED")
        c.hangup()
        d.wait_event("CALL_CLOSED", timeout=10)  # the caller's BYE ended the callee's leg too
    (done,) = vs.app.wait(action, 1)
    assert done.params["DialCallStatus"] == "completed"
    assert wait_status(vs, done.params["DialCallSid"], {"completed"})["status"] == "completed"
    assert wait_status(vs, done.params["CallSid"], {"completed"})["status"] == "completed"


def test_client_calling_a_client_without_a_voice_url_rings_its_phone(vs: VoiceServer, tmp_path: Path) -> None:
    """The inbound handler rings a Client with no application through the dialer (as <Dial><Client>):
    the callee hears the caller."""
    callee = client_login(vs, "judy")
    caller = client_login(vs, "karl")
    speech = speech_wav(tmp_path / "speech.wav", PHRASES[2], lead=1.5, tail=10)
    with registered_phone(vs, tmp_path / "judy", callee, silence_wav(tmp_path / "s.wav", 30)) as d, \
            registered_phone(vs, tmp_path / "karl", caller, speech, answer="manual") as c:
        wait_registered(vs, d)
        wait_registered(vs, c)
        c.dial(f"sip:{callee}@127.0.0.1:{vs.sip_port}")
        d.wait_event("CALL_ESTABLISHED")
        c.wait_event("CALL_ESTABLISHED")
        wait_until(lambda: [x for x in vs.calls(To=callee) if x["direction"] == "outbound-dial"], bool, 10,
                   "the child call")
        # the phrase is over once the callee has received 4 s of audio (baresip writes as it goes)
        wait_until(lambda: _received_bytes(d), lambda n: n > 16000 * 4, 15, "4 s of audio at the callee")
        c.hangup()
        d.wait_event("CALL_CLOSED", timeout=10)
        heard = read_wav(d.heard().read_bytes())
    assert recognize_phrase(heard, PHRASES) == PHRASES[2]


def _received_bytes(p: Baresip) -> int:
    files = sorted((p.folder / "rec").glob("dump-*-dec.wav"))
    return files[-1].stat().st_size if files else 0


def test_caller_hanging_up_while_it_rings_cancels_the_callee(vs: VoiceServer) -> None:
    port = sip_port()
    path, action = vs.app.new_path("gone"), vs.app.new_path("gone-done")
    vs.app.route(path, Answer(f'<Response><Dial timeout="30" action="{vs.app.url(action)}">'
                              f"<Sip>sip:ringing@127.0.0.1:{port}</Sip></Dial></Response>"))
    vs.app.route(action, Answer("<Response/>"))
    with sipp_uas(vs, "uas_ring_cancel.xml", port) as ringer:
        rc, trace = run_sipp(vs, "uac_talk_bye.xml", vs.number(VoiceUrl=vs.app.url(path)))  # BYE after 1.5 s
    assert rc == 0, trace[-3000:]
    assert ringer.returncode == 0  # the CANCEL came at once, not after the 30 s timeout
    (done,) = vs.app.wait(action, 1)
    assert done.params["DialCallStatus"] == "canceled" and done.params["CallStatus"] == "completed"
    assert wait_status(vs, done.params["DialCallSid"], {"canceled"})["status"] == "canceled"


def test_an_inbound_call_is_redirected_through_the_api(vs: VoiceServer) -> None:
    """``Url=`` on a live inbound call replaces its document (the new one is requested and runs)."""
    import threading

    first, second = vs.app.new_path("in-long"), vs.app.new_path("in-redirected")
    vs.app.route(first, Answer('<Response><Say>one</Say><Pause length="30"/></Response>'))  # Say answers
    vs.app.route(second, Answer("<Response><Hangup/></Response>"))
    number = vs.number(VoiceUrl=vs.app.url(first))
    outcome: list[tuple[int, str]] = []
    caller = threading.Thread(target=lambda: outcome.append(run_sipp(vs, "uac_wait_bye.xml", number)))
    caller.start()
    try:
        (req,) = vs.app.wait(first, 1)
        wait_status(vs, req.params["CallSid"], {"in-progress"})
        with vs.client() as c:
            r = c.post(f"/Accounts/{vs.account_sid}/Calls/{req.params['CallSid']}.json",
                       data={"Url": vs.app.url(second)})
        assert r.status_code == 200, r.text
        (redirected,) = vs.app.wait(second, 1)
        assert redirected.params["CallSid"] == req.params["CallSid"]
    finally:
        caller.join(timeout=40)
    assert outcome and outcome[0][0] == 0  # the new document's <Hangup/> sent the BYE long before 30 s
    assert wait_status(vs, req.params["CallSid"], {"completed"})["status"] == "completed"


def test_a_number_the_profile_does_not_enable_is_not_dialled(vs: VoiceServer) -> None:
    """A profile without outboundPSTN: <Dial><Number> fails at once with 21215 and a notification,
    and no INVITE leaves (nothing listens at the number's gateway: the call would fail otherwise too,
    but with another reason, after trying)."""
    from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD

    path, action = vs.app.new_path("dial-refused"), vs.app.new_path("dial-refused-done")
    vs.app.route(path, Answer(f'<Response><Dial action="{vs.app.url(action)}">'
                              "<Number>+447700900123</Number></Dial></Response>"))
    vs.app.route(action, Answer("<Response><Hangup/></Response>"))
    with vs.srv.client(ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        made = admin.post("/Profiles", content=b'{"featureEnablement": {"inboundPSTN": {}}}',
                          headers={"Content-Type": "application/json"})
        assert made.status_code == 201, made.text
        profile = made.headers["location"].rsplit("/", 1)[-1]
        link = {"Link": f'<{vs.srv.api}/Accounts/{vs.account_sid}>; rel="related"'}
        assert admin.request("LINK", f"/Profiles/{profile}", headers=link).status_code == 200
        try:
            rc, trace = run_sipp(vs, "uac_wait_bye.xml", vs.number(VoiceUrl=vs.app.url(path)))
        finally:
            assert admin.request("UNLINK", f"/Profiles/{profile}", headers=link).status_code == 200
    assert rc == 0, trace[-3000:]
    (done,) = vs.app.wait(action, 1)
    assert done.params["DialCallStatus"] == "failed"
    child = call_of(vs, done.params["DialCallSid"])
    assert child["status"] == "failed" and child["to"] == "+447700900123"
    with vs.client() as c:
        r = c.get(f"/Accounts/{vs.account_sid}/Notifications.json", params={"ErrorCode": "21215"})
    noted = r.json()["notifications"]
    assert noted and noted[0]["call_sid"] == done.params["CallSid"], noted
