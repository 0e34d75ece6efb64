"""The service container: what one server process holds for its lifetime, in typed slots.

This is a leaf module (it imports only other leaves), so every layer may take a ``Services``
without importing the layer that builds it. Where a lower layer needs a service that a higher
layer provides (the API needs the messaging engine, the readiness probe needs the carriers'
state), the slot is typed by a small Protocol here rather than by the concrete class, so the
dependency points down.

Filling the slots is the job of the wiring (``restcomm.background``); a capability that is not
configured leaves its slot ``None``. Adding a capability (voice: a SIP listener, a media engine,
call workers) means: a Protocol and an optional slot here if other layers must reach it, and an
entry in ``restcomm.background.PROVIDERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine

from restcomm.config import Settings
from restcomm.limits import Limits
from restcomm.profiles import ProfileCache
from restcomm.store.session import Database
from restcomm.util import utcnow

if TYPE_CHECKING:
    from restcomm.store.reader import Reader
    from restcomm.voice.ports import CallControl, CallPlacer


class BackgroundService(Protocol):
    """Something that runs for the lifetime of the server (started in order, stopped in reverse)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Draining(Protocol):
    """A background service that must stop taking new work before any service is stopped.

    On shutdown the lifespan first calls ``drain`` on every started service that has it (in
    reverse start order), then ``stop`` on every one. So, for instance, the messaging dispatcher
    stops claiming while the carriers it sends through are still bound."""

    async def drain(self) -> None: ...


class MessagingEngine(Protocol):
    """What the API asks of the messaging engine (``restcomm.messaging.engine.Messaging``)."""

    async def check_sender(self, account: Mapping[str, Any], out: Any) -> None: ...

    async def check_destination(self, account: Mapping[str, Any], out: Any) -> None: ...

    async def submit(self, account_sid: str, out: Any, *, status_callback: str | None = None,
                     status_callback_method: str | None = None) -> dict[str, Any]: ...

    def wake(self, *, outbound: bool = False, apps: bool = False, callbacks: bool = False) -> None:
        """After a commit that queued work (status callbacks of calls, too): look now, not at the next poll."""


class CarrierStates(Protocol):
    """The configured carriers of this node, as the API, the probes and the metrics see them."""

    def state(self) -> list[dict[str, Any]]: ...


class ServerView(Protocol):
    """The whole server's carriers with ``restcomm serve --workers N`` (web/peers.py): every
    worker's share merged, whichever worker answers."""

    async def carrier_states(self) -> list[dict[str, Any]] | None: ...


class Waker(Protocol):
    """A worker that polls its queue and can be told there is work now (the email outbox)."""

    def wake(self) -> None: ...


class NodeWakes(Protocol):
    """Wake-ups between nodes on one PostgreSQL database (``restcomm.store.wakeups``): ``publish``
    after committing work another node may take; ``subscribe`` a local wake to what others publish.
    Topics: ``outbound``, ``apps``, ``callbacks``, ``email``."""

    def publish(self, *topics: str) -> None: ...

    def subscribe(self, topic: str, handler: Callable[[], None]) -> None: ...


@dataclass
class Services:
    """One server process's settings, database and running services."""

    settings: Settings
    engine: AsyncEngine
    clock: Callable[[], datetime] = utcnow
    organization_sid: str = ""
    background: list[BackgroundService] = field(default_factory=list)
    reader: Reader = field(init=False)
    limits: Limits = field(init=False)
    profiles: ProfileCache = field(init=False)  # accounts' effective profiles (restcomm.profiles)
    # Typed slots, filled by the wiring (restcomm.background); None when not running.
    messaging: MessagingEngine | None = None
    carriers: CarrierStates | None = None
    # Set in each worker of a multi-process server; None in a single process (this node is the server).
    server_view: ServerView | None = None
    email_sender: Waker | None = None
    # Wake-ups to and from the other nodes (inert on SQLite); None outside a server process.
    wakes: NodeWakes | None = None
    # The voice engine's seam (restcomm.voice.ports): None when no engine runs in this process.
    call_placer: CallPlacer | None = None
    call_control: CallControl | None = None
    _db: Database | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.limits = Limits(self.settings)
        # On SQLite a miss reads on the loop thread's read connection (store/session.py).
        self.profiles = ProfileCache(self.engine, self.settings.profile_cache_seconds,
                                     session=(lambda: self.db.session()) if self.settings.is_sqlite else None)

    @property
    def db(self) -> Database:
        """How API requests reach the database (store/session.py); made on first use."""
        if self._db is None:
            self._db = Database(self.engine, sqlite_synchronous=self.settings.sqlite_synchronous)
        return self._db

    def close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def carrier_states(self) -> list[dict[str, Any]] | None:
        """This node's carriers, or None when none is configured (readiness, metrics)."""
        if self.carriers is None:
            return None
        states = list(self.carriers.state())
        return states or None

    async def server_carrier_states(self) -> list[dict[str, Any]] | None:
        """The server's carriers: every worker's merged with ``--workers N``, else this node's."""
        if self.server_view is not None:
            return await self.server_view.carrier_states()
        return self.carrier_states()

    def publish_wake(self, *topics: str) -> None:
        """Tell the other nodes that work of these kinds was committed (see ``NodeWakes``)."""
        if self.wakes is not None:
            self.wakes.publish(*topics)

    def require_messaging(self) -> MessagingEngine:
        if self.messaging is None:
            raise RuntimeError("the messaging engine is not running in this process")
        return self.messaging

