"""``<Redirect>``: continue with the document at another URL (``rcml.md`` §3.4, identical in TwiML).

The URL is kept as written; resolving it against the current document URL (``resolve_url``) happens
when the verb runs, because a bad URL is an 11100 error at that point, not a parse failure. An empty
URL is returned as ``""`` and the interpreter skips the verb, as Restcomm does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Fetch
from restcomm.rcml.verbs.common import method_attr, own_text

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


@dataclass(frozen=True, slots=True)
class Redirect:
    name: ClassVar[str] = "Redirect"

    url: str
    method: str = "POST"

    # A Redirect needs no media, so it does not answer a ringing call: <Redirect> then <Reject>
    # still rejects (Restcomm answered on any verb but Reject and Pause).
    answers: ClassVar[bool] = False
    after_hangup: ClassVar[bool] = False

    async def run(self, ctx: Context) -> Fetch | None:
        if not self.url:
            return None  # Restcomm skips an empty Redirect
        url = await ctx.resolve(self.url, "<Redirect>")
        return Fetch(url, self.method, ctx.params())


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Redirect:
    return Redirect(
        url=own_text(element),
        method=method_attr(
            element,
            verb=Redirect.name,
            verb_index=index,
            warning_code=Code.INVALID_REDIRECT_METHOD,
            warnings=warnings,
        ),
    )
