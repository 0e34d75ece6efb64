"""The ``VoiceCall`` Protocol: everything the voice verbs need of a call, and nothing more.

``voice/`` implements it with SIP and RTP (``sip/``, ``media/``); the unit tests implement it with
a fake call. Verbs own the logic (what Gather does with the digits, when Say loops, what an action
request carries); the call only offers primitives that need signalling, media or a clock:

* signalling: ``answer``, ``reject`` (before answer), ``hangup``, ``answered``, ``hung_up``;
* media out: ``say`` (text to speech, cached by the implementation) and ``fetch_audio`` (an URL's
  WAV/MP3, fetched through the webhook destination guard and cached) give linear PCM (16-bit,
  8 kHz, mono) that ``play`` sends; ``pause`` is silence; ``send_digits`` sends DTMF (RFC 4733);
* media in: DTMF digits queue up on the call; ``play``/``pause`` with ``stop_on_digit`` end early
  and return (consume) the first digit, ``next_digit`` waits for one, ``clear_digits`` drops the
  ones pressed before a Gather began; ``record`` records what the caller says;
* ``dial``: rings every target at once, bridges the first to answer, cancels the rest.

Every waiting primitive returns promptly once the call has ended (``hung_up`` set): the
interpreter also cancels a running verb when the caller hangs up, except ``<Record>`` and
``<Dial>``, whose primitives report the hang-up in their result so the verb can still request its
``action`` (Twilio does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class MediaError(Exception):
    """Audio could not be produced: TTS failed, or an URL could not be fetched or decoded."""


@dataclass(frozen=True, slots=True)
class Callback:
    """An asynchronous status callback the implementation sends (recording or call progress)."""

    url: str
    method: str = "POST"
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One party ``<Dial>`` rings: ``kind`` is ``number``, ``client`` or ``sip``; ``address`` the
    number, client name or SIP URI; ``headers`` the ``X-`` headers given after ``?`` in the text."""

    kind: str
    address: str
    send_digits: str | None = None
    url: str | None = None  # screening document run on the answered leg before bridging
    method: str = "POST"
    username: str | None = None
    password: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    status_callback: Callback | None = None


@dataclass(frozen=True, slots=True)
class DialOptions:
    caller_id: str | None
    timeout: int  # seconds of ringing before giving up (no-answer)
    time_limit: int  # seconds the bridge may last
    hangup_on_star: bool = False
    record: bool = False
    recording_status_callback: Callback | None = None


@dataclass(frozen=True, slots=True)
class DialResult:
    """How a dial ended, in Twilio's words: ``status`` is completed, answered, busy, no-answer,
    failed or canceled; ``call_sid`` the answered (or last) leg; ``duration`` its bridged seconds."""

    status: str
    call_sid: str | None = None
    duration: int = 0
    recording_url: str | None = None
    recording_sid: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """``digits``: the key that stopped the recording, ``hangup`` when the caller hung up, or empty
    (silence timeout, maxLength). ``url`` is the recording's public URL (None when empty)."""

    duration: float
    digits: str = ""
    url: str | None = None
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechResult:
    """What a speech ``<Gather>`` heard: ``text`` ("" when nothing was recognised), ``confidence``
    (0..1), or ``digit`` when a key ended the listening first."""

    text: str
    confidence: float
    digit: str | None = None


class VoiceCall(Protocol):
    @property
    def answered(self) -> bool: ...

    @property
    def hung_up(self) -> asyncio.Event: ...

    async def answer(self) -> None: ...

    async def reject(self, status: int, reason: str) -> None:
        """Refuse the ringing call with a final SIP answer (486 Busy Here, 603 Decline, 500)."""

    async def hangup(self) -> None:
        """End the call: BYE once answered, a final error answer while it still rings."""

    async def say(self, text: str, voice: str, language: str) -> bytes:
        """Linear PCM of ``text``; raises ``MediaError``."""

    async def fetch_audio(self, url: str) -> bytes:
        """Linear PCM of the WAV/MP3 at ``url``; raises ``MediaError``."""

    async def play(self, pcm: bytes, *, stop_on_digit: bool = False) -> str | None:
        """Play ``pcm``; returns the digit that cut it off (only with ``stop_on_digit``)."""

    async def pause(self, seconds: float, *, stop_on_digit: bool = False) -> str | None: ...

    def clear_digits(self) -> None: ...

    async def next_digit(self, timeout: float) -> str | None:  # noqa: ASYNC109 - a protocol timer
        """The next digit pressed, or None after ``timeout`` seconds without one (or a hang-up)."""

    async def send_digits(self, digits: str) -> None:
        """DTMF to the far end; ``w`` waits half a second."""

    @property
    def speech_available(self) -> bool:
        """Whether ``listen`` can recognise speech on this server (the optional recognizer)."""

    def start_listening(self) -> None:
        """Keep what the caller says from now on (a speech ``<Gather>``: from its first prompt)."""

    def stop_listening(self) -> None:
        """Forget it (``listen`` stops too); safe to call twice."""

    async def listen(self, *, timeout: float, speech_timeout: float, max_speech_time: float,  # noqa: ASYNC109
                     hints: str | None, stop_on_digit: bool) -> SpeechResult:
        """Wait for speech and its end, then recognise it (see ``voice/session.py``); raises
        ``MediaError`` when the recognizer fails."""

    async def record(
        self, *, max_length: float, silence_timeout: float, finish_on_key: str, play_beep: bool,
        status_callback: Callback | None = None,
    ) -> RecordingResult: ...

    async def dial(self, targets: Sequence[DialTarget], options: DialOptions) -> DialResult: ...
