"""How a message leaves the platform: the carrier transport interface and the prefix router.

A carrier (the SMPP ESME, or anything else that can hand a message to a network) implements
``Transport`` and registers itself with ``Messaging.register_carrier``. The dispatcher picks the
carrier whose prefix is the longest match of the destination number (``[[sms.routes]]`` in the
configuration, plus any prefixes a transport declares itself) and calls ``send``.

``send`` must be honest about what happened, because the pipeline promises never to repeat a
message that was handed on:

* ``accepted``: the carrier took every segment; ``message_ids`` (one per segment, in order) let
  delivery receipts find the message later (``Messaging.record_receipt``).
* ``rejected``: refused for good; ``error_code`` is the Twilio 30xxx code stored on the message.
* ``unavailable``: nothing was handed on and trying again later is safe (no bind, throttled,
  queue full). The dispatcher puts the message back in the queue with a backoff.

A transport may also have an ``available`` attribute: while it is False (an SMPP carrier with no
bind up) the router passes over it for the next matching route (failover).

Hosted numbers never reach a transport: the dispatcher delivers them internally first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

SendStatus = Literal["accepted", "rejected", "unavailable"]


@dataclass(frozen=True)
class CarrierMessage:
    """What a transport is asked to send."""

    sid: str
    account_sid: str
    source: str
    destination: str
    body: str
    encoding: str  # "GSM-7" or "UCS-2", as recorded on the message
    num_segments: int


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    message_ids: tuple[str, ...] = ()
    error_code: int | None = None
    error_message: str | None = None


@runtime_checkable
class Transport(Protocol):
    name: str

    async def send(self, message: CarrierMessage) -> SendResult: ...


class CarrierRouter:
    """Longest-prefix choice of a carrier for a destination; "" is the default route."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str]] = []  # (prefix, carrier), longest first
        self.transports: dict[str, Transport] = {}

    def add_route(self, prefix: str, carrier: str) -> None:
        self._routes.append((prefix, carrier))
        self._routes.sort(key=lambda r: len(r[0]), reverse=True)

    def register(self, transport: Transport, prefixes: Iterable[str] = ()) -> None:
        self.transports[transport.name] = transport
        for p in prefixes:
            self.add_route(p, transport.name)

    def unregister(self, name: str) -> None:
        self.transports.pop(name, None)

    def carrier_for(self, destination: str) -> str | None:
        """The carrier name routed for ``destination`` (which may not be registered), or None.

        Failover: a registered transport whose ``available`` attribute is False (an SMPP carrier
        with no bind up) is passed over for the next matching route; when none is available the
        first match is returned.
        """
        digits = destination.strip()
        first: str | None = None
        for prefix, carrier in self._routes:
            if not _matches(prefix, digits):
                continue
            transport = self.transports.get(carrier)
            if transport is not None and not getattr(transport, "available", True):
                first = first or carrier  # down: try the next match, keep this one as the fallback
                continue
            return carrier
        return first


def _matches(prefix: str, number: str) -> bool:
    if number.startswith(prefix):
        return True
    # "+44" also matches "44..." and vice versa: numbers arrive with and without the plus.
    if prefix.startswith("+"):
        return number.startswith(prefix[1:]) and not number.startswith("+")
    return number.startswith("+" + prefix) if prefix else True
