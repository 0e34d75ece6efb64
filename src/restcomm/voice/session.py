"""``CallSession``: rcml's ``VoiceCall`` Protocol implemented over one ``Leg``.

The interpreter's verbs own the logic; this class only turns each primitive into signalling and
media on the leg. What it needs from outside comes in as small collaborators, so it never touches
the database or HTTP itself:

* ``MediaSources`` (``say``: text to speech, ``fetch``: an URL's audio; both cached by the engine),
* ``RecordingSink`` (opens a recording's row and file, closes it, posts its status callback),
* ``on_answer`` (the engine marks the call ``in-progress`` and reports ``answered``),
* ``dialer`` (``<Dial>``: implemented in ``voice/dial.py``; absent means not supported here).

Digits (RFC 4733 and SIP INFO) arrive in ``leg.media.digits``; ``hung_up`` is set as soon as the
leg ends for any reason, and every waiting primitive returns promptly then.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from restcomm.media import asr
from restcomm.media.asr import Recognition
from restcomm.rcml.call import Callback, DialOptions, DialResult, DialTarget, RecordingResult, SpeechResult
from restcomm.sip.ua import CallFailed
from restcomm.voice.leg import Leg

BEEP_HZ = 1000
BEEP_SECONDS = 0.25


def tone(hz: float = BEEP_HZ, seconds: float = BEEP_SECONDS, amplitude: int = 8000) -> bytes:
    """Linear PCM of a sine tone (the ``playBeep`` beep)."""
    n = int(8000 * seconds)
    return b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * hz * i / 8000))) for i in range(n))


BEEP = tone()


class MediaSources(Protocol):
    async def say(self, text: str, voice: str, language: str) -> bytes:
        """Linear PCM; raises MediaError."""
        ...

    async def fetch(self, url: str) -> bytes:
        """Linear PCM of the WAV/MP3 at url; raises MediaError."""
        ...

    async def recognize(self, pcm: bytes, hints: str | None) -> Recognition:
        """What was said in ``pcm``; raises MediaError."""
        ...


@dataclass(frozen=True, slots=True)
class OpenRecording:
    sid: str
    path: Path
    url: str


class RecordingSink(Protocol):
    async def open(self, call_sid: str) -> OpenRecording: ...

    async def close(self, recording: OpenRecording, duration: float, callback: Callback | None) -> None: ...


Dialer = Callable[["CallSession", Sequence[DialTarget], DialOptions], Awaitable[DialResult]]
"""``<Dial>``: ``await dialer(session, targets, options)``. The session is answered (the verb answers
first) unless it hung up meanwhile; the dialer rings the targets as legs of their own (the engine's
``new_outgoing_leg``), bridges ``session.leg.media`` with the first to answer, cancels the rest and
returns when either side ends or ``time_limit`` passes. ``VoiceEngine.dialer`` holds it."""


class CallSession:
    """One leg seen as a ``VoiceCall`` (see the module docstring)."""

    def __init__(self, leg: Leg, *, media: MediaSources, recordings: RecordingSink,
                 on_answer: Callable[[], Awaitable[None]] | None = None, dialer: Dialer | None = None) -> None:
        self.leg = leg
        self.sources = media
        self.recordings = recordings
        self.on_answer = on_answer
        self.dialer = dialer
        self._hung_up = asyncio.Event()
        leg.ended.add_done_callback(lambda _f: self._hung_up.set())

    # ---- state -------------------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        return self.leg.answered

    @property
    def hung_up(self) -> asyncio.Event:
        return self._hung_up

    # ---- signalling --------------------------------------------------------------------------

    async def answer(self) -> None:
        if self.leg.answered or self._hung_up.is_set():
            return
        try:
            await self.leg.answer()
        except CallFailed:
            self._hung_up.set()  # cancelled before the answer, or no ACK: the call is over
            return
        if self.on_answer is not None:
            await self.on_answer()

    async def reject(self, status: int, reason: str) -> None:
        await self.leg.reject(status, reason)

    async def hangup(self) -> None:
        await self.leg.hangup()

    # ---- media out ---------------------------------------------------------------------------

    async def say(self, text: str, voice: str, language: str) -> bytes:
        return await self.sources.say(text, voice, language)

    async def fetch_audio(self, url: str) -> bytes:
        return await self.sources.fetch(url)

    async def play(self, pcm: bytes, *, stop_on_digit: bool = False) -> str | None:
        media = self.leg.media
        if not stop_on_digit:
            await media.play(pcm)
            return None
        if not media.digits.empty():
            return media.digits.get_nowait()
        cancel = asyncio.Event()
        getter = asyncio.ensure_future(media.digits.get())
        getter.add_done_callback(lambda _f: cancel.set())
        try:
            await media.play(pcm, cancel=cancel)
        finally:
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
        return getter.result() if getter.done() and not getter.cancelled() else None

    async def pause(self, seconds: float, *, stop_on_digit: bool = False) -> str | None:
        if stop_on_digit:
            return await self.next_digit(seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hung_up.wait(), seconds)
        return None

    def clear_digits(self) -> None:
        q = self.leg.media.digits
        while not q.empty():
            q.get_nowait()

    async def next_digit(self, timeout: float) -> str | None:  # noqa: ASYNC109 - a protocol timer
        q = self.leg.media.digits
        if not q.empty():
            return q.get_nowait()
        if self._hung_up.is_set():
            return None
        getter = asyncio.ensure_future(q.get())
        ended = asyncio.ensure_future(self._hung_up.wait())
        try:
            await asyncio.wait({getter, ended}, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
        return getter.result() if getter.done() and not getter.cancelled() else None

    async def send_digits(self, digits: str) -> None:
        await self.leg.media.send_digits(digits)

    # ---- speech ------------------------------------------------------------------------------

    @property
    def speech_available(self) -> bool:
        return asr.available()

    def start_listening(self) -> None:
        self._listen_began = asyncio.get_running_loop().time()
        self.leg.media.start_listening()

    def stop_listening(self) -> None:
        self.leg.media.stop_listening()

    async def listen(self, *, timeout: float, speech_timeout: float, max_speech_time: float,  # noqa: ASYNC109
                     hints: str | None, stop_on_digit: bool) -> SpeechResult:
        """After ``start_listening``: wait up to ``timeout`` seconds for speech to begin, then until
        ``speech_timeout`` seconds of silence, ``max_speech_time`` or the hang-up (a digit ends it
        too with ``stop_on_digit``); recognise what was heard."""
        media = self.leg.media
        loop = asyncio.get_running_loop()
        began = loop.time()  # the wait for speech to begin counts from here (after the prompts)
        heard_from = min(began, getattr(self, "_listen_began", began))  # speech counts from the first prompt
        digit: str | None = None
        try:
            while not self._hung_up.is_set():
                now = loop.time()
                if stop_on_digit and not media.digits.empty():
                    digit = media.digits.get_nowait()
                    break
                spoke = media.last_voice_activity > heard_from
                if not spoke and now - began >= timeout:
                    break  # nobody spoke
                if spoke and (now - media.last_voice_activity >= speech_timeout or now - began >= max_speech_time):
                    break
                await self._quiet(0.05)
        finally:
            heard = media.stop_listening()
        if digit is not None or self._hung_up.is_set() or media.last_voice_activity <= heard_from:
            return SpeechResult("", 0.0, digit)
        result = await self.sources.recognize(heard, hints)
        return SpeechResult(result.text, result.confidence, None)

    async def _quiet(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hung_up.wait(), seconds)

    # ---- recording ---------------------------------------------------------------------------

    async def record(
        self, *, max_length: float, silence_timeout: float, finish_on_key: str, play_beep: bool,
        status_callback: Callback | None = None,
    ) -> RecordingResult:
        """Record until a finish key, ``silence_timeout`` seconds of silence, ``max_length`` or the
        hang-up (whichever first). The file is flushed as it is written."""
        media = self.leg.media
        self.clear_digits()  # keys pressed before <Record> began; one pressed during the beep counts
        if play_beep and not self._hung_up.is_set():
            await self._unless_hung_up(media.play(BEEP))
        if self._hung_up.is_set():
            return RecordingResult(0.0, "hangup")
        rec = await self.recordings.open(self.leg.call_sid)
        media.start_recording(rec.path)
        digits = ""
        stop = asyncio.Event()
        waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(self._hung_up.wait())]
        key_task = asyncio.ensure_future(self._finish_key(finish_on_key)) if finish_on_key else None
        if key_task is not None:
            waiters.append(key_task)
        if silence_timeout and silence_timeout > 0:
            waiters.append(asyncio.ensure_future(media.wait_silence(silence_timeout, stop)))
        try:
            await asyncio.wait(waiters, timeout=max_length, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
            duration = await media.stop_recording()
        if key_task is not None and key_task.done() and not key_task.cancelled():
            digits = key_task.result() or ""
        if self._hung_up.is_set() and not digits:
            digits = "hangup"
        await self.recordings.close(rec, duration, status_callback)
        if duration <= 0:
            return RecordingResult(0.0, digits)
        return RecordingResult(duration, digits, rec.url, rec.sid)

    async def _finish_key(self, keys: str) -> str:
        q = self.leg.media.digits
        while True:
            d = await q.get()
            if d in keys:
                return d

    async def _unless_hung_up(self, work: Awaitable[object]) -> None:
        task = asyncio.ensure_future(work)
        ended = asyncio.ensure_future(self._hung_up.wait())
        try:
            await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ---- dial --------------------------------------------------------------------------------

    async def dial(self, targets: Sequence[DialTarget], options: DialOptions) -> DialResult:
        """Ring ``targets``; the dialer (voice/dial.py) bridges the first to answer."""
        if self.dialer is None:
            raise NotImplementedError("<Dial> is not available on this node")
        return await self.dialer(self, targets, options)

