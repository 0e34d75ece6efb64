"""API errors: one exception type, rendered in the negotiated format by the framework.

Codes follow Twilio's numbering where Twilio has a code for the situation (Restcomm mostly answers
with bare text); each code is described at /restcomm/errors/{code}.html.
"""

from __future__ import annotations

# code -> (title, explanation). Served by the errors page and used as default messages.
ERROR_CODES: dict[int, tuple[str, str]] = {
    19001: ("Email delivery failed", "The SMTP server refused the email, or could not be reached within the retries."),
    20001: ("Invalid parameter", "A request parameter has a value the resource does not accept."),
    20002: ("Missing parameter", "A required request parameter is missing or empty."),
    20003: ("Authentication failed", "The credentials are missing or wrong."),
    20004: ("Method not allowed", "The resource does not support this HTTP method."),
    20005: ("Account not active", "The account is suspended, closed or inactive."),
    20006: ("Access denied", "The account may not act on this resource."),
    20007: ("Invalid paging parameter", "Page must be 0 or more and PageSize between 1 and the maximum."),
    20008: ("Payload too large", "The request body is larger than the server accepts."),
    20009: ("Unsupported media type", "Bodies must be application/x-www-form-urlencoded."),
    20010: ("Conflict", "The resource already exists."),
    20404: ("Not found", "The requested resource was not found."),
    20429: ("Too many requests", "The request rate limit was exceeded; retry later."),
    20500: ("Internal server error", "The server failed; nothing was changed."),
    20503: ("Service unavailable", "The server cannot serve this request now: it is not configured for the service "
                                   "(e.g. no SMTP server for email), or its storage is full or failing (retry later)."),
    21211: ("Invalid 'To' phone number", "The destination is not a valid phone number."),
    21212: ("Invalid 'From' phone number", "The sender is not a valid phone number or alphanumeric id."),
    21401: ("Invalid phone number", "The phone number is not valid."),
    21452: ("Phone number unavailable", "The number is already provisioned or cannot be provisioned."),
    21601: ("Phone number is not a valid SMS-capable number", "The destination cannot receive SMS."),
    21602: ("Message body is required", "Body must be present and non-empty."),
    21603: ("'From' phone number is required", "From must be present."),
    21604: ("'To' phone number is required", "To must be present."),
    21606: ("'From' number not owned", "The From number is not an SMS-capable number of this account."),
    21610: ("Recipient unsubscribed", "The recipient replied STOP to this sender."),
    21617: ("Message body too long", "The body exceeds 1600 characters."),
    22001: ("Weak password", "The password does not meet the strength requirement."),
    22002: ("Sub-account depth exceeded", "This account is not allowed to have sub-accounts."),
    22003: ("Account is closed", "A closed account cannot be modified."),
}


class ApiError(Exception):
    """An error answer: HTTP status, numeric code and a human message."""

    def __init__(self, status: int, code: int, message: str | None = None, headers: dict[str, str] | None = None):
        self.status = status
        self.code = code
        self.message = message or ERROR_CODES.get(code, ("Error", ""))[0]
        self.headers = headers or {}
        super().__init__(f"{status} {code} {self.message}")


def not_found(what: str = "The requested resource") -> ApiError:
    return ApiError(404, 20404, f"{what} was not found")


def forbidden(message: str = "Access denied") -> ApiError:
    return ApiError(403, 20006, message)


def invalid(name: str, why: str, code: int = 20001) -> ApiError:
    return ApiError(400, code, f"Invalid parameter {name}: {why}")


def missing(name: str, code: int = 20002) -> ApiError:
    return ApiError(400, code, f"{name} can not be null.")


def more_info_path(code: int) -> str:
    return f"/restcomm/errors/{code}.html"
