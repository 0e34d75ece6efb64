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
disables it as in Twilio (else 13310 and ``#``). ``input`` other than ``dtmf`` is warning 12200:
there is no speech recognition yet, digits are still collected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Protocol
from xml.etree.ElementTree import Element

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

    async def run(self, ctx: Context) -> Fetch | None:
        call = ctx.require_call()
        call.clear_digits()  # keys pressed before the Gather began are not input
        first: str | None = None
        for prompt in self.prompts:
            first = await prompt.prompt(ctx, stop_on_digit=True)
            if first is not None or call.hung_up.is_set():
                break
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
    modes = set((attr(element, "input") or "dtmf").lower().split())
    if modes - {"dtmf"}:
        warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING,
                                    f"<Gather input={element.get('input')!r}>: speech recognition is not available, "
                                    "collecting digits only", index, "Gather", "input", element.get("input")))
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
    )
