"""``<Hangup>``: end the call. Like Restcomm it answers a ringing call first (it is not in the
no-answer list of ``rcml.md`` §3.3); like Twilio, verbs after it are not run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import RcmlWarning
from restcomm.rcml.runtime import FINISH, Outcome

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


@dataclass(frozen=True, slots=True)
class Hangup:
    name: ClassVar[str] = "Hangup"
    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = False

    async def run(self, ctx: Context) -> Outcome:
        await ctx.require_call().hangup()
        return FINISH


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Hangup:
    del element, index, warnings
    return Hangup()
