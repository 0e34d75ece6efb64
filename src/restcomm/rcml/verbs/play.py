"""``<Play>``: play an audio file, or send DTMF with ``digits`` (``rcml.md`` §3.4, §6.3).

The URL (the element's text) is resolved against the document; a bad one is 11100 (13325 inside
``<Gather>``) and the session stops. The voice layer fetches it (WAV or MP3, cached, through the
destination guard); a failure is warning 13233 and the call ends, as in Restcomm. ``loop``: 1 by
default, 0 until hang-up, a bad value is 13410. ``digits`` (Twilio; Restcomm ignored it) sends
DTMF (``0-9*#``, ``w`` = half a second), then the URL, if any, plays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.call import MediaError, VoiceCall
from restcomm.rcml.errors import Code, RcmlUrlError, RcmlWarning
from restcomm.rcml.runtime import Stop
from restcomm.rcml.urls import resolve_url
from restcomm.rcml.verbs.common import attr, int_attr, own_text

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

_DIGITS = re.compile(r"[0-9*#wW]+")


async def play_looped(call: VoiceCall, pcm: bytes, loop: int, *, stop_on_digit: bool) -> str | None:
    """Play ``pcm`` ``loop`` times (0: until the call ends); a digit may cut it off (Gather)."""
    if not pcm:
        return None
    played = 0
    while (loop == 0 or played < loop) and not call.hung_up.is_set():
        digit = await call.play(pcm, stop_on_digit=stop_on_digit)
        if digit is not None:
            return digit
        played += 1
    return None


@dataclass(frozen=True, slots=True)
class Play:
    name: ClassVar[str] = "Play"
    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = False

    url: str
    loop: int = 1
    digits: str | None = None
    url_code: int = Code.INVALID_URL  # 13325 when nested in Gather

    async def run(self, ctx: Context) -> None:
        if self.digits:
            await ctx.require_call().send_digits(self.digits)
        await self.prompt(ctx, stop_on_digit=False)

    async def prompt(self, ctx: Context, *, stop_on_digit: bool) -> str | None:
        if not self.url:
            return None
        call = ctx.require_call()
        try:
            url = resolve_url(ctx.document_url, self.url)
        except RcmlUrlError as exc:
            await ctx.notify(self.url_code, f"<Play>: {exc.message}")
            raise Stop from None
        try:
            pcm = await call.fetch_audio(url)
        except MediaError as exc:
            await ctx.warn(Code.PLAY_DOWNLOAD_FAILURE, f"<Play> {url}: {exc}")
            raise Stop from None
        return await play_looped(call, pcm, self.loop, stop_on_digit=stop_on_digit)


def _read(element: Element, index: int, warnings: list[RcmlWarning], url_code: int) -> Play:
    loop = int_attr(element, "loop", 1, verb="Play", verb_index=index, warning_code=Code.INVALID_PLAY_LOOP,
                    warnings=warnings)
    digits = attr(element, "digits")
    if digits is not None and not _DIGITS.fullmatch(digits):
        warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING, f"Invalid digits {digits!r} on <Play>: not sent",
                                    index, "Play", "digits", digits))
        digits = None
    return Play(url=own_text(element), loop=1 if loop is None else loop, digits=digits, url_code=url_code)


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Play:
    return _read(element, index, warnings, Code.INVALID_URL)


def in_gather(element: Element, index: int, warnings: list[RcmlWarning]) -> Play:
    return _read(element, index, warnings, Code.INVALID_GATHER_PLAY_URL)
