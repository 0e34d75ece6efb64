"""``<Message>``: Twilio's reply verb, which Restcomm silently ignored (``rcml.md`` §6.2).

The body is the element's own text, or, when there are ``<Body>`` children, their text joined in
document order (Twilio prefers ``<Body>`` when both are present). ``<Media>`` URLs are collected so
the interpreter can decide what an SMS-only route does with them (warn, or append links) instead of
dropping them unseen. Attribute semantics match ``<Sms>``, including warning 14104 for a bad method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.verbs.common import attr, local_name, method_attr, own_text, strip_xml


@dataclass(frozen=True, slots=True)
class Message:
    name: ClassVar[str] = "Message"

    body: str
    media: tuple[str, ...] = ()
    to: str | None = None
    from_: str | None = None
    action: str | None = None
    method: str = "POST"
    status_callback: str | None = None


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Message:
    bodies: list[str] = []
    media: list[str] = []
    for child in element:
        name = local_name(child.tag) if isinstance(child.tag, str) else ""
        if name == "Body":
            bodies.append(_untrimmed_text(child))
        elif name == "Media":
            url = own_text(child)
            if url:
                media.append(url)
    body = strip_xml("".join(bodies)) if bodies else own_text(element)
    return Message(
        body=body,
        media=tuple(media),
        to=attr(element, "to"),
        from_=attr(element, "from"),
        action=attr(element, "action"),
        method=method_attr(
            element, verb=Message.name, verb_index=index, warning_code=Code.INVALID_SMS_METHOD, warnings=warnings
        ),
        status_callback=attr(element, "statusCallback"),
    )


def _untrimmed_text(element: Element) -> str:
    # Several <Body> children are joined before trimming, so inner spacing between them survives.
    return (element.text or "") + "".join(child.tail or "" for child in element)
