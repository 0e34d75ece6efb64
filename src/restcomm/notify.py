"""Writing Notifications: the errors and warnings the platform records for an account.

Whatever goes wrong while running an account's application (an SMS webhook that answers 500, an
RCML document that does not parse, a message the carrier refuses) is recorded as a Notification
(``NO…``) that the account can read at ``/Accounts/{AccountSid}/Notifications``. The platform calls
``write_notification`` inside its own transaction, so the notification commits (or not) together
with the state change that caused it.

Webhook answers can be large and arbitrary; only an excerpt is kept, cut at a UTF-8 character
boundary, so one misbehaving application cannot fill the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.codes import more_info_path
from restcomm.store.schema import notifications
from restcomm.util import API_VERSION, new_sid, utcnow

# Longest excerpt kept of a webhook's response body, and of the other free-form fields.
MAX_BODY_BYTES = 4096
MAX_TEXT_BYTES = 4096
TRUNCATION_MARK = "…"

ERROR = 0
WARNING = 1


def excerpt(text: str | bytes | None, limit: int = MAX_BODY_BYTES) -> str | None:
    """At most ``limit`` UTF-8 bytes of ``text`` (bytes are decoded leniently), never a split character."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    mark = TRUNCATION_MARK.encode("utf-8")
    return data[: limit - len(mark)].decode("utf-8", errors="ignore") + TRUNCATION_MARK


def _variables(value: str | Mapping[str, str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return urlencode(list(value.items()))


def _headers(value: str | Mapping[str, str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return "\n".join(f"{k}: {v}" for k, v in value.items())


async def write_notification(
    conn: AsyncConnection,
    *,
    account_sid: str,
    error_code: int,
    log: int,
    message_text: str,
    request_url: str | None = None,
    request_method: str | None = None,
    request_variables: str | Mapping[str, str] | None = None,
    response_headers: str | Mapping[str, str] | None = None,
    response_body: str | bytes | None = None,
    call_sid: str | None = None,
    message_sid: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> str:
    """Record one notification for ``account_sid`` on ``conn`` and return its SID.

    ``log`` is 0 for an error and 1 for a warning (``restcomm.rcml.errors.LogLevel`` fits).
    ``request_variables`` may be a mapping (written form-encoded) and ``response_headers`` a
    mapping (written one ``Name: value`` per line). The caller owns the transaction: the row is
    committed with whatever else the caller commits on ``conn``.
    """
    if int(log) not in (ERROR, WARNING):
        raise ValueError(f"log must be 0 (error) or 1 (warning), not {log!r}")
    code = int(error_code)
    now = (clock or utcnow)()
    sid = new_sid("NO")
    await conn.execute(
        insert(notifications).values(
            sid=sid,
            account_sid=account_sid,
            call_sid=call_sid,
            message_sid=message_sid,
            api_version=API_VERSION,
            log=int(log),
            error_code=code,
            more_info=more_info_path(code),
            message_text=excerpt(message_text, MAX_TEXT_BYTES) or "",
            message_date=now,
            request_url=excerpt(request_url, MAX_TEXT_BYTES),
            request_method=request_method.upper()[:8] if request_method else None,
            request_variables=excerpt(_variables(request_variables), MAX_TEXT_BYTES),
            response_headers=excerpt(_headers(response_headers), MAX_TEXT_BYTES),
            response_body=excerpt(response_body, MAX_BODY_BYTES),
            date_created=now,
            date_updated=now,
        )
    )
    return sid
