"""Number matching: which IncomingPhoneNumber receives a message (or call) sent to a number.

Two questions, two functions, and the difference between them is a security boundary:

* ``find_hosted_number`` -- *is this destination one of our hosted numbers?* Used for internal
  delivery (an outbound message or call from one account to a number another account hosts here):
  only the exact number, compared in its canonical form (E.164 when it is a phone number, see
  ``canonical_number``), and never a pattern. A tenant's ``*`` or ``+44.*`` must not capture
  traffic that other tenants address to the outside world.
* ``find_incoming_number`` -- *which number receives traffic arriving from outside* (a carrier's
  MO, a call from a trunk or a phone): exact match first, then the organization's patterns.

The inbound order is Restcomm's (NumberSelectorServiceImpl), with its regex bugs fixed:

1. exact match of the number as received, its E.164 form, and the number with its leading ``+``
   removed (or one added);
2. otherwise, if the number looks like ``[\\d*#+]+``, the organization's pattern numbers, the
   longest pattern first, each tried as a *full* match against those same candidates;
3. finally the catch-all number ``*``.

Patterns are pure-SIP numbers holding regex syntax, e.g. ``+1234.*`` or ``555[0-9]*``. A leading
``+`` or ``*`` is literal (Restcomm meant to escape it but wrote ``/+``, which never matches).
Because any tenant can store a pattern that every unmatched inbound message is tried against,
patterns are restricted to a shape that cannot backtrack catastrophically (see ``check_pattern``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, false, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.phone import normalize, to_e164
from restcomm.store.schema import incoming_phone_numbers as numbers

CATCH_ALL = "*"
NUMBER_LIKE = re.compile(r"[\d*#+]+")
# Inbound numbers longer than this are never run through patterns.
MAX_MATCH_LENGTH = 32
# Quantifiers whose repeat count varies (*, +, ?, {m,n}); more than this could backtrack badly.
MAX_VARIABLE_QUANTIFIERS = 4
_REGEX_SYNTAX = set("*?+.^$|\\[](){}")


class PatternError(ValueError):
    """A pattern number that does not compile or is too complex to run safely."""


def is_pattern(phone_number: str) -> bool:
    """True for a number that holds regex syntax (a leading ``+`` does not count) or is ``*``."""
    return any(ch in _REGEX_SYNTAX for ch in phone_number.removeprefix("+"))


def _translate(pattern: str) -> str:
    if pattern[:1] in ("+", "*"):
        return "\\" + pattern
    return pattern


def check_pattern(pattern: str) -> None:
    """Raise PatternError unless ``pattern`` is a regex that is safe to run on every inbound number.

    Allowed: literals, ``.``, classes ``[...]``, escapes (``\\d``, ``\\+``, ...), anchors, groups
    with alternation, and at most MAX_VARIABLE_QUANTIFIERS quantifiers, none of them applied to
    a group. Refused: quantified groups (``(12)*``), back-references and ``(?...)`` constructs.
    """
    if pattern == CATCH_ALL:
        return
    text = _translate(pattern)
    variable = 0
    i, n = 0, len(text)
    previous = ""  # "atom", "group", "quantifier" or "" (start / after | or ( )
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                raise PatternError("the pattern ends with a lone backslash")
            if text[i + 1].isdigit():
                raise PatternError("back-references are not supported in number patterns")
            i, previous = i + 2, "atom"
            continue
        if ch == "[":
            j = i + 1
            if j < n and text[j] == "^":
                j += 1
            if j < n and text[j] == "]":
                j += 1
            while j < n and text[j] != "]":
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise PatternError("unterminated character class")
            i, previous = j + 1, "atom"
            continue
        if ch == "(":
            if text[i + 1 : i + 2] == "?" and text[i + 1 : i + 3] != "?:":
                raise PatternError("(?...) constructs are not supported in number patterns")
            i, previous = i + (3 if text[i + 1 : i + 3] == "?:" else 1), ""
            continue
        if ch == ")":
            i, previous = i + 1, "group"
            continue
        if ch == "|":
            i, previous = i + 1, ""
            continue
        if ch in "*+?{":
            if previous == "quantifier" and ch in "?+":
                i += 1  # lazy or possessive modifier of the previous quantifier
                continue
            if previous == "group":
                raise PatternError("a quantifier on a group can backtrack catastrophically; repeat single characters")
            if ch == "{":
                close = text.find("}", i)
                body = text[i + 1 : close] if close > 0 else ""
                m = re.fullmatch(r"(\d+)(?:(,)(\d*))?", body)
                if m is None:
                    raise PatternError("malformed {m,n} repetition")
                low, comma, high = m.group(1), m.group(2), m.group(3)
                if comma and high != low:
                    variable += 1
                i = close + 1
            else:
                variable += 1
                i += 1
            previous = "quantifier"
            continue
        i, previous = i + 1, "atom"
    if variable > MAX_VARIABLE_QUANTIFIERS:
        raise PatternError(f"at most {MAX_VARIABLE_QUANTIFIERS} variable repetitions (*, +, ?, {{m,n}}) are allowed")
    try:
        re.compile(text)
    except re.error as exc:
        raise PatternError(f"not a valid regular expression: {exc}") from None


@lru_cache(maxsize=2048)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled form of a stored pattern number (cached: the same few run on every message)."""
    check_pattern(pattern)
    return re.compile(_translate(pattern))


def canonical_number(number: str) -> str:
    """The form a (non-pattern) number is stored and compared in: E.164 when it parses as a phone
    number ("+1 555-333-1234", "15553331234" -> "+15553331234"), otherwise as given without
    surrounding blanks (SIP user names, short codes). Patterns are never passed through here."""
    return normalize(number)


def candidates(number: str) -> list[str]:
    """The forms an inbound number is looked up under, in order, without duplicates: as received,
    E.164 (unless it holds ``*`` or ``#``), and with the leading ``+`` removed or added."""
    out = [number]
    if "*" not in number and "#" not in number:
        e164 = to_e164(number)
        if e164 is not None:
            out.append(e164)
    out.append(number[1:] if number.startswith("+") else "+" + number)
    seen: set[str] = set()
    return [c for c in out if c and not (c in seen or seen.add(c))]


def order_patterns(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pattern numbers in the order they are tried: longest pattern first (the most specific),
    ties by pattern text then SID so the choice is deterministic; the catch-all ``*`` last."""
    patterns = [r for r in rows if r["phone_number"] != CATCH_ALL]
    patterns.sort(key=lambda r: (-len(r["phone_number"]), r["phone_number"], r["sid"]))
    return patterns + [r for r in rows if r["phone_number"] == CATCH_ALL]


def first_pattern_match(
    ordered: Sequence[Mapping[str, Any]], forms: Sequence[str]
) -> Mapping[str, Any] | None:
    """The first pattern row (in the given order) that fully matches any of the forms."""
    for row in ordered:
        if row["phone_number"] == CATCH_ALL:
            return row
        try:
            rx = compile_pattern(row["phone_number"])
        except PatternError:
            continue  # stored before validation existed, or by hand: never matches
        if any(rx.fullmatch(f) for f in forms):
            return row
    return None


# Built once: this runs for every message (constructing the statements cost more than running them).
_EXACT = select(numbers).where(
    numbers.c.organization_sid == bindparam("org"), numbers.c.phone_number.in_(bindparam("forms", expanding=True))
)
_HOSTED = select(numbers).where(
    numbers.c.organization_sid == bindparam("org"),
    numbers.c.phone_number == bindparam("number"),
    numbers.c.is_pattern == false(),
)
_PATTERNS = select(numbers).where(numbers.c.organization_sid == bindparam("org"), numbers.c.is_pattern == true())


async def find_incoming_number(conn: AsyncConnection, organization_sid: str, number: str) -> Mapping[str, Any] | None:
    """The incoming_phone_numbers row that receives traffic for ``number`` in the organization, or None.

    At most two indexed queries: the exact forms through the (organization_sid, phone_number)
    unique index, then, only if none matched, the organization's pattern numbers.
    """
    number = number.strip()
    if not number:
        return None
    forms = candidates(number)
    rows = (await conn.execute(_EXACT, {"org": organization_sid, "forms": forms})).mappings().all()
    if rows:
        by_number = {r["phone_number"]: r for r in rows}
        for form in forms:
            if form in by_number:
                return by_number[form]
    if len(number) > MAX_MATCH_LENGTH or not NUMBER_LIKE.fullmatch(number):
        return None
    patterns = (await conn.execute(_PATTERNS, {"org": organization_sid})).mappings().all()
    return first_pattern_match(order_patterns(patterns), forms)


async def find_hosted_number(conn: AsyncConnection, organization_sid: str, number: str) -> Mapping[str, Any] | None:
    """The hosted number that ``number`` designates exactly, for internal delivery, or None.

    One indexed query on the canonical form; pattern numbers (``*``, ``+1555.*``) never match,
    whoever owns them: patterns are for traffic arriving from carriers, trunks and phones. Voice
    uses this too, to decide whether a dialled number is local or leaves through a trunk.
    """
    number = number.strip()
    if not number:
        return None
    canonical = canonical_number(number)
    if is_pattern(canonical):  # not a phone number and holds regex syntax: designates nothing exactly
        return None
    return (await conn.execute(_HOSTED, {"org": organization_sid, "number": canonical})).mappings().first()
