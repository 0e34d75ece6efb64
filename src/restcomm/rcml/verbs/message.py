"""``<Message>``: Twilio's reply verb, which Restcomm silently ignored (``rcml.md`` §6.2).

The body is the element's own text, or, when there are ``<Body>`` children, their text joined in
document order (Twilio prefers ``<Body>`` when both are present). ``<Media>`` URLs are collected so
the interpreter can decide what an SMS-only route does with them (warn, or append links) instead of
dropping them unseen. Attribute semantics match ``<Sms>``, including warning 14104 for a bad method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import RcmlWarning
from restcomm.rcml.runtime import Fetch
from restcomm.rcml.verbs.common import local_name, own_text, raw_text, strip_xml
from restcomm.rcml.verbs.sms import reply_attributes, send_reply

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context


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

    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = True

    async def run(self, ctx: Context) -> Fetch | None:
        return await send_reply(self, ctx, self.media)


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Message:
    bodies: list[str] = []
    media: list[str] = []
    for child in element:
        name = local_name(child.tag) if isinstance(child.tag, str) else ""
        if name == "Body":
            # Several <Body> children are joined before trimming, so spacing between them survives.
            bodies.append(raw_text(child))
        elif name == "Media":
            url = own_text(child)
            if url:
                media.append(url)
    body = strip_xml("".join(bodies)) if bodies else own_text(element)
    return Message(body=body, media=tuple(media), **reply_attributes(element, Message.name, index, warnings))

