"""Any element at verb level that the channel cannot execute (``<Say>`` in SMS, ``<Foo>`` anywhere).

It is kept in the verb list, rather than dropped, so the interpreter can write the channel's warning
at the point where Restcomm would (14110 in SMS, 12200 in voice) and then skip it. Its children are
deliberately not searched: Restcomm's habit of running verbs found inside unknown elements
(``rcml.md`` §1.3) is a bug we do not copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


@dataclass(frozen=True, slots=True)
class Unsupported:
    name: str

    answers: ClassVar[bool] = False
    after_hangup: ClassVar[bool] = False

    async def run(self, ctx: Context) -> None:
        await ctx.channel.unsupported(ctx, self.name)
