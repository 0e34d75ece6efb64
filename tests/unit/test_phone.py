"""Phone-number helpers: E.164 normalization, national format, keypad letters, Contains, AreaCode,
and the inventory search built on them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restcomm.api.available_numbers import InventoryNumber, Search, number_type, parse_inventory, search
from restcomm.phone import (
    KEYPAD,
    contains_regex,
    has_area_code,
    iso_country,
    letters_to_digits,
    matches_contains,
    national_format,
    national_number,
    normalize,
    to_e164,
)

# -- keypad ---------------------------------------------------------------------------------

# ITU E.161, as printed on every phone keypad.
KEYPAD_ROWS = {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz"}


@pytest.mark.parametrize(("digit", "letters"), sorted(KEYPAD_ROWS.items()))
def test_keypad_matches_a_real_phone(digit: str, letters: str) -> None:
    for letter in letters:
        assert KEYPAD[letter] == digit
        assert letters_to_digits(letter.upper()) == digit


def test_keypad_covers_the_alphabet_once_and_never_maps_to_0_or_1() -> None:
    assert sorted(KEYPAD) == [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert set(KEYPAD.values()) == set("23456789")


@pytest.mark.parametrize(
    ("text", "digits"),
    [("FLOWERS", "3569377"), ("1-800-CALL-NOW", "1-800-2255-669"), ("STORM", "78676"), ("+1 510 *", "+1 510 *")],
)
def test_letters_to_digits(text: str, digits: str) -> None:
    assert letters_to_digits(text) == digits


# -- E.164 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+15105550100", "+15105550100"),
        ("15105550100", "+15105550100"),  # international without '+'
        ("5105550100", "+15105550100"),  # US national
        ("(510) 555-0100", "+15105550100"),
        ("+1 510.555.0100", "+15105550100"),
        ("  +15105550100 ", "+15105550100"),
        ("+447700900123", "+447700900123"),  # reserved for fiction: possible, not valid
        ("447911123456", "+447911123456"),
        ("+15555555555", "+15555555555"),
        ("+4930123456", "+4930123456"),
    ],
)
def test_to_e164(raw: str, e164: str) -> None:
    assert to_e164(raw) == e164


@pytest.mark.parametrize(
    "raw",
    ["", "abc", "hello", "+1234", "12", "5551234", "*", "+1234.*", "555[0-9]*", "alice", "+1510555010x", "1" * 80, "٥١٠٥٥٥٠١٠٠"],
)
def test_to_e164_refuses_what_is_not_a_phone_number(raw: str) -> None:
    assert to_e164(raw) is None


def test_normalize_keeps_what_does_not_parse() -> None:
    assert normalize("5105550100") == "+15105550100"
    assert normalize(" +1234 ") == "+1234"


@given(st.text(max_size=40))
def test_to_e164_never_raises_and_is_idempotent(text: str) -> None:
    e164 = to_e164(text)
    if e164 is not None:
        assert e164.startswith("+") and e164[1:].isdigit()
        assert to_e164(e164) == e164


def test_national_format_country_and_national_number() -> None:
    assert national_format("+15105550100") == "(510) 555-0100"
    assert national_format("+447700900123") == "07700 900123"
    assert national_format("not a number") == "not a number"
    assert iso_country("+15105550100") == "US"
    assert iso_country("+442071234567") == "GB"
    assert iso_country("+33612345678") == "FR"
    assert iso_country("+447700900123") == "GB"  # by country code when the range is reserved
    assert iso_country("5105550100") is None
    assert national_number("+15105550100") == "5105550100"


# -- Contains and AreaCode ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "pattern", "expected"),
    [
        ("+15105550100", "510", True),
        ("+15105550100", "0100", True),
        ("+15105550100", "5*5", True),  # '*' is exactly one digit
        ("+15105550100", "5**5", True),  # "5105" (digits 2-5)
        ("+15105550100", "1*1", True),  # "151"
        ("+15105550100", "9*9", False),
        ("+15105550100", "+1510", True),
        ("+15105550100", "+510", False),
        ("+15105552255", "CALL", True),  # C=2 A=2 L=5 L=5: 2255
        ("+15105552255", "call", True),
        ("+15105552255", "BALL", True),
        ("+15105552255", "DALL", False),  # D=3
        ("+18005550123", "*********0123", False),  # more digits than follow the '+'
    ],
)
def test_contains(number: str, pattern: str, expected: bool) -> None:
    assert matches_contains(number, pattern) is expected


@pytest.mark.parametrize("bad", ["51-0", "5 10", "%", "_", ".*", "[0-9]", "é"])
def test_contains_refuses_other_characters(bad: str) -> None:
    with pytest.raises(ValueError):
        contains_regex(bad)


def test_area_code_is_north_american() -> None:
    assert has_area_code("+15105550100", "510")
    assert not has_area_code("+15105550100", "105")
    assert not has_area_code("+44510555010", "510")


# -- inventory ------------------------------------------------------------------------------


def test_number_type_spellings() -> None:
    assert {number_type(x) for x in ("TollFree", "toll-free", "toll_free", "TOLLFREE")} == {"tollfree"}


def test_parse_inventory_normalizes_defaults_and_skips_bad_entries(caplog: pytest.LogCaptureFixture) -> None:
    items = parse_inventory(
        [
            {"phone_number": "5105550100", "region": "CA", "lata": 722, "postal_code": 94612},
            {"phone_number": "+18005550123", "type": "Toll-Free", "capabilities": ["voice"]},
            {"phone_number": "+447700900123", "type": "mobile", "capabilities": {"sms": True, "mms": True}},
            {"phone_number": "+12125550199", "voice_capable": False, "fax_capable": True},
            {"phone_number": "not a number"},
            {"friendly_name": "no number"},
            {"phone_number": "+15105550100"},  # listed twice
            {"phone_number": "+15105550101", "type": "premium"},
        ]
    )
    assert [n.phone_number for n in items] == ["+15105550100", "+18005550123", "+447700900123", "+12125550199"]
    local, tollfree, mobile, fax = items
    assert local.friendly_name == "(510) 555-0100" and local.iso_country == "US" and local.type == "local"
    assert local.postal_code == "94612" and local.lata == 722
    assert local.capabilities == {"voice", "sms"}
    assert tollfree.type == "tollfree" and tollfree.capabilities == {"voice"}
    assert mobile.iso_country == "GB" and mobile.capabilities == {"sms", "mms"}
    assert fax.capabilities == {"sms", "fax"}
    assert caplog.text.count("ignored") == 4


def _n(number: str, **kw: object) -> InventoryNumber:
    defaults: dict[str, object] = {"friendly_name": number, "iso_country": "US", "type": "local"}
    return InventoryNumber(phone_number=number, **{**defaults, **kw})  # type: ignore[arg-type]


def test_search_filters_excludes_taken_sorts_and_limits() -> None:
    items = [
        _n("+15105552255", region="CA", postal_code="94612", rate_center="OKLD", lata=722),
        _n("+15105550100", region="CA"),
        _n("+12125550199", region="NY", capabilities=frozenset({"voice"})),
        _n("+18005550123", type="tollfree"),
        _n("+447700900123", iso_country="GB", type="mobile"),
    ]

    def numbers(query: Search, taken: set[str] | None = None, limit: int = 50) -> list[str]:
        return [n.phone_number for n in search(items, query, taken or set(), limit)]

    assert numbers(Search(iso_country="us", type="local")) == ["+12125550199", "+15105550100", "+15105552255"]
    assert numbers(Search(iso_country="US", type="local"), taken={"+15105550100"}) == ["+12125550199", "+15105552255"]
    assert numbers(Search(iso_country="US", type="local"), limit=1) == ["+12125550199"]
    assert numbers(Search(iso_country="US", type="tollfree")) == ["+18005550123"]
    assert numbers(Search(iso_country="GB", type="mobile")) == ["+447700900123"]
    assert numbers(Search(iso_country="FR", type="local")) == []
    assert numbers(Search(iso_country="US", type="local", area_code="510")) == ["+15105550100", "+15105552255"]
    assert numbers(Search(iso_country="US", type="local", contains="CALL")) == ["+15105552255"]
    assert numbers(Search(iso_country="US", type="local", in_region="ny")) == ["+12125550199"]
    assert numbers(Search(iso_country="US", type="local", in_postal_code="94612")) == ["+15105552255"]
    assert numbers(Search(iso_country="US", type="local", in_rate_center="okld")) == ["+15105552255"]
    assert numbers(Search(iso_country="US", type="local", in_lata="722")) == ["+15105552255"]
    assert numbers(Search(iso_country="US", type="local", capabilities=(("sms", True),))) == [
        "+15105550100",
        "+15105552255",
    ]
    assert numbers(Search(iso_country="US", type="local", capabilities=(("sms", False),))) == ["+12125550199"]
