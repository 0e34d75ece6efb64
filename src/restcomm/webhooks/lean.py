"""A small HTTP/1.1 client for status callbacks and SMS application documents: keep-alive
connections, httptools parsing.

Status callbacks are the pipeline's most frequent outgoing request (three per message sent through
a carrier: sending, sent, delivered). A general client's per-request bookkeeping (request and
response objects, header multidicts, tracing hooks, streams) cost several times what building the
request and parsing the answer do, so callbacks go through this client instead: one request at a
time per connection, connections kept per origin and reused, the response parsed by httptools
(llhttp, the parser uvicorn uses) and the body kept up to a limit and drained beyond it.

It offers the slice of ``aiohttp.ClientSession`` that ``restcomm.webhooks.fetch`` uses
(``request(...)`` as an async context manager; a response with ``status``, ``headers``,
``charset``, ``content_length`` and ``content.iter_any()``), so redirects, signatures and the
classification of outcomes stay in one place. Failures raise ``OSError`` (connection refused,
reset, closed before the answer), ``socket.gaierror`` (name resolution) or
:class:`ResponseError` (not HTTP), which fetch maps to its outcomes.

The destination guard (``webhook_block_private``) is applied to the addresses a name resolves to,
right before connecting, so a DNS answer cannot slip a private address past it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httptools
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

MAX_IDLE_PER_ORIGIN = 256
# A callback's answer is ignored beyond an excerpt; the rest is drained. SMS application documents
# come through this client too: at least their limit (rcml.parser.MAX_DOCUMENT_BYTES) is kept.
MAX_BODY_KEPT = 64 * 1024

Origin = tuple[str, str, int]  # scheme, host, port
AddressCheck = Callable[[str, Iterable[str]], None]  # raises to refuse a destination


class ResponseError(aiohttp.ClientPayloadError):
    """The peer's answer is not valid HTTP/1.x (an aiohttp error type, so fetch classifies it alike)."""


class _Content:
    def __init__(self, body: bytes, truncated: bool) -> None:
        self._body = body
        self._truncated = truncated

    async def iter_any(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body
        if self._truncated:  # a reader wanting more than was kept must not take a part for the whole
            raise ResponseError(f"response body over the {MAX_BODY_KEPT + 1} bytes this client keeps")


class LeanResponse:
    __slots__ = ("status", "headers", "body", "keep_alive", "content")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes, keep_alive: bool,
                 truncated: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.content = _Content(body, truncated)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    @property
    def charset(self) -> str | None:
        ctype = self.headers.get("Content-Type", "")
        for part in ctype.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset":
                return value.strip('"') or None
        return None


class _Connection(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's (which does not subclass asyncio.Transport)
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[LeanResponse] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._received = False  # any byte of the current answer

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ResponseError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool | None:
        # An answer without Content-Length or chunking ends with the connection.
        if self._waiter is not None and not self._waiter.done() and self._headers_done:
            self._complete(keep_alive=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._headers_done and exc is None:
                self._complete(keep_alive=False)
            else:
                self._waiter.set_exception(ConnectionResetError("connection closed before a complete answer"))

    # -- httptools callbacks
    _headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, chunk: bytes) -> None:
        # One byte over the limit is kept, so a reader with a limit up to MAX_BODY_KEPT sees "more".
        if self._size <= MAX_BODY_KEPT:
            self._body.append(chunk[: MAX_BODY_KEPT + 1 - self._size])
        self._size += len(chunk)

    def on_message_complete(self) -> None:
        self._complete(keep_alive=self._parser.should_keep_alive())

    # -- use
    def _complete(self, keep_alive: bool) -> None:
        if self._waiter is None or self._waiter.done():
            return
        body = b"".join(self._body)
        response = LeanResponse(
            self._parser.get_status_code(), CIMultiDictProxy(CIMultiDict(self._headers)), body, keep_alive,
            truncated=self._size > len(body),
        )
        self._waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes) -> LeanResponse:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._size = [], [], 0
        self._headers_done = self._received = False
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(request)
        return await self._waiter

    @property
    def answered_nothing(self) -> bool:
        return not self._received


class LeanClient:
    """Keep-alive connections per origin. ``check`` (the destination guard) sees every address a
    host resolves to before a connection is made."""

    def __init__(self, *, check: AddressCheck | None = None, ssl_context: ssl_module.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._check = check
        self._ssl = ssl_context
        self._default_headers = dict(headers or {})
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    @asynccontextmanager
    async def request(
        self, method: str, url: yarl.URL, *, data: bytes | None = None, headers: Mapping[str, str] | None = None,
        allow_redirects: bool = False,
    ) -> AsyncIterator[LeanResponse]:
        if allow_redirects:
            raise ValueError("LeanClient does not follow redirects (fetch does)")
        yield await self._request(method, url, data, headers or {})

    async def _request(self, method: str, url: yarl.URL, body: bytes | None, headers: Mapping[str, str]) -> LeanResponse:
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise aiohttp.InvalidURL(url)
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: Origin = (url.scheme, url.raw_host, port)
        payload = _request_bytes(method, url, body, {**self._default_headers, **headers})
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            try:
                response = await conn.exchange(payload)
            except ConnectionResetError:
                if conn.answered_nothing:
                    continue  # the server had closed the idle connection: try another one
                raise
            except BaseException:
                conn.close()
                raise
            self._release(origin, conn, response)
            return response
        conn = await self._connect(origin)
        try:
            response = await conn.exchange(payload)
        except BaseException:
            conn.close()
            raise
        self._release(origin, conn, response)
        return response

    def _release(self, origin: Origin, conn: _Connection, response: LeanResponse) -> None:
        if not response.keep_alive or conn.closed or self._closed:
            conn.close()
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        idle.append(conn)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        literal = host[1:-1] if host.startswith("[") else host
        try:
            ipaddress.ip_address(literal)
            addresses = [literal]
        except ValueError:
            infos = await loop.getaddrinfo(literal, port, type=_SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if self._check is not None:
            self._check(literal, addresses)
        ssl_context: ssl_module.SSLContext | None = None
        if scheme == "https":
            ssl_context = self._ssl or _default_ssl()
        error: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    _Connection, address, port, ssl=ssl_context, server_hostname=literal if ssl_context else None,
                )
                return conn
            except OSError as exc:
                error = exc
        raise error or OSError(f"no address for {host}")


_SOCK_STREAM = 1  # socket.SOCK_STREAM
_ssl_default: ssl_module.SSLContext | None = None


def _default_ssl() -> ssl_module.SSLContext:
    global _ssl_default
    if _ssl_default is None:
        _ssl_default = ssl_module.create_default_context()
    return _ssl_default


def _request_bytes(method: str, url: yarl.URL, body: bytes | None, headers: Mapping[str, str]) -> bytes:
    target = url.raw_path_qs or "/"
    host = url.raw_host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if url.port is not None and not url.is_default_port():
        host = f"{host}:{url.port}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head
