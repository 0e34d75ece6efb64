"""``<Say>``: text to speech (``rcml.md`` §3.4, §6.3).

``voice``: Restcomm's ``man``/``woman`` and Twilio's ``alice``, ``Polly.*`` and ``Google.*`` are
passed to the TTS (the voice layer maps them to what it has); anything else is warning 13511 (13321
inside ``<Gather>``) and ``man``. ``language`` defaults to ``en`` and is lower-cased (``en-US`` ->
``en-us``); the TTS maps it. ``loop`` defaults to 1, 0 repeats until the caller hangs up, a bad
value is 13510 (13322 in Gather). The text is all the text inside the element, SSML children
included (Restcomm kept only the last chunk). Empty text: the verb does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.call import MediaError
from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Stop
from restcomm.rcml.verbs.common import all_text, attr, int_attr
from restcomm.rcml.verbs.play import play_looped

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

VOICES = frozenset({"man", "woman", "alice"})
VOICE_PREFIXES = ("Polly.", "Google.")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Say:
    name: ClassVar[str] = "Say"
    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = False

    text: str
    voice: str = "man"
    language: str = DEFAULT_LANGUAGE
    loop: int = 1

    async def run(self, ctx: Context) -> None:
        await self.prompt(ctx, stop_on_digit=False)

    async def prompt(self, ctx: Context, *, stop_on_digit: bool) -> str | None:
        """Speak; with ``stop_on_digit`` (inside Gather) returns the digit that cut it off."""
        if not self.text:
            return None
        call = ctx.require_call()
        try:
            pcm = await call.say(self.text, self.voice, self.language)
        except MediaError as exc:
            await ctx.notify(Code.MEDIA_FAILURE, f"<Say> could not be synthesized: {exc}")
            raise Stop from None
        return await play_looped(call, pcm, self.loop, stop_on_digit=stop_on_digit)


def _read(element: Element, index: int, warnings: list[RcmlWarning], voice_code: int, loop_code: int) -> Say:
    voice = attr(element, "voice")
    if voice is not None and voice not in VOICES and not voice.startswith(VOICE_PREFIXES):
        warnings.append(RcmlWarning(voice_code, f"Invalid voice {voice!r} on <Say>, using man", index, "Say",
                                    "voice", voice))
        voice = None
    loop = int_attr(element, "loop", 1, verb="Say", verb_index=index, warning_code=loop_code, warnings=warnings)
    language = attr(element, "language")
    return Say(
        text=all_text(element), voice=voice or "man", language=(language or DEFAULT_LANGUAGE).lower(),
        loop=1 if loop is None else loop,
    )


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Say:
    return _read(element, index, warnings, Code.INVALID_SAY_VOICE, Code.INVALID_SAY_LOOP)


def in_gather(element: Element, index: int, warnings: list[RcmlWarning]) -> Say:
    """``<Say>`` nested in ``<Gather>``: the same verb, with Restcomm's Gather warning codes."""
    return _read(element, index, warnings, Code.INVALID_GATHER_SAY_VOICE, Code.INVALID_GATHER_SAY_LOOP)
