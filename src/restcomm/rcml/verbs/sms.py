"""``<Sms>``: Restcomm's reply verb (``rcml.md`` §2.4).

Only ``to``, ``from``, ``action`` and ``method`` are read by Restcomm; ``statusCallback`` is kept
here too because Twilio's deprecated ``<Sms>`` has it and the pipeline may honour it. Defaults that
depend on the inbound message (``to`` = sender, ``from`` = our number) are the interpreter's job, so
absent attributes stay ``None``. An empty body is not a parse problem: Restcomm reports 14103 when
the verb is *executed*, after earlier verbs have run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, TypedDict
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Fetch, Refused, Stop
from restcomm.rcml.verbs.common import attr, method_attr, own_text

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

SENDING = "sending"
# Twilio's 12200: something in the document is understood but cannot be honoured.
MEDIA_DROPPED = Code.SCHEMA_VALIDATION_WARNING


@dataclass(frozen=True, slots=True)
class Sms:
    name: ClassVar[str] = "Sms"

    body: str
    to: str | None = None
    from_: str | None = None
    action: str | None = None
    method: str = "POST"
    status_callback: str | None = None

    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = True

    async def run(self, ctx: Context) -> Fetch | None:
        return await send_reply(self, ctx)


class ReplyVerb(Protocol):
    """What ``<Sms>`` and ``<Message>`` have in common."""

    name: ClassVar[str]
    body: str
    to: str | None
    from_: str | None
    action: str | None
    method: str
    status_callback: str | None


async def send_reply(verb: ReplyVerb, ctx: Context, media: tuple[str, ...] = ()) -> Fetch | None:
    """Queue one reply through the channel's ``ReplySender`` (``rcml.md`` §2.4, §3.4 ``<Sms>``).

    With ``action`` the answer to it replaces the document (``SmsStatus=sending``, as Restcomm);
    ``statusCallback``, or else ``action``, receives the message's status callbacks.
    """
    if media:
        await ctx.warn(MEDIA_DROPPED, f"<Media> is not supported on SMS: {len(media)} media URL(s) dropped, "
                                      "the text is sent alone")
    if not verb.body:
        await ctx.notify(Code.INVALID_SMS_BODY, f"<{verb.name}> has no body: nothing to send")
        raise Stop
    replies = ctx.replies
    if replies is None:
        await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, f"<{verb.name}> cannot be sent from here: skipped")
        return None
    to = verb.to or replies.default_to
    sender = verb.from_ or replies.default_from
    try:
        prepared = replies.prepare(sender, to, verb.body)
    except Refused as r:
        await ctx.notify(r.code, r.message)
        raise Stop from None
    callback = await ctx.resolve(verb.status_callback or verb.action) if (verb.status_callback or verb.action) else None
    action = await ctx.resolve(verb.action) if verb.action else None
    # The one place a per-session message budget is checked, right before work is created.
    if not ctx.budget.allow("message"):
        await ctx.notify(Code.REPLY_LIMIT_EXCEEDED, f"<{verb.name}> not sent: the session's message budget is spent")
        raise Stop
    try:
        await replies.send(
            prepared, own_number=not verb.from_, status_callback=callback,
            status_callback_method=(verb.method if callback == action else "POST") if callback else None,
        )
    except Refused as r:
        # The other replies of the document still go (Restcomm sends each <Sms> on its own).
        await ctx.notify(r.code, r.message)
        return None
    if action is None:
        return None
    return Fetch(action, verb.method, ctx.params({"SmsStatus": SENDING, "MessageStatus": SENDING}))


class ReplyAttributes(TypedDict):
    to: str | None
    from_: str | None
    action: str | None
    method: str
    status_callback: str | None


def reply_attributes(element: Element, verb: str, index: int, warnings: list[RcmlWarning]) -> ReplyAttributes:
    """The attributes ``<Sms>`` and ``<Message>`` share, read the same way for both."""
    return ReplyAttributes(
        to=attr(element, "to"),
        from_=attr(element, "from"),
        action=attr(element, "action"),
        method=method_attr(
            element, verb=verb, verb_index=index, warning_code=Code.INVALID_SMS_METHOD, warnings=warnings
        ),
        status_callback=attr(element, "statusCallback"),
    )


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Sms:
    return Sms(body=own_text(element), **reply_attributes(element, Sms.name, index, warnings))
