"""API errors: one exception type, rendered in the negotiated format by the framework.

Codes follow Twilio's numbering where Twilio has a code for the situation (Restcomm mostly answers
with bare text); each code is described at /restcomm/errors/{code}.html, from ``restcomm.codes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from restcomm.codes import ERRORS

# code -> (title, explanation): a view of the platform's one table (restcomm.codes), which the
# errors page serves; also the default messages.
ERROR_CODES: Mapping[int, tuple[str, str]] = MappingProxyType({c: (e.title, e.explanation) for c, e in ERRORS.items()})


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

