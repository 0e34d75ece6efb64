"""Validation of the http(s) URLs tenants give us (SmsUrl, VoiceUrl, RcmlUrl, StatusCallback...).

One function decides whether a string is an absolute http(s) URL we could request, so that the
API, the RCML interpreter and the webhook client agree on what "a valid URL" is. It never raises
anything but ``InvalidUrl``: ``urlsplit`` raises ``ValueError`` for a bracketed host that is not
an IPv6 address (``http://[::1``, ``https://[zz]/``, ``http://]/``), ``.port`` for a port out of
range, and IDNA encoding ``UnicodeError`` for a host no resolver could look up -- each of these
used to escape as a 500 (API) or an unhandled exception (application session).
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

SCHEMES = ("http", "https")


class InvalidUrl(ValueError):
    """Not an absolute http(s) URL that can be requested; the message says why (safe to show)."""


def _check_host(host: str) -> None:
    # A host may be given percent-encoded or in Unicode (an IDN); either way it must have an
    # ASCII (IDNA) form, since that is what DNS is asked for.
    # (Empty labels such as "a..b" and labels over 63 characters fail the IDNA encoding too: the
    # resolver would raise the same UnicodeError at connect time.)
    decoded = unquote(host, errors="strict") if "%" in host else host
    decoded.encode("idna")
    if decoded.isascii() and any(label.startswith("xn--") for label in decoded.split(".")):
        decoded.encode("ascii").decode("idna")  # a malformed punycode label raises here


def check_http_url(url: str) -> SplitResult:
    """The parts of ``url`` if it is an absolute http or https URL with a usable host; otherwise
    raise ``InvalidUrl``."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidUrl("contains whitespace or a control character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InvalidUrl(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidUrl("must be an absolute http or https URL")
    host = parts.hostname
    if not host:
        raise InvalidUrl("has no host")
    if not host.startswith("[") and ":" not in host:
        try:
            _check_host(host)
        except (UnicodeError, ValueError) as exc:
            raise InvalidUrl(f"has a host that is not a valid domain name ({exc})") from None
    return parts
