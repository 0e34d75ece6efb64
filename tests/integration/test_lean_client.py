"""The status-callback HTTP client (restcomm.webhooks.lean) against real loopback servers.

The fetch tests (test_webhook_fetch.py) run every outcome through it as well; these cover what is
its own: connections kept and reused, an idle connection the server closed, bodies delimited by
the connection's end or chunked, and the destination guard consulted before any connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import yarl

from restcomm.webhooks.fetch import FetchOutcome, post_callback
from restcomm.webhooks.guard import DestinationRefused, check_addresses
from restcomm.webhooks.lean import LeanClient


@dataclass
class RawServer:
    """Answers each request with ``answer(n)`` (n = requests so far); counts connections."""

    answer: Callable[[int], bytes]
    close_after_each: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                writer.write(self.answer(len(self.requests)))
                await writer.drain()
                if self.close_after_each:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def url(self, path: str = "/cb") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Callable[[int], bytes], **kw: bool) -> RawServer:
        raw = RawServer(answer, **kw)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start  # type: ignore[misc]
    for s in servers:
        s.close()


@pytest.fixture
async def client() -> AsyncIterator[LeanClient]:
    c = LeanClient()
    yield c
    await c.close()


NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


async def test_connections_are_kept_and_reused(serve, client: LeanClient) -> None:
    raw = await serve(lambda n: NO_CONTENT)
    for i in range(5):
        result = await post_callback(client, raw.url(), {"MessageSid": f"SM{i}", "MessageStatus": "sent"}, "tok")
        assert result.ok, result.error
    assert raw.connections == 1 and len(raw.requests) == 5
    first = raw.requests[0].decode()
    assert first.startswith("POST /cb HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{raw.port}\r\n" in first
    assert "X-Twilio-Signature: " in first and first.endswith("MessageSid=SM0&MessageStatus=sent")


async def test_concurrent_requests_use_separate_connections(serve, client: LeanClient) -> None:
    raw = await serve(lambda n: NO_CONTENT)
    results = await asyncio.gather(*(post_callback(client, raw.url(), {"n": str(i)}, None) for i in range(8)))
    assert all(r.ok for r in results)
    assert len(raw.requests) == 8 and 1 < raw.connections <= 8


async def test_an_idle_connection_the_server_closed_is_replaced(serve, client: LeanClient) -> None:
    raw = await serve(lambda n: NO_CONTENT)
    assert (await post_callback(client, raw.url(), {"a": "1"}, None)).ok
    for w in raw.writers:  # the application closes its idle keep-alive connection
        w.close()
        await w.wait_closed()
    assert (await post_callback(client, raw.url(), {"a": "2"}, None)).ok
    assert raw.connections == 2 and len(raw.requests) == 2


async def test_connection_close_ends_the_body(serve, client: LeanClient) -> None:
    raw = await serve(lambda n: b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nsomething broke",
                      close_after_each=True)
    result = await post_callback(client, raw.url(), {}, None)
    assert result.outcome is FetchOutcome.HTTP_ERROR and result.status == 500 and result.retryable
    assert result.response is not None and result.response.body == b"something broke"
    # The next request needs (and gets) a new connection.
    assert (await post_callback(client, raw.url(), {}, None)).status == 500
    assert raw.connections == 2


async def test_chunked_body_and_headers_are_read(serve, client: LeanClient) -> None:
    raw = await serve(lambda n: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: yes\r\n\r\n"
                                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    url = yarl.URL(raw.url())
    async with client.request("POST", url, data=b"x=1", headers={}) as response:
        assert response.status == 200 and response.headers["X-App"] == "yes"
        assert response.body == b"hello world" and response.keep_alive
    assert (await post_callback(client, raw.url(), {}, None)).ok
    assert raw.connections == 1


async def test_the_guard_sees_the_addresses_before_any_connection(serve) -> None:
    raw = await serve(lambda n: NO_CONTENT)
    client = LeanClient(check=check_addresses)
    try:
        with pytest.raises(DestinationRefused, match="loopback"):
            async with client.request("POST", yarl.URL(raw.url()), data=b"", headers={}):
                pass
        with pytest.raises(DestinationRefused):
            async with client.request("POST", yarl.URL(f"http://localhost:{raw.port}/cb"), data=b"", headers={}):
                pass
    finally:
        await client.close()
    assert raw.connections == 0


async def test_header_values_with_line_breaks_are_refused(serve, client: LeanClient) -> None:
    raw = await serve(lambda n: NO_CONTENT)
    with pytest.raises(ValueError, match="line break"):
        async with client.request("POST", yarl.URL(raw.url()), data=b"", headers={"X-A": "1\r\nX-B: 2"}):
            pass
    assert raw.requests == []
