"""Operational reads shared by /ready, /metrics and the admin CLI: the send queue and the carriers.

The queue is read from the tables (every node sees the same numbers, so sum nothing across nodes);
the carriers are this process's own, read from ``Services.carrier_states()`` (the ``carriers``
slot of the container: one dict per carrier with at least ``name`` and ``status``: up | degraded
| down). None means no carrier is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm import observability as obs
from restcomm.store.schema import emails, messages, status_callbacks

QUEUE_STATUSES = ("queued", "sending")


@dataclass
class QueueSnapshot:
    depth: dict[str, int] = field(default_factory=dict)  # status -> messages
    oldest: dict[str, datetime] = field(default_factory=dict)  # status -> date_created of the oldest
    callbacks_pending: int = 0
    oldest_callback: datetime | None = None
    emails_queued: int = 0

    def age(self, status: str, now: datetime) -> float | None:
        when = self.oldest.get(status)
        return max(0.0, (now - when).total_seconds()) if when is not None else None


async def queue_snapshot(conn: AsyncConnection) -> QueueSnapshot:
    """Three indexed aggregate reads: messages by queue status, pending callbacks, queued emails."""
    snap = QueueSnapshot()
    rows = await conn.execute(
        select(messages.c.status, func.count(), func.min(messages.c.date_created))
        .where(messages.c.status.in_(QUEUE_STATUSES))
        .group_by(messages.c.status)
    )
    for status, count, oldest in rows:
        snap.depth[status] = int(count)
        if oldest is not None:
            snap.oldest[status] = _naive(oldest)
    for status in QUEUE_STATUSES:
        snap.depth.setdefault(status, 0)
    count, oldest = (
        await conn.execute(
            select(func.count(), func.min(status_callbacks.c.date_created)).where(status_callbacks.c.state == "pending")
        )
    ).one()
    snap.callbacks_pending, snap.oldest_callback = int(count), _naive(oldest) if oldest is not None else None
    snap.emails_queued = int(
        (await conn.execute(select(func.count()).select_from(emails).where(emails.c.status.in_(QUEUE_STATUSES)))).scalar()
        or 0
    )
    return snap


def _naive(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite aggregates come back as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None) if value.tzinfo else value


def export_queue(snap: QueueSnapshot, now: datetime) -> None:
    for status in QUEUE_STATUSES:
        obs.QUEUE_DEPTH.labels(status).set(snap.depth.get(status, 0))
        obs.QUEUE_OLDEST_AGE.labels(status).set(snap.age(status, now) or 0.0)
    obs.CALLBACKS_PENDING.set(snap.callbacks_pending)
    obs.EMAIL_QUEUE_DEPTH.set(snap.emails_queued)


def export_carriers(states: list[dict[str, Any]] | None) -> None:
    families = (obs.SMPP_BINDS, obs.SMPP_WINDOW_IN_USE, obs.SMPP_WINDOW_SIZE, obs.SMPP_QUEUED, obs.SMPP_THROTTLED,
                obs.SMPP_RECONNECTS, obs.SMPP_SUBMITTED, obs.SMPP_ERRORS)
    for family in families:
        family.clear()  # a carrier removed from the configuration disappears from the exposition
    for st in states or ():
        name = str(st.get("name", ""))
        obs.SMPP_BINDS.labels(name, "configured").set(st.get("binds", 0))
        obs.SMPP_BINDS.labels(name, "bound").set(st.get("bound", 0))
        obs.SMPP_WINDOW_IN_USE.labels(name).set(st.get("window_in_use", 0))
        obs.SMPP_WINDOW_SIZE.labels(name).set(st.get("window_size", 0))
        obs.SMPP_QUEUED.labels(name).set(st.get("queued", 0))
        errors = st.get("error_counts") or {}
        obs.SMPP_THROTTLED.labels(name).set_total(errors.get("throttled", 0))
        obs.SMPP_RECONNECTS.labels(name).set_total(st.get("reconnects", 0))
        obs.SMPP_SUBMITTED.labels(name).set_total(st.get("submitted", 0))
        for kind, n in errors.items():
            obs.SMPP_ERRORS.labels(name, kind).set_total(n)
