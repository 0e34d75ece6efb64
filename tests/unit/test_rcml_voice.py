"""The voice channel of the RCML interpreter, driven against a fake call.

The fake call is event-driven and keeps its own clock: digits are scripted (pressed during the
prompts, or afterwards, where ``None`` means "the timeout passes"), waits advance the fake clock
instead of sleeping, and a blocking Play waits for the test to hang up. Documents come from a fake
fetcher that records every request (URL, method, parameters), so each test asserts both what the
caller experienced and what the application was asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from restcomm.rcml.call import (
    Callback,
    DialOptions,
    DialResult,
    DialTarget,
    MediaError,
    RecordingResult,
    SpeechResult,
)
from restcomm.rcml.errors import Code
from restcomm.rcml.interpreter import Ending, Entry
from restcomm.rcml.parser import parse_rcml
from restcomm.rcml.runtime import Refused
from restcomm.rcml.verbs import VOICE_VERBS, Dial, Gather, NotYet, Play, Record, Say, Unsupported
from restcomm.rcml.voice import VoiceRequest, run_voice_application, voice_entry
from restcomm.webhooks.fetch import FetchOutcome, FetchResult, ResponseExcerpt, WebhookRequest

APP = "http://app.test/start.xml"
CALLER, CALLED = "+15550001111", "+15550002222"


class FakeCall:
    """A ``VoiceCall`` whose behaviour the test scripts; ``events`` is what happened, in order."""

    def __init__(
        self, *, barge: Sequence[str] = (), keys: Sequence[str | None] = (), block_play: bool = False,
        hang_up_after_plays: int | None = None, failing_audio: frozenset[str] = frozenset(),
        record_result: RecordingResult | None = None, record_hangs_up: bool = False,
        dial_result: DialResult | None = None, answered: bool = False,
        speech: SpeechResult | None = None, speech_available: bool = True,
    ) -> None:
        self.speech = speech or SpeechResult("", 0.0)
        self._speech_available = speech_available
        self._answered = answered
        self._hung_up = asyncio.Event()
        self.events: list[tuple[Any, ...]] = []
        self.barge = list(barge)
        self.keys = list(keys)
        self.now = 0.0
        self.block_play = block_play
        self.playing = asyncio.Event()
        self.hang_up_after_plays = hang_up_after_plays
        self.failing_audio = failing_audio
        self.record_result = record_result or RecordingResult(0.0)
        self.record_hangs_up = record_hangs_up
        self.dial_result = dial_result or DialResult("no-answer")
        self.plays = 0

    @property
    def answered(self) -> bool:
        return self._answered

    @property
    def hung_up(self) -> asyncio.Event:
        return self._hung_up

    def remote_hangup(self) -> None:
        self._hung_up.set()

    async def answer(self) -> None:
        self.events.append(("answer",))
        self._answered = True

    async def reject(self, status: int, reason: str) -> None:
        self.events.append(("reject", status, reason))
        self._hung_up.set()

    async def hangup(self) -> None:
        self.events.append(("hangup",))
        self._hung_up.set()

    async def say(self, text: str, voice: str, language: str) -> bytes:
        self.events.append(("say", text, voice, language))
        if text == "broken":
            raise MediaError("synthesis failed")
        return f"tts:{text}".encode()

    async def fetch_audio(self, url: str) -> bytes:
        if url in self.failing_audio:
            raise MediaError("HTTP 404")
        return f"audio:{url}".encode()

    async def play(self, pcm: bytes, *, stop_on_digit: bool = False) -> str | None:
        self.events.append(("play", pcm.decode()))
        self.plays += 1
        if self.block_play:
            self.playing.set()
            await self._hung_up.wait()
            return None
        if self.hang_up_after_plays is not None and self.plays >= self.hang_up_after_plays:
            self._hung_up.set()
        if stop_on_digit and self.barge:
            return self.barge.pop(0)
        self.now += 1
        await asyncio.sleep(0)  # a real play yields; lets a concurrent hang-up be seen
        return None

    async def pause(self, seconds: float, *, stop_on_digit: bool = False) -> str | None:
        self.events.append(("pause", seconds))
        if stop_on_digit and self.barge:
            return self.barge.pop(0)
        self.now += seconds
        return None

    def clear_digits(self) -> None:
        self.events.append(("clear",))

    async def next_digit(self, timeout: float) -> str | None:  # noqa: ASYNC109
        key = self.keys.pop(0) if self.keys else None
        if key is None:
            self.now += timeout
        return key

    async def send_digits(self, digits: str) -> None:
        self.events.append(("send_digits", digits))

    @property
    def speech_available(self) -> bool:
        return self._speech_available

    def start_listening(self) -> None:
        self.events.append(("listening",))

    def stop_listening(self) -> None:
        self.events.append(("stop listening",))

    async def listen(self, *, timeout: float, speech_timeout: float, max_speech_time: float,  # noqa: ASYNC109
                     hints: str | None, stop_on_digit: bool) -> SpeechResult:
        self.events.append(("listen", timeout, speech_timeout, max_speech_time, hints, stop_on_digit))
        if self.speech.digit is None and not self.speech.text:
            self.now += timeout
        return self.speech

    async def record(
        self, *, max_length: float, silence_timeout: float, finish_on_key: str, play_beep: bool,
        status_callback: Callback | None = None,
    ) -> RecordingResult:
        self.events.append(("record", max_length, silence_timeout, finish_on_key, play_beep, status_callback))
        if self.record_hangs_up:
            self._hung_up.set()
        return self.record_result

    async def dial(self, targets: Sequence[DialTarget], options: DialOptions) -> DialResult:
        self.events.append(("dial", tuple(targets), options))
        return self.dial_result


@dataclass
class Docs:
    """A fake fetcher: URL -> document (str) or HTTP status (int); records every request."""

    documents: dict[str, str | int]
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)

    async def fetch(self, url: str, method: str, params: Mapping[str, str], kind: str = "app") -> FetchResult:
        self.requests.append((url, method, dict(params), kind))
        request = WebhookRequest(url, method, tuple(params.items()))
        answer = self.documents.get(url.split("?")[0], 404)
        if isinstance(answer, int):
            return FetchResult(FetchOutcome.HTTP_ERROR, request, url, response=ResponseExcerpt(answer, (), b""),
                               error=f"HTTP {answer}")
        body = answer.encode()
        return FetchResult(FetchOutcome.OK, request, url, response=ResponseExcerpt(200, (), body), body=body,
                           content_type="text/xml")

    @property
    def urls(self) -> list[str]:
        return [url for url, *_ in self.requests]


@dataclass
class Notes:
    rows: list[tuple[int, int, str]] = field(default_factory=list)

    async def notify(self, code: int, text: str, *, log: int, **request: Any) -> None:
        self.rows.append((int(code), log, text))

    @property
    def codes(self) -> list[int]:
        return [code for code, *_ in self.rows]


@dataclass
class Session:
    ending: Ending
    call: FakeCall
    docs: Docs
    notes: Notes

    @property
    def events(self) -> list[tuple[Any, ...]]:
        return self.call.events

    def first_params(self) -> dict[str, str]:
        return self.docs.requests[0][2]


def request() -> VoiceRequest:
    return VoiceRequest("CA00000000000000000000000000000001", "AC00000000000000000000000000000001", CALLER, CALLED,
                        caller_name="Alice", sip_headers={"X-Tenant": "blue", "User-Agent": "phone"})


def rcml(*verbs: str) -> str:
    return "<Response>" + "".join(verbs) + "</Response>"


async def run(
    documents: Mapping[str, str | int], call: FakeCall | None = None, *, fallback: str | None = None,
    **kwargs: Any,
) -> Session:
    call = call or FakeCall()
    docs, notes = Docs(dict(documents)), Notes()
    entry = Entry(APP, "POST", fallback, "POST", label="VoiceUrl", fallback_label="VoiceFallbackUrl")
    ending = await asyncio.wait_for(
        run_voice_application(call, request(), entry, fetcher=docs, notifier=notes, public_base="http://self.test",
                              **kwargs),
        5,
    )
    return Session(ending, call, docs, notes)


def without_clear(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [e for e in events if e[0] != "clear"]


# -- parameters, answering, end of document --------------------------------------------------------------


async def test_say_answers_loops_and_the_end_of_the_document_hangs_up() -> None:
    s = await run({APP: rcml('<Say voice="alice" language="en-US" loop="2">Hello <break/>there</Say>')})
    assert s.ending is Ending.DONE
    assert s.events == [("answer",), ("say", "Hello there", "alice", "en-us"), ("play", "tts:Hello there"),
                        ("play", "tts:Hello there"), ("hangup",)]
    params = s.first_params()
    assert params["CallStatus"] == "ringing" and params["Direction"] == "inbound"
    assert (params["From"], params["To"], params["Caller"], params["Called"]) == (CALLER, CALLED, CALLER, CALLED)
    assert params["CallerName"] == "Alice" and params["SipHeader_X-Tenant"] == "blue"
    assert "SipHeader_User-Agent" not in params and "ForwardedFrom" not in params
    assert params["ApiVersion"] == "2012-04-24" and s.docs.requests[0][1] == "POST"
    assert s.notes.rows == []


async def test_say_loop_zero_repeats_until_the_caller_hangs_up() -> None:
    s = await run({APP: rcml('<Say loop="0">Hold on</Say>', "<Say>never</Say>")}, FakeCall(hang_up_after_plays=3))
    assert s.ending is Ending.DONE
    assert [e for e in s.events if e[0] == "play"] == [("play", "tts:Hold on")] * 3
    assert ("hangup",) not in s.events and ("say", "never", "man", "en") not in s.events


async def test_say_bad_voice_and_loop_warn_and_use_defaults() -> None:
    s = await run({APP: rcml('<Say voice="robot" loop="x">Hi</Say>', '<Say voice="Polly.Joanna">Yo</Say>')})
    assert s.notes.codes == [Code.INVALID_SAY_VOICE, Code.INVALID_SAY_LOOP]
    assert ("say", "Hi", "man", "en") in s.events and ("say", "Yo", "Polly.Joanna", "en") in s.events


async def test_empty_document_hangs_up_and_an_empty_say_does_nothing() -> None:
    s = await run({APP: rcml("<Say/>")})
    assert s.events == [("answer",), ("hangup",)]
    s = await run({APP: "<Response/>"})
    assert s.events == [("hangup",)]


async def test_pause_first_delays_the_answer() -> None:
    s = await run({APP: rcml('<Pause length="3"/>', "<Say>Hi</Say>")})
    assert s.events[:2] == [("pause", 3), ("answer",)]
    assert s.call.now == 4  # 3 s of pause, then one second of speech


async def test_pause_length_warning() -> None:
    s = await run({APP: rcml('<Pause length="soon"/>', '<Pause length="0"/>')})
    assert s.notes.codes == [Code.INVALID_PAUSE_LENGTH]
    assert s.events == [("pause", 1), ("hangup",)]


@pytest.mark.parametrize(("reason", "status"), [('reason="busy"', (486, "Busy Here")), ("", (603, "Decline")),
                                                ('reason="rejected"', (603, "Decline")),
                                                ('reason="odd"', (603, "Decline"))])
async def test_reject_before_answer(reason: str, status: tuple[int, str]) -> None:
    s = await run({APP: rcml("<Pause/>", f"<Reject {reason}/>", "<Say>never</Say>")})
    assert s.events == [("pause", 1), ("reject", *status)]
    assert s.ending is Ending.DONE


async def test_reject_after_answer_warns_and_hangs_up() -> None:
    s = await run({APP: rcml("<Say>Hi</Say>", "<Reject/>")})
    assert s.events[-1] == ("hangup",) and not any(e[0] == "reject" for e in s.events)
    assert s.notes.codes == [Code.SCHEMA_VALIDATION_WARNING]


async def test_hangup_answers_then_ends_the_document() -> None:
    s = await run({APP: rcml("<Hangup/>", "<Say>never</Say>")})
    assert s.events == [("answer",), ("hangup",)]


async def test_redirect_does_not_answer_and_replaces_the_document() -> None:
    nxt = "http://app.test/next.xml"
    s = await run({APP: rcml('<Redirect method="GET">next.xml?x=1</Redirect>', "<Say>never</Say>"),
                   nxt: rcml("<Reject/>")})
    assert s.events == [("reject", 603, "Decline")]
    url, method, params, _ = s.docs.requests[1]
    assert (url, method, params["CallStatus"]) == ("http://app.test/next.xml?x=1", "GET", "ringing")


async def test_redirect_bad_method_warns_and_posts() -> None:
    s = await run({APP: rcml('<Redirect method="PUT">/next.xml</Redirect>'), "http://app.test/next.xml": "<Response/>"})
    assert s.notes.codes == [Code.INVALID_REDIRECT_METHOD] and s.docs.requests[1][1] == "POST"


# -- Play --------------------------------------------------------------------------------------------------


async def test_play_resolves_loops_and_sends_digits_first() -> None:
    s = await run({APP: rcml('<Play loop="2" digits="1w2#">song.wav</Play>')})
    assert without_clear(s.events) == [("answer",), ("send_digits", "1w2#"), ("play", "audio:http://app.test/song.wav"),
                                       ("play", "audio:http://app.test/song.wav"), ("hangup",)]


async def test_play_digits_only_and_bad_digits() -> None:
    s = await run({APP: rcml('<Play digits="ww9"/>', '<Play digits="12x">a.wav</Play>')})
    assert ("send_digits", "ww9") in s.events and s.notes.codes == [Code.SCHEMA_VALIDATION_WARNING]
    assert ("play", "audio:http://app.test/a.wav") in s.events


async def test_play_download_failure_is_13233_and_the_call_ends_with_the_error_prompt() -> None:
    bad = "http://app.test/missing.wav"
    s = await run({APP: rcml("<Play>missing.wav</Play>", "<Say>never</Say>")}, FakeCall(failing_audio=frozenset({bad})))
    assert s.ending is Ending.FAILED
    assert s.notes.codes == [Code.PLAY_DOWNLOAD_FAILURE]
    assert s.events == [("answer",), ("say", "An application error has occurred. Goodbye.", "man", "en"),
                        ("play", "tts:An application error has occurred. Goodbye."), ("hangup",)]


async def test_play_bad_url_is_11100_and_loop_warning_13410() -> None:
    s = await run({APP: rcml('<Play loop="-1">http://[bad</Play>')}, error_prompt=None)
    assert s.notes.codes == [Code.INVALID_PLAY_LOOP, Code.INVALID_URL]
    assert s.events == [("answer",), ("hangup",)]


async def test_hangup_cancels_a_long_play() -> None:
    call = FakeCall(block_play=True)
    docs, notes = Docs({APP: rcml("<Play>long.wav</Play>", "<Say>never</Say>")}), Notes()
    entry = Entry(APP, label="VoiceUrl")
    task = asyncio.create_task(run_voice_application(call, request(), entry, fetcher=docs, notifier=notes,
                                                     public_base="http://self.test"))
    await asyncio.wait_for(call.playing.wait(), 5)
    call.remote_hangup()
    assert await asyncio.wait_for(task, 5) is Ending.DONE
    assert call.events == [("answer",), ("play", "audio:http://app.test/long.wav")]


async def test_say_failure_is_12400() -> None:
    s = await run({APP: rcml("<Say>broken</Say>")}, error_prompt=None)
    assert s.notes.codes == [Code.MEDIA_FAILURE] and s.ending is Ending.FAILED and s.events[-1] == ("hangup",)


# -- Gather ------------------------------------------------------------------------------------------------

MENU = "http://app.test/menu"


async def test_gather_collects_digits_after_the_prompts_and_requests_the_action() -> None:
    s = await run({APP: rcml('<Gather numDigits="2" action="/menu"><Say>Press</Say></Gather>', "<Say>No input</Say>"),
                   MENU: rcml("<Say>Thanks</Say>")}, FakeCall(keys=["4", "2", "9"]))
    url, method, params, _ = s.docs.requests[1]
    assert (url, method, params["Digits"], params["CallStatus"]) == (MENU, "POST", "42", "in-progress")
    assert "SpeechResult" not in params
    assert ("say", "Thanks", "man", "en") in s.events and ("say", "No input", "man", "en") not in s.events


async def test_a_digit_cuts_the_nested_prompts_off_and_counts() -> None:
    doc = rcml('<Gather action="/menu"><Say>One</Say><Play>two.wav</Play><Pause length="2"/></Gather>')
    s = await run({APP: doc, MENU: "<Response/>"}, FakeCall(barge=["7"], keys=["3", "#"]))
    assert without_clear(s.events)[:3] == [("answer",), ("say", "One", "man", "en"), ("play", "tts:One")]
    assert not any(e[0] == "pause" for e in s.events) and ("play", "audio:http://app.test/two.wav") not in s.events
    assert s.docs.requests[1][2]["Digits"] == "73"


async def test_gather_without_input_falls_through_after_the_timeout() -> None:
    s = await run({APP: rcml('<Gather timeout="3" action="/menu"><Say>Press</Say></Gather>', "<Say>No input</Say>")},
                  FakeCall(keys=[None]))
    assert len(s.docs.requests) == 1 and ("say", "No input", "man", "en") in s.events
    assert s.call.now == 1 + 3 + 1  # prompt, then the timeout, then the next verb's speech


async def test_gather_default_timeout_is_five_seconds() -> None:
    s = await run({APP: rcml("<Gather/>")})
    assert s.call.now == 5 and len(s.docs.requests) == 1


@pytest.mark.parametrize(
    ("attrs", "keys", "digits"),
    [
        ("", ["1", "2", "#"], "12"),
        ('finishOnKey="*"', ["1", "#", "*"], "1#"),
        ('finishOnKey="*#"', ["5", "*"], "5"),
        ('finishOnKey="" numDigits="2"', ["#", "1"], "#1"),
        ('numDigits="1"', ["8"], "8"),
        ("", ["1", None], "1"),  # a timeout after some digits sends what was pressed
    ],
)
async def test_gather_finish_on_key_and_num_digits(attrs: str, keys: list[str | None], digits: str) -> None:
    s = await run({APP: rcml(f'<Gather action="/menu" {attrs}/>'), MENU: "<Response/>"}, FakeCall(keys=keys))
    assert s.docs.requests[1][2]["Digits"] == digits


async def test_gather_only_the_finish_key_is_no_input() -> None:
    s = await run({APP: rcml('<Gather action="/menu"><Say>Press</Say></Gather>', "<Say>next</Say>")},
                  FakeCall(barge=["#"]))
    assert len(s.docs.requests) == 1 and ("say", "next", "man", "en") in s.events


async def test_gather_without_action_requests_the_current_document() -> None:
    s = await run({APP: rcml("<Gather/>", "<Hangup/>")}, FakeCall(keys=["1", "#", None]))
    # The first answer gathers "1" and requests itself again; the second gathers nothing and hangs up.
    assert s.docs.urls == [APP, APP] and s.docs.requests[1][2]["Digits"] == "1"


async def test_gather_action_on_empty_result() -> None:
    s = await run({APP: rcml('<Gather action="/menu" actionOnEmptyResult="true"/>'), MENU: "<Response/>"})
    assert s.docs.requests[1][2]["Digits"] == ""


async def test_speech_gather_sends_the_speech_result_and_confidence() -> None:
    doc = rcml('<Gather input="speech" hints="sales, support" speechTimeout="auto" action="/menu">'
               '<Say>Say sales or support</Say></Gather>', "<Say>No input</Say>")
    call = FakeCall(speech=SpeechResult("support", 0.93))
    s = await run({APP: doc, MENU: "<Response/>"}, call)
    assert call.events.index(("listening",)) < call.events.index(("say", "Say sales or support", "man", "en"))
    assert ("listen", 5, 1.0, 60, "sales, support", False) in call.events and ("stop listening",) in call.events
    params = s.docs.requests[1][2]
    assert (params["SpeechResult"], params["Confidence"]) == ("support", "0.930000") and "Digits" not in params


async def test_speech_gather_with_nothing_said_falls_through() -> None:
    doc = rcml('<Gather input="speech" timeout="2" speechTimeout="3" maxSpeechTime="9" action="/menu"/>',
               "<Say>No input</Say>")
    call = FakeCall()
    s = await run({APP: doc, MENU: "<Response/>"}, call)
    assert ("listen", 2, 3.0, 9, None, False) in call.events
    assert len(s.docs.requests) == 1 and ("say", "No input", "man", "en") in s.events


async def test_dtmf_speech_gather_a_key_ends_the_listening_and_digits_are_collected() -> None:
    doc = rcml('<Gather input="dtmf speech" numDigits="2" action="/menu"/>')
    call = FakeCall(speech=SpeechResult("", 0.0, "4"), keys=["2"])
    s = await run({APP: doc, MENU: "<Response/>"}, call)
    assert ("listen", 5, 5, 60, None, True) in call.events
    assert s.docs.requests[1][2]["Digits"] == "42" and "SpeechResult" not in s.docs.requests[1][2]


async def test_speech_gather_without_a_recognizer_warns_and_collects_digits() -> None:
    call = FakeCall(speech_available=False, keys=["7", "#"])
    s = await run({APP: rcml('<Gather input="speech" action="/menu"/>'), MENU: "<Response/>"}, call)
    assert Code.SCHEMA_VALIDATION_WARNING in s.notes.codes
    assert not any(e[0] == "listen" for e in call.events) and s.docs.requests[1][2]["Digits"] == "7"


async def test_gather_attribute_warnings() -> None:
    doc = rcml('<Gather timeout="x" numDigits="0" finishOnKey="a" method="PUT" input="fax">'
               '<Say voice="bob" loop="z">Hi</Say><Play>http://[bad</Play><Dial/></Gather>')
    s = await run({APP: doc})
    assert s.notes.codes[:8] == [Code.INVALID_GATHER_TIMEOUT, Code.INVALID_GATHER_NUM_DIGITS,
                                 Code.SCHEMA_VALIDATION_WARNING, Code.INVALID_GATHER_SAY_VOICE,
                                 Code.INVALID_GATHER_SAY_LOOP, Code.SCHEMA_VALIDATION_WARNING,
                                 Code.INVALID_SMS_METHOD, Code.INVALID_GATHER_FINISH_ON_KEY]
    assert s.notes.codes[-1] == Code.INVALID_GATHER_PLAY_URL  # met when the prompt runs: the call ends
    assert s.ending is Ending.FAILED


async def test_hangup_during_gather_sends_nothing() -> None:
    call = FakeCall(hang_up_after_plays=1)
    s = await run({APP: rcml('<Gather action="/menu"><Say>Hi</Say></Gather>', "<Say>never</Say>")}, call)
    assert s.docs.urls == [APP] and s.ending is Ending.DONE


# -- Record ------------------------------------------------------------------------------------------------

REC = "http://app.test/rec"


async def test_record_requests_the_action_with_the_recording() -> None:
    result = RecordingResult(4.6, "#", "http://self.test/Recordings/RE1", "RE1")
    doc = rcml('<Record maxLength="20" timeout="3" finishOnKey="#" playBeep="false" action="/rec" method="GET" '
               'recordingStatusCallback="/rs" transcribe="true"/>', "<Say>never</Say>")
    s = await run({APP: doc, REC: rcml("<Say>Bye</Say>")}, FakeCall(record_result=result))
    assert ("record", 20, 3, "#", False, Callback("http://app.test/rs", "POST")) in s.events
    url, method, params, _ = s.docs.requests[1]
    assert (url, method) == (REC, "GET")
    assert (params["RecordingUrl"], params["RecordingSid"], params["RecordingDuration"], params["Digits"]) == (
        "http://self.test/Recordings/RE1", "RE1", "5", "#")
    assert s.notes.codes == [Code.SCHEMA_VALIDATION_WARNING]  # transcribe is read, not done
    assert ("say", "never", "man", "en") not in s.events and ("say", "Bye", "man", "en") in s.events


async def test_record_defaults_and_an_empty_recording() -> None:
    s = await run({APP: rcml("<Record/>", "<Hangup/>")}, FakeCall(record_result=RecordingResult(0.0)))
    assert ("record", 3600, 5, "1234567890*#", True, None) in s.events
    # No action: the current document again (Twilio), without RecordingUrl for an empty recording.
    assert s.docs.urls[:2] == [APP, APP] and "RecordingUrl" not in s.docs.requests[1][2]


async def test_record_attribute_warnings() -> None:
    s = await run({APP: rcml('<Record maxLength="0" timeout="-2" finishOnKey="x" playBeep="maybe" method="PUT" '
                             'action="/rec"/>'), REC: "<Response/>"})
    assert sorted(s.notes.codes) == sorted([Code.INVALID_RECORD_ATTRIBUTE, Code.INVALID_RECORD_ATTRIBUTE,
                                            Code.INVALID_RECORD_METHOD, Code.INVALID_RECORD_FINISH_ON_KEY,
                                            Code.INVALID_RECORD_ATTRIBUTE])
    assert ("record", 3600, 5, "#", True, None) in s.events


async def test_record_finish_on_key_disabled() -> None:
    for value in ("", "-1"):
        (verb,) = parse_rcml(rcml(f'<Record finishOnKey="{value}"/>'), verbs=VOICE_VERBS).verbs
        assert isinstance(verb, Record) and verb.finish_on_key == ""


class FakeReplies:
    default_to = CALLER
    default_from = CALLED

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def prepare(self, sender: str, to: str, body: str) -> object:
        if not to.startswith("+"):
            raise Refused(Code.INVALID_SMS_TO, "bad to")
        return (sender, to, body)

    async def send(self, prepared: object, *, own_number: bool, status_callback: str | None,
                   status_callback_method: str | None) -> None:
        self.sent.append((prepared, own_number, status_callback, status_callback_method))


class FakeEmail:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def queue(self, **fields: Any) -> None:
        self.sent.append(fields)


async def test_caller_hanging_up_during_record_still_requests_the_action_then_only_sms_runs() -> None:
    replies = FakeReplies()
    result = RecordingResult(2.0, "hangup", "http://self.test/Recordings/RE2", "RE2")
    s = await run({APP: rcml('<Record action="/rec"/>'), REC: rcml("<Say>never</Say>", "<Sms>Thanks for calling</Sms>")},
                  FakeCall(record_result=result, record_hangs_up=True), replies=replies)
    params = s.docs.requests[1][2]
    assert (params["Digits"], params["CallStatus"]) == ("hangup", "completed")
    assert ("say", "never", "man", "en") not in s.events and ("hangup",) not in s.events
    assert replies.sent == [((CALLED, CALLER, "Thanks for calling"), True, None, None)]


# -- Dial --------------------------------------------------------------------------------------------------

DIALED = "http://app.test/dialed"


async def test_dial_rings_every_noun_and_requests_the_action_with_the_result() -> None:
    doc = rcml('<Dial action="/dialed" method="GET" timeout="10" timeLimit="60" callerId="+15559990000" '
               'hangupOnStar="true" record="record-from-answer" recordingStatusCallback="/drs">'
               '<Number sendDigits="1w2" statusCallback="/leg" statusCallbackEvent="ringing answered">+15551112222</Number>'
               '<Client url="/screen">alice</Client>'
               '<Sip username="u" password="p">sip:bob@example.com?X-Tag=1&amp;Y=2</Sip>'
               "</Dial>", "<Say>never</Say>")
    dialed = DialResult("completed", "CA2", 42, "http://self.test/Recordings/RE3", "RE3")
    s = await run({APP: doc, DIALED: rcml("<Say>after</Say>")}, FakeCall(dial_result=dialed))
    (_, targets, options) = next(e for e in s.events if e[0] == "dial")
    assert targets == (
        DialTarget("number", "+15551112222", send_digits="1w2",
                   status_callback=Callback("http://app.test/leg", "POST", ("ringing", "answered"))),
        DialTarget("client", "alice", url="http://app.test/screen"),
        DialTarget("sip", "sip:bob@example.com", username="u", password="p", headers=(("X-Tag", "1"),)),
    )
    assert options == DialOptions("+15559990000", 10, 60, True, True, Callback("http://app.test/drs", "POST"))
    url, method, params, _ = s.docs.requests[1]
    assert (url, method) == (DIALED, "GET")
    assert (params["DialCallStatus"], params["DialCallSid"], params["DialCallDuration"], params["RecordingUrl"]) == (
        "completed", "CA2", "42", "http://self.test/Recordings/RE3")
    assert ("say", "after", "man", "en") in s.events and ("say", "never", "man", "en") not in s.events


async def test_dial_without_action_continues_and_caller_id_defaults_to_the_caller() -> None:
    s = await run({APP: rcml("<Dial>+15551112222</Dial>", "<Say>next</Say>")}, FakeCall(dial_result=DialResult("busy")))
    (_, targets, options) = next(e for e in s.events if e[0] == "dial")
    assert targets == (DialTarget("number", "+15551112222"),)
    assert (options.caller_id, options.timeout, options.time_limit, options.record) == (CALLER, 30, 14400, False)
    assert ("say", "next", "man", "en") in s.events and len(s.docs.requests) == 1


async def test_dial_no_answer_omits_dial_call_sid() -> None:
    s = await run({APP: rcml('<Dial action="/dialed">client:bob</Dial>'), DIALED: "<Response/>"})
    params = s.docs.requests[1][2]
    assert params["DialCallStatus"] == "no-answer" and "DialCallSid" not in params and params["DialCallDuration"] == "0"


@pytest.mark.parametrize(
    ("text", "target"),
    [("+15551112222", DialTarget("number", "+15551112222")),
     ("client:alice", DialTarget("client", "alice")),
     ("clientbob", DialTarget("client", "bob")),
     ("bob@example.com?X-A=1", DialTarget("sip", "bob@example.com", headers=(("X-A", "1"),)))],
)
def test_dial_text_shorthand(text: str, target: DialTarget) -> None:
    (verb,) = parse_rcml(rcml(f"<Dial>{text}</Dial>"), verbs=VOICE_VERBS).verbs
    assert isinstance(verb, Dial) and verb.targets == (target,)


def test_dial_client_identity_and_parameters() -> None:
    doc = rcml('<Dial><Client><Identity>alice</Identity><Parameter name="k" value="v"/></Client></Dial>')
    (verb,) = parse_rcml(doc, verbs=VOICE_VERBS).verbs
    assert isinstance(verb, Dial) and verb.targets == (DialTarget("client", "alice", parameters=(("k", "v"),)),)


async def test_dial_attribute_warnings_and_conference_not_supported_yet() -> None:
    doc = rcml('<Dial timeout="never" timeLimit="0" method="PUT" record="sometimes"><Conference>room</Conference></Dial>',
               "<Say>next</Say>")
    s = await run({APP: doc})
    assert sorted(s.notes.codes[:4]) == sorted([Code.SCHEMA_VALIDATION_WARNING, Code.INVALID_DIAL_TIMEOUT,
                                                Code.INVALID_DIAL_TIME_LIMIT, Code.INVALID_DIAL_METHOD])
    assert "<Conference> in <Dial> is not supported yet" in s.notes.rows[4][2]
    assert "nothing to dial" in s.notes.rows[5][2]
    assert not any(e[0] == "dial" for e in s.events) and ("say", "next", "man", "en") in s.events


# -- Sms and Email in a call -------------------------------------------------------------------------------


async def test_sms_in_a_call_texts_the_caller_and_its_action_continues_the_call() -> None:
    replies = FakeReplies()
    doc = rcml('<Sms action="/sent">Your code is 1234</Sms>', "<Say>never</Say>")
    s = await run({APP: doc, "http://app.test/sent": rcml("<Say>Sent</Say>")}, replies=replies)
    assert replies.sent == [((CALLED, CALLER, "Your code is 1234"), True, "http://app.test/sent", "POST")]
    params = s.docs.requests[1][2]
    assert params["SmsStatus"] == "sending" and params["CallSid"].startswith("CA") and "SmsSid" not in params
    assert ("say", "Sent", "man", "en") in s.events


async def test_sms_empty_body_is_14103_and_ends_the_call() -> None:
    s = await run({APP: rcml("<Say>Hi</Say>", "<Sms/>")}, replies=FakeReplies(), error_prompt=None)
    assert s.notes.codes == [Code.INVALID_SMS_BODY] and s.events[-1] == ("hangup",) and s.ending is Ending.FAILED


async def test_email_in_a_call() -> None:
    email = FakeEmail()
    s = await run({APP: rcml('<Email to="a@x.org" from="b@x.org" subject="Call">Called</Email>')}, email=email)
    assert email.sent == [{"from_addr": "b@x.org", "to": "a@x.org", "subject": "Call", "body": "Called", "cc": [],
                           "bcc": []}]
    assert s.ending is Ending.DONE


class NoBudget:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def allow(self, kind: str) -> bool:
        self.asked.append(kind)
        return False


async def test_a_spent_budget_stops_the_session_before_work_is_created() -> None:
    replies, budget = FakeReplies(), NoBudget()
    s = await run({APP: rcml("<Sms>x</Sms>")}, replies=replies, budget=budget, error_prompt=None)
    assert budget.asked == ["message"] and replies.sent == [] and s.notes.codes == [Code.REPLY_LIMIT_EXCEEDED]


# -- unsupported verbs, failures and limits ---------------------------------------------------------------


async def test_unknown_and_not_yet_supported_verbs_warn_12200_and_are_skipped() -> None:
    s = await run({APP: rcml("<Connect><Say>hidden</Say></Connect>", "<Enqueue>q</Enqueue>", "<Message>m</Message>",
                             "<Say>shown</Say>")})
    assert s.notes.codes == [Code.SCHEMA_VALIDATION_WARNING] * 3
    assert "not supported yet" in s.notes.rows[1][2] and "not a voice verb" in s.notes.rows[0][2]
    assert ("say", "hidden", "man", "en") not in s.events and ("say", "shown", "man", "en") in s.events


def test_voice_table() -> None:
    verbs = parse_rcml(rcml("<Leave/>", "<Message>x</Message>", "<Gather><Say>a</Say></Gather>"), verbs=VOICE_VERBS).verbs
    assert verbs[0] == NotYet("Leave") and verbs[1] == Unsupported("Message")
    assert isinstance(verbs[2], Gather) and verbs[2].prompts == (Say("a"),)


async def test_unreachable_app_uses_the_fallback_with_error_code() -> None:
    fallback = "http://app.test/fallback.xml"
    s = await run({APP: 500, fallback: rcml("<Say>Fallback</Say>")}, fallback=fallback)
    assert s.notes.codes == [Code.HTTP_RETRIEVAL_FAILURE]
    url, _, params, kind = s.docs.requests[1]
    assert (url, kind, params["ErrorCode"], params["ErrorUrl"]) == (fallback, "fallback", "11200", APP)
    assert ("say", "Fallback", "man", "en") in s.events and s.ending is Ending.DONE


async def test_app_and_fallback_down_the_caller_hears_an_error_and_the_call_ends() -> None:
    s = await run({APP: 503}, fallback="http://app.test/also-down.xml")
    assert s.notes.codes == [Code.HTTP_RETRIEVAL_FAILURE, Code.HTTP_RETRIEVAL_FAILURE]
    assert s.events == [("answer",), ("say", "An application error has occurred. Goodbye.", "man", "en"),
                        ("play", "tts:An application error has occurred. Goodbye."), ("hangup",)]
    assert s.ending is Ending.FAILED


async def test_without_an_error_prompt_a_ringing_call_is_refused_with_500() -> None:
    s = await run({APP: 404}, error_prompt=None)
    assert s.events == [("reject", 500, "Server Internal Error")]


async def test_parse_failure_is_12100_and_the_call_ends() -> None:
    s = await run({APP: "<Response><Say>unclosed</Response>"}, error_prompt=None)
    assert s.notes.codes == [Code.DOCUMENT_PARSE_FAILURE] and s.events == [("reject", 500, "Server Internal Error")]


async def test_redirect_loop_hits_the_document_limit() -> None:
    s = await run({APP: rcml("<Pause/>", "<Redirect/>", f"<Redirect>{APP}</Redirect>")}, max_documents=4,
                  error_prompt=None)
    assert len(s.docs.requests) == 4 and s.notes.codes == [Code.DOCUMENT_RETRIEVAL_LIMIT]
    assert s.events[-1] == ("reject", 500, "Server Internal Error") and s.ending is Ending.FAILED


async def test_no_voice_url_refuses_the_call() -> None:
    call, docs, notes = FakeCall(), Docs({}), Notes()
    ending = await run_voice_application(call, request(), voice_entry({}), fetcher=docs, notifier=notes,
                                         public_base="http://self.test", error_prompt=None)
    assert ending is Ending.FAILED and call.events == [("reject", 500, "Server Internal Error")] and docs.requests == []


def test_voice_entry_prefers_the_application() -> None:
    number = {"voice_url": "/v.xml", "voice_method": "GET", "voice_fallback_url": "/f.xml"}
    assert voice_entry(number) == Entry("/v.xml", "GET", "/f.xml", "POST", "VoiceUrl", "VoiceFallbackUrl")
    assert voice_entry(number, {"rcml_url": "/app.xml"}).url == "/app.xml"


async def test_relative_voice_url_resolves_against_this_server() -> None:
    call, docs, notes = FakeCall(), Docs({"http://self.test/demo/hello.xml": rcml("<Hangup/>")}), Notes()
    await run_voice_application(call, request(), voice_entry({"voice_url": "/demo/hello.xml"}), fetcher=docs,
                                notifier=notes, public_base="http://self.test")
    assert docs.urls == ["http://self.test/demo/hello.xml"] and call.events == [("answer",), ("hangup",)]


def test_play_nested_in_gather_uses_13325() -> None:
    (verb,) = parse_rcml(rcml("<Gather><Play>x.wav</Play></Gather>"), verbs=VOICE_VERBS).verbs
    assert isinstance(verb, Gather) and isinstance(verb.prompts[0], Play)
    assert verb.prompts[0].url_code == Code.INVALID_GATHER_PLAY_URL


# -- real HTTP: documents come through webhooks/fetch, signed and guarded, like SMS -----------------------


async def test_voice_documents_are_fetched_signed_with_fallback_and_the_guard() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from restcomm.config import Settings
    from restcomm.rcml.interpreter import DocumentFetcher
    from restcomm.webhooks.fetch import create_session
    from restcomm.webhooks.signature import SIGNATURE_HEADER, compute_signature

    token = "secret-token"
    seen: list[tuple[str, str, dict[str, str], bool]] = []

    async def handle(request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else {}
        params = {**dict(request.query), **{k: str(v) for k, v in form.items()}}
        url = str(request.url)
        valid = request.headers.get(SIGNATURE_HEADER) == compute_signature(token, url, form if form else None)
        seen.append((request.path, request.method, params, valid))
        if request.path == "/down.xml":
            return web.Response(status=500)
        if request.path == "/fallback.xml":
            return web.Response(text=rcml('<Gather numDigits="1" action="/next.xml" method="GET"/>'),
                                content_type="text/xml")
        return web.Response(text=rcml("<Hangup/>"), content_type="text/xml")

    app = web.Application()
    app.router.add_route("*", "/{name}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = create_session()
    try:
        base = f"http://127.0.0.1:{server.port}"
        call, notes = FakeCall(keys=["5"]), Notes()
        fetcher = DocumentFetcher(http, token, timeout=5, max_redirects=3)
        entry = Entry(f"{base}/down.xml", "POST", f"{base}/fallback.xml", "POST", "VoiceUrl", "VoiceFallbackUrl")
        ending = await asyncio.wait_for(run_voice_application(call, request(), entry, fetcher=fetcher, notifier=notes,
                                                              public_base=base), 10)
        assert ending is Ending.DONE and notes.codes == [Code.HTTP_RETRIEVAL_FAILURE]
        assert [(path, method) for path, method, _, _ in seen] == [
            ("/down.xml", "POST"), ("/fallback.xml", "POST"), ("/next.xml", "GET")]
        assert all(valid for *_, valid in seen)
        assert seen[1][2]["ErrorCode"] == "11200" and seen[2][2]["Digits"] == "5"
        assert seen[2][2]["CallSid"] == request().call_sid and seen[2][2]["CallStatus"] == "in-progress"
        assert call.events[-1] == ("hangup",)

        # With private destinations refused, the loopback application is never reached (11205).
        guarded = DocumentFetcher(http, token, timeout=5, max_redirects=3, guard=Settings(webhook_block_private=True))
        seen.clear()
        notes = Notes()
        ending = await run_voice_application(FakeCall(), request(), Entry(f"{base}/hello.xml", label="VoiceUrl"),
                                             fetcher=guarded, notifier=notes, public_base=base, error_prompt=None)
        assert ending is Ending.FAILED and seen == [] and notes.codes == [Code.HTTP_CONNECTION_FAILURE]
    finally:
        await http.close()
        await server.close()


# -- the same interpreter on the SMS channel --------------------------------------------------------------


async def run_sms(documents: Mapping[str, str | int], **kwargs: Any) -> tuple[Ending, Docs, Notes, FakeReplies]:
    from restcomm.rcml.channels import SmsChannel
    from restcomm.rcml.interpreter import Interpreter
    from restcomm.rcml.runtime import Context

    docs, notes, replies = Docs(dict(documents)), Notes(), FakeReplies()
    channel = SmsChannel({"From": CALLER, "To": CALLED, "Body": "hi"}, max_documents=kwargs.pop("max_documents", 10))
    ctx = Context(channel, notes, replies=replies, email=FakeEmail(), **kwargs)
    ending = await Interpreter(channel, ctx, docs, Entry(APP), public_base="http://self.test").run()
    return ending, docs, notes, replies


async def test_sms_channel_skips_voice_verbs_with_14110_and_replies() -> None:
    ending, docs, notes, replies = await run_sms({APP: rcml("<Say>hi</Say>", "<Gather/>", '<Message>ok</Message>')})
    assert ending is Ending.DONE and notes.codes == [Code.INVALID_VERB_FOR_SMS] * 2
    assert replies.sent == [((CALLED, CALLER, "ok"), True, None, None)]


async def test_sms_channel_action_replaces_the_document_and_the_limit_ends_a_loop() -> None:
    ending, docs, notes, replies = await run_sms(
        {APP: rcml('<Sms action="/again">x</Sms>', "<Sms>never</Sms>"), "http://app.test/again": rcml(
            "<Redirect>/again</Redirect>")}, max_documents=3)
    assert ending is Ending.FAILED and notes.codes == [Code.DOCUMENT_RETRIEVAL_LIMIT]
    assert docs.requests[1][2]["SmsStatus"] == "sending" and docs.requests[1][2]["MessageStatus"] == "sending"
    assert len(replies.sent) == 1


# -- more behaviour --------------------------------------------------------------------------------------


async def test_play_loop_zero_until_hangup() -> None:
    s = await run({APP: rcml('<Play loop="0">hold.wav</Play>')}, FakeCall(hang_up_after_plays=4))
    assert [e for e in s.events if e[0] == "play"] == [("play", "audio:http://app.test/hold.wav")] * 4


async def test_an_answered_outbound_call_reports_in_progress_and_is_not_answered_again() -> None:
    s = await run({APP: rcml("<Say>Hi</Say>")}, FakeCall(answered=True))
    assert s.first_params()["CallStatus"] == "in-progress" and ("answer",) not in s.events


async def test_verbs_after_hangup_do_not_run_but_sms_after_a_remote_hangup_does() -> None:
    replies = FakeReplies()
    await run({APP: rcml("<Hangup/>", "<Sms>never</Sms>")}, replies=replies)
    assert replies.sent == []
    s = await run({APP: rcml('<Say loop="0">Hold</Say>', "<Redirect>/x</Redirect>", "<Sms>after</Sms>")},
                  FakeCall(hang_up_after_plays=1), replies=replies)
    assert [sent[0][2] for sent in replies.sent] == ["after"] and s.docs.urls == [APP]


async def test_gather_drops_digits_pressed_before_it_began() -> None:
    s = await run({APP: rcml("<Say>Hi</Say>", "<Gather/>")})
    assert s.events.index(("clear",)) > s.events.index(("play", "tts:Hi"))


def test_twilio_voice_response_documents_parse() -> None:
    from twilio.twiml.voice_response import Dial as TwDial
    from twilio.twiml.voice_response import Gather as TwGather
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    gather = TwGather(num_digits=1, action="/menu", method="GET", timeout=7, finish_on_key="*", input="dtmf")
    gather.say("Press one", voice="Polly.Joanna", language="en-GB", loop=2)
    gather.play("https://x.test/a.mp3", loop=0)
    gather.pause(length=2)
    response.append(gather)
    response.record(max_length=30, timeout=4, finish_on_key="#", play_beep=False, action="/rec",
                    recording_status_callback="/rs", recording_status_callback_method="GET", trim="trim-silence")
    dial = TwDial(action="/dialed", caller_id="+15550000000", timeout=20, time_limit=600, hangup_on_star=True,
                  record="record-from-ringing-dual")
    dial.number("+15551112222", send_digits="ww1", status_callback="/leg", status_callback_event="initiated completed")
    dial.client("alice")
    dial.sip("sip:bob@example.com", username="u", password="p")
    response.append(dial)
    response.pause(length=3)
    response.hangup()
    response.reject(reason="busy")
    parsed = parse_rcml(response.to_xml(), verbs=VOICE_VERBS)
    assert parsed.warnings == ()
    gathered, recorded, dialed, *rest = parsed.verbs
    assert gathered == Gather(action="/menu", method="GET", timeout=7, finish_on_key="*", num_digits=1,
                              prompts=(Say("Press one", "Polly.Joanna", "en-gb", 2),
                                       Play("https://x.test/a.mp3", loop=0, url_code=Code.INVALID_GATHER_PLAY_URL),
                                       parse_rcml(rcml('<Pause length="2"/>'), verbs=VOICE_VERBS).verbs[0]))
    assert recorded == Record(action="/rec", timeout=4, max_length=30, finish_on_key="#", play_beep=False,
                              recording_status_callback="/rs", recording_status_callback_method="GET")
    assert isinstance(dialed, Dial) and dialed.record and dialed.hangup_on_star
    assert (dialed.caller_id, dialed.timeout, dialed.time_limit) == ("+15550000000", 20, 600)
    assert [t.kind for t in dialed.targets] == ["number", "client", "sip"]
    assert dialed.targets[0].status_callback == Callback("/leg", "POST", ("initiated", "completed"))
    assert [type(v).__name__ for v in rest] == ["Pause", "Hangup", "Reject"]


async def test_cancelling_the_session_cancels_the_running_verb() -> None:
    call = FakeCall(block_play=True)
    docs, notes = Docs({APP: rcml("<Play>long.wav</Play>")}), Notes()
    task = asyncio.create_task(run_voice_application(call, request(), Entry(APP, label="VoiceUrl"), fetcher=docs,
                                                     notifier=notes, public_base="http://self.test"))
    await asyncio.wait_for(call.playing.wait(), 5)
    verbs = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "Play.run"]
    assert len(verbs) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert verbs[0].cancelled()


async def test_email_without_to_warns_and_the_call_goes_on() -> None:
    email = FakeEmail()
    s = await run({APP: rcml('<Email from="b@x.org">x</Email>', "<Say>next</Say>")}, email=email)
    assert email.sent == [] and s.notes.codes == [Code.SCHEMA_VALIDATION_WARNING]
    assert ("say", "next", "man", "en") in s.events  # Restcomm's voice interpreter stalled here


async def test_a_reply_failing_the_format_checks_ends_the_call() -> None:
    replies = FakeReplies()
    s = await run({APP: rcml('<Sms to="client:bob">x</Sms>', "<Say>next</Say>")}, replies=replies, error_prompt=None)
    assert replies.sent == [] and s.notes.codes == [Code.INVALID_SMS_TO] and s.ending is Ending.FAILED
    assert ("say", "next", "man", "en") not in s.events and s.events[-1] == ("hangup",)
