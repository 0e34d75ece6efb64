"""``<Gather>``: collect DTMF digits while (and after) nested prompts play (``rcml.md`` §3.4, §6.3).

Nested ``<Say>``, ``<Play>`` and ``<Pause>`` go through this module's noun table (with Restcomm's
Gather codes 13321/13322/13325); any other child is warning 12200 and ignored. The first digit
cuts the prompts off and counts as collected. Input ends on a ``finishOnKey`` key (not part of
``Digits``), when ``numDigits`` keys are in, or after ``timeout`` seconds without a key (counted
after the prompts, then between keys).

* With digits, ``action`` is requested with ``Digits`` and its document replaces this one.
  Without ``action`` the current document's URL is requested (Twilio and the Restcomm docs;
  Restcomm's code dropped the digits).
* Without digits the next verb runs (``actionOnEmptyResult="true"``, Twilio's, requests the action
  anyway, with ``Digits`` empty).

Defaults and checks: ``method`` POST (else 14104, sic, Restcomm's code); ``timeout`` 5 (else
13313); ``numDigits`` unlimited (else 13314); ``finishOnKey`` ``#``, up to 12 of ``0-9*#``, empty
disables it as in Twilio (else 13310 and ``#``).

Speech (``input="speech"`` or ``"dtmf speech"``, Twilio's): with the optional recognizer installed
(``media/asr.py``), what the caller says from the first prompt on is kept; after the prompts the
caller has ``timeout`` seconds to begin, and the speech ends after ``speechTimeout`` seconds of
silence (``auto``: 1 s; default: ``timeout``) or ``maxSpeechTime`` (60). ``hints`` (comma-separated
phrases) are the grammar: recognition is then one of them. ``action`` gets ``SpeechResult`` and
``Confidence`` (no ``Digits``). With ``dtmf`` too, a key ends the listening and digits are
collected as usual. Without the recognizer, speech input is warning 12200 and digits are collected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Protocol
from xml.etree.ElementTree import Element

from restcomm.rcml.call import MediaError
from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Fetch
from restcomm.rcml.verbs import pause, play, say
from restcomm.rcml.verbs.common import (
    Attributes,
    VerbReader,
    attr,
    method_attr,
    read_nouns,
)

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


class Prompt(Protocol):
    async def prompt(self, ctx: Context, *, stop_on_digit: bool) -> str | None: ...


#: What may be nested in <Gather>; everything else is ignored with a warning.
GATHER_NOUNS: Mapping[str, VerbReader] = MappingProxyType({
    "Say": say.in_gather,
    "Play": play.in_gather,
    "Pause": pause.from_element,
})


@dataclass(frozen=True, slots=True)
class Gather:
    name: ClassVar[str] = "Gather"
    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = False

    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    finish_on_key: str = "#"
    num_digits: int | None = None
    action_on_empty_result: bool = False
    prompts: tuple[Prompt, ...] = ()
    dtmf: bool = True
    speech: bool = False
    hints: str | None = None
    speech_timeout: float | None = None  # None: ``timeout``
    max_speech_time: int = 60

    async def run(self, ctx: Context) -> Fetch | None:
        call = ctx.require_call()
        call.clear_digits()  # keys pressed before the Gather began are not input
        if self.speech and not call.speech_available:
            await ctx.notify(Code.SCHEMA_VALIDATION_WARNING, "<Gather input=speech>: speech recognition is not "
                             "installed on this server (restcomm[asr]), collecting digits only")
            return await dataclasses.replace(self, speech=False, dtmf=True).run(ctx)
        if self.speech:
            call.start_listening()
        first: str | None = None
        try:
            for prompt in self.prompts:
                first = await prompt.prompt(ctx, stop_on_digit=self.dtmf)
                if first is not None or call.hung_up.is_set():
                    break
            if self.speech and first is None and not call.hung_up.is_set():
                try:
                    heard = await call.listen(
                        timeout=self.timeout, max_speech_time=self.max_speech_time, hints=self.hints,
                        speech_timeout=self.timeout if self.speech_timeout is None else self.speech_timeout,
                        stop_on_digit=self.dtmf)
                except MediaError as exc:
                    await ctx.notify(Code.MEDIA_FAILURE, f"<Gather input=speech> could not recognise: {exc}")
                    return None
                if heard.digit is None:
                    if call.hung_up.is_set() or not (heard.text or self.action_on_empty_result):
                        return None
                    url = await ctx.resolve(self.action, "<Gather action>") if self.action else ctx.document_url
                    return Fetch(url, self.method, ctx.params({"SpeechResult": heard.text,
                                                               "Confidence": f"{heard.confidence:.6f}"}))
                first = heard.digit
        finally:
            if self.speech:
                call.stop_listening()
        digits = ""
        finished = False
        if first is not None:
            if first in self.finish_on_key:
                finished = True
            else:
                digits = first
        while not finished and not call.hung_up.is_set() and (self.num_digits is None or len(digits) < self.num_digits):
            key = await call.next_digit(self.timeout)
            if key is None:
                break
            if key in self.finish_on_key:
                break
            digits += key
        if call.hung_up.is_set() or not (digits or self.action_on_empty_result):
            return None  # no input: the next verb runs
        url = await ctx.resolve(self.action, "<Gather action>") if self.action else ctx.document_url
        return Fetch(url, self.method, ctx.params({"Digits": digits}))


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Gather:
    at = Attributes(element, "Gather", index, warnings)
    timeout = at.int("timeout", 5, Code.INVALID_GATHER_TIMEOUT)
    num_digits = at.int("numDigits", None, Code.INVALID_GATHER_NUM_DIGITS, minimum=1)
    given = attr(element, "input")
    modes = set((given or "dtmf").lower().split())
    if not modes <= {"dtmf", "speech"}:
        warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING, f"<Gather input={given!r}>: collecting digits",
                                    index, "Gather", "input", given))
        modes = {"dtmf"}
    speech = "speech" in modes
    speech_timeout: float | None = None
    raw_timeout = attr(element, "speechTimeout")
    if raw_timeout is not None:
        if raw_timeout.strip().lower() == "auto":
            speech_timeout = 1.0
        else:
            try:
                speech_timeout = float(raw_timeout)
                if not 0 < speech_timeout <= 60:
                    raise ValueError(raw_timeout)
            except ValueError:
                warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING,
                                            f"<Gather speechTimeout={raw_timeout!r}> is not a number of seconds "
                                            "or auto; using timeout", index, "Gather", "speechTimeout", raw_timeout))
                speech_timeout = None
    max_speech_time = at.int("maxSpeechTime", 60, Code.SCHEMA_VALIDATION_WARNING, minimum=1)
    prompts: list[Prompt] = read_nouns(element, GATHER_NOUNS, index, warnings)
    return Gather(
        action=attr(element, "action"),
        method=method_attr(element, verb="Gather", verb_index=index, warning_code=Code.INVALID_SMS_METHOD,
                           warnings=warnings),
        timeout=5 if timeout is None else timeout,
        finish_on_key=at.keys("finishOnKey", "#", Code.INVALID_GATHER_FINISH_ON_KEY),
        num_digits=num_digits,
        action_on_empty_result=at.bool("actionOnEmptyResult", False, Code.SCHEMA_VALIDATION_WARNING),
        prompts=tuple(prompts),
        dtmf="dtmf" in modes,
        speech=speech,
        hints=attr(element, "hints"),
        speech_timeout=speech_timeout,
        max_speech_time=60 if max_speech_time is None else min(max_speech_time, 60),
    )
