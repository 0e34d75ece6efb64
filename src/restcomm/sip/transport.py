"""asyncio UDP and TCP on one port: bytes in and out, nothing else.

Datagrams are parsed whole; TCP streams go through :class:`StreamDecoder` (Content-Length framing)
per connection. Unparseable input is counted and dropped (UDP) or closes the connection (TCP, whose
framing is then lost). A peer is ``(transport, host, port)``; for TCP it names the connection, so a
response to a request that came over TCP goes back over that same connection (RFC 3261 §18.2.2).
Outgoing TCP to a peer with no connection opens one and queues the bytes until it is up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .message import Request, Response, SipError, StreamDecoder, parse_message
from .transaction import Peer

log = logging.getLogger("restcomm.sip")

OnMessage = Callable[[Request | Response, Peer], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        if data.strip(b"\r\n") == b"":
            return  # keep-alive
        try:
            msg = parse_message(data)
        except SipError as exc:
            self.owner.errors += 1
            log.debug("dropping bad datagram from %s: %s", addr, exc)
            return
        self.owner.on_message(msg, ("UDP", addr[0], addr[1]))


class SipTransport:
    def __init__(self, host: str, port: int, on_message: OnMessage,
                 on_unreachable: Callable[[Peer], None] | None = None) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self.on_unreachable = on_unreachable
        self.errors = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._conns: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # TCP first: with port 0 the kernel picks a port, and UDP then binds the same number.
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port))
        self._udp = udp  # type: ignore[assignment]

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for w in list(self._conns.values()):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except (TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                pass

    def send(self, data: bytes, peer: Peer) -> None:
        transport, host, port = peer
        if transport.upper() == "UDP":
            if self._udp is not None:
                self._udp.sendto(data, (host, port))
            return
        key = (host, port)
        w = self._conns.get(key)
        if w is not None and not w.is_closing():
            w.write(data)
            return
        if key in self._pending:
            self._pending[key].append(data)
            return
        self._pending[key] = [data]
        self._spawn(self._connect(key))

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _connect(self, key: tuple[str, int]) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*key), 10)
        except (TimeoutError, OSError) as exc:
            log.info("TCP connect to %s:%s failed: %s", key[0], key[1], exc)
            self._pending.pop(key, None)
            if self.on_unreachable is not None:
                self.on_unreachable(("TCP", key[0], key[1]))
            return
        self._conns[key] = writer
        for data in self._pending.pop(key, []):
            writer.write(data)
        await self._read(reader, writer, key)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = writer.get_extra_info("peername")
        key = (addr[0], addr[1])
        self._conns[key] = writer
        await self._read(reader, writer, key)

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: tuple[str, int]) -> None:
        dec = StreamDecoder()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    msgs = dec.feed(data)
                except SipError as exc:
                    self.errors += 1
                    log.info("closing TCP %s:%s: %s", key[0], key[1], exc)
                    break
                for m in msgs:
                    self.on_message(m, ("TCP", key[0], key[1]))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if self._conns.get(key) is writer:
                del self._conns[key]
            writer.close()
