"""SIDs, clocks and the date formats of the Restcomm wire format."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

API_VERSION = "2012-04-24"

# Injected in tests: the clock and the SID generator.
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Naive UTC 'now', the form timestamps are stored in."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822(dt: datetime | None) -> str | None:
    """Restcomm's date_created/date_updated format: 'Wed, 7 Jun 2017 10:03:38 +0000'.

    Built by hand rather than with strftime: it is on every response and strftime is locale-bound
    and several times slower."""
    if dt is None:
        return None
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day} {_MONTHS[dt.month]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} +0000"
    )


def iso8601(dt: datetime | None) -> str | None:
    """Restcomm's date_sent/message_date format: '2013-11-01T09:41:14.488Z'."""
    if dt is None:
        return None
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


def parse_date(text: str) -> datetime:
    """Query filters take yyyy-MM-dd (Restcomm) or a full ISO-8601 timestamp."""
    text = text.strip()
    if len(text) == 10:
        return datetime.strptime(text, "%Y-%m-%d")
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt
