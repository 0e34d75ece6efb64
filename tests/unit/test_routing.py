"""Inbound number matching, the pure parts: candidate forms, pattern detection and safety checks,
pattern order and full-match semantics."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restcomm.routing import (
    CATCH_ALL,
    MAX_MATCH_LENGTH,
    PatternError,
    candidates,
    check_pattern,
    compile_pattern,
    first_pattern_match,
    is_pattern,
    order_patterns,
)

# -- candidates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+15105550100", ["+15105550100", "15105550100"]),
        ("15105550100", ["15105550100", "+15105550100"]),
        ("5105550100", ["5105550100", "+15105550100", "+5105550100"]),
        ("+1234", ["+1234", "1234"]),  # too short for E.164: no E.164 form
        ("1234", ["1234", "+1234"]),
        ("*123#", ["*123#", "+*123#"]),  # '*' or '#': never parsed
        ("+447700900123", ["+447700900123", "447700900123"]),
        ("alice", ["alice", "+alice"]),
    ],
)
def test_candidates_in_order_without_duplicates(number: str, expected: list[str]) -> None:
    assert candidates(number) == expected


@given(st.text(min_size=1, max_size=30))
def test_candidates_start_with_the_number_and_are_unique(number: str) -> None:
    forms = candidates(number)
    assert forms[0] == number
    assert len(forms) == len(set(forms))


# -- what is a pattern ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("*", True),
        ("+1234.*", True),
        ("555[0-9]*", True),
        ("^1(555|666)\\d{4}$", True),
        ("+1234", False),
        ("+15105550100", False),
        ("1234#", False),  # '#' is a DTMF digit, not regex syntax
        ("alice", False),
        ("1+", True),  # '+' after the first character is a quantifier
    ],
)
def test_is_pattern(number: str, expected: bool) -> None:
    assert is_pattern(number) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "+1234.*",
        "555[0-9]*",
        "^\\+1(555|666)\\d{7}$",
        "[^0]\\d+",
        "1?2?3?4?",
        "\\d{10}",  # a fixed count does not backtrack
        "\\d{3,}",
        "(?:12|34).*",
        "[]0-9]*",
        "*#.*",  # leading '*' is literal
    ],
)
def test_check_pattern_accepts_ordinary_patterns(pattern: str) -> None:
    check_pattern(pattern)
    compile_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("555[0-9", "unterminated"),
        ("12(34", "regular expression"),
        ("(1+)+", "group"),
        ("(1|1)*2", "group"),
        ("(12){2}", "group"),
        ("(12)?", "group"),
        ("1*1*1*1*1*2", "at most"),
        ("\\d{1,9}\\d{1,9}\\d{1,9}\\d{1,9}\\d{1,9}", "at most"),
        ("(1)\\1", "back-reference"),
        ("(?=1)1", "(?...)"),
        ("(?P<x>1)", "(?...)"),
        ("12\\", "backslash"),
        ("1{2,x}", "repetition"),
        ("1**", "regular expression"),
    ],
)
def test_check_pattern_refuses_broken_or_dangerous_patterns(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=None) as info:
        check_pattern(pattern)
    assert why in str(info.value)


def test_accepted_patterns_stay_fast_on_the_longest_inbound_number() -> None:
    """The worst accepted shapes: many variable quantifiers over the same digits, no match."""
    subject = "1" * MAX_MATCH_LENGTH
    for pattern in ["1*1*1*1*2", "\\d*\\d*\\d*\\d*#", ".*.*.*.*#", "\\d{0,30}\\d{0,30}\\d{0,30}\\d{0,30}#",
                    "(1|11|111)(1|11|111)(1|11|111)(1|11|111)(1|11|111)(1|11|111)2"]:
        rx = compile_pattern(pattern)
        started = time.perf_counter()
        assert rx.fullmatch(subject) is None
        assert time.perf_counter() - started < 0.5, pattern


# -- order and matching ---------------------------------------------------------------------


def _row(number: str, sid: str = "") -> dict[str, str]:
    return {"phone_number": number, "sid": sid or "PN" + number}


def test_order_patterns_longest_first_catch_all_last() -> None:
    rows = [_row("*"), _row("555.*"), _row("+1234.*"), _row("5551[0-9]*"), _row("+1235.*"), _row("555.*", "PNa")]
    ordered = [(r["phone_number"], r["sid"]) for r in order_patterns(rows)]
    assert ordered == [
        ("5551[0-9]*", "PN5551[0-9]*"),
        ("+1234.*", "PN+1234.*"),
        ("+1235.*", "PN+1235.*"),
        ("555.*", "PN555.*"),
        ("555.*", "PNa"),
        ("*", "PN*"),
    ]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+12345678", "+1234.*"),
        ("12345678", "+1234.*"),  # the '+' form is a candidate too
        ("+1234", "+1234.*"),  # '.*' matches nothing
        ("5551234", "5551[0-9]*"),  # longest wins over 555.*
        ("+5559", "555.*"),  # through the form without '+'
        ("55612", None),
        ("9995551234", None),  # a full match, not a search: 555 inside does not count
        ("+123", None),
    ],
)
def test_first_pattern_match_is_a_full_match_longest_first(number: str, expected: str | None) -> None:
    ordered = order_patterns([_row("+1234.*"), _row("555.*"), _row("5551[0-9]*")])
    found = first_pattern_match(ordered, candidates(number))
    assert (found["phone_number"] if found else None) == expected


def test_catch_all_matches_when_nothing_else_does() -> None:
    ordered = order_patterns([_row(CATCH_ALL), _row("+1234.*")])
    assert first_pattern_match(ordered, candidates("+999"))["phone_number"] == CATCH_ALL  # type: ignore[index]
    assert first_pattern_match(ordered, candidates("+12349"))["phone_number"] == "+1234.*"  # type: ignore[index]


def test_a_broken_stored_pattern_never_matches() -> None:
    ordered = order_patterns([_row("(1+)+"), _row("555[")])
    assert first_pattern_match(ordered, candidates("5551")) is None
