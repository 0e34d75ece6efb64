"""Every error code the platform writes, in one table: API errors, a message's ``error_code`` and
the codes of Notifications.

The errors dictionary (``/restcomm/errors/{code}.html``, the ``more_info`` of API errors and the
``MoreInfo`` of Notifications) is served from this table, ``ApiError`` takes its default message
from it, and a message's ``error_message`` is the title of its ``error_code``. The notification
codes of SMS applications keep their level and origin in ``restcomm.rcml.errors`` and are merged in
here, so a code is described once. A test collects every code the source writes and asks the
server for its page.

Numbers follow Twilio's where Twilio has a code for the situation (see docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from restcomm.rcml.errors import SMS_NOTIFICATION_CODES


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: int
    title: str
    explanation: str


# API errors (HTTP answers of the REST API).
_API = (
    (20001, "Invalid parameter", "A request parameter has a value the resource does not accept."),
    (20002, "Missing parameter", "A required request parameter is missing or empty."),
    (20003, "Authentication failed", "The credentials are missing or wrong."),
    (20004, "Method not allowed", "The resource does not support this HTTP method."),
    (20005, "Account not active", "The account is suspended, closed or inactive."),
    (20006, "Access denied", "The account may not act on this resource."),
    (20007, "Invalid paging parameter", "Page must be 0 or more and PageSize between 1 and the maximum."),
    (20008, "Payload too large", "The request body is larger than the server accepts."),
    (20009, "Unsupported media type", "Bodies must be application/x-www-form-urlencoded."),
    (20010, "Conflict", "The resource already exists."),
    (20404, "Not found", "The requested resource was not found."),
    (20429, "Too many requests", "The request rate limit was exceeded; retry later."),
    (20500, "Internal server error", "The server failed; nothing was changed."),
    (20503, "Service unavailable", "The server cannot serve this right now: its database is unreachable or its "
                                   "storage is full or failing (retry later), or it is not configured for the "
                                   "service (e.g. no SMTP server for email)."),
    (21211, "Invalid 'To' phone number", "The destination is not a valid phone number."),
    (21212, "Invalid 'From' phone number", "The sender is not a valid phone number or alphanumeric id."),
    (21215, "Call destination not permitted", "The account's profile (featureEnablement: outboundPSTN, "
                                              "destinations) does not allow calls to this number."),
    (21401, "Invalid phone number", "The phone number is not valid."),
    (21408, "SMS destination not permitted", "The account's profile (featureEnablement: outboundSMS, "
                                             "destinations) does not allow sending SMS to this number."),
    (21452, "Phone number unavailable", "The number is already provisioned or cannot be provisioned."),
    (21601, "Phone number is not a valid SMS-capable number", "The destination cannot receive SMS."),
    (21602, "Message body is required", "Body must be present and non-empty."),
    (21603, "'From' phone number is required", "From must be present."),
    (21604, "'To' phone number is required", "To must be present."),
    (21606, "'From' number not owned", "The From number is not an SMS-capable number of this account."),
    (21609, "Invalid StatusCallback", "StatusCallback must be an absolute http(s) URL and StatusCallbackMethod "
                                      "GET or POST."),
    (21617, "Message body too long", "The body exceeds 1600 characters."),
    (21620, "Invalid media URL", "MMS is not supported: this server sends SMS only (remove MediaUrl)."),
    (22001, "Weak password", "The password does not meet the strength requirement."),
    (22002, "Sub-account depth exceeded", "This account is not allowed to have sub-accounts."),
    (22003, "Account is closed", "A closed account cannot be modified."),
)

# A message's error_code (and its status callback's ErrorCode): the carriers' 30xxx codes and the
# ones the pipeline sets itself. The titles are the messages' error_message (Twilio's wording).
_MESSAGE = (
    (21610, "Attempt to send to unsubscribed recipient",
     "The recipient replied STOP to this sender: the message is refused (API) or failed (already queued)."),
    (21612, "The 'To' phone number is not currently reachable via SMS",
     "The destination is not a number hosted here and no carrier serves it: add a carrier whose "
     "[[carriers]] prefixes match the number (prefixes = [\"\"] serves every destination; docs/configuration.md), "
     "or a [[sms.routes]] entry naming one, or the route's carrier is not configured on this node."),
    (30001, "Queue overflow", "The message waited longer than the server's queue timeout ([sms] queue_timeout, "
                              "4 hours by default) to be sent, or the carrier's queue stayed full (SMPP "
                              "throttling or queue-full answers)."),
    (30002, "Account suspended", "The carrier refused the message because of the sending account."),
    (30003, "Unreachable destination handset", "The handset was off or out of coverage until the message expired."),
    (30004, "Message blocked", "The carrier or the recipient blocked the message."),
    (30005, "Unknown destination handset", "The destination number does not exist at the carrier."),
    (30006, "Landline or unreachable carrier", "The destination cannot receive SMS."),
    (30007, "Carrier violation", "The carrier filtered the message (content or sender)."),
    (30008, "Unknown error",
     "The carrier reported an error without a more precise reason, or the message was being handed to a "
     "carrier when its node stopped: whether the carrier took it is unknown, so it is failed rather than "
     "sent twice."),
    (30009, "Missing segment",
     "A multi-part message did not arrive whole: a delivery receipt reported a missing part, or the parts "
     "of an incoming message never all arrived (the notification carries the text that did)."),
    (30010, "Message price exceeds max price", "The carrier refused the message for its price."),
)

# Calls API errors (Twilio's numbers) and the voice platform's own notifications.
_VOICE = (
    (21201, "No 'To' number is specified", "To must be present: a phone number, client:name or a sip: URI."),
    (21205, "Invalid URL", "Url (or ApplicationSid) is required and must be an absolute http(s) URL; FallbackUrl "
                           "likewise."),
    (21210, "'From' phone number not verified",
     "A call's From must be one of the account's numbers (IncomingPhoneNumbers), one of its verified "
     "OutgoingCallerIds, or client:name of one of its Clients."),
    (21213, "'From' phone number is required", "From must be present."),
    (21218, "Invalid ApplicationSid", "ApplicationSid does not name an application of this account that has a URL."),
    (21220, "Invalid call state", "The call is not in a state that allows this change: it has ended, or it was "
                                  "answered and Status=canceled only ends calls not answered yet."),
    (19101, "No voice engine", "The call could not be placed: no voice engine (SIP) runs on the server that took "
                               "the request, or it refused the call."),
    (19102, "Call interrupted by a node failure",
     "The server running the call stopped while the call was live; another node or the restart closed it "
     "(completed if it had been answered, failed otherwise)."),
)

# Other codes written as Notifications.
_OTHER = (
    (19001, "Email delivery failed", "The SMTP server refused the email, or could not be reached within the retries."),
)


def _build() -> Mapping[int, ErrorCode]:
    table: dict[int, ErrorCode] = {}

    def add(code: int, title: str, explanation: str) -> None:
        if code in table:
            raise ValueError(f"error code {code} is described twice")
        table[code] = ErrorCode(int(code), title, explanation)

    for row in (*_API, *_MESSAGE, *_VOICE, *_OTHER):
        add(*row)
    for note in SMS_NOTIFICATION_CODES.values():
        add(note.code, note.message, note.when[:1].upper() + note.when[1:] + ".")
    return MappingProxyType(dict(sorted(table.items())))


ERRORS: Mapping[int, ErrorCode] = _build()

#: The codes a message can end with (``error_code``/``error_message``).
MESSAGE_CODES: frozenset[int] = frozenset(code for code, *_ in _MESSAGE)


def title(code: int, default: str = "Error") -> str:
    entry = ERRORS.get(code)
    return entry.title if entry is not None else default


def more_info_path(code: int) -> str:
    """Where a code is explained (the server's /restcomm/errors/{code}.html page)."""
    return f"/restcomm/errors/{code}.html"
