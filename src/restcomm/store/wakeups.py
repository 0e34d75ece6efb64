"""Wake-ups between nodes: PostgreSQL ``LISTEN``/``NOTIFY`` on one dedicated connection per node.

Within a process a writer that commits work wakes the worker that will take it (an
``asyncio.Event``, see ``restcomm.polling``). Other nodes on the same database used to find that
work only at their next poll. Now the node that committed it also publishes the kind of work
(a *topic*: ``outbound``, ``apps``, ``callbacks``, ``email``) with ``NOTIFY`` on the channel
``restcomm_wake``, and every node holds one asyncpg connection that ``LISTEN``s there and wakes its
own worker for each topic it hears from another node.

Why this shape:

* **After the commit, not inside it.** The wake is published where the local loop is woken, that
  is once the transaction has committed, so the other node's claim sees the rows. Sending it inside
  the writer's transaction (``SELECT pg_notify`` delivered at commit) would put a statement in every
  group commit of every hot path; a NOTIFY on this connection costs the node one round trip per
  burst instead, off the request and commit paths.
* **Coalesced.** Topics published while a NOTIFY is in flight, or within ``min_interval`` of the
  last one, go out together in the next: a node committing hundreds of batches a second sends at
  most ``1 / min_interval`` notifications, and every other node makes at most that many extra
  claims. A woken worker whose claim fills its batch claims again at once, so nothing is lost by
  coalescing.
* **A safety net, not a promise.** A notification is lost when the listening connection is down,
  or arrives while the worker is busy (the event is set, its next pass runs at once). Polling stays:
  the workers still poll (at their configured intervals, which can now be long), the connection is
  re-opened with backoff, and on every (re)connection the local workers are woken once, so work
  committed elsewhere while this node was not listening is claimed at once rather than at the next
  poll.
* **A node ignores its own notifications** (it woke its workers directly): the payload is checked
  against the backend pid of its own connection.

SQLite: nothing here runs (same-host processes keep polling; ``NodeWakes(None, ...)`` is inert).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from restcomm.observability import metrics

log = logging.getLogger("restcomm.wakeups")

CHANNEL = "restcomm_wake"
TOPICS = ("outbound", "apps", "callbacks", "email")

SENT = metrics.counter("restcomm_node_wakes_sent_total", "NOTIFY sent to wake other nodes (coalesced topics)")
RECEIVED = metrics.counter(
    "restcomm_node_wakes_received_total", "Wake-ups received from other nodes, by topic", ("topic",)
)
RECONNECTS = metrics.counter("restcomm_node_wake_connects_total", "Connections of the LISTEN connection (first included)")
LISTENING = metrics.gauge("restcomm_node_wake_listening", "1 while this node's LISTEN connection is up")


def encode(topics: Iterable[str]) -> str:
    """The NOTIFY payload for ``topics``: sorted, comma-separated, known topics only."""
    return ",".join(sorted(set(topics) & set(TOPICS)))


def decode(payload: str) -> list[str]:
    """The known topics of a payload (unknown ones, from a newer node, are ignored)."""
    return [t for t in payload.split(",") if t in TOPICS]


def asyncpg_dsn(database_url: str) -> str | None:
    """The libpq-style DSN asyncpg takes, from the SQLAlchemy URL; None when not PostgreSQL."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class NodeWakes:
    """This node's side of the wake-ups (see the module doc); a background service.

    ``subscribe(topic, handler)`` registers a local wake (called with no argument, in the event
    loop) for a topic heard from another node; ``publish(*topics)`` tells the other nodes, soon and
    coalesced. Inert without a DSN (SQLite, or ``db_notify = false``).
    """

    def __init__(self, dsn: str | None, *, name: str = "", min_interval: float = 0.05,
                 backoff: tuple[float, float] = (0.2, 5.0), keepalive: float = 15.0):
        self.dsn = dsn
        self.name = name or f"restcomm-wake:{os.getpid()}"
        self.min_interval = min_interval
        self.backoff = backoff
        self.keepalive = keepalive
        self._handlers: dict[str, list[Callable[[], None]]] = {}
        self._pending: set[str] = set()
        self._kick = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: Any = None
        self._pid: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.dsn is not None

    def subscribe(self, topic: str, handler: Callable[[], None]) -> None:
        if topic not in TOPICS:
            raise ValueError(f"unknown wake topic {topic!r}")
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, *topics: str) -> None:
        """Wake the other nodes for ``topics`` (after this node's commit of that work)."""
        if self.dsn is None or not topics:
            return
        self._pending.update(topics)
        self._kick.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.dsn is not None:
            self._task = asyncio.create_task(self._run(), name="node-wakes")

    async def stop(self) -> None:
        # Stopped last: what the other services published while stopping (the queue a draining
        # node leaves) goes out before the connection closes.
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pending and self._conn is not None and not self._lost.is_set():
            with contextlib.suppress(Exception):
                await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, encode(self._pending), timeout=2)
        await self._close()

    # -- the connection ----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            try:
                await self._connect()
                delay = self.backoff[0]
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: drop the connection, wait, connect again
                log.warning("wake-up connection to PostgreSQL lost (%s): polling covers until it is back",
                            exc or type(exc).__name__)
            await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _connect(self) -> None:
        import asyncpg

        self._lost.clear()
        conn = await asyncpg.connect(self.dsn, timeout=10, server_settings={"application_name": self.name[:63]})
        self._conn = conn
        self._pid = conn.get_server_pid()
        conn.add_termination_listener(lambda _c: self._lost.set())
        await conn.add_listener(CHANNEL, self._heard)
        RECONNECTS.labels().inc()
        LISTENING.labels().set(1)
        self.connected.set()
        # Work committed by other nodes while this one was not listening: look now, not at the poll.
        self._wake_local(TOPICS)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        LISTENING.labels().set(0)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _serve(self) -> None:
        """Send what is published (coalesced, spaced), check the connection when idle, until it is lost."""
        loop = asyncio.get_running_loop()
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            while True:
                kick = asyncio.ensure_future(self._kick.wait())
                done, _ = await asyncio.wait({kick, lost}, timeout=self.keepalive,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not kick.done():
                    kick.cancel()
                if lost.done():
                    raise ConnectionError("the connection was closed")
                if not done:  # idle: make sure the connection is still there (a silent network loss)
                    await self._conn.fetchval("SELECT 1", timeout=10)
                    continue
                self._kick.clear()
                topics, self._pending = self._pending, set()
                if topics:
                    sent_at = loop.time()
                    await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, encode(topics), timeout=10)
                    SENT.labels().inc()
                    # Spacing: what is published meanwhile goes out together after it.
                    rest = self.min_interval - (loop.time() - sent_at)
                    if rest > 0:
                        await asyncio.sleep(rest)
        finally:
            lost.cancel()

    def _heard(self, _conn: Any, pid: int, _channel: str, payload: str) -> None:
        if pid == self._pid:
            return  # our own: the local workers were woken directly
        topics = decode(payload)
        for topic in topics:
            RECEIVED.labels(topic).inc()
        self._wake_local(topics)

    def _wake_local(self, topics: Iterable[str]) -> None:
        for topic in topics:
            for handler in self._handlers.get(topic, ()):
                try:
                    handler()
                except Exception:
                    log.exception("waking the %s worker failed", topic)
