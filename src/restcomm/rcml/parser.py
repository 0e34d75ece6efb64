"""Safe parsing of untrusted RCML/TwiML into verb objects.

An application document comes from a URL the account owner controls, so it is hostile input as far
as this process is concerned. Three rules keep it harmless:

* **No DTDs at all.** ``defusedxml`` with ``forbid_dtd=True`` refuses any ``<!DOCTYPE``, which rules
  out external entities (XXE), entity expansion bombs and external DTD fetches in one go. RCML never
  needs a DTD, so refusing one costs nothing and turns every such trick into a plain 12100.
* **A size cap** (64 KiB, Twilio's limit, 11750) checked before any parsing.
* **No recursion over the tree**: verbs are the children of ``<Response>``, and nouns (``Dial >
  Number``, ``Gather > Say``) their direct children; nothing walks deeper, so nesting depth cannot
  exhaust the stack.

What is accepted follows ``rcml.md`` §1.3 and §6: Restcomm's ampersand repair (``AT&T`` parses),
whitespace trimming, case-sensitive local names, plus what the twilio-python generator emits
(XML declaration, ``<Message><Body/><Media/></Message>``, ``statusCallback``). Unlike Restcomm, the
root must be ``<Response>`` (Twilio 12102), verbs are only the root's children (Restcomm ran verbs
found anywhere, even inside unknown elements), and ``<Message>`` is understood.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET

from restcomm.rcml.errors import Code, RcmlParseError, RcmlUrlError, RcmlWarning
from restcomm.rcml.urls import resolve_url
from restcomm.rcml.verbs import (
    SMS_VERBS,
    Email,
    Message,
    Redirect,
    Sms,
    Unsupported,
    Verb,
)
from restcomm.rcml.verbs.common import XML_WHITESPACE, VerbReader, local_name

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "Email",
    "Message",
    "ParsedRcml",
    "RcmlParseError",
    "RcmlUrlError",
    "RcmlWarning",
    "Redirect",
    "Sms",
    "Unsupported",
    "Verb",
    "VerbReader",
    "parse_rcml",
    "resolve_url",
]

MAX_DOCUMENT_BYTES = 64 * 1024

ROOT = "Response"

# The default verb table is the SMS channel's; each channel profile passes its own
# (``rcml/channels.py``). Anything not in the table becomes Unsupported, which the channel reports.
# "&" not starting an entity or character reference becomes "&amp;" (Restcomm's repair, §1.3.1).
# Unknown named entities such as "&foo;" are left alone and still fail, as in Restcomm. CDATA
# sections and comments are matched first and kept verbatim: inside them "&" is already literal, and
# Restcomm's blanket rewrite turned "<![CDATA[a && b]]>" into "a &amp;&amp; b".
_AMP_PATTERN = r"(<!\[CDATA\[.*?\]\]>|<!--.*?-->)|&(?![A-Za-z_:][A-Za-z0-9_.:-]*;|#[0-9]+;|#x[0-9A-Fa-f]+;)"
_LONE_AMP_TEXT = re.compile(_AMP_PATTERN, re.DOTALL)
_LONE_AMP_BYTES = re.compile(_AMP_PATTERN.encode("ascii"), re.DOTALL)


def _repair_text(match: re.Match[str]) -> str:
    return match.group(1) or "&amp;"


def _repair_bytes(match: re.Match[bytes]) -> bytes:
    return match.group(1) or b"&amp;"

# Byte-order marks of encodings whose bytes are not ASCII-compatible; such documents are decoded
# first so the ampersand repair works on characters, not on half of a UTF-16 code unit.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class ParsedRcml:
    """Verbs in document order, and warnings that point at them by index."""

    verbs: tuple[Verb, ...]
    warnings: tuple[RcmlWarning, ...] = ()

    def warnings_for(self, verb_index: int) -> tuple[RcmlWarning, ...]:
        return tuple(w for w in self.warnings if w.verb_index == verb_index)


def _parse_error(message: str, code: int = Code.DOCUMENT_PARSE_FAILURE) -> RcmlParseError:
    return RcmlParseError(code, message)


def _to_parser_input(document: bytes | str, charset: str | None, limit: int) -> bytes | str:
    """Apply the size cap, pick the decoding, trim, and repair ampersands.

    ``charset`` is the one from the HTTP Content-Type. When given it wins over the XML declaration
    (RFC 7303, and what Restcomm's Java client did); an unknown charset name is ignored rather than
    failing the document, since the XML's own declaration or BOM can still describe it.
    """
    if isinstance(document, str):
        if len(document) > limit or len(document.encode("utf-8", "surrogatepass")) > limit:
            raise _parse_error(f"document is larger than {limit} bytes", Code.RESPONSE_BODY_TOO_LARGE)
        text = document
    else:
        if len(document) > limit:
            raise _parse_error(f"document is larger than {limit} bytes", Code.RESPONSE_BODY_TOO_LARGE)
        encoding = _known_codec(charset)
        if encoding is None:
            encoding = next((enc for bom, enc in _WIDE_BOMS if document.startswith(bom)), None)
        if encoding is None:
            # ASCII-compatible bytes: let expat honour the XML declaration (default UTF-8).
            data = document.strip(XML_WHITESPACE.encode("ascii"))
            return _LONE_AMP_BYTES.sub(_repair_bytes, data)
        try:
            text = document.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise _parse_error(f"document cannot be decoded as {encoding}: {exc}") from None
    text = text.lstrip("\ufeff").strip(XML_WHITESPACE)
    return _LONE_AMP_TEXT.sub(_repair_text, text)


def _known_codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"')).name
    except LookupError:
        return None


def parse_rcml(
    document: bytes | str,
    *,
    charset: str | None = None,
    verbs: Mapping[str, VerbReader] | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> ParsedRcml:
    """Parse an application's answer into verbs.

    Raises ``RcmlParseError`` (and nothing else) when the document cannot be used: 11750 too large,
    12100 not well-formed or containing a DTD, 12102 root other than ``<Response>``. Problems with a
    single verb's attributes come back as ``warnings``; problems only visible when a verb runs (empty
    body, missing e-mail address, bad URL) are left to the interpreter, so that verbs before them
    still run, as in Restcomm.
    """
    data = _to_parser_input(document, charset, max_bytes)
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except Exception as exc:  # any failure inside the XML stack means "not parseable"
        # expat raises ParseError, defusedxml its own ValueErrors, codecs LookupError/UnicodeError for
        # a bogus declared encoding; the caller only needs to know the document is unusable.
        raise _parse_error(f"document parse failure: {type(exc).__name__}: {exc}") from None
    root_name = local_name(root.tag)
    if root_name != ROOT:
        raise _parse_error(f"the root element must be <{ROOT}>, not <{root_name}>", Code.ROOT_MUST_BE_RESPONSE)

    table = SMS_VERBS if verbs is None else verbs
    parsed: list[Verb] = []
    warnings: list[RcmlWarning] = []
    for index, element in enumerate(root):
        name = local_name(element.tag)
        reader = table.get(name)
        parsed.append(reader(element, index, warnings) if reader else Unsupported(name))
    return ParsedRcml(verbs=tuple(parsed), warnings=tuple(warnings))
