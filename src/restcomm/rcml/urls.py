"""Resolving the URLs an RCML document mentions (``action``, ``<Redirect>``) (``rcml.md`` §1.4).

Relative references are resolved RFC 3986 style against the URL of the document that contained
them. Unlike Restcomm, the base keeps its query string (Twilio behaviour), so ``?step=2`` and
``next.xml`` behave as a browser would. Anything that does not end up as an absolute http(s) URL with
a host is error 11100, raised as ``RcmlUrlError`` for the interpreter to record before stopping.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from restcomm.rcml.errors import RcmlUrlError

_SCHEMES = ("http", "https")


def _check_characters(url: str) -> None:
    # Checked on the reference itself: urlsplit silently deletes tabs and newlines, which would turn
    # a broken reference into a different, working one.
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise RcmlUrlError(f"{url!r} is an invalid URI (whitespace or control character)")


def _check_absolute(url: str) -> None:
    _check_characters(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise RcmlUrlError(f"{url!r} is an invalid URI ({exc})") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise RcmlUrlError(f"{url!r} is an invalid URI (not http or https)")
    if not parts.hostname:
        raise RcmlUrlError(f"{url!r} is an invalid URI (no host)")


def resolve_url(document_url: str, relative: str) -> str:
    """Resolve ``relative`` (as written in the document) against ``document_url``.

    ``document_url`` should be the URL the document was finally fetched from (after HTTP redirects).
    An empty reference is an error rather than "the same document": every caller has a default of its
    own for a missing URL, and silently re-fetching the current document would loop.
    """
    reference = relative.strip(" \t\r\n")
    if not reference:
        raise RcmlUrlError("empty URL")
    _check_characters(reference)
    if reference == document_url:
        return document_url
    try:
        resolved = urljoin(document_url, reference, allow_fragments=True)
    except ValueError as exc:
        raise RcmlUrlError(f"{reference!r} is an invalid URI ({exc})") from None
    _check_absolute(resolved)
    return resolved
