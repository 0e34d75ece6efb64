"""Where webhooks may go: http/https only, and (operator switch) no private or loopback addresses.

In a multi-tenant deployment a tenant's SmsUrl or StatusCallback must not become a way to reach
the operator's internal network (server-side request forgery). With ``webhook_block_private`` on,
a destination is refused unless every address its host resolves to is globally routable: no
loopback, RFC 1918, link-local (cloud metadata at 169.254.169.254), CGNAT, unique-local, multicast,
reserved or unspecified addresses, including their IPv4-mapped IPv6 forms. Off by default, so local
development (apps on 127.0.0.1) works.

Two parts, both needed for a complete guard (``restcomm.webhooks.fetch`` uses both when the switch
is on: ``create_session(settings=...)`` and ``fetch_document``/``post_callback(..., guard=settings)``):

* ``GuardedResolver`` as the resolver of the aiohttp connector, so the addresses actually connected
  to are the checked ones (a host whose DNS answer changes between a check and the connection,
  "DNS rebinding", is still refused). It raises ``RefusedAddress`` (an ``OSError``), which aiohttp
  reports as the cause of its connection error. Clients that resolve names themselves (the
  keep-alive client of status callbacks, ``webhooks/lean.py``) call ``check_addresses`` with what
  they resolved, right before connecting; it raises ``DestinationRefused``.
* A check of the URL before every request, redirect hops included: aiohttp does not call the
  resolver for an IP-literal host, so ``http://127.0.0.1/`` must be refused there.
  ``check_request(url, settings)`` is that check without DNS (scheme, host, literal addresses), for
  requests made through a guarded session, whose resolver checks host names as it connects;
  ``check_destination(url, settings)`` (or ``await check_destination_async(...)`` in the event
  loop) also resolves host names, for callers without a guarded session. Either raises a clear
  ``DestinationRefused`` that can be reported to the tenant.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from restcomm.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Iterable[str]]


class DestinationRefused(ValueError):
    """The webhook URL may not be requested; the message says why (safe to show to the tenant)."""


class RefusedAddress(OSError):
    """Raised by ``GuardedResolver``: the host resolves to an address webhooks may not reach."""


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if address.teredo is not None:
            return is_public(address.teredo[1])
    return address.is_global and not address.is_multicast


def _split(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused(f"webhook URLs must be http or https, not {scheme or 'relative'!r}")
    host = parts.hostname
    if not host:
        raise DestinationRefused(f"{url!r} has no host")
    return host, port or (443 if scheme == "https" else 80)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _check(host: str, addresses: Iterable[str]) -> None:
    resolved = [a for a in (_literal(x) for x in addresses) if a is not None]
    if not resolved:
        raise DestinationRefused(f"webhook host {host!r} does not resolve")
    for address in resolved:
        if not is_public(address):
            raise DestinationRefused(
                f"webhook host {host!r} resolves to {address}, a private, loopback or reserved address; "
                "this server only calls public addresses"
            )


def _system_resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"webhook host {host!r} does not resolve: {exc}") from None
    return [str(info[4][0]) for info in infos]


def check_destination(url: str, settings: Settings, resolve: Resolve | None = None) -> None:
    """Raise DestinationRefused unless ``url`` may be requested. Resolves the host (blocking) when
    private destinations are refused; in the event loop prefer ``check_destination_async``."""
    host, port = _split(url)
    if not settings.webhook_block_private:
        return
    literal = _literal(host)
    if literal is not None:
        _check(host, [str(literal)])
        return
    _check(host, (resolve or _system_resolve)(host, port))


def check_request(url: str, settings: Settings) -> None:
    """The part of ``check_destination`` that needs no DNS: http(s) with a host, and, when private
    destinations are refused, an IP-literal host must be public. Host names are left to the
    ``GuardedResolver`` of the session that makes the request."""
    if not settings.webhook_block_private:
        return
    host, _port = _split(url)
    literal = _literal(host)
    if literal is not None:
        _check(host, [str(literal)])


async def check_destination_async(url: str, settings: Settings) -> None:
    """``check_destination`` with the resolution done by the event loop (no blocking)."""
    host, port = _split(url)
    if not settings.webhook_block_private or _literal(host) is not None:
        check_destination(url, settings)
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"webhook host {host!r} does not resolve: {exc}") from None
    _check(host, [str(info[4][0]) for info in infos])


def GuardedResolver(settings: Settings, inner: Any = None) -> Any:  # noqa: N802 - used like a class
    """An aiohttp resolver that refuses non-public addresses when the switch is on."""
    import aiohttp
    from aiohttp.abc import AbstractResolver

    class _Guarded(AbstractResolver):
        def __init__(self) -> None:
            self.inner = inner or aiohttp.DefaultResolver()

        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
            infos = await self.inner.resolve(host, port, family)
            if settings.webhook_block_private:
                try:
                    _check(host, [info["host"] for info in infos])
                except DestinationRefused as exc:
                    raise RefusedAddress(str(exc)) from None
            return infos

        async def close(self) -> None:
            await self.inner.close()

    return _Guarded()


def check_addresses(host: str, addresses: Iterable[str]) -> None:
    """Raise DestinationRefused unless every address ``host`` resolved to is public: for clients
    that resolve names themselves (webhooks/lean.py) right before they connect."""
    _check(host, addresses)
