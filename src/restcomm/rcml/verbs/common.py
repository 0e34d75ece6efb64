"""Helpers every verb module uses to read an element the same way.

The rules come from Restcomm's parser (``rcml.md`` §1.3) adjusted for TwiML (§6.4): names are
case-sensitive local names, attribute values and text are trimmed of XML whitespace, unknown
attributes are ignored, and a bad ``method`` falls back to POST with a warning instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from xml.etree.ElementTree import Element

from restcomm.rcml.errors import Code, RcmlWarning

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


def _warn(warnings: list[RcmlWarning], code: int, message: str, index: int, verb: str, name: str, value: str) -> None:
    warnings.append(RcmlWarning(code=code, message=message, verb_index=index, verb=verb, attribute=name, value=value))


def int_attr(
    element: Element, name: str, default: int | None, *, verb: str, verb_index: int, warning_code: int,
    warnings: list[RcmlWarning], minimum: int = 0,
) -> int | None:
    """A whole number of at least ``minimum``; missing gives ``default``, anything else gives
    ``default`` plus a warning (Restcomm's 13xxx "invalid attribute" codes)."""
    value = attr(element, name)
    if value is None:
        return default
    if value.isascii() and value.lstrip("+").isdigit() and int(value) >= minimum:
        return int(value)
    shown = "no limit" if default is None else str(default)
    _warn(warnings, warning_code, f"Invalid {name} {value!r} on <{verb}>, using {shown}", verb_index, verb, name,
          value)
    return default


def bool_attr(
    element: Element, name: str, default: bool, *, verb: str, verb_index: int, warning_code: int,
    warnings: list[RcmlWarning],
) -> bool:
    """``true``/``false`` in any case (what the twilio generator writes); anything else warns."""
    value = attr(element, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    _warn(warnings, warning_code, f"Invalid {name} {value!r} on <{verb}>, using {str(default).lower()}",
          verb_index, verb, name, value)
    return default


KEYS = frozenset("0123456789*#")


def keys_attr(
    element: Element, name: str, default: str, *, verb: str, verb_index: int, warning_code: int,
    warnings: list[RcmlWarning],
) -> str:
    """A set of DTMF keys such as ``finishOnKey``: up to 12 of ``0-9*#`` (Restcomm), any of which
    finishes. An empty value disables the key, as in Twilio (Restcomm turned it into ``#``); ``-1``
    disables it too (Restcomm's Record). Anything else is a warning and ``#``."""
    raw = element.get(name)
    if raw is None:
        return default
    value = strip_xml(raw)
    if value in ("", "-1"):
        return ""
    if len(value) <= 12 and set(value) <= KEYS:
        return value
    _warn(warnings, warning_code, f"Invalid {name} {value!r} on <{verb}>, using '#'", verb_index, verb, name, value)
    return "#"


def all_text(element: Element) -> str:
    """All character data inside ``element``, children included, in document order, trimmed.

    ``<Say>`` may hold SSML children (``<break/>``, ``<emphasis>``...); what an author means is all
    of their text. Walked with an explicit stack, so hostile nesting cannot exhaust the stack.
    """
    parts: list[str] = []
    stack: list[tuple[Element, bool]] = [(element, False)]
    while stack:
        node, done = stack.pop()
        if done:
            if node is not element and node.tail:
                parts.append(node.tail)
            continue
        if node.text:
            parts.append(node.text)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node)))
    return strip_xml("".join(parts))


def read_nouns(element: Element, table: Mapping[str, VerbReader], index: int, warnings: list[RcmlWarning]) -> list[Any]:
    """A verb's children read through its noun table (``Dial`` > ``Number``, ``Gather`` > ``Say``),
    in document order; any other child is warning 12200 and ignored. Only direct children are
    read, so nesting depth costs nothing."""
    parent = local_name(element.tag)
    nouns: list[Any] = []
    for child in element:
        name = local_name(child.tag) if isinstance(child.tag, str) else ""
        reader = table.get(name)
        if reader is None:
            warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING, f"<{name}> inside <{parent}> is ignored", index,
                                        parent))
            continue
        nouns.append(reader(child, index, warnings))
    return nouns


class Attributes:
    """Reads one element's attributes with the verb's name and index bound, so a verb's parser is
    one line per attribute (see ``int_attr``, ``bool_attr``, ``keys_attr`` for the rules)."""

    def __init__(self, element: Element, verb: str, index: int, warnings: list[RcmlWarning]) -> None:
        self.element = element
        self.verb = verb
        self.index = index
        self.warnings = warnings

    def int(self, name: str, default: int | None, code: int, *, minimum: int = 0) -> int | None:
        return int_attr(self.element, name, default, verb=self.verb, verb_index=self.index, warning_code=code,
                        warnings=self.warnings, minimum=minimum)

    def bool(self, name: str, default: bool, code: int) -> bool:
        return bool_attr(self.element, name, default, verb=self.verb, verb_index=self.index, warning_code=code,
                         warnings=self.warnings)

    def keys(self, name: str, default: str, code: int) -> str:
        return keys_attr(self.element, name, default, verb=self.verb, verb_index=self.index, warning_code=code,
                         warnings=self.warnings)
