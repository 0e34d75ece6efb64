"""Phone numbers: E.164 normalization (libphonenumber semantics), national formatting, keypad
letters and the ``Contains`` search pattern of AvailablePhoneNumbers.

Everything here is pure and table-driven; the API modules and the inbound router build on it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "US"

# The ITU E.161 keypad (every phone, and Twilio's vanity-number search). Restcomm's converter maps
# a-c=1, d-f=2 ... which matches no real keypad; see docs/compatibility.md.
KEYPAD: dict[str, str] = {
    letter: digit
    for digit, letters in (
        ("2", "abc"),
        ("3", "def"),
        ("4", "ghi"),
        ("5", "jkl"),
        ("6", "mno"),
        ("7", "pqrs"),
        ("8", "tuv"),
        ("9", "wxyz"),
    )
    for letter in letters
}


def letters_to_digits(text: str) -> str:
    """Replace keypad letters (either case) by their digits; every other character is kept."""
    return "".join(KEYPAD.get(ch.lower(), ch) if ch.isascii() else ch for ch in text)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _is_possible(p: phonenumbers.PhoneNumber) -> bool:
    # Not IS_POSSIBLE_LOCAL_ONLY: a 7-digit US number has no E.164 form.
    return phonenumbers.is_possible_number_with_reason(p) == phonenumbers.ValidationResult.IS_POSSIBLE


_FORMATTING = re.compile(r"[\s().\-/]")


@lru_cache(maxsize=4096)
def to_e164(number: str, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of ``number``, or None when it is not a phone number.

    Like Restcomm, a number without ``+`` is first read as international ("15105550100"), then as
    a national number of ``region`` ("5105550100"). A number libphonenumber knows to be valid wins;
    failing that a merely *possible* one is accepted, so that reserved ranges used for testing
    and fiction (+1 555 0100, +44 7700 900123) still normalize.
    """
    text = number.strip()
    if not text or len(text) > 64:
        return None
    digits = _FORMATTING.sub("", text)
    bare = digits.removeprefix("+")
    if not bare.isdigit() or not bare.isascii():
        return None  # letters, '*', '#', SIP user names: not a phone number
    if digits.startswith("+"):
        attempts = [(digits, None)]
    else:
        attempts = [("+" + digits, None), (digits, region)]
    parsed = [p for p in (_parse(t, r) for t, r in attempts) if p is not None]
    for check in (phonenumbers.is_valid_number, _is_possible):
        for p in parsed:
            if check(p):
                return phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalize(number: str, region: str = DEFAULT_REGION) -> str:
    """E.164 when the number parses, otherwise the input without surrounding blanks (Restcomm keeps
    unparsable numbers as given)."""
    return to_e164(number, region) or number.strip()


def national_format(number: str) -> str:
    """The national presentation, e.g. "(510) 555-0100" or "07700 900123"; the input if it does not parse."""
    p = _parse(number, DEFAULT_REGION)
    if p is None:
        return number
    return phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.NATIONAL)


def iso_country(number: str) -> str | None:
    """The ISO 3166 country of an E.164 number (None when unknown, e.g. a reserved range)."""
    p = _parse(number, None) if number.startswith("+") else None
    if p is None:
        return None
    region = phonenumbers.region_code_for_number(p)
    if region is None or region == "ZZ":
        region = phonenumbers.region_code_for_country_code(p.country_code)
    return None if region in (None, "ZZ", "001") else region


def national_number(number: str) -> str | None:
    """The national significant number of an E.164 number ("5105550100" for "+15105550100")."""
    p = _parse(number, None) if number.startswith("+") else None
    return None if p is None else phonenumbers.national_significant_number(p)


def has_area_code(e164: str, area_code: str) -> bool:
    """AreaCode applies to North American numbers only, as at Twilio: +1, then the 3 digits."""
    return e164.startswith("+1" + area_code)


CONTAINS_CHARS = re.compile(r"^[0-9A-Za-z*+]+$")


@lru_cache(maxsize=1024)
def contains_regex(pattern: str) -> re.Pattern[str]:
    """The regex for an AvailablePhoneNumbers ``Contains`` value: letters are keypad digits, ``*``
    is any one digit, digits and ``+`` are literal; it matches anywhere in the E.164 number.

    Raises ValueError for any other character.
    """
    if not CONTAINS_CHARS.match(pattern):
        raise ValueError("Contains may only hold digits, letters, '+' and '*'")
    parts = []
    for ch in letters_to_digits(pattern):
        parts.append(r"\d" if ch == "*" else re.escape(ch))
    return re.compile("".join(parts))


def matches_contains(e164: str, pattern: str) -> bool:
    return contains_regex(pattern).search(e164) is not None
