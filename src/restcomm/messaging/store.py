"""The messaging queries: claiming work with leases, recording transitions, the callback outbox.

Every function that changes state takes the connection of a transaction the caller owns (in
practice a group-commit job, see writer.py), so a status change, the status callbacks it causes
and any notification commit together or not at all.

Claiming is one statement shape for both databases: select the due rows (PostgreSQL adds
``FOR UPDATE SKIP LOCKED`` so that several nodes never take the same row), then stamp them with this
node's lease. On SQLite the claim runs inside the single writer's ``BEGIN IMMEDIATE`` transaction,
which gives the same exclusivity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import model as m
from restcomm.phone import to_e164
from restcomm.store.schema import incoming_phone_numbers, messages, opt_outs, status_callbacks

Row = Mapping[str, Any]


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def _lockable(conn: AsyncConnection, stmt: Any) -> Any:
    return stmt.with_for_update(skip_locked=True) if is_postgres(conn) else stmt


async def insert_ignore(conn: AsyncConnection, table: Any, row: dict[str, Any]) -> None:
    """INSERT that silently keeps the existing row on a primary-key conflict (both databases)."""
    dialect = postgresql if is_postgres(conn) else sqlite
    await conn.execute(dialect.insert(table).values(**row).on_conflict_do_nothing())


# ---------------------------------------------------------------------------------------------
# Lookups used by validation


def number_forms(number: str) -> list[str]:
    """A number as given, its E.164 form, and with the leading + removed or added."""
    forms = [number]
    e164 = to_e164(number)
    if e164 and e164 not in forms:
        forms.append(e164)
    alt = number[1:] if number.startswith("+") else "+" + number
    if alt not in forms:
        forms.append(alt)
    return forms


async def owned_number(conn: AsyncConnection, account: Row, number: str) -> Row | None:
    """The account's own literal (non-pattern) IncomingPhoneNumber matching ``number``.

    Looked up through the (organization, phone number) unique index, then checked for the owner.
    """
    n = incoming_phone_numbers
    rows = (
        await conn.execute(
            select(n.c.sid, n.c.account_sid, n.c.phone_number, n.c.is_pattern).where(
                n.c.organization_sid == account["organization_sid"], n.c.phone_number.in_(number_forms(number))
            )
        )
    ).mappings().all()
    return next((r for r in rows if r["account_sid"] == account["sid"] and not r["is_pattern"]), None)


async def opted_out(conn: AsyncConnection, sender: str, recipient: str) -> bool:
    row = (
        await conn.execute(
            select(opt_outs.c.sender).where(
                opt_outs.c.sender.in_(number_forms(sender)), opt_outs.c.recipient.in_(number_forms(recipient))
            )
        )
    ).first()
    return row is not None


async def opt_out_times(conn: AsyncConnection, rows: Sequence[Row]) -> dict[tuple[str, str], datetime]:
    """Opt-outs that concern any of ``rows`` (keyed by (sender, recipient) as stored)."""
    if not rows:
        return {}
    senders = {f for r in rows for f in number_forms(r["from_number"])}
    recipients = {f for r in rows for f in number_forms(r["to_number"])}
    found = (
        await conn.execute(
            select(opt_outs.c.sender, opt_outs.c.recipient, opt_outs.c.date_created).where(
                opt_outs.c.sender.in_(senders), opt_outs.c.recipient.in_(recipients)
            )
        )
    ).all()
    return {(s, r): d for s, r, d in found}


def blocked_by_opt_out(message: Row, opt_outs_found: Mapping[tuple[str, str], datetime]) -> bool:
    """True when the recipient opted out of this sender after the message was created.

    Messages created after the opt-out were already refused when they were submitted (21610); the
    one message created in the same instant is the platform's own STOP confirmation, which must go.
    """
    for s in number_forms(message["from_number"]):
        for r in number_forms(message["to_number"]):
            when = opt_outs_found.get((s, r))
            if when is not None and when > message["date_created"]:
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Status callbacks (the outbox)


async def enqueue_callbacks(
    conn: AsyncConnection, items: Iterable[tuple[Row, str, int | None, int | None]], now: datetime
) -> None:
    """Queue one status callback per (message, status, error_code, seq) for messages that asked for one.

    ``seq`` orders a message's callbacks; None means "after whatever is already queued".
    """
    rows: list[dict[str, Any]] = []
    for message, status, error_code, seq in items:
        url = message.get("status_callback")
        if not url:
            continue
        if seq is None:
            seq = (
                await conn.execute(
                    select(func.coalesce(func.max(status_callbacks.c.seq), 0)).where(
                        status_callbacks.c.message_sid == message["sid"]
                    )
                )
            ).scalar_one() + 1
        rows.append(
            {
                "message_sid": message["sid"],
                "seq": seq,
                "url": url,
                "method": (message.get("status_callback_method") or "POST").upper(),
                "params": orjson.dumps(m.callback_params(message, status, error_code)).decode(),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_owner": None,
                "lease_until": None,
                "date_created": now,
            }
        )
    if rows:
        await conn.execute(insert(status_callbacks), rows)


# Sequence numbers for the transitions the dispatcher makes itself (queued gives no callback, as
# at Twilio); later ones (carrier receipts) append after the highest queued so far.
SEQ_SENDING, SEQ_SENT, SEQ_FINAL = 1, 2, 3


async def set_status(
    conn: AsyncConnection,
    rows: Sequence[Row],
    status: str,
    now: datetime,
    *,
    error_code: int | None = None,
    seq: int | None = None,
    extra_callbacks: Sequence[tuple[str, int]] = (),
    **values: Any,
) -> None:
    """Move ``rows`` to ``status`` (releasing their lease) and queue their callbacks.

    ``extra_callbacks`` are (status, seq) pairs queued *before* this one, for a message that passes
    through intermediate statuses in one step (internal delivery: sent, then delivered).
    """
    if not rows:
        return
    sids = [r["sid"] for r in rows]
    changes: dict[str, Any] = {"status": status, "date_updated": now, "lease_owner": None, "lease_until": None}
    if error_code is not None:
        changes["error_code"] = error_code
        changes["error_message"] = m.MESSAGE_ERRORS.get(error_code, "")
    if status in (m.SENT, m.DELIVERED):
        changes["date_sent"] = now
    changes.update(values)
    for i in range(0, len(sids), 500):
        await conn.execute(update(messages).where(messages.c.sid.in_(sids[i : i + 500])).values(**changes))
    items: list[tuple[Row, str, int | None, int | None]] = []
    for r in rows:
        if not r.get("status_callback"):
            continue
        for st, sq in extra_callbacks:
            items.append((r, st, None, sq))
        items.append((r, status, error_code, seq))
    await enqueue_callbacks(conn, items, now)


# ---------------------------------------------------------------------------------------------
# Claiming


async def claim_outbound(
    conn: AsyncConnection, owner: str, now: datetime, lease: float, limit: int
) -> tuple[list[Row], list[Row]]:
    """Claim due outbound messages: (fresh ones now 'sending', interrupted ones whose lease expired).

    A fresh claim queues the 'sending' callback. An expired 'sending' row that had not been handed
    to anyone (route still null) is simply taken again; one that had been handed to a carrier is
    returned separately, because resending it could deliver it twice.
    """
    until = now + timedelta(seconds=lease)
    fresh = list(
        (
            await conn.execute(
                _lockable(
                    conn,
                    select(messages)
                    .where(messages.c.status == m.QUEUED, messages.c.next_attempt_at <= now)
                    .order_by(messages.c.next_attempt_at)
                    .limit(limit),
                )
            )
        ).mappings()
    )
    stale = list(
        (
            await conn.execute(
                _lockable(
                    conn,
                    select(messages)
                    .where(messages.c.status == m.SENDING, messages.c.lease_until < now)
                    .order_by(messages.c.next_attempt_at)
                    .limit(limit),
                )
            )
        ).mappings()
    )
    retake = [r for r in stale if r["route"] is None]
    in_doubt = [r for r in stale if r["route"] is not None]
    sids = [r["sid"] for r in fresh + retake]
    if sids:
        await conn.execute(
            update(messages)
            .where(messages.c.sid.in_(sids))
            .values(
                status=m.SENDING, lease_owner=owner, lease_until=until, attempts=messages.c.attempts + 1, date_updated=now
            )
        )
    # A message back from an unavailable carrier ('attempts' > 0) already reported 'sending'.
    await enqueue_callbacks(conn, [(r, m.SENDING, None, SEQ_SENDING) for r in fresh if r["attempts"] == 0], now)
    claimed = [{**r, "status": m.SENDING, "lease_owner": owner, "lease_until": until} for r in fresh + retake]
    return claimed, in_doubt


async def claim_apps(
    conn: AsyncConnection, owner: str, now: datetime, lease: float, limit: int
) -> tuple[list[Row], list[Row]]:
    """Claim inbound messages whose application should run: (now 'claimed', interrupted ones).

    'pending' messages, and 'claimed' ones whose node died before asking the application (nothing
    was sent for them), become 'claimed' by this node. A 'running' row whose lease expired belongs to
    a node that died during the application request: it is returned as interrupted and is never run
    again, so no application sees a message twice.
    """
    until = now + timedelta(seconds=lease)
    waiting = or_(
        messages.c.app_state == m.APP_PENDING,
        and_(messages.c.app_state == m.APP_CLAIMED, messages.c.lease_until < now),
    )
    pending = list(
        (
            await conn.execute(
                _lockable(conn, select(messages).where(waiting).order_by(messages.c.date_created).limit(limit))
            )
        ).mappings()
    )
    interrupted = list(
        (
            await conn.execute(
                _lockable(
                    conn,
                    select(messages)
                    .where(messages.c.app_state == m.APP_RUNNING, messages.c.lease_until < now)
                    .limit(limit),
                )
            )
        ).mappings()
    )
    if pending:
        await conn.execute(
            update(messages)
            .where(messages.c.sid.in_([r["sid"] for r in pending]))
            .values(app_state=m.APP_CLAIMED, lease_owner=owner, lease_until=until, date_updated=now)
        )
    if interrupted:
        await conn.execute(
            update(messages)
            .where(messages.c.sid.in_([r["sid"] for r in interrupted]))
            .values(app_state=m.APP_INTERRUPTED, lease_owner=None, lease_until=None, date_updated=now)
        )
    return [{**r, "app_state": m.APP_CLAIMED} for r in pending], interrupted


_START_APP = (
    update(messages)
    .where(messages.c.sid == bindparam("b_sid"), messages.c.app_state == m.APP_CLAIMED,
           messages.c.lease_owner == bindparam("b_owner"))
    .values(app_state=m.APP_RUNNING, date_updated=bindparam("b_now"))
)

_FINISH_APP = (
    update(messages)
    .where(messages.c.sid == bindparam("b_sid"), messages.c.lease_owner == bindparam("b_owner"))
    .values(app_state=bindparam("b_state"), lease_owner=None, lease_until=None, date_updated=bindparam("b_now"))
)


async def start_app(conn: AsyncConnection, sid: str, owner: str, now: datetime) -> bool:
    """'claimed' → 'running', committed before the first request; False if the claim was lost."""
    result = await conn.execute(_START_APP, {"b_sid": sid, "b_owner": owner, "b_now": now})
    return bool(result.rowcount)


async def finish_apps(conn: AsyncConnection, owner: str, finished: Sequence[tuple[str, str]], now: datetime) -> None:
    """Record the end of this node's sessions: (inbound sid, final app_state) pairs, one statement."""
    await conn.execute(
        _FINISH_APP, [{"b_sid": sid, "b_owner": owner, "b_state": state, "b_now": now} for sid, state in finished]
    )


async def renew_leases(conn: AsyncConnection, owner: str, now: datetime, lease: float) -> None:
    """Keep this node's claims alive while it works on them (long application sessions, carriers)."""
    until = now + timedelta(seconds=lease)
    # Each through an index (status / app_state / state), never a scan of the whole table.
    mine = messages.c.lease_owner == owner
    await conn.execute(update(messages).where(messages.c.status == m.SENDING, mine).values(lease_until=until))
    await conn.execute(
        update(messages)
        .where(messages.c.app_state.in_((m.APP_CLAIMED, m.APP_RUNNING)), mine)
        .values(lease_until=until)
    )
    await conn.execute(
        update(status_callbacks)
        .where(status_callbacks.c.state == "pending", status_callbacks.c.lease_owner == owner)
        .values(lease_until=until)
    )


# ---------------------------------------------------------------------------------------------
# Callback outbox claiming


async def claim_callbacks(conn: AsyncConnection, owner: str, now: datetime, lease: float, limit: int) -> list[Row]:
    """Due callbacks whose predecessors (lower seq, same message) are all finished."""
    earlier = status_callbacks.alias("earlier")
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.message_sid == status_callbacks.c.message_sid,
            earlier.c.seq < status_callbacks.c.seq,
            earlier.c.state == "pending",
        )
        .exists()
    )
    free = or_(status_callbacks.c.lease_until.is_(None), status_callbacks.c.lease_until < now)
    rows = list(
        (
            await conn.execute(
                _lockable(
                    conn,
                    select(status_callbacks)
                    .where(
                        and_(status_callbacks.c.state == "pending", status_callbacks.c.next_attempt_at <= now),
                        free,
                        ~blocked,
                    )
                    .order_by(status_callbacks.c.next_attempt_at, status_callbacks.c.id)
                    .limit(limit),
                )
            )
        ).mappings()
    )
    if rows:
        await conn.execute(
            update(status_callbacks)
            .where(status_callbacks.c.id.in_([r["id"] for r in rows]))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease))
        )
    return rows


async def next_callback_due(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the next retry falls due (callbacks already due are waiting for a predecessor)."""
    return (
        await conn.execute(
            select(func.min(status_callbacks.c.next_attempt_at)).where(
                status_callbacks.c.state == "pending", status_callbacks.c.next_attempt_at > now
            )
        )
    ).scalar()
