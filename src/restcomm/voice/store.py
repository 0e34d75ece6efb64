"""Call and recording records, their status callbacks, and recovery of calls whose node died.

Every function that writes takes the connection of a transaction the caller owns, so a call's
transition, the status callback it causes and any notification commit together or not at all.
A call's record is written when it starts (``create_call``) and on every transition, last when it
ends (``set_call_status`` with a final status), so a crash loses at most the transition in flight.

Status callbacks go through the existing outbox (``status_callbacks``, delivered in order with
retries by ``messaging.callbacks``), keyed by the call's SID. Events follow Twilio: ``initiated``,
``ringing``, ``answered`` and ``completed``; only those the call asked for (``StatusCallbackEvent``)
are queued, except ``completed``, which is always queued, also for busy, failed, no-answer and
canceled calls. ``SequenceNumber`` counts the callbacks queued for the call, from 0.

A node that runs a call holds a lease on its row (``node``, ``lease_until``) and renews it
(``renew_call_leases``). ``close_orphaned_calls`` ends the live calls of nodes known dead and those
whose lease expired: an answered call becomes ``completed``, one not yet answered ``failed``, each
with an ``end_reason``, a 19102 notification and its ``completed`` callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.config import SipTrunk
from restcomm.notify import ERROR, write_notification
from restcomm.store.schema import calls, gateways, recordings, sip_registrations, status_callbacks
from restcomm.util import API_VERSION, new_sid, rfc2822

Row = Mapping[str, Any]

QUEUED, RINGING, IN_PROGRESS = "queued", "ringing", "in-progress"
COMPLETED, BUSY, FAILED, NO_ANSWER, CANCELED = "completed", "busy", "failed", "no-answer", "canceled"
LIVE: tuple[str, ...] = (QUEUED, RINGING, IN_PROGRESS)
FINAL: tuple[str, ...] = (COMPLETED, BUSY, FAILED, NO_ANSWER, CANCELED)
STATUSES: tuple[str, ...] = LIVE + FINAL
DIRECTIONS = ("inbound", "outbound-api", "outbound-dial")
EVENTS = ("initiated", "ringing", "answered", "completed")

# Notification codes written here (described in restcomm.codes).
NO_VOICE_ENGINE = 19101
NODE_STOPPED = 19102


def parse_events(value: str | None) -> str:
    """``StatusCallbackEvent`` as stored: the known events it names, comma-separated, in order.

    Twilio's form is space-separated (``"initiated ringing"``), Restcomm's comma-separated; both
    are accepted. An unknown event is a ValueError. ``completed`` is always included.
    """
    names = {v.strip().lower() for v in (value or "").replace(",", " ").split() if v.strip()}
    unknown = names - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown event(s) {', '.join(sorted(unknown))}; use {', '.join(EVENTS)}")
    names.add("completed")
    return ",".join(e for e in EVENTS if e in names)


def new_call_sid() -> str:
    return new_sid("CA")


# ---------------------------------------------------------------------------------------------
# Calls


async def create_call(
    conn: AsyncConnection,
    now: datetime,
    *,
    account_sid: str,
    from_number: str,
    to_number: str,
    direction: str,
    status: str = QUEUED,
    sid: str | None = None,
    api_version: str = API_VERSION,
    **values: Any,
) -> dict[str, Any]:
    """Write a new call's record and return it. Inbound calls start ``ringing`` (and get their
    ``start_time``), calls placed by the API ``queued``; any column of ``calls`` may be given."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}")
    if status not in LIVE:
        raise ValueError(f"a call starts live, not {status!r}")
    row: dict[str, Any] = {c.name: None for c in calls.columns}
    row.update(
        sid=sid or new_call_sid(),
        account_sid=account_sid,
        api_version=api_version,
        from_number=from_number,
        to_number=to_number,
        from_formatted=from_number,
        to_formatted=to_number,
        direction=direction,
        status=status,
        price_unit="USD",
        record=False,
        start_time=now if status != QUEUED else None,
        date_created=now,
        date_updated=now,
    )
    unknown = set(values) - set(row)
    if unknown:
        raise TypeError(f"calls has no column {', '.join(sorted(unknown))}")
    row.update(values)
    if row["status_callback"] and not row["status_callback_events"]:
        row["status_callback_events"] = "completed"
    await conn.execute(insert(calls).values(**row))
    return row


async def get_call(conn: AsyncConnection, sid: str, *, for_update: bool = False) -> Row | None:
    stmt = select(calls).where(calls.c.sid == sid)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def call_initiated(
    conn: AsyncConnection, sid: str, now: datetime, *, node: str, lease_seconds: float, sip_call_id: str | None = None
) -> Row | None:
    """The engine started placing a queued call: it takes the lease and ``initiated`` is reported.

    Returns the updated row, or None when the call is no longer queued (canceled meanwhile) or
    another engine took it first."""
    values: dict[str, Any] = {"node": node, "lease_until": now + timedelta(seconds=lease_seconds),
                              "start_time": now, "date_updated": now}
    if sip_call_id is not None:
        values["sip_call_id"] = sip_call_id
    done = await conn.execute(update(calls).where(calls.c.sid == sid, calls.c.status == QUEUED, calls.c.node.is_(None))
                              .values(**values))
    if done.rowcount != 1:
        return None
    row = await get_call(conn, sid)
    assert row is not None
    await enqueue_call_callback(conn, row, "initiated", now)
    return row


def _seconds(later: datetime, earlier: datetime | None) -> int:
    if earlier is None:
        return 0
    return max(0, int((later - earlier).total_seconds()))


async def set_call_status(
    conn: AsyncConnection,
    sid: str,
    status: str,
    now: datetime,
    *,
    error_code: int | None = None,
    reason: str | None = None,
    **values: Any,
) -> Row | None:
    """Move a live call to ``status`` and queue the callback the transition causes.

    ``ringing`` reports ringing; ``in-progress`` sets ``answer_time`` and reports answered; a final
    status sets ``end_time``, ``duration`` (from the answer; 0 when never answered) and
    ``ring_duration``, releases the lease and reports completed. Returns the updated row, or None
    when the call is unknown or already ended (a final status is never changed)."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r}")
    row = await get_call(conn, sid, for_update=True)
    if row is None or row["status"] in FINAL:
        return None
    changes: dict[str, Any] = {"status": status, "date_updated": now, **values}
    start = row["start_time"] or now
    if row["start_time"] is None:
        changes["start_time"] = start
    if status == IN_PROGRESS:
        changes["answer_time"] = now
        changes["ring_duration"] = _seconds(now, start)
    elif status in FINAL:
        changes.update(end_time=now, node=None, lease_until=None,
                       duration=_seconds(now, row["answer_time"]))
        if row["answer_time"] is None:
            changes["ring_duration"] = _seconds(now, start) if row["status"] == RINGING else 0
    if error_code is not None:
        changes["error_code"] = error_code
    if reason is not None:
        changes["end_reason"] = reason
    done = await conn.execute(
        update(calls).where(calls.c.sid == sid, calls.c.status.in_(LIVE)).values(**changes)
    )
    if done.rowcount != 1:
        return None
    new = {**row, **changes}
    event = {RINGING: "ringing", IN_PROGRESS: "answered"}.get(status, "completed" if status in FINAL else None)
    if event is not None and not (event == "ringing" and row["status"] == RINGING):
        await enqueue_call_callback(conn, new, event, now)
    return new


async def renew_call_leases(
    conn: AsyncConnection, node: str, sids: Iterable[str], now: datetime, lease_seconds: float
) -> None:
    """Keep this node's live calls leased (in key order, like every multi-row update here)."""
    until = now + timedelta(seconds=lease_seconds)
    for sid in sorted(sids):
        await conn.execute(
            update(calls).where(calls.c.sid == sid, calls.c.node == node, calls.c.status.in_(LIVE))
            .values(lease_until=until)
        )


async def close_orphaned_calls(
    conn: AsyncConnection, now: datetime, *, dead_nodes: Iterable[str] = (), limit: int = 500
) -> list[Row]:
    """End the live calls nobody runs any more: those of ``dead_nodes`` and those whose lease expired.

    A queued call that no engine has taken (no lease) is left alone. An answered call is closed
    ``completed``, any other ``failed``; each gets an ``end_reason``, a 19102 notification (the
    account can read what happened) and its ``completed`` callback. Returns the closed calls.
    """
    dead = sorted(set(dead_nodes))
    orphan = calls.c.lease_until < now
    if dead:
        orphan = or_(orphan, calls.c.node.in_(dead))
    stmt = select(calls).where(calls.c.status.in_(LIVE), calls.c.node.is_not(None), orphan)
    stmt = stmt.order_by(calls.c.sid).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    found = list((await conn.execute(stmt)).mappings())
    closed: list[Row] = []
    for row in found:
        answered = row["status"] == IN_PROGRESS
        reason = (f"node {row['node']} stopped while the call was {row['status']}; "
                  f"closed as {'completed' if answered else 'failed'} by recovery")
        new = await set_call_status(conn, row["sid"], COMPLETED if answered else FAILED, now,
                                    error_code=None if answered else NODE_STOPPED, reason=reason)
        if new is None:
            continue
        await write_notification(
            conn, account_sid=row["account_sid"], error_code=NODE_STOPPED, log=ERROR, message_text=f"Call {row['sid']}: {reason}.",
            call_sid=row["sid"], clock=lambda: now,
        )
        closed.append(new)
    return closed


# ---------------------------------------------------------------------------------------------
# Status callbacks (the outbox shared with messages)

_LAST_SEQ = select(func.coalesce(func.max(status_callbacks.c.seq), 0))


def callback_params(call: Row, event: str, now: datetime, sequence: int) -> dict[str, str]:
    """A call progress callback's parameters (Twilio's names; Restcomm's are the same)."""
    status = "initiated" if event == "initiated" else call["status"]
    params = {
        "CallSid": call["sid"],
        "AccountSid": call["account_sid"],
        "From": call["from_number"],
        "To": call["to_number"],
        "CallStatus": status,
        "ApiVersion": call["api_version"],
        "Direction": call["direction"],
        "CallbackSource": "call-progress-events",
        "Timestamp": rfc2822(now) or "",
        "SequenceNumber": str(sequence),
        "StatusCallbackEvent": event,
        "CallerName": call.get("caller_name") or "",
        "ForwardedFrom": call.get("forwarded_from") or "",
    }
    if call.get("parent_call_sid"):
        params["ParentCallSid"] = call["parent_call_sid"]
    if event == "completed":
        params["CallDuration"] = str(call.get("duration") or 0)
        params["Duration"] = str(-(-(call.get("duration") or 0) // 60))  # billed minutes, rounded up
        if call.get("error_code") is not None:
            params["ErrorCode"] = str(call["error_code"])
    return params


async def enqueue_call_callback(conn: AsyncConnection, call: Row, event: str, now: datetime) -> bool:
    """Queue ``event``'s callback for ``call`` if the call asked for it (completed: always, given a
    StatusCallback). True when one was queued."""
    url = call.get("status_callback")
    if not url:
        return False
    events = (call.get("status_callback_events") or "completed").split(",")
    if event != "completed" and event not in events:
        return False
    seq = (await conn.execute(_LAST_SEQ.where(status_callbacks.c.message_sid == call["sid"]))).scalar_one() + 1
    await conn.execute(
        insert(status_callbacks).values(
            message_sid=call["sid"],
            account_sid=call.get("account_sid"),
            seq=seq,
            url=url,
            method=(call.get("status_callback_method") or "POST").upper(),
            params=orjson.dumps(callback_params(call, event, now, seq - 1)).decode(),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            date_created=now,
        )
    )
    return True


# ---------------------------------------------------------------------------------------------
# List filters (both API surfaces)


def call_conditions(
    account_sids: Sequence[str],
    *,
    to: str | None = None,
    from_: str | None = None,
    ends_with: bool = True,
    status: str | None = None,
    parent_call_sid: str | None = None,
    start_from: datetime | None = None,
    start_before: datetime | None = None,
    end_from: datetime | None = None,
    end_before: datetime | None = None,
) -> list[Any]:
    """WHERE conditions of a call list: ``*_from`` inclusive, ``*_before`` exclusive bounds.
    Restcomm matches To/From by suffix (``ends_with``), Twilio exactly."""
    c = calls.c
    cond: list[Any] = [c.account_sid.in_(list(account_sids)) if len(account_sids) > 1
                       else c.account_sid == account_sids[0]]
    for value, column in ((to, c.to_number), (from_, c.from_number)):
        if value:
            cond.append(column.endswith(value, autoescape=True) if ends_with else column == value)
    if status:
        cond.append(c.status == status)
    if parent_call_sid:
        cond.append(c.parent_call_sid == parent_call_sid)
    if start_from is not None:
        cond.append(c.start_time >= start_from)
    if start_before is not None:
        cond.append(c.start_time < start_before)
    if end_from is not None:
        cond.append(c.end_time >= end_from)
    if end_before is not None:
        cond.append(c.end_time < end_before)
    return cond


# ---------------------------------------------------------------------------------------------
# Recordings


async def create_recording(
    conn: AsyncConnection,
    now: datetime,
    *,
    account_sid: str,
    call_sid: str | None,
    file_path: str,
    source: str = "RecordVerb",
    channels: int = 1,
    sid: str | None = None,
) -> dict[str, Any]:
    """A recording starts (``in-progress``): its row exists before the first byte is written, so a
    crash leaves a row that points at what was recorded."""
    row = {
        "sid": sid or new_sid("RE"),
        "account_sid": account_sid,
        "call_sid": call_sid,
        "api_version": API_VERSION,
        "duration": None,
        "file_path": file_path,
        "status": "in-progress",
        "channels": channels,
        "source": source,
        "error_code": None,
        "start_time": now,
        "price": None,
        "price_unit": "USD",
        "date_created": now,
        "date_updated": now,
    }
    await conn.execute(insert(recordings).values(**row))
    return row


async def finish_recording(
    conn: AsyncConnection, sid: str, now: datetime, *, duration: float, status: str = "completed",
    error_code: int | None = None,
) -> None:
    await conn.execute(
        update(recordings).where(recordings.c.sid == sid).values(
            duration=int(round(duration)), status=status, error_code=error_code, date_updated=now
        )
    )


# ---------------------------------------------------------------------------------------------
# SIP trunks: the configuration file's [[sip_trunks]] and the Gateways API's rows, as one list


async def sip_trunks(conn: AsyncConnection, configured: Sequence[SipTrunk]) -> list[SipTrunk]:
    """Every trunk: the configured ones first (in file order), then the gateways stored through the
    API, by name; a gateway whose name a configured trunk uses is left out (the file wins)."""
    out = list(configured)
    names = {t.name for t in out}
    for r in (await conn.execute(select(gateways).order_by(gateways.c.name))).mappings():
        if r["name"] in names:
            continue
        out.append(SipTrunk(
            name=r["name"], host=r["host"], port=r["port"], transport=r["transport"], username=r["username"],
            password=r["password"], register=r["register"],
            prefixes=tuple(p.strip() for p in r["prefixes"].split(",")) if r["prefixes"] else ("",),
            inbound_addresses=tuple(a for a in r["inbound_addresses"].split(",") if a),
        ))
    return out


# ---------------------------------------------------------------------------------------------
# SIP registrations (the registrar's bindings, shared by every node)


async def save_binding(
    conn: AsyncConnection,
    now: datetime,
    *,
    organization_sid: str,
    aor: str,
    contact: str,
    expires_at: datetime,
    call_id: str,
    cseq: int,
    transport: str,
    source_address: str | None = None,
    user_agent: str | None = None,
    node: str | None = None,
) -> bool:
    """Add or refresh one binding (RFC 3261 §10.3): False when the REGISTER is out of order (the
    binding has this Call-ID with a CSeq as high or higher) and nothing changed. One statement, so
    two nodes refreshing the same binding at once cannot both win."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    r = sip_registrations
    values = {"organization_sid": organization_sid, "aor": aor, "contact": contact, "expires_at": expires_at,
              "call_id": call_id, "cseq": cseq, "transport": transport, "source_address": source_address,
              "user_agent": user_agent, "node": node, "date_created": now, "date_updated": now}
    stmt = dialect.insert(r).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[r.c.organization_sid, r.c.aor, r.c.contact],
        set_={k: stmt.excluded[k] for k in ("expires_at", "call_id", "cseq", "transport", "source_address",
                                              "user_agent", "node", "date_updated")},
        where=or_(r.c.call_id != stmt.excluded.call_id, r.c.cseq < stmt.excluded.cseq),
    )
    return (await conn.execute(stmt)).rowcount == 1


async def remove_bindings(
    conn: AsyncConnection, *, organization_sid: str, aor: str, contact: str | None = None,
    call_id: str | None = None, cseq: int | None = None,
) -> int:
    """Un-register: one contact (``Expires: 0``) or all of the AOR's (``Contact: *``). With a
    Call-ID and CSeq, a binding refreshed by a later REGISTER of the same Call-ID is kept."""
    r = sip_registrations
    cond = [r.c.organization_sid == organization_sid, r.c.aor == aor]
    if contact is not None:
        cond.append(r.c.contact == contact)
    if call_id is not None and cseq is not None:
        cond.append(or_(r.c.call_id != call_id, r.c.cseq < cseq))
    return (await conn.execute(r.delete().where(*cond))).rowcount


async def current_bindings(conn: AsyncConnection, organization_sid: str, aor: str, now: datetime) -> list[Row]:
    """Where a Client can be reached now (unexpired bindings), most recently refreshed first."""
    r = sip_registrations
    rows = await conn.execute(select(r).where(r.c.organization_sid == organization_sid, r.c.aor == aor,
                                              r.c.expires_at > now).order_by(r.c.date_updated.desc(), r.c.id))
    return list(rows.mappings())


async def purge_expired_bindings(conn: AsyncConnection, now: datetime) -> int:
    return (await conn.execute(sip_registrations.delete().where(sip_registrations.c.expires_at <= now))).rowcount
