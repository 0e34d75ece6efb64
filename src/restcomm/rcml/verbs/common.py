"""Helpers every verb module uses to read an element the same way.

The rules come from Restcomm's parser (``rcml.md`` §1.3) adjusted for TwiML (§6.4): names are
case-sensitive local names, attribute values and text are trimmed of XML whitespace, unknown
attributes are ignored, and a bad ``method`` falls back to POST with a warning instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import RcmlWarning

#: Reads one element into a verb (or a noun): ``(element, verb_index, warnings) -> Verb``. Problems
#: with an attribute are appended to ``warnings`` (written when the verb is reached), never raised.
VerbReader = Callable[[Element, int, list[RcmlWarning]], Any]

# XML whitespace only. ``str.strip()`` would also eat NBSP and other Unicode spaces that a sender
# may have put in a message on purpose; Restcomm (Java ``trim``) and Twilio leave those alone.
XML_WHITESPACE = " \t\r\n"

HTTP_METHODS = ("GET", "POST")


def strip_xml(value: str) -> str:
    return value.strip(XML_WHITESPACE)


def local_name(tag: str) -> str:
    """Drop a ``{namespace}`` prefix: Restcomm matches local names, so a TwiML namespace is harmless."""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def attr(element: Element, name: str) -> str | None:
    """Trimmed attribute value; missing and empty both mean "not given" (the verb's default applies)."""
    value = element.get(name)
    if value is None:
        return None
    value = strip_xml(value)
    return value or None


def raw_text(element: Element) -> str:
    """The element's own character data: its text plus the tails of its children, untrimmed.

    Restcomm keeps only the last text chunk, so ``Hi <b/> there`` became ``there``; joining the chunks
    is what an author means. Children's own text is not included, and nothing here recurses, so a
    deeply nested hostile document cannot exhaust the stack.
    """
    return (element.text or "") + "".join(child.tail or "" for child in element)


def own_text(element: Element) -> str:
    """``raw_text`` trimmed of XML whitespace: the value of a verb's body or URL."""
    return strip_xml(raw_text(element))


def method_attr(
    element: Element,
    *,
    verb: str,
    verb_index: int,
    warning_code: int,
    warnings: list[RcmlWarning],
    name: str = "method",
) -> str:
    """GET or POST (any case); missing/empty gives POST; anything else gives POST plus a warning."""
    value = attr(element, name)
    if value is None:
        return "POST"
    # ASCII only: "poſt".upper() is "POST" in Unicode, and a method is an HTTP token, not prose.
    upper = value.upper() if value.isascii() else value
    if upper in HTTP_METHODS:
        return upper
    warnings.append(
        RcmlWarning(
            code=warning_code,
            message=f"Invalid {name} {value!r} on <{verb}>, using POST",
            verb_index=verb_index,
            verb=verb,
            attribute=name,
            value=value,
        )
    )
    return "POST"
