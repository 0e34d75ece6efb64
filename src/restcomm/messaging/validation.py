"""Checks every outbound message passes before it is accepted, whoever submits it.

The API turns a ``Rejected`` into a 400 with the code; the interpreter turns it into a notification.
Codes are Twilio's (Restcomm answered with bare text and no code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restcomm.encoding import segment

MAX_BODY_CHARS = 1600

# A phone number or short code: digits with an optional leading +, formatting characters allowed.
_PHONE = re.compile(r"^\+?[0-9][0-9 ().\-]{1,30}$")
# An alphanumeric sender ID (GSM networks): 1-11 letters, digits or spaces, at least one letter.
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


class Rejected(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Outbound:
    """A message that passed the checks that need no database: cleaned fields and its encoding."""

    from_number: str
    to_number: str
    body: str
    encoding: str
    num_segments: int


def clean_number(value: str) -> str:
    return value.strip()


def is_phone_number(value: str) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    return bool(_PHONE.match(value)) and 3 <= digits <= 15


def is_alphanumeric_sender(value: str) -> bool:
    return bool(_ALPHA_SENDER.match(value)) and not is_phone_number(value)


def check_static(from_number: str, to_number: str, body: str, encoding: str | None = None) -> Outbound:
    """Format checks: To is a phone number (21211), body length (21602/21617), From's shape (21212)."""
    frm = clean_number(from_number)
    to = clean_number(to_number)
    if not frm:
        raise Rejected(21603, "A 'From' phone number is required.")
    if not to:
        raise Rejected(21604, "A 'To' phone number is required.")
    if not body:
        raise Rejected(21602, "Message body is required.")
    if not is_phone_number(to):
        raise Rejected(21211, f"The 'To' number {to} is not a valid phone number.")
    if len(body) > MAX_BODY_CHARS:
        raise Rejected(21617, f"The concatenated message body exceeds the {MAX_BODY_CHARS} character limit.")
    if not is_phone_number(frm) and not is_alphanumeric_sender(frm):
        raise Rejected(21212, f"The 'From' number {frm} is not a valid phone number or alphanumeric sender ID.")
    seg = segment(body, "UCS-2" if encoding == "UCS-2" else None)
    return Outbound(frm, to, body, seg.encoding, seg.num_segments)
