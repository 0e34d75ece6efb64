"""Fetching application documents and delivering status callbacks over HTTP (aiohttp).

Every request an interpreter makes to an application goes through here, so the rules live in one
place (``rcml.md`` §1.1, §1.2, §1.5, §6.2):

* **Parameters.** POST sends them as an ``application/x-www-form-urlencoded; charset=UTF-8`` body;
  GET appends them to the URL. Unlike Restcomm, the URL's own query string is kept (``/next?step=2``
  arrives with ``step=2``), as Twilio does.
* **Signature.** With an AuthToken, every hop carries ``X-Twilio-Signature`` for exactly the URL that
  goes on the wire: the URL is encoded once, signed, and sent with ``encoded=True`` so nothing
  re-quotes it between signing and sending.
* **Redirects** (301, 302, 303, 307, 308) are followed by hand, re-sending the same method and
  parameters as Restcomm does (even for 303), but only up to ``max_redirects`` (11215); Restcomm had
  no limit. A GET redirect uses the ``Location`` as given, since the server built it from our query.
* **Success is exactly 200** with an RCML content type (substring-free media type match on
  ``text/xml``, ``application/xml``, ``text/html``); anything else is classified and mapped to the
  notification code the pipeline records, together with the request and a response excerpt.
* **One time budget** covers connecting, every redirect hop and reading the body, so a slow
  application cannot hold a session longer than ``timeout`` seconds.
* **Size cap**: the document is read up to 64 KiB (11750); a bigger one is refused without being read
  to the end.
* **Destination guard** (``guard=settings`` with ``webhook_block_private`` on): every hop's URL is
  checked before it is requested and host names are checked by the session's ``GuardedResolver``
  (``create_session(settings=...)``); a refused destination is the outcome ``refused``, reported
  like a connection failure (11205) but never worth retrying (``restcomm.webhooks.guard``).
* **Metrics**: each fetch or callback is observed in ``restcomm_webhook_duration_seconds`` by kind
  (``app``, ``fallback``, ``status_callback``) and outcome, and counted in
  ``restcomm_webhook_failures_total`` when it fails.

The session is the caller's, so connection pools are shared; ``create_session`` builds one with the
settings webhooks need (no cookie jar shared between tenants, no proxy from the environment).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yarl

from restcomm import __version__
from restcomm.config import Settings
from restcomm.observability import WEBHOOK_DURATION, WEBHOOK_FAILURES
from restcomm.rcml.errors import Code
from restcomm.rcml.parser import MAX_DOCUMENT_BYTES
from restcomm.webhooks.guard import DestinationRefused, GuardedResolver, RefusedAddress, check_request
from restcomm.webhooks.lean import LeanClient
from restcomm.webhooks.signature import SIGNATURE_HEADER, compute_signature
from restcomm.weburl import InvalidUrl, check_http_url

RCML_CONTENT_TYPES: frozenset[str] = frozenset({"text/xml", "application/xml", "text/html"})
REDIRECT_STATUSES: frozenset[int] = frozenset({301, 302, 303, 307, 308})
DEFAULT_TIMEOUT = 6.0  # seconds; restcomm.xml ships http-client/response-timeout = 6000 ms
DEFAULT_MAX_REDIRECTS = 10
EXCERPT_BYTES = 4096  # what restcomm.notify keeps of a response body
USER_AGENT = f"Restcomm-Python/{__version__}"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"

Params = Mapping[str, str] | Iterable[tuple[str, str]]


class FetchOutcome(StrEnum):
    OK = "ok"
    HTTP_ERROR = "http-error"
    TIMEOUT = "timeout"
    CONNECTION_FAILED = "connection-failed"
    BAD_HOST = "bad-host"
    PROTOCOL_ERROR = "protocol-error"
    BAD_CONTENT_TYPE = "bad-content-type"
    TOO_MANY_REDIRECTS = "too-many-redirects"
    INVALID_URL = "invalid-url"
    BODY_TOO_LARGE = "body-too-large"
    REFUSED = "refused"  # the destination guard refused the URL (webhook_block_private)


OUTCOME_CODES: Mapping[FetchOutcome, int | None] = {
    FetchOutcome.OK: None,
    FetchOutcome.HTTP_ERROR: Code.HTTP_RETRIEVAL_FAILURE,
    FetchOutcome.TIMEOUT: Code.HTTP_CONNECTION_FAILURE,  # Restcomm files timeouts under 11205 too
    FetchOutcome.CONNECTION_FAILED: Code.HTTP_CONNECTION_FAILURE,
    FetchOutcome.BAD_HOST: Code.HTTP_BAD_HOST_NAME,
    FetchOutcome.PROTOCOL_ERROR: Code.HTTP_PROTOCOL_VIOLATION,
    FetchOutcome.BAD_CONTENT_TYPE: Code.INVALID_CONTENT_TYPE,
    FetchOutcome.TOO_MANY_REDIRECTS: Code.HTTP_TOO_MANY_REDIRECTS,
    FetchOutcome.INVALID_URL: Code.INVALID_URL,
    FetchOutcome.BODY_TOO_LARGE: Code.RESPONSE_BODY_TOO_LARGE,
    FetchOutcome.REFUSED: Code.HTTP_CONNECTION_FAILURE,  # unreachable, as far as the tenant can tell
}

# Worth trying again later (status callbacks): the application may recover by itself.
_RETRYABLE = frozenset({
    FetchOutcome.TIMEOUT, FetchOutcome.CONNECTION_FAILED, FetchOutcome.BAD_HOST, FetchOutcome.PROTOCOL_ERROR,
})
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What was asked for, as the Notification records it (RequestUrl, RequestMethod, RequestVariables)."""

    url: str
    method: str
    params: tuple[tuple[str, str], ...]

    @property
    def variables(self) -> str:
        return urlencode(self.params)


@dataclass(frozen=True, slots=True)
class ResponseExcerpt:
    """The last response seen: status, all headers, and the first bytes of its body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def headers_text(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.headers)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Outcome of one fetch or callback, including every redirect it followed.

    ``url`` is where the answer finally came from: resolve relative ``action``/``<Redirect>`` URLs of
    the document against it. ``body`` is the whole document for a successful fetch and empty
    otherwise (the excerpt in ``response`` is what a Notification stores).
    """

    outcome: FetchOutcome
    request: WebhookRequest
    url: str
    redirects: tuple[str, ...] = ()
    response: ResponseExcerpt | None = None
    body: bytes = b""
    content_type: str | None = None
    charset: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is FetchOutcome.OK

    @property
    def code(self) -> int | None:
        """Notification code for this outcome (None when it succeeded)."""
        return OUTCOME_CODES[self.outcome]

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def retryable(self) -> bool:
        if self.outcome in _RETRYABLE:
            return True
        status = self.status
        return self.outcome is FetchOutcome.HTTP_ERROR and status is not None and (
            status >= 500 or status in _RETRYABLE_STATUSES
        )


def create_session(
    *, limit: int = 100, limit_per_host: int = 10, settings: Settings | None = None
) -> aiohttp.ClientSession:
    """A ClientSession suited to webhooks; the caller closes it.

    Cookies are dropped (a jar would carry one application's cookies into requests made for another
    account), and proxy settings from the environment are ignored so deployments behave the same
    wherever they run. With ``settings.webhook_block_private`` on, host names are resolved through
    ``GuardedResolver``: only public addresses are connected to (pass ``guard=settings`` to the
    requests too, for IP-literal hosts, which aiohttp does not resolve).
    """
    guarded = settings is not None and settings.webhook_block_private
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host,
                                     resolver=GuardedResolver(settings) if guarded else None)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


class _Failure(Exception):
    def __init__(self, outcome: FetchOutcome, message: str, response: ResponseExcerpt | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.response = response


@dataclass(slots=True)
class _Hop:
    """Mutable state while following redirects; becomes part of the FetchResult."""

    url: str
    redirects: list[str] = field(default_factory=list)


def _normalise_method(method: str | None) -> str:
    upper = (method or "POST").upper()
    if upper not in ("GET", "POST"):
        # The interpreter validates methods (warnings 14104/13710) before calling; reaching here is a bug.
        raise ValueError(f"webhook method must be GET or POST, not {method!r}")
    return upper


def _pairs(params: Params | None) -> tuple[tuple[str, str], ...]:
    if params is None:
        return ()
    items = params.items() if isinstance(params, Mapping) else params
    return tuple((str(name), str(value)) for name, value in items)


def _checked_url(url: yarl.URL, raw: str) -> yarl.URL:
    """Every URL requested, the first and each redirect's, passes the one URL check
    (restcomm.weburl): a host that cannot be IDNA-encoded (``a..b``, a percent-encoded label that
    is no valid name) is INVALID_URL (11100) here instead of a UnicodeError inside the connector."""
    if url.scheme not in ("http", "https") or not url.host:
        raise _Failure(FetchOutcome.INVALID_URL, f"{raw!r} is not an absolute http(s) URL")
    try:
        check_http_url(str(url))
    except InvalidUrl as exc:
        raise _Failure(FetchOutcome.INVALID_URL, f"{raw!r} {exc}") from None
    return url.with_fragment(None)


def _parse_url(raw: str) -> yarl.URL:
    try:
        return _checked_url(yarl.URL(raw), raw)
    except (ValueError, TypeError) as exc:
        raise _Failure(FetchOutcome.INVALID_URL, f"{raw!r} is an invalid URL: {exc}") from None


def _split_credentials(url: yarl.URL) -> tuple[yarl.URL, str | None]:
    """Credentials in the URL become an ``Authorization: Basic`` value; they are never part of the
    signed URL, since the application rebuilds its URL from the request line and Host header."""
    if url.user is None:
        return url, None
    pair = f"{url.user}:{url.password or ''}".encode()
    return url.with_user(None), "Basic " + base64.b64encode(pair).decode("ascii")


def _with_query(url: yarl.URL, params: tuple[tuple[str, str], ...]) -> str:
    base = str(url)
    if not params:
        return base
    query = urlencode(params)
    if not url.raw_query_string:
        return f"{base.rstrip('?')}?{query}"
    return f"{base}&{query}"


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


async def _read(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    data = b"".join(chunks)
    return data[:limit], size > limit


def _excerpt(response: aiohttp.ClientResponse, body: bytes, excerpt_bytes: int) -> ResponseExcerpt:
    return ResponseExcerpt(
        status=response.status,
        headers=tuple((str(k), str(v)) for k, v in response.headers.items()),
        body=body[:excerpt_bytes],
    )


async def _exchange(
    session: aiohttp.ClientSession,
    request: WebhookRequest,
    auth_token: str | None,
    max_redirects: int,
    hop: _Hop,
    handle: _Handler,
    guard: Settings | None,
) -> FetchResult:
    url, auth = _split_credentials(_parse_url(request.url))
    target = _with_query(url, request.params) if request.method == "GET" else str(url)
    body = urlencode(request.params).encode("utf-8") if request.method == "POST" else None
    signed_params = request.params if request.method == "POST" else None
    hop.url = target
    excerpt: ResponseExcerpt | None = None
    while True:
        if guard is not None:  # every hop: a redirect may point anywhere
            try:
                check_request(target, guard)
            except DestinationRefused as exc:
                raise _Failure(FetchOutcome.REFUSED, str(exc), excerpt) from None
        headers = {"User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = FORM_CONTENT_TYPE
        if auth is not None:
            headers["Authorization"] = auth
        if auth_token is not None:
            headers[SIGNATURE_HEADER] = compute_signature(auth_token, target, signed_params)
        current = yarl.URL(target, encoded=True)
        async with session.request(
            request.method, current, data=body, headers=headers, allow_redirects=False
        ) as response:
            if response.status not in REDIRECT_STATUSES:
                return await handle(response, hop)
            data, _ = await _read(response, handle.excerpt_bytes)
            excerpt = _excerpt(response, data, handle.excerpt_bytes)
            location = response.headers.get("Location")
            if not location:
                raise _Failure(FetchOutcome.PROTOCOL_ERROR, f"HTTP {response.status} without Location", excerpt)
            if len(hop.redirects) >= max_redirects:
                raise _Failure(
                    FetchOutcome.TOO_MANY_REDIRECTS, f"more than {max_redirects} redirects", excerpt
                )
            try:
                following = _checked_url(current.join(yarl.URL(location)), location)
            except (ValueError, TypeError) as exc:
                raise _Failure(FetchOutcome.INVALID_URL, f"bad Location {location!r}: {exc}", excerpt) from None
        if following.origin() != current.origin():
            auth = None  # never hand one host's credentials to another
        following, own_auth = _split_credentials(following)
        auth = own_auth or auth
        target = str(following)
        hop.redirects.append(target)
        hop.url = target


class _Handler:
    """Turns the final (non-redirect) response into a FetchResult; differs for documents and callbacks."""

    def __init__(self, request: WebhookRequest, excerpt_bytes: int) -> None:
        self.request = request
        self.excerpt_bytes = excerpt_bytes

    def result(
        self,
        hop: _Hop,
        outcome: FetchOutcome,
        response: ResponseExcerpt | None,
        *,
        error: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        charset: str | None = None,
    ) -> FetchResult:
        return FetchResult(
            outcome=outcome, request=self.request, url=hop.url, redirects=tuple(hop.redirects), response=response,
            body=body, content_type=content_type, charset=charset, error=error,
        )

    async def __call__(self, response: aiohttp.ClientResponse, hop: _Hop) -> FetchResult:
        raise NotImplementedError


class _DocumentHandler(_Handler):
    def __init__(self, request: WebhookRequest, excerpt_bytes: int, accept: Collection[str], max_bytes: int) -> None:
        super().__init__(request, excerpt_bytes)
        self.accept = accept
        self.max_bytes = max_bytes

    async def __call__(self, response: aiohttp.ClientResponse, hop: _Hop) -> FetchResult:
        media_type = _media_type(response.headers.get("Content-Type"))
        charset = response.charset if media_type else None
        if response.status != 200:
            body, _ = await _read(response, self.excerpt_bytes)
            return self.result(hop, FetchOutcome.HTTP_ERROR, _excerpt(response, body, self.excerpt_bytes),
                               error=f"HTTP {response.status}", content_type=media_type, charset=charset)
        if media_type not in self.accept:
            body, _ = await _read(response, self.excerpt_bytes)
            return self.result(hop, FetchOutcome.BAD_CONTENT_TYPE, _excerpt(response, body, self.excerpt_bytes),
                               error=f"unsupported Content-Type {media_type or '(none)'}", content_type=media_type, charset=charset)
        if response.content_length is not None and response.content_length > self.max_bytes:
            return self.result(hop, FetchOutcome.BODY_TOO_LARGE, _excerpt(response, b"", self.excerpt_bytes),
                               error=f"Content-Length {response.content_length} exceeds {self.max_bytes}", content_type=media_type, charset=charset)
        body, truncated = await _read(response, self.max_bytes)
        excerpt = _excerpt(response, body, self.excerpt_bytes)
        if truncated:
            return self.result(hop, FetchOutcome.BODY_TOO_LARGE, excerpt,
                               error=f"body exceeds {self.max_bytes} bytes", content_type=media_type, charset=charset)
        return self.result(hop, FetchOutcome.OK, excerpt, body=body, content_type=media_type, charset=charset)


class _CallbackHandler(_Handler):
    async def __call__(self, response: aiohttp.ClientResponse, hop: _Hop) -> FetchResult:
        body, _ = await _read(response, self.excerpt_bytes)
        excerpt = _excerpt(response, body, self.excerpt_bytes)
        if 200 <= response.status < 300:
            return self.result(hop, FetchOutcome.OK, excerpt)
        return self.result(hop, FetchOutcome.HTTP_ERROR, excerpt, error=f"HTTP {response.status}")


_Meters = tuple[Any, Any]  # (duration histogram child, failure counter child or None)
_meters: dict[tuple[str, FetchOutcome], _Meters] = {}


def _meters_for(kind: str, outcome: FetchOutcome) -> _Meters:
    """The metric children of one (kind, outcome), bound once."""
    meters = _meters.get((kind, outcome))
    if meters is None:
        failures = None if outcome is FetchOutcome.OK else WEBHOOK_FAILURES.labels(kind, outcome.value)
        meters = _meters[(kind, outcome)] = (WEBHOOK_DURATION.labels(kind, outcome.value), failures)
    return meters


async def _run(
    session: aiohttp.ClientSession,
    request: WebhookRequest,
    auth_token: str | None,
    timeout: float,  # noqa: ASYNC109 - a timeout is an outcome to classify (11205), not a cancellation
    max_redirects: int,
    handler: _Handler,
    kind: str,
    guard: Settings | None,
) -> FetchResult:
    started = time.monotonic()
    result = await _attempt(session, request, auth_token, timeout, max_redirects, handler, guard)
    duration, failures = _meters_for(kind, result.outcome)
    duration.observe(time.monotonic() - started)
    if failures is not None:
        failures.inc()
    return result


async def _attempt(
    session: aiohttp.ClientSession,
    request: WebhookRequest,
    auth_token: str | None,
    timeout: float,  # noqa: ASYNC109 - see _run
    max_redirects: int,
    handler: _Handler,
    guard: Settings | None,
) -> FetchResult:
    hop = _Hop(url=request.url)

    def failed(outcome: FetchOutcome, message: str, response: ResponseExcerpt | None = None) -> FetchResult:
        return handler.result(hop, outcome, response, error=message)

    try:
        async with asyncio.timeout(timeout):
            return await _exchange(session, request, auth_token, max_redirects, hop, handler, guard)
    except _Failure as failure:
        return failed(failure.outcome, failure.message, failure.response)
    except DestinationRefused as exc:  # a client that applies the guard as it connects
        return failed(FetchOutcome.REFUSED, str(exc))
    except TimeoutError:  # before ClientError: aiohttp's own timeouts are TimeoutErrors as well
        return failed(FetchOutcome.TIMEOUT, f"no complete answer within {timeout:g} s")
    except aiohttp.ClientConnectorDNSError as exc:
        if isinstance(exc.os_error, RefusedAddress):  # GuardedResolver
            return failed(FetchOutcome.REFUSED, str(exc.os_error))
        return failed(FetchOutcome.BAD_HOST, f"cannot resolve host: {exc}")
    except socket.gaierror as exc:  # the keep-alive client resolves names itself
        return failed(FetchOutcome.BAD_HOST, f"cannot resolve host: {exc}")
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        return failed(FetchOutcome.INVALID_URL, f"invalid URL: {exc}")
    except UnicodeError as exc:  # a host name the resolver cannot encode (checked above; never a crash)
        return failed(FetchOutcome.INVALID_URL, f"invalid host name: {exc}")
    except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
        return failed(FetchOutcome.PROTOCOL_ERROR, f"invalid HTTP response: {type(exc).__name__}: {exc}")
    except (aiohttp.ClientConnectionError, OSError) as exc:
        return failed(FetchOutcome.CONNECTION_FAILED, f"connection failure: {type(exc).__name__}: {exc}")
    except aiohttp.ClientError as exc:
        return failed(FetchOutcome.PROTOCOL_ERROR, f"HTTP client error: {type(exc).__name__}: {exc}")


async def fetch_document(
    session: aiohttp.ClientSession | LeanClient,
    url: str,
    method: str | None,
    params: Params | None,
    auth_token: str | None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - see _run
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    *,
    accept: Collection[str] = RCML_CONTENT_TYPES,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    excerpt_bytes: int = EXCERPT_BYTES,
    kind: str = "app",
    guard: Settings | None = None,
) -> FetchResult:
    """Request an RCML document from an application and classify the answer; never raises for
    anything the network or the application does (only ``ValueError`` for a method other than
    GET/POST, which is the caller's bug). ``auth_token=None`` sends no signature (Restcomm style).
    ``kind`` labels the metrics (``app`` or ``fallback``); ``guard`` enables the destination guard."""
    request = WebhookRequest(url=url, method=_normalise_method(method), params=_pairs(params))
    handler = _DocumentHandler(request, excerpt_bytes, frozenset(a.lower() for a in accept), max_bytes)
    return await _run(session, request, auth_token, timeout, max_redirects, handler, kind, guard)


async def post_callback(
    session: aiohttp.ClientSession | LeanClient,
    url: str,
    params: Params | None,
    auth_token: str | None,
    *,
    method: str | None = "POST",
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - see _run
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    excerpt_bytes: int = EXCERPT_BYTES,
    guard: Settings | None = None,
) -> FetchResult:
    """Deliver a status callback. Any 2xx is success and the body is ignored (as Twilio does);
    ``result.retryable`` tells the outbox whether a later attempt can help (never for a destination
    the guard refused: the answer will not change)."""
    request = WebhookRequest(url=url, method=_normalise_method(method), params=_pairs(params))
    return await _run(session, request, auth_token, timeout, max_redirects, _CallbackHandler(request, excerpt_bytes),
                      "status_callback", guard)
