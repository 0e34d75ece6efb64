"""Password strength, scored exactly as Restcomm scores it (``restcomm-api.md`` §3.3).

Restcomm evaluates a JavaScript scoring function (a "password meter") with Nashorn and calls a
password strong when the score is at least 50. Accounts and clients created against Restcomm must be
accepted or refused identically here, or scripts and SDK tests written for Restcomm break, so this is
a port of the *behaviour*, quirks included:

* lengths and positions are counted in UTF-16 code units, as JavaScript strings are;
* ``[a-z]``, ``[A-Z]`` and ``\\d`` are ASCII-only, as in JavaScript regexes;
* the repeated-character count builds a regex from each character, so ``.`` and ``|`` count far more
  than themselves, and a password containing one of ``( ) [ * + ? \\`` makes that regex invalid:
  Restcomm then fails the evaluation and treats the password as weak. ``password_score`` reports
  that case as ``None``.
"""

from __future__ import annotations

import math

STRONG_SCORE = 50

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
# The JavaScript class [$-/:-?{-~!^_`\[\]]: three ASCII ranges plus six single characters.
# Note what is *not* a symbol here: # @ " \ and every non-ASCII character.
_SYMBOLS = frozenset(
    [chr(c) for c in range(0x24, 0x30)]
    + [chr(c) for c in range(0x3A, 0x40)]
    + [chr(c) for c in range(0x7B, 0x7F)]
    + list("!^_`[]")
)

_LETTER_RUN = "abcdefghijklmnopqrstuvwxyz"
_NUMBER_RUN = "01234567890"
_SYMBOL_RUN = "\\!@#$%&/()=?¿"  # 13 characters, backslash included: 11 triples

# Characters that are not a valid regular expression on their own: evaluation fails (weak password).
_INVALID_REGEX = frozenset("()[*+?\\")
# What "." does not match in a JavaScript regex.
_LINE_TERMINATORS = frozenset("\n\r\u2028\u2029")


def _utf16_units(text: str) -> str:
    """``text`` with astral characters split into surrogate pairs, so len() and slicing match JS."""
    if text.isascii() or all(ord(c) < 0x10000 for c in text):
        return text
    raw = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(int.from_bytes(raw[i : i + 2], "little")) for i in range(0, len(raw), 2))


def _count(units: str, alphabet: frozenset[str]) -> int:
    return sum(1 for u in units if u in alphabet)


def _consecutive(units: str, alphabet: frozenset[str]) -> int:
    return sum(1 for a, b in zip(units, units[1:], strict=False) if a in alphabet and b in alphabet)


def _sequences(run: str, lowered: str) -> int:
    """How many triples of ``run`` occur in the password forwards or backwards (each counted once)."""
    found = 0
    for i in range(len(run) - 2):
        triple = run[i : i + 3]
        if triple in lowered or triple[::-1] in lowered:
            found += 1
    return found


def _regex_matches(char: str, lowered: str) -> int | None:
    """Matches of ``new RegExp(char, 'g')`` in ``lowered``; None when the regex is invalid."""
    if char in _INVALID_REGEX:
        return None
    if char == ".":
        return sum(1 for u in lowered if u not in _LINE_TERMINATORS)
    if char == "|":
        return len(lowered) + 1  # an empty alternative matches at every position, end included
    if char in "^$":
        return 1
    return lowered.count(char)


def password_score(password: str) -> int | None:
    """Restcomm's 0–100 strength score, or None where Restcomm's evaluation fails (always weak)."""
    if not password:
        return 0
    p = _utf16_units(password)
    lp = _utf16_units(password.lower())
    n = len(p)
    middle = p[1:-1]

    lower = _count(p, _LOWER)
    upper = _count(p, _UPPER)
    nums = _count(p, _DIGITS)
    syms = _count(p, _SYMBOLS)
    mid_nums = _count(middle, _DIGITS)
    mid_syms = _count(middle, _SYMBOLS)

    requirements = sum((lower > 0, upper > 0, nums > 0, syms > 0, n >= 8))
    if requirements < 3:
        requirements = 0

    consecutive = _consecutive(p, _LOWER) + _consecutive(p, _UPPER) + _consecutive(p, _DIGITS)
    sequences = _sequences(_LETTER_RUN, lp) + _sequences(_NUMBER_RUN, lp) + _sequences(_SYMBOL_RUN, lp)

    repeated = 0
    seen: set[str] = set()
    for char in lp:
        if char in seen:
            continue
        seen.add(char)
        matches = _regex_matches(char, lp)
        if matches is None:
            return None
        if matches > 1:
            repeated += matches

    score: float = 4 * n
    if upper:
        score += 2 * (n - upper)
    if lower:
        score += 2 * (n - lower)
    if upper or lower:
        score += 4 * nums
    score += 6 * syms + 2 * (mid_syms + mid_nums) + 2 * requirements
    score -= 2 * consecutive + 3 * sequences
    if all(u in _DIGITS for u in p):
        score -= n
    if all(u in _LOWER or u in _UPPER for u in p):
        score -= n
    if repeated:
        score -= repeated / n * 10
    # JavaScript Math.round: halves go up (towards +infinity), unlike Python's round().
    return max(0, min(100, math.floor(score + 0.5)))


def is_strong(password: str) -> bool:
    """True when Restcomm would accept ``password`` for an account or client (score >= 50)."""
    score = password_score(password)
    return score is not None and score >= STRONG_SCORE
