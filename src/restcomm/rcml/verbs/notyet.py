"""Voice verbs understood but not implemented yet (``<Enqueue>``, ``<Leave>``; ``<Conference>``
and ``<Queue>`` inside ``<Dial>``): warning 12200 naming the verb, and the next verb runs. They
are kept apart from unknown elements so the notification says "not supported yet", not "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.verbs.common import local_name

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


@dataclass(frozen=True, slots=True)
class NotYet:
    name: str
    answers: ClassVar[bool] = False
    after_hangup: ClassVar[bool] = False

    async def run(self, ctx: Context) -> None:
        await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, f"<{self.name}> is not supported yet: skipped")


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> NotYet:
    del index, warnings
    return NotYet(local_name(element.tag))
