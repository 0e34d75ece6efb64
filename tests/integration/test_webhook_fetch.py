"""Webhook fetcher against a real aiohttp application server on 127.0.0.1 (ephemeral port).

The server plays a Twilio-style application: it checks X-Twilio-Signature with twilio-python's
RequestValidator on the URL it was actually asked for, and records what arrived.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from restcomm.config import Settings
from restcomm.rcml.errors import Code
from restcomm.rcml.parser import Message, parse_rcml
from restcomm.webhooks.fetch import (
    EXCERPT_BYTES,
    USER_AGENT,
    FetchOutcome,
    create_session,
    fetch_document,
    post_callback,
)
from restcomm.webhooks.lean import LeanClient

TOKEN = "f2d6a3b3c0a94b0c9b4a6e1d2c3b4a5f"
PARAMS = [
    ("SmsSid", "SM0001"), ("AccountSid", "AC0001"), ("From", "+15551230000"), ("To", "+15559870000"),
    ("Body", "Hi & bye = 100% + more ✓"), ("ApiVersion", "2012-04-24"),
]
_reply = MessagingResponse()
_reply.message("Thanks, got it")
REPLY = str(_reply)


@dataclass
class Seen:
    method: str
    url: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: dict[str, str]
    signature_valid: bool


@dataclass
class AppServer:
    base: str
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def _record(request: web.Request, server: AppServer) -> None:
    # The URL exactly as requested on the wire: Host header plus the raw request target.
    url = f"http://{request.host}{request.raw_path}"
    form = await request.post()
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(TOKEN)
    valid = validator.validate(url, form if request.method == "POST" else {}, signature)
    server.seen.append(Seen(
        method=request.method,
        url=url,
        query=parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True),
        form=[(k, str(v)) for k, v in form.items()],
        headers=dict(request.headers),
        signature_valid=valid,
    ))


def _build_app(server: AppServer) -> web.Application:
    async def doc(request: web.Request) -> web.Response:
        await _record(request, server)
        return web.Response(text=REPLY, content_type="text/xml")

    async def status(request: web.Request) -> web.Response:
        await _record(request, server)
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"<html><body>status {code} page</body></html>",
                            content_type="text/html")

    async def ctype(request: web.Request) -> web.Response:
        await _record(request, server)
        value = request.query["t"]
        response = web.Response(body=REPLY.encode())
        if value != "none":
            response.headers["Content-Type"] = value
        return response

    async def redirect(request: web.Request) -> web.Response:
        await _record(request, server)
        n = int(request.match_info["n"])
        location = f"/redirect/{n - 1}" if n > 0 else "../doc?after=redirect"
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": location})

    async def loop(request: web.Request) -> web.Response:
        await _record(request, server)
        return web.Response(status=301, headers={"Location": str(request.url)})

    async def no_location(request: web.Request) -> web.Response:
        return web.Response(status=302)

    async def to_other_origin(request: web.Request) -> web.Response:
        await _record(request, server)
        port = request.url.port
        return web.Response(status=307, headers={"Location": f"http://localhost:{port}/doc"})

    async def to_loopback_literal(request: web.Request) -> web.Response:
        await _record(request, server)
        return web.Response(status=302, headers={"Location": f"http://127.0.0.1:{request.url.port}/doc"})

    async def slow(request: web.Request) -> web.Response:
        await server.release.wait()
        return web.Response(text=REPLY, content_type="text/xml")

    async def drip(request: web.Request) -> web.Response:
        await asyncio.sleep(0.1)
        n = int(request.match_info["n"])
        return web.Response(status=302, headers={"Location": f"/drip/{n - 1}" if n > 0 else "/doc"})

    async def big(request: web.Request) -> web.StreamResponse:
        chunk = b"<!-- " + b"x" * 4090 + b" -->"
        if request.query.get("chunked"):
            response = web.StreamResponse(headers={"Content-Type": "text/xml"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(20):
                await response.write(chunk)
            await response.write_eof()
            return response
        return web.Response(body=chunk * 20, content_type="text/xml")

    async def callback(request: web.Request) -> web.Response:
        await _record(request, server)
        return web.Response(status=int(request.query.get("status", "204")))

    app = web.Application()
    app.router.add_route("*", "/doc", doc)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/ctype", ctype)
    app.router.add_route("*", "/redirect/{n}", redirect)
    app.router.add_route("*", "/loop", loop)
    app.router.add_route("*", "/no-location", no_location)
    app.router.add_route("*", "/to-other-origin", to_other_origin)
    app.router.add_route("*", "/to-loopback-literal", to_loopback_literal)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/drip/{n}", drip)
    app.router.add_route("*", "/big", big)
    app.router.add_route("*", "/callback", callback)
    return app


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def app_server() -> AsyncIterator[AppServer]:
    sock = _listening_socket()
    port = sock.getsockname()[1]
    server = AppServer(base=f"http://127.0.0.1:{port}")
    runner = web.AppRunner(_build_app(server), shutdown_timeout=1)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


@pytest.fixture(params=["aiohttp", "lean"])
async def session(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession | LeanClient]:
    """Both clients: aiohttp (application documents) and the keep-alive client (status callbacks)."""
    if request.param == "aiohttp":
        async with create_session() as client:
            yield client
    else:
        lean = LeanClient(headers={"User-Agent": USER_AGENT})
        yield lean
        await lean.close()


# --------------------------------------------------------------------------------------------
# Success paths
# --------------------------------------------------------------------------------------------


async def test_post_sends_signed_form_and_keeps_url_query(app_server: AppServer, session) -> None:
    url = f"{app_server.base}/doc?step=2&who=a%20b"
    result = await fetch_document(session, url, "POST", PARAMS, TOKEN)

    assert result.outcome is FetchOutcome.OK and result.ok and result.code is None
    assert result.status == 200 and result.content_type == "text/xml" and result.charset == "utf-8"
    assert parse_rcml(result.body, charset=result.charset).verbs == (Message(body="Thanks, got it"),)
    assert result.request.url == url and result.request.method == "POST"
    assert result.request.params == tuple(PARAMS)
    assert result.url == url and result.redirects == ()

    (seen,) = app_server.seen
    assert seen.method == "POST"
    assert seen.query == [("step", "2"), ("who", "a b")]
    assert seen.form == PARAMS
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    assert seen.signature_valid


async def test_get_appends_params_to_existing_query_and_signs_the_whole_url(app_server: AppServer, session) -> None:
    url = f"{app_server.base}/doc?step=2&who=a%20b"
    result = await fetch_document(session, url, "get", dict(PARAMS), TOKEN)

    assert result.ok
    (seen,) = app_server.seen
    assert seen.method == "GET"
    assert seen.query == [("step", "2"), ("who", "a b"), *PARAMS]
    assert seen.form == []
    assert seen.signature_valid
    assert result.url == seen.url  # relative URLs in the answer resolve against what was fetched


async def test_no_auth_token_means_no_signature_header(app_server: AppServer, session) -> None:
    result = await fetch_document(session, f"{app_server.base}/doc", "POST", PARAMS, None)
    assert result.ok
    assert "X-Twilio-Signature" not in app_server.seen[0].headers


async def test_credentials_in_url_become_basic_auth_and_are_not_signed(app_server: AppServer, session) -> None:
    url = app_server.base.replace("http://", "http://user:s3cret@") + "/doc"
    result = await fetch_document(session, url, "POST", PARAMS, TOKEN)
    assert result.ok
    (seen,) = app_server.seen
    assert seen.headers["Authorization"] == "Basic dXNlcjpzM2NyZXQ="  # user:s3cret
    assert seen.signature_valid


async def test_redirects_resend_method_and_params_signed_at_every_hop(app_server: AppServer, session) -> None:
    result = await fetch_document(session, f"{app_server.base}/redirect/3?status=303", "POST", PARAMS, TOKEN)

    assert result.ok, result.error
    assert len(result.redirects) == 4
    assert result.url == f"{app_server.base}/doc?after=redirect"
    assert [s.method for s in app_server.seen] == ["POST"] * 5  # Restcomm keeps POST even on 303
    assert all(s.form == PARAMS for s in app_server.seen)
    assert all(s.signature_valid for s in app_server.seen)


async def test_get_redirect_uses_location_as_given(app_server: AppServer, session) -> None:
    result = await fetch_document(session, f"{app_server.base}/redirect/0", "GET", PARAMS, TOKEN)
    assert result.ok
    first, second = app_server.seen
    assert first.query == PARAMS
    assert second.query == [("after", "redirect")]
    assert second.signature_valid


async def test_redirect_to_another_origin_drops_credentials(app_server: AppServer, session) -> None:
    url = app_server.base.replace("http://", "http://user:s3cret@") + "/to-other-origin"
    result = await fetch_document(session, url, "POST", PARAMS, TOKEN)
    assert result.ok, result.error
    first, second = app_server.seen
    assert "Authorization" in first.headers
    assert "Authorization" not in second.headers
    assert second.url.startswith("http://localhost:")


# --------------------------------------------------------------------------------------------
# Failures, each with its notification code
# --------------------------------------------------------------------------------------------

OUTCOME_CASES = [
    pytest.param("/status/404", {}, FetchOutcome.HTTP_ERROR, Code.HTTP_RETRIEVAL_FAILURE, 404, id="404"),
    pytest.param("/status/500", {}, FetchOutcome.HTTP_ERROR, Code.HTTP_RETRIEVAL_FAILURE, 500, id="500"),
    pytest.param("/status/204", {}, FetchOutcome.HTTP_ERROR, Code.HTTP_RETRIEVAL_FAILURE, 204, id="204-is-not-200"),
    pytest.param("/ctype?t=text/plain", {}, FetchOutcome.BAD_CONTENT_TYPE, Code.INVALID_CONTENT_TYPE, 200,
                 id="text-plain"),
    pytest.param("/ctype?t=application/json", {}, FetchOutcome.BAD_CONTENT_TYPE, Code.INVALID_CONTENT_TYPE, 200,
                 id="json"),
    pytest.param("/ctype?t=application/xhtml%2Bxml", {}, FetchOutcome.BAD_CONTENT_TYPE, Code.INVALID_CONTENT_TYPE,
                 200, id="xhtml-is-not-xml"),
    pytest.param("/ctype?t=none", {}, FetchOutcome.BAD_CONTENT_TYPE, Code.INVALID_CONTENT_TYPE, 200,
                 id="missing-content-type"),
    pytest.param("/ctype?t=text/html", {}, FetchOutcome.OK, None, 200, id="text-html-accepted"),
    pytest.param("/ctype?t=Application/XML;%20charset=ISO-8859-1", {}, FetchOutcome.OK, None, 200,
                 id="application-xml-with-charset"),
    pytest.param("/redirect/3", {"max_redirects": 3}, FetchOutcome.TOO_MANY_REDIRECTS,
                 Code.HTTP_TOO_MANY_REDIRECTS, 302, id="chain-over-limit"),
    pytest.param("/redirect/3", {"max_redirects": 4}, FetchOutcome.OK, None, 200, id="chain-at-limit"),
    pytest.param("/loop", {}, FetchOutcome.TOO_MANY_REDIRECTS, Code.HTTP_TOO_MANY_REDIRECTS, 301,
                 id="redirect-loop"),
    pytest.param("/no-location", {}, FetchOutcome.PROTOCOL_ERROR, Code.HTTP_PROTOCOL_VIOLATION, 302,
                 id="redirect-without-location"),
    pytest.param("/big", {}, FetchOutcome.BODY_TOO_LARGE, Code.RESPONSE_BODY_TOO_LARGE, 200, id="too-large"),
    pytest.param("/big?chunked=1", {}, FetchOutcome.BODY_TOO_LARGE, Code.RESPONSE_BODY_TOO_LARGE, 200,
                 id="too-large-chunked"),
]


@pytest.mark.parametrize(("path", "options", "outcome", "code", "status"), OUTCOME_CASES)
async def test_outcomes(app_server: AppServer, session, path, options, outcome, code, status) -> None:
    url = app_server.base + path
    result = await fetch_document(session, url, "POST", PARAMS, TOKEN, **options)

    assert result.outcome is outcome, result.error
    assert result.code == code
    assert result.status == status
    assert result.ok is (outcome is FetchOutcome.OK)
    # What a Notification needs: the request as made and an excerpt of the answer.
    assert result.request.url == url and result.request.method == "POST"
    assert "From=%2B15551230000" in result.request.variables
    assert result.response is not None
    assert len(result.response.body) <= EXCERPT_BYTES
    if not result.ok:
        assert result.body == b"" and result.error


async def test_http_error_excerpt_keeps_headers_and_body_start(app_server: AppServer, session) -> None:
    result = await fetch_document(session, f"{app_server.base}/status/404", "POST", PARAMS, TOKEN, excerpt_bytes=20)
    assert result.response is not None
    assert result.response.body == b"<html><body>status 4"
    assert result.response.header("content-type") == "text/html; charset=utf-8"
    assert "Content-Type: text/html" in result.response.headers_text()
    assert result.response.text().startswith("<html>")


async def test_timeout_is_a_connection_failure(app_server: AppServer, session) -> None:
    started = time.monotonic()
    result = await fetch_document(session, f"{app_server.base}/slow", "POST", PARAMS, TOKEN, timeout=0.2)
    elapsed = time.monotonic() - started

    assert result.outcome is FetchOutcome.TIMEOUT
    assert result.code == Code.HTTP_CONNECTION_FAILURE
    assert result.response is None and result.retryable
    assert 0.15 < elapsed < 2


async def test_timeout_budget_covers_all_redirect_hops(app_server: AppServer, session) -> None:
    # Each hop answers in 0.1 s, well inside the 0.35 s budget, but five of them do not fit in it:
    # a per-request timeout would let a slow chain hold the session indefinitely.
    fast = await fetch_document(session, f"{app_server.base}/drip/1", "POST", PARAMS, TOKEN, timeout=0.35)
    assert fast.ok, fast.error
    result = await fetch_document(session, f"{app_server.base}/drip/5", "POST", PARAMS, TOKEN, timeout=0.35)
    assert result.outcome is FetchOutcome.TIMEOUT


async def test_connection_refused(session) -> None:
    sock = _listening_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there any more
    result = await fetch_document(session, f"http://127.0.0.1:{port}/doc", "POST", PARAMS, TOKEN)
    assert result.outcome is FetchOutcome.CONNECTION_FAILED
    assert result.code == Code.HTTP_CONNECTION_FAILURE
    assert result.retryable


async def test_not_http_at_all_is_a_protocol_violation(session) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HELLO THIS IS NOT HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await fetch_document(session, f"http://127.0.0.1:{port}/doc", "GET", PARAMS, TOKEN)
    finally:
        server.close()
        await server.wait_closed()
    assert result.outcome is FetchOutcome.PROTOCOL_ERROR
    assert result.code == Code.HTTP_PROTOCOL_VIOLATION


class _NoSuchHost(aiohttp.abc.AbstractResolver):
    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_unresolvable_host() -> None:
    connector = aiohttp.TCPConnector(resolver=_NoSuchHost())
    async with aiohttp.ClientSession(connector=connector) as client:
        result = await fetch_document(client, "http://app.example.invalid/doc", "POST", PARAMS, TOKEN)
    assert result.outcome is FetchOutcome.BAD_HOST
    assert result.code == Code.HTTP_BAD_HOST_NAME


@pytest.mark.parametrize("url", ["ftp://example.com/doc", "not a url", "http:///nohost", "mailto:a@b.c", ""])
async def test_invalid_urls(session, url: str) -> None:
    result = await fetch_document(session, url, "POST", PARAMS, TOKEN)
    assert result.outcome is FetchOutcome.INVALID_URL
    assert result.code == Code.INVALID_URL
    assert not result.retryable


async def test_other_methods_are_a_caller_bug(session) -> None:
    with pytest.raises(ValueError, match="GET or POST"):
        await fetch_document(session, "http://127.0.0.1:1/doc", "PUT", PARAMS, TOKEN)


# --------------------------------------------------------------------------------------------
# Status callbacks
# --------------------------------------------------------------------------------------------

CALLBACK_CASES = [
    pytest.param("204", True, False, id="204"),
    pytest.param("200", True, False, id="200"),
    pytest.param("202", True, False, id="202"),
    pytest.param("404", False, False, id="404-not-retryable"),
    pytest.param("410", False, False, id="410-not-retryable"),
    pytest.param("429", False, True, id="429-retryable"),
    pytest.param("500", False, True, id="500-retryable"),
    pytest.param("503", False, True, id="503-retryable"),
]


@pytest.mark.parametrize(("status", "ok", "retryable"), CALLBACK_CASES)
async def test_status_callbacks(app_server: AppServer, session, status: str, ok: bool, retryable: bool) -> None:
    params = [("MessageSid", "SM0001"), ("MessageStatus", "delivered"), ("SmsStatus", "delivered")]
    result = await post_callback(session, f"{app_server.base}/callback?status={status}", params, TOKEN)
    assert result.ok is ok
    assert result.retryable is retryable
    assert result.status == int(status)
    assert result.code == (None if ok else Code.HTTP_RETRIEVAL_FAILURE)
    (seen,) = app_server.seen
    assert seen.form == params and seen.signature_valid


async def test_status_callback_by_get(app_server: AppServer, session) -> None:
    params = {"MessageSid": "SM0001", "MessageStatus": "sent"}
    result = await post_callback(session, f"{app_server.base}/callback?status=200", params, TOKEN, method="GET")
    assert result.ok
    (seen,) = app_server.seen
    assert seen.method == "GET"
    assert seen.query == [("status", "200"), *params.items()]
    assert seen.signature_valid


async def test_status_callback_ignores_content_type_and_body(app_server: AppServer, session) -> None:
    result = await post_callback(session, f"{app_server.base}/ctype?t=application/json", {}, TOKEN)
    assert result.ok and result.body == b""


async def test_status_callback_timeout_is_retryable(app_server: AppServer, session) -> None:
    result = await post_callback(session, f"{app_server.base}/slow", {}, TOKEN, timeout=0.2)
    assert result.outcome is FetchOutcome.TIMEOUT
    assert not result.ok and result.retryable


# --------------------------------------------------------------------------------------------
# The destination guard (webhook_block_private): refused before any byte is sent, on every hop
# --------------------------------------------------------------------------------------------

GUARDED = Settings(webhook_block_private=True)


async def test_guard_refuses_a_literal_loopback_address(app_server: AppServer, session) -> None:
    result = await fetch_document(session, f"{app_server.base}/doc", "POST", PARAMS, TOKEN, guard=GUARDED)
    assert result.outcome is FetchOutcome.REFUSED and not result.retryable
    assert result.code == Code.HTTP_CONNECTION_FAILURE
    assert "127.0.0.1" in (result.error or "") and "loopback" in (result.error or "")
    callback = await post_callback(session, f"{app_server.base}/callback", {}, TOKEN, guard=GUARDED)
    assert callback.outcome is FetchOutcome.REFUSED and not callback.retryable
    assert app_server.seen == []


async def test_guarded_session_refuses_host_names_that_resolve_to_loopback(app_server: AppServer) -> None:
    """aiohttp resolves host names through GuardedResolver: 'localhost' is refused as it connects."""
    url = app_server.base.replace("127.0.0.1", "localhost") + "/doc"
    async with create_session(settings=GUARDED) as guarded:
        started = time.monotonic()
        result = await fetch_document(guarded, url, "POST", PARAMS, TOKEN, guard=GUARDED)
        assert time.monotonic() - started < 5  # refused at once, not a hang
    assert result.outcome is FetchOutcome.REFUSED and not result.retryable
    assert "'localhost'" in (result.error or "") and "private, loopback or reserved" in (result.error or "")
    assert app_server.seen == []


async def test_guard_checks_every_redirect_hop(app_server: AppServer, session) -> None:
    """The first hop is allowed (a host name, left to the resolver of the session, which here is a
    plain one); its redirect to a literal loopback address is refused before it is followed."""
    url = app_server.base.replace("127.0.0.1", "localhost") + "/to-loopback-literal"
    result = await fetch_document(session, url, "POST", PARAMS, TOKEN, guard=GUARDED)
    assert result.outcome is FetchOutcome.REFUSED
    assert result.redirects == (f"{app_server.base}/doc",)
    assert result.status == 302  # the answer that pointed there is kept for the notification
    assert [s.url.split("/")[-1] for s in app_server.seen] == ["to-loopback-literal"]  # /doc never requested


async def test_guard_off_changes_nothing(app_server: AppServer, session) -> None:
    result = await fetch_document(session, f"{app_server.base}/doc", "POST", PARAMS, TOKEN, guard=Settings())
    assert result.ok
