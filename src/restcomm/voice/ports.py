"""The seam between the Calls API and the voice engine (SIP + media + RCML), as Protocols.

The API writes a call's record (status ``queued``) and commits it before it hands the call to a
``CallPlacer``; from then on the engine owns the call and reports every transition through
``voice.store`` (``call_initiated``, ``set_call_status``), in its own transactions, so the record and
its status callbacks stay right whichever process runs the call. Live modification goes through a
``CallControl``.

Where they live: the ``call_placer`` and ``call_control`` slots of the service container
(``restcomm.container.Services``), set by whatever starts the voice engine. Absent means no engine
runs in this process: a created call fails at once (status ``failed``, a 19101 notification, its
``completed`` callback), as a Twilio call that cannot be placed fails after the 201.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class OutboundCall:
    """A call the API asked for, as committed (status ``queued``)."""

    sid: str
    account_sid: str
    from_: str  # the caller id presented (a number, client:name or a SIP URI)
    to: str  # a number (routed to a trunk), client:name, or a sip: URI
    url: str | None  # the RCML document fetched when the callee answers
    method: str
    fallback_url: str | None
    fallback_method: str
    timeout: int  # seconds to let it ring
    record: bool
    application_sid: str | None = None
    sip_headers: Mapping[str, str] = field(default_factory=dict)  # X- headers given after To's '?'
    username: str | None = None  # credentials for the callee's digest challenge
    password: str | None = None


@runtime_checkable
class CallPlacer(Protocol):
    async def place(self, call: OutboundCall) -> None:
        """Start placing ``call`` and return without waiting for it to be answered.

        Raises to refuse it (the API then fails the call with a notification). Once it returns,
        the engine reports the call's progress through ``voice.store``."""
        ...


class CallNotHere(Exception):
    """The call is not running in this process (another node has it, or it just ended)."""


@runtime_checkable
class CallControl(Protocol):
    async def redirect(self, call_sid: str, url: str, method: str) -> None:
        """Stop the call's current RCML and run the document at ``url`` instead (the call stays up)."""
        ...

    async def hangup(self, call_sid: str, status: str) -> None:
        """End the call: ``canceled`` (not answered yet) or ``completed`` (any state)."""
        ...
