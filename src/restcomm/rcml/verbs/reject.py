"""``<Reject>``: refuse a ringing call without answering it (``rcml.md`` §3.4).

``reason="busy"`` answers 486 Busy Here; ``rejected`` (the default) and any other value answer
603 Decline. Once the call is answered a rejection is no longer possible: it is warning 12200 and
the call is hung up (Restcomm only honoured Reject as the first verb).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import FINISH, Outcome
from restcomm.rcml.verbs.common import attr

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

BUSY = (486, "Busy Here")
DECLINE = (603, "Decline")


@dataclass(frozen=True, slots=True)
class Reject:
    name: ClassVar[str] = "Reject"
    answers: ClassVar[bool] = False
    after_hangup: ClassVar[bool] = False

    reason: str = "rejected"

    @property
    def sip_status(self) -> tuple[int, str]:
        return BUSY if self.reason == "busy" else DECLINE

    async def run(self, ctx: Context) -> Outcome:
        call = ctx.require_call()
        if call.answered:
            await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, "<Reject> after the call was answered: hanging up")
            await call.hangup()
        else:
            await call.reject(*self.sip_status)
        return FINISH


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Reject:
    del index, warnings
    return Reject(reason=(attr(element, "reason") or "rejected").lower())
