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


def rfc2822(dt: datetime | None) -> str | None:
    """Restcomm's date_created/date_updated format: 'Wed, 7 Jun 2017 10:03:38 +0000'."""
    if dt is None:
        return None
    return f"{dt:%a}, {dt.day} {dt:%b %Y %H:%M:%S} +0000"


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
