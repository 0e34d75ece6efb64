"""``<Email>``: Restcomm's e-mail verb (``rcml.md`` §2.5); not part of TwiML.

Attribute names are lowercase and case-sensitive (``bcc``, ``subject``), whatever the Restcomm docs
say. ``to`` and ``from`` are required, but a missing one is not a parse problem: Restcomm logs it when
the verb runs and the SMS interpreter moves on, so they stay ``None`` here and ``is_sendable`` tells
the interpreter which case it is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Refused, Stop
from restcomm.rcml.verbs.common import attr, own_text, strip_xml

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

DEFAULT_SUBJECT = "Restcomm Email Service"


@dataclass(frozen=True, slots=True)
class Email:
    name: ClassVar[str] = "Email"

    to: str | None
    from_: str | None
    body: str
    subject: str = DEFAULT_SUBJECT
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()

    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = True

    @property
    def is_sendable(self) -> bool:
        return bool(self.to and self.from_)

    async def run(self, ctx: Context) -> None:
        """Queue the e-mail; every problem is a warning and the document goes on (Restcomm's SMS
        behaviour; its voice interpreter stalled instead, a bug)."""
        if not self.is_sendable:
            await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, "<Email> needs both 'to' and 'from': not sent")
            return
        if ctx.email is None:
            await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, "<Email> is not available")
            return
        # The one place a per-session e-mail budget is checked, right before work is created.
        if not ctx.budget.allow("email"):
            await ctx.notify(Code.REPLY_LIMIT_EXCEEDED, "<Email> not sent: the session's e-mail budget is spent")
            raise Stop
        try:
            await ctx.email.queue(from_addr=self.from_ or "", to=self.to or "", subject=self.subject,
                                  body=self.body, cc=list(self.cc), bcc=list(self.bcc))
        except Refused as exc:
            await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, f"<Email> not sent: {exc.message}")


def _address_list(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part for part in (strip_xml(p) for p in value.split(",")) if part)


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Email:
    del index, warnings  # Email has no attribute that Restcomm validates at parse time.
    return Email(
        to=attr(element, "to"),
        from_=attr(element, "from"),
        body=own_text(element),
        subject=attr(element, "subject") or DEFAULT_SUBJECT,
        cc=_address_list(attr(element, "cc")),
        bcc=_address_list(attr(element, "bcc")),
    )
