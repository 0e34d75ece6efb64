"""Restcomm's password strength score: the verified table, the regex quirks, and robustness."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restcomm.api.passwords import _regex_matches, _utf16_units, is_strong, password_score

# Scores verified by running Restcomm's JavaScript with node (restcomm-api.md §3.3).
VERIFIED = [
    ("RestComm", 36),
    ("restcomm", 8),
    ("password", 8),
    ("1234", 4),
    ("abc12345", 52),
    ("Restcomm2", 54),
    ("Passw0rd", 54),
    ("RestComm12", 70),
    ("Paras@123", 71),
    ("1234asdf!@#", 75),
    ("RestCom1233@", 97),
    ("Tr0ub4dor&3", 100),
    ("Abcd(1234)x", None),
]


@pytest.mark.parametrize(("password", "score"), VERIFIED)
def test_verified_scores(password: str, score: int | None) -> None:
    assert password_score(password) == score
    assert is_strong(password) is (score is not None and score >= 50)


def test_empty_password_scores_zero() -> None:
    assert password_score("") == 0
    assert not is_strong("")


@pytest.mark.parametrize("char", list("()[*+?\\"))
def test_characters_that_break_the_regex_make_any_password_weak(char: str) -> None:
    password = f"Tr0ub4dor&3{char}"
    assert password_score(password) is None
    assert not is_strong(password)


@pytest.mark.parametrize("char", list("]{}|.^$/"))
def test_regex_characters_javascript_accepts_still_score(char: str) -> None:
    assert isinstance(password_score(f"Tr0ub4dor&3{char}"), int)


def test_dot_and_pipe_count_as_heavily_repeated() -> None:
    # "." matches every character and "|" matches n+1 empty strings, so either one drags the score
    # down through the repeat penalty even though it appears only once.
    plain = password_score("RestComm12:")
    assert plain is not None
    dotted = password_score("RestComm12.")
    piped = password_score("RestComm12|")
    assert dotted is not None and piped is not None
    assert dotted == plain - 10  # 11 matches over 11 characters
    assert piped == plain - 11  # 12 matches over 11 characters, rounded


def test_lengths_are_utf16_code_units() -> None:
    assert len(_utf16_units("a😀b")) == 4
    assert _utf16_units("plain") == "plain"
    # The emoji is two code units: n is 4, not 3, in every length-based term.
    assert password_score("Ab1😀") != password_score("Ab1é")


REGEX_PROBES = ["a.b|c^d$e\n.x\u2028y😀😀", "...", "||a", "aAaA", "]{}/]", "\r\r."]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("probe", REGEX_PROBES)
def test_repeat_counts_match_javascript_regexes(probe: str) -> None:
    script = """
const s = JSON.parse(process.argv[1]);
const out = {};
for (const c of new Set(s.split(""))) {
  try { out[c.charCodeAt(0)] = (s.match(new RegExp(c, "g")) || []).length; }
  catch (e) { out[c.charCodeAt(0)] = null; }
}
console.log(JSON.stringify(out));
"""
    units = _utf16_units(probe)
    done = subprocess.run(
        ["node", "-e", script, json.dumps(units)], capture_output=True, text=True, check=True, timeout=30
    )
    expected = {int(k): v for k, v in json.loads(done.stdout).items()}
    assert {ord(c): _regex_matches(c, units) for c in set(units)} == expected


@given(st.text())
def test_any_text_gets_a_bounded_score_or_none(password: str) -> None:
    score = password_score(password)
    assert score is None or 0 <= score <= 100
    assert is_strong(password) is (score is not None and score >= 50)
