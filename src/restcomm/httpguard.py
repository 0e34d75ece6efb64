"""Slow and idle HTTP clients cannot hold the server: deadlines per connection and connection caps.

uvicorn keeps a connection open for as long as its client likes while the request is incomplete:
its keep-alive timeout only runs between requests and any byte received cancels it, so a client
that sends its request head (or its body) a byte at a time, or opens a connection and sends
nothing, holds a connection (a file descriptor) for ever. Enough of them and the process runs out
of descriptors and legitimate clients are refused (slowloris). This module is the HTTP protocol
the server runs instead of uvicorn's plain one (``restcomm serve`` passes it as ``http=``); it adds:

* **head deadline** (``http_header_timeout``): the request line and headers must be complete within
  this many seconds of the connection opening, or of the first byte of a later request on a
  kept-alive connection. Trickling bytes does not extend it.
* **body deadline** (``http_body_timeout``): the body must be complete within this many seconds of
  the head (not counted while the server itself has paused reading because the application has not
  consumed what it was sent).
* **send deadline** (``http_send_timeout``): a response the client does not read (the server's
  write buffer stays full) is abandoned after this many seconds.
* **idle keep-alive** (``http_keep_alive_timeout``, uvicorn's ``timeout_keep_alive``).
* **connections per client address** (``http_max_connections_per_address``; an IPv4 address or an
  IPv6 /64; trusted proxies, ``forwarded_allow_ips``, are not counted): one more is closed at once.
* **connections in all** (``http_max_connections``): at the cap, a new connection evicts the
  connection that has waited longest on its client (for a request head, a body, to read a
  response, or idle between requests), preferring one from the newcomer's own address (so a flood
  from a few addresses churns its own connections, not other clients'); only when every
  connection is busy in the application is the new one closed. So a flood of slow connections
  cannot lock out a client that sends a request at a normal speed.

A connection closed by a deadline or a cap is just closed (no response: the request is
incomplete, or the client is not reading); the count of each is in the ``restcomm_http_closed_total``
metric. All of this is per server process, as the rest of the limits are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from restcomm import observability
from restcomm.config import Settings
from restcomm.limits import client_key

log = logging.getLogger("restcomm.http")

# Descriptors kept for everything that is not an HTTP connection (database, logs, SMPP binds,
# outgoing webhooks and SMTP) when the connection cap is derived from the open-file limit.
_RESERVED_FDS = 256
_AUTO_MAX_CONNECTIONS = 10_000


def effective_max_connections(settings: Settings) -> int:
    """``http_max_connections``, or when 0 the open-file limit less a reserve (at most 10000)."""
    if settings.http_max_connections > 0:
        return settings.http_max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _AUTO_MAX_CONNECTIONS
    return max(16, min(_AUTO_MAX_CONNECTIONS, soft - _RESERVED_FDS))


class _Proxies:
    """``forwarded_allow_ips``: the peers not counted per address (their connections carry many clients)."""

    def __init__(self, spec: str) -> None:
        self.any = False
        self.addresses: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item == "*":
                self.any = True
            elif "/" in item:
                try:
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    self.addresses.add(item)
            else:
                self.addresses.add(item)

    def __contains__(self, address: str) -> bool:
        if self.any or address in self.addresses:
            return True
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


class Guard:
    """The shared state of one process's connections: counts per address, the waiting ones by age."""

    def __init__(self, settings: Settings) -> None:
        self.header_timeout = settings.http_header_timeout
        self.body_timeout = settings.http_body_timeout
        self.send_timeout = settings.http_send_timeout
        self.max_connections = effective_max_connections(settings)
        self.max_per_address = settings.http_max_connections_per_address
        self.proxies = _Proxies(settings.forwarded_allow_ips)
        self.open = 0
        self.per_address: dict[str, int] = {}
        # Connections waiting on their client (head, body, response unread, idle), oldest first: the
        # eviction order; and the same per client address.
        self.waiting: OrderedDict[GuardedProtocol, None] = OrderedDict()
        self.waiting_by: dict[str, OrderedDict[GuardedProtocol, None]] = {}
        self.closed = observability.HTTP_CLOSED.labels

    def admit(self, conn: GuardedProtocol, key: str | None) -> str | None:
        """Count a new connection; the reason to refuse it, if any."""
        if key is not None:
            count = self.per_address.get(key, 0)
            if 0 < self.max_per_address <= count:
                return "address"
            self.per_address[key] = count + 1
            conn.address_key = key
        if self.open >= self.max_connections:
            # Make room: the longest-waiting connection of the newcomer's own address if it has one
            # (a flood from one address churns its own connections), else the longest-waiting of all.
            mine = self.waiting_by.get(key) if key is not None else None
            victim = next(iter(mine)) if mine else next(iter(self.waiting), None)
            if victim is None:
                self.release_address(conn)
                return "capacity"
            victim.evict()  # releases it
        self.open += 1
        conn.counted = True
        return None

    def wait(self, conn: GuardedProtocol) -> None:
        """``conn`` now waits on its client (again: it moves to the end)."""
        self.unwait(conn)
        self.waiting[conn] = None
        key = conn.address_key
        if key is not None:
            mine = self.waiting_by.get(key)
            if mine is None:
                mine = self.waiting_by[key] = OrderedDict()
            mine[conn] = None

    def unwait(self, conn: GuardedProtocol) -> None:
        if self.waiting.pop(conn, 0) is None:  # it was there
            key = conn.address_key
            mine = self.waiting_by.get(key) if key is not None else None
            if mine is not None:
                mine.pop(conn, None)
                if not mine:
                    del self.waiting_by[key]  # type: ignore[arg-type]

    def release_address(self, conn: GuardedProtocol) -> None:
        key = conn.address_key
        if key is None:
            return
        conn.address_key = None
        count = self.per_address.get(key, 0) - 1
        if count > 0:
            self.per_address[key] = count
        else:
            self.per_address.pop(key, None)

    def release(self, conn: GuardedProtocol) -> None:
        self.unwait(conn)
        self.release_address(conn)
        if conn.counted:
            conn.counted = False
            self.open -= 1


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and caps of ``Guard``."""

    guard: Guard  # set on the subclass made by ``protocol_class``

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address_key: str | None = None
        self.counted = False
        self.deadline: asyncio.TimerHandle | None = None
        self.send_deadline: asyncio.TimerHandle | None = None
        self.phase = ""  # "head", "body", "" (in the application, or idle after a response)
        self.running: Any = None  # the request the application is answering (self.cycle is the newest parsed)

    # --- deadlines -------------------------------------------------------------------------

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self.phase = phase
        if seconds > 0:
            self.deadline = self.loop.call_later(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.phase = ""

    def _waiting(self, waiting: bool) -> None:
        if waiting:
            self.guard.wait(self)
        else:
            self.guard.unwait(self)

    def _expired(self, phase: str) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if phase == "body" and self.flow.read_paused:
            # The application has not consumed what it was sent; not the client's fault.
            self._arm("body", self.guard.body_timeout)
            return
        self.guard.closed(phase).inc()
        log.info("closing a connection from %s: request %s not received within the deadline",
                 self.client[0] if self.client else "?", phase)
        self._close()

    def _close(self) -> None:
        self._disarm()
        self.guard.release(self)
        # The application may be writing a response (or reading the body): it must see the
        # disconnect now, before the transport reports the loss (a write to an aborted transport raises).
        for cycle in (self.running, self.cycle, *(queued for queued, _app in self.pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.transport.abort()

    def evict(self) -> None:
        """Closed to make room for a new connection."""
        if self.transport is None or self.transport.is_closing():
            self.guard.release(self)  # already on its way out: its place is free
            return
        self.guard.closed("evicted").inc()
        self._close()

    # --- uvicorn's protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        key = None
        if self.client is not None and self.client[0] not in self.guard.proxies:
            key = client_key(self.client[0])
        refused = self.guard.admit(self, key)
        if refused is not None:
            self.guard.closed(refused).inc()
            transport.abort()
            return
        self._arm("head", self.guard.header_timeout)
        self._waiting(True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.send_deadline is not None:
            self.send_deadline.cancel()
            self.send_deadline = None
        self.guard.release(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase != "head":  # a later request on a kept-alive connection: its head starts now
            self._arm("head", self.guard.header_timeout)
            self._waiting(True)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if not self.pipeline or self.pipeline[0][0] is not self.cycle:
            self.running = self.cycle  # started at once (not queued behind a pipelined request)
        for name, _value in self.headers:
            if name == b"content-length" or name == b"transfer-encoding":
                self._arm("body", self.guard.body_timeout)
                return
        self._disarm()  # no body: the request is complete (on_message_complete follows at once)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            # Answered before its body ended (e.g. 401, 413): the connection is idle from now on, and
            # uvicorn's keep-alive timer, cancelled by the body's bytes, is not armed again.
            self._arm("head", self.guard.header_timeout)
            self._waiting(True)
        else:
            self._waiting(False)

    def on_response_complete(self) -> None:
        following = self.pipeline[-1][0] if self.pipeline else None  # the one uvicorn starts next
        super().on_response_complete()
        if following is not None and (not self.pipeline or self.pipeline[-1][0] is not following):
            self.running = following
        if self.phase == "" and (self.cycle is None or self.cycle.response_complete) \
                and not self.transport.is_closing():
            self._waiting(True)  # idle until the next request (uvicorn's keep-alive timeout runs)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.send_deadline is None and self.guard.send_timeout > 0:
            self.send_deadline = self.loop.call_later(self.guard.send_timeout, self._send_expired)
        self._waiting(True)  # waiting on the client to read: evictable

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.send_deadline is not None:
            self.send_deadline.cancel()
            self.send_deadline = None
        if self.phase == "" and self.running is not None and not self.running.response_complete:
            self._waiting(False)  # back to sending the response

    def _send_expired(self) -> None:
        self.send_deadline = None
        if self.transport.is_closing():
            return
        self.guard.closed("send").inc()
        log.info("closing a connection to %s: the client does not read its response",
                 self.client[0] if self.client else "?")
        self._close()


def protocol_class(settings: Settings) -> type[GuardedProtocol]:
    """The protocol class for one server process (its own ``Guard``)."""
    return type("RestcommHttpProtocol", (GuardedProtocol,), {"guard": Guard(settings)})
