"""``<Sms>``: Restcomm's reply verb (``rcml.md`` §2.4).

Only ``to``, ``from``, ``action`` and ``method`` are read by Restcomm; ``statusCallback`` is kept
here too because Twilio's deprecated ``<Sms>`` has it and the pipeline may honour it. Defaults that
depend on the inbound message (``to`` = sender, ``from`` = our number) are the interpreter's job, so
absent attributes stay ``None``. An empty body is not a parse problem: Restcomm reports 14103 when
the verb is *executed*, after earlier verbs have run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypedDict
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.verbs.common import attr, method_attr, own_text


@dataclass(frozen=True, slots=True)
class Sms:
    name: ClassVar[str] = "Sms"

    body: str
    to: str | None = None
    from_: str | None = None
    action: str | None = None
    method: str = "POST"
    status_callback: str | None = None


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
