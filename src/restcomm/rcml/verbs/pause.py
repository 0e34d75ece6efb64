"""``<Pause>``: silence for ``length`` seconds (default 1; a bad value is 13910 and 1).

It does not answer a ringing call: as the first verb it delays the answer (Restcomm and Twilio),
and ``<Pause/><Reject/>`` still rejects. Inside ``<Gather>`` a digit cuts it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.verbs.common import int_attr

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


@dataclass(frozen=True, slots=True)
class Pause:
    name: ClassVar[str] = "Pause"
    answers: ClassVar[bool] = False
    after_hangup: ClassVar[bool] = False

    length: int = 1

    async def run(self, ctx: Context) -> None:
        await self.prompt(ctx, stop_on_digit=False)

    async def prompt(self, ctx: Context, *, stop_on_digit: bool) -> str | None:
        if self.length <= 0:
            return None
        return await ctx.require_call().pause(self.length, stop_on_digit=stop_on_digit)


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Pause:
    length = int_attr(element, "length", 1, verb="Pause", verb_index=index, warning_code=Code.INVALID_PAUSE_LENGTH,
                      warnings=warnings)
    return Pause(length=1 if length is None else length)
