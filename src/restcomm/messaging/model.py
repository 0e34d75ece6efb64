"""Message statuses, directions and the parameter sets the pipeline sends to applications.

The parameter sets are the union of Restcomm's and Twilio's (``rcml.md`` §2.2, §2.6, §6.2): a
Restcomm app finds ``SmsSid``/``SmsStatus``, a Twilio app finds ``MessageSid``/``MessageStatus``,
``NumSegments`` and the rest, in the same request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from restcomm.codes import ERRORS, MESSAGE_CODES
from restcomm.util import API_VERSION, new_sid

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
RECEIVED = "received"

FINAL = frozenset({DELIVERED, UNDELIVERED, FAILED, RECEIVED})
STATUSES = (QUEUED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, RECEIVED)

OUTBOUND_API = "outbound-api"
OUTBOUND_REPLY = "outbound-reply"
OUTBOUND_CALL = "outbound-call"  # <Sms> in a voice application (Restcomm's direction)
INBOUND = "inbound"
DIRECTIONS = (INBOUND, OUTBOUND_API, OUTBOUND_REPLY, OUTBOUND_CALL)

# app_state of inbound messages: pending -> running (committed, with the node's lease, before the
# session's first request) -> done | failed; none when the number has no SMS application; loop when
# the hop limit stopped it; interrupted when the node died while running it (never re-run: the
# application may have seen it).
APP_PENDING = "pending"
APP_RUNNING = "running"
APP_DONE = "done"
APP_FAILED = "failed"
APP_NONE = "none"
APP_LOOP = "loop"
APP_INTERRUPTED = "interrupted"

ROUTE_INTERNAL = "internal"
ROUTE_CARRIER = "carrier"

# Delivery errors stored on the message (error_code/error_message).
ERR_UNKNOWN = 30008
ERR_QUEUE_OVERFLOW = 30001  # waited longer than [sms] queue_timeout to be sent
ERR_OPTED_OUT = 21610
ERR_NO_ROUTE = 21612

# The error_code/error_message a message can end with: the carriers' 30xxx codes, plus the ones the
# pipeline itself sets (titles from the platform's one table of codes).
MESSAGE_ERRORS: dict[int, str] = {code: ERRORS[code].title for code in sorted(MESSAGE_CODES)}


def new_message(
    *,
    account_sid: str,
    from_number: str,
    to_number: str,
    body: str,
    direction: str,
    status: str,
    num_segments: int,
    encoding: str,
    now: Any,
    status_callback: str | None = None,
    status_callback_method: str | None = None,
    hop: int = 0,
    parent_sid: str | None = None,
    app_state: str | None = None,
    sid: str | None = None,
) -> dict[str, Any]:
    """A complete ``messages`` row (every column given, so rows can share one executemany)."""
    return {
        "sid": sid or new_sid("SM"),
        "account_sid": account_sid,
        "from_number": from_number,
        "to_number": to_number,
        "body": body,
        "status": status,
        "direction": direction,
        "num_segments": num_segments,
        "num_media": 0,
        "encoding": encoding,
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "api_version": API_VERSION,
        "status_callback": status_callback,
        "status_callback_method": status_callback_method,
        "route": None,
        "carrier": None,
        "attempts": 0,
        "next_attempt_at": now if status == QUEUED else None,
        "lease_owner": None,
        "lease_until": None,
        "app_state": app_state,
        "hop": hop,
        "parent_sid": parent_sid,
        "date_created": now,
        "date_updated": now,
        "date_sent": now if direction == INBOUND else None,
    }


def app_params(inbound: Mapping[str, Any]) -> dict[str, str]:
    """What an SMS application receives for an inbound message (Restcomm's set plus Twilio's)."""
    sid = inbound["sid"]
    return {
        "SmsSid": sid,
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": inbound["account_sid"],
        "From": inbound["from_number"],
        "To": inbound["to_number"],
        "Body": inbound["body"],
        "NumSegments": str(inbound["num_segments"]),
        "NumMedia": "0",
        "ApiVersion": API_VERSION,
        "SmsStatus": RECEIVED,
    }


def callback_params(message: Mapping[str, Any], status: str, error_code: int | None) -> dict[str, str]:
    """A status callback's parameters: Twilio's names and Restcomm's, numeric ErrorCode."""
    params = {
        "MessageSid": message["sid"],
        "MessageStatus": status,
        "SmsSid": message["sid"],
        "SmsStatus": status,
        "AccountSid": message["account_sid"],
        "From": message["from_number"],
        "To": message["to_number"],
        "Body": message["body"],
        "ApiVersion": API_VERSION,
        "NumSegments": str(message["num_segments"]),
    }
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
        params["ErrorMessage"] = MESSAGE_ERRORS.get(error_code, "")
    return params
