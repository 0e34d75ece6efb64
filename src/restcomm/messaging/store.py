"""The messaging queries: claiming work with leases, recording transitions, the callback outbox.

Every function that changes state takes the connection of a transaction the caller owns (in
practice a group-commit job, see writer.py), so a status change, the status callbacks it causes
and any notification commit together or not at all.

Claiming is one statement shape for both databases: select the due rows (PostgreSQL adds
``FOR UPDATE SKIP LOCKED`` so that several nodes never take the same row), then stamp them with this
node's lease. On SQLite the claim runs inside the single writer's ``BEGIN IMMEDIATE`` transaction,
which gives the same exclusivity.

Claims are fair between accounts (see ``_Fair``): one account's backlog of a hundred thousand
messages, sessions or callbacks does not delay another account's next one.

The statements run for every message are built once, here, with bound parameters (``_P``): building
a SQLAlchemy statement per call costs several times what executing it on SQLite does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import model as m
from restcomm.messaging.writer import after_commit, precompiled
from restcomm.observability import MESSAGES
from restcomm.phone import to_e164
from restcomm.store.schema import accounts, incoming_phone_numbers, messages, opt_outs, status_callbacks

Row = Mapping[str, Any]


def _P(name: str, expanding: bool = False) -> Any:  # noqa: N802 - reads like SQL's :name
    return bindparam(name, expanding=expanding)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


class _Claim:
    """A claiming SELECT, prebuilt for both databases (PostgreSQL adds FOR UPDATE SKIP LOCKED)."""

    def __init__(self, stmt: Any):
        self.plain = stmt
        self.locking = stmt.with_for_update(skip_locked=True)

    def __call__(self, conn: AsyncConnection) -> Any:
        return self.locking if is_postgres(conn) else self.plain


async def insert_ignore(conn: AsyncConnection, table: Any, row: dict[str, Any]) -> None:
    """INSERT that silently keeps the existing row on a primary-key conflict (both databases)."""
    dialect = postgresql if is_postgres(conn) else sqlite
    await conn.execute(dialect.insert(table).values(**row).on_conflict_do_nothing())


# ---------------------------------------------------------------------------------------------
# Lookups used by validation and routing


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


_n = incoming_phone_numbers
_OWNED = select(_n.c.sid, _n.c.account_sid, _n.c.phone_number, _n.c.is_pattern).where(
    _n.c.organization_sid == _P("org"), _n.c.phone_number.in_(_P("forms", True))
)
_OPTED_OUT = select(opt_outs.c.sender).where(
    opt_outs.c.sender.in_(_P("senders", True)), opt_outs.c.recipient.in_(_P("recipients", True))
).limit(1)
_OPT_OUT_TIMES = select(opt_outs.c.sender, opt_outs.c.recipient, opt_outs.c.date_created).where(
    opt_outs.c.sender.in_(_P("senders", True)), opt_outs.c.recipient.in_(_P("recipients", True))
)
_ORGANIZATIONS = select(accounts.c.sid, accounts.c.organization_sid).where(accounts.c.sid.in_(_P("sids", True)))


async def owned_number(conn: AsyncConnection, account: Row, number: str) -> Row | None:
    """The account's own literal (non-pattern) IncomingPhoneNumber matching ``number``.

    Looked up through the (organization, phone number) unique index, then checked for the owner.
    """
    rows = (
        await conn.execute(_OWNED, {"org": account["organization_sid"], "forms": number_forms(number)})
    ).mappings().all()
    return next((r for r in rows if r["account_sid"] == account["sid"] and not r["is_pattern"]), None)


async def opted_out(conn: AsyncConnection, sender: str, recipient: str) -> bool:
    params = {"senders": number_forms(sender), "recipients": number_forms(recipient)}
    return (await conn.execute(_OPTED_OUT, params)).first() is not None


async def opt_out_times(conn: AsyncConnection, rows: Sequence[Row]) -> dict[tuple[str, str], datetime]:
    """Opt-outs that concern any of ``rows`` (keyed by (sender, recipient) as stored)."""
    if not rows:
        return {}
    senders = sorted({f for r in rows for f in number_forms(r["from_number"])})
    recipients = sorted({f for r in rows for f in number_forms(r["to_number"])})
    found = (await conn.execute(_OPT_OUT_TIMES, {"senders": senders, "recipients": recipients})).all()
    return {(s, r): d for s, r, d in found}


async def organizations(conn: AsyncConnection, account_sids: Iterable[str]) -> dict[str, str]:
    """The organization of each account."""
    return {sid: org for sid, org in await conn.execute(_ORGANIZATIONS, {"sids": sorted(set(account_sids))})}


def blocked_by_opt_out(message: Row, opt_outs_found: Mapping[tuple[str, str], datetime]) -> bool:
    """True when the recipient opted out of this sender after the message was created.

    Messages created after the opt-out were already refused when they were submitted (21610); the
    one message created in the same instant is the platform's own STOP confirmation, which must go.
    """
    if not opt_outs_found:
        return False
    for s in number_forms(message["from_number"]):
        for r in number_forms(message["to_number"]):
            when = opt_outs_found.get((s, r))
            if when is not None and when > message["date_created"]:
                return True
    return False


# ---------------------------------------------------------------------------------------------
# restcomm_messages_total: every status a message reaches, counted per batch once it is committed

_COUNTERS: dict[tuple[str, str], Any] = {(d, s): MESSAGES.labels(d, s) for d in m.DIRECTIONS for s in m.STATUSES}


def _bump(counts: list[tuple[Any, int]]) -> None:
    for child, n in counts:
        child.inc(n)


def count_status(rows: Sequence[Row], *statuses: str) -> None:
    """Count ``rows`` (by direction) as reaching each of ``statuses``, once the transaction commits."""
    if not rows:
        return
    by_direction: dict[str, int] = {}
    for r in rows:
        d = r["direction"]
        by_direction[d] = by_direction.get(d, 0) + 1
    after_commit(_bump, [(_COUNTERS.get((d, s)) or MESSAGES.labels(d, s), n)
                         for d, n in by_direction.items() for s in statuses])


# ---------------------------------------------------------------------------------------------
# Status callbacks (the outbox)

_INSERT_CALLBACKS = insert(status_callbacks)
INSERT_MESSAGES = insert(messages)  # built once (the pipeline's inserts; see the module docstring)
_LAST_SEQ = select(func.coalesce(func.max(status_callbacks.c.seq), 0)).where(
    status_callbacks.c.message_sid == _P("sid")
)


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
            seq = (await conn.execute(_LAST_SEQ, {"sid": message["sid"]})).scalar_one() + 1
        rows.append(
            {
                "message_sid": message["sid"],
                "account_sid": message.get("account_sid"),
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
        await conn.execute(_INSERT_CALLBACKS, rows)


# Sequence numbers for the transitions the dispatcher makes itself (queued gives no callback, as
# at Twilio); later ones (carrier receipts) append after the highest queued so far.
SEQ_SENDING, SEQ_SENT, SEQ_FINAL = 1, 2, 3


@lru_cache(maxsize=64)
def _update_by_sid(columns: tuple[str, ...]) -> Any:
    """``UPDATE messages SET <columns> WHERE sid = :b_sid``, built once per column set."""
    stmt = update(messages).where(messages.c.sid == _P("b_sid")).values({c: _P(f"v_{c}") for c in columns})
    precompiled(stmt)  # held by the lru_cache (and the registry) for the process's life
    return stmt


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
    changes: dict[str, Any] = {"status": status, "date_updated": now, "lease_owner": None, "lease_until": None}
    if error_code is not None:
        changes["error_code"] = error_code
        changes["error_message"] = m.MESSAGE_ERRORS.get(error_code, "")
    if status in (m.SENT, m.DELIVERED):
        changes["date_sent"] = now
    changes.update(values)
    columns = tuple(sorted(changes))
    bound = {f"v_{c}": changes[c] for c in columns}
    # In key order, like every multi-row update here (see renew_leases).
    await conn.execute(_update_by_sid(columns), [{"b_sid": sid, **bound} for sid in sorted(r["sid"] for r in rows)])
    count_status(rows, *(st for st, _ in extra_callbacks), status)
    items: list[tuple[Row, str, int | None, int | None]] = []
    for r in rows:
        if not r.get("status_callback"):
            continue
        for st, sq in extra_callbacks:
            items.append((r, st, None, sq))
        items.append((r, status, error_code, seq))
    if items:
        await enqueue_callbacks(conn, items, now)



# ---------------------------------------------------------------------------------------------
# Fair claiming between accounts


class _Fair:
    """A claim that is fair between accounts: a share of each account's oldest, never the oldest overall.

    Two statements per claim. The *walk* lists the accounts with waiting work, in account order from
    a cursor: a recursive query that seeks ``min(account_sid) > previous`` in a partial index over
    the waiting rows, so it costs one index probe per account, whatever the backlog (a window function
    ``row_number() over (partition by account_sid)`` sorts every waiting row: 100,000 of one
    account's on every claim). Then the *take* gets, for each of those accounts, its oldest due
    rows up to a share of the limit (``ceil(limit / accounts)``): on PostgreSQL a LATERAL subquery
    per account with ``FOR UPDATE SKIP LOCKED``, so two nodes skip each other's rows inside every
    account; on SQLite (one writer) a correlated ``IN`` per account. Both are index range scans.
    docs/performance.md has the plans and the measurements.

    With more accounts waiting than the limit, a pass serves ``limit`` of them and the cursor
    (``after``, per node) moves past the last one served, so every account's turn comes round.
    """

    def __init__(self, table: str, where: str, order: str, due: str, columns: Any, *, extra: str = "",
                 sqlite_index: str | None = None):
        key = "id" if table == "status_callbacks" else "sid"
        self.order = [c.strip() for c in order.split(",")]

        def walk(source: str) -> Any:
            step = f"SELECT min(account_sid) FROM {source} WHERE {where} AND account_sid > "
            return text(
                f"WITH RECURSIVE walk(a, n) AS ("
                f" SELECT ({step}:after), 1"
                f" UNION ALL"
                f" SELECT ({step}walk.a), n + 1 FROM walk WHERE walk.a IS NOT NULL AND walk.n < :accounts"
                f") SELECT a FROM walk WHERE a IS NOT NULL"
            ).bindparams(bindparam("after", type_=String), bindparam("accounts", type_=Integer))

        self.walk = walk(table)
        # SQLite without statistics (the server never runs ANALYZE) may walk through another index
        # with ``status = ?`` first, reading every waiting row per step (1.2 s per walk over 100,000
        # queued emails, against 0.05 ms): ``sqlite_index`` names the partial index to walk.
        self.walk_sqlite = walk(f"{table} INDEXED BY {sqlite_index}") if sqlite_index else self.walk
        names = ", ".join(f"m.{c.name}" for c in columns)
        now = [bindparam("now", type_=DateTime)] if ":now" in due + extra else []
        if ":owner" in extra:
            now.append(bindparam("owner", type_=String))
        pg_cond = f"{where} AND account_sid = w.a{due}{extra.format(t=table)}"
        self.take_pg = text(
            f"SELECT {names} FROM unnest(:accts) AS w(a) CROSS JOIN LATERAL ("
            f"SELECT * FROM {table} WHERE {pg_cond} ORDER BY {order} LIMIT :share FOR UPDATE SKIP LOCKED) AS m"
        ).bindparams(bindparam("accts", type_=ARRAY(String)), bindparam("share", type_=Integer), *now).columns(*columns)
        lite_cond = f"{where} AND x.account_sid = w.value{due}{extra.format(t='x')}"
        self.take_sqlite = text(
            f"SELECT {names} FROM json_each(:accts) AS w JOIN {table} AS m ON m.{key} IN ("
            f"SELECT x.{key} FROM {table} AS x WHERE {lite_cond} ORDER BY {order} LIMIT :share)"
        ).bindparams(bindparam("accts", type_=String), bindparam("share", type_=Integer), *now).columns(*columns)

    async def claim(self, conn: AsyncConnection, cursor: FairCursor, now: datetime | None, limit: int,
                    skip: Iterable[str] = (), params: Mapping[str, Any] | None = None) -> list[Row]:
        """Up to ``limit`` rows, shared between the accounts waiting (not those in ``skip``);
        ``params``: what the statement binds besides (e.g. the node, ``owner``)."""
        if limit <= 0:
            cursor.more = False
            return []
        skipped = set(skip)
        accounts = await self._walk(conn, cursor.after, limit, skipped)
        if len(accounts) < limit and cursor.after:
            # Wrap round: the accounts up to the cursor.
            more = await self._walk(conn, "", limit, skipped)
            accounts += [a for a in more if a <= cursor.after and a not in accounts][: limit - len(accounts)]
        if not accounts:
            cursor.after, cursor.more = "", False
            return []
        share = -(-limit // len(accounts))
        rows = await self._take(conn, accounts, now, share, params or {})
        # An account that filled its share may have more waiting: the caller claims again at once
        # rather than at its next poll. (The share others left unused is not handed out in this
        # claim: that would lengthen the round, and the wait of everyone else's next message.)
        cursor.more = any(n >= share for n in _per_account(rows).values())
        # Fewer accounts than the limit: every account waiting had its share in this claim, so the
        # next one may start from the beginning: one walk instead of a walk and its wrap-round.
        cursor.after = accounts[-1] if len(accounts) >= limit else ""
        # ``share`` rounds up: keep to the limit, taking from every account in turn. Then oldest first,
        # as the rows would have come without fairness (the take returns them account by account).
        rows.sort(key=lambda r: tuple(r[c] for c in self.order))
        if len(rows) > limit:
            rows = _round_robin(rows, limit)
            rows.sort(key=lambda r: tuple(r[c] for c in self.order))
        return rows

    async def _take(self, conn: AsyncConnection, accounts: list[str], now: datetime | None, share: int,
                    extra: Mapping[str, Any]) -> list[Row]:
        params: dict[str, Any] = {**extra, "share": share}
        if now is not None:
            params["now"] = now
        if is_postgres(conn):
            result = await conn.execute(self.take_pg, {**params, "accts": accounts})
        else:
            result = await conn.execute(self.take_sqlite, {**params, "accts": orjson.dumps(accounts).decode()})
        return list(result.mappings())

    async def _walk(self, conn: AsyncConnection, after: str, limit: int, skip: set[str]) -> list[str]:
        walk = self.walk if is_postgres(conn) else self.walk_sqlite
        found = await conn.execute(walk, {"after": after, "accounts": limit + len(skip)})
        return [a for (a,) in found if a not in skip][:limit]


# The email outbox claims through the same two statements (messaging/email.py).
FairClaim = _Fair
LockingClaim = _Claim


class FairCursor:
    """Where a node's next fair claim starts in the account order (see ``_Fair``)."""

    def __init__(self) -> None:
        self.after = ""
        self.more = False  # the last claim left work waiting: claim again without waiting for a poll


def _per_account(rows: Sequence[Row]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["account_sid"]] = counts.get(r["account_sid"], 0) + 1
    return counts


def _round_robin(rows: Sequence[Row], limit: int) -> list[Row]:
    by_account: dict[str, list[Row]] = {}
    for r in rows:
        by_account.setdefault(r["account_sid"], []).append(r)
    out: list[Row] = []
    depth = 0
    while len(out) < limit:
        added = False
        for group in by_account.values():
            if depth < len(group) and len(out) < limit:
                out.append(group[depth])
                added = True
        if not added:
            break
        depth += 1
    return out


# ---------------------------------------------------------------------------------------------
# Claiming outbound messages

_CLAIM_FRESH = _Fair("messages", "status = 'queued'", "next_attempt_at", " AND next_attempt_at <= :now",
                     list(messages.c), sqlite_index="ix_messages_queued_account")
_CLAIM_STALE = _Claim(
    select(messages)
    # Never this node's own: a lease of its own runs out only when renewing it fell behind (a
    # loaded machine), and the send is still in hand here.
    .where(messages.c.status == m.SENDING, messages.c.lease_until < _P("now"), messages.c.lease_owner != _P("owner"))
    .order_by(messages.c.next_attempt_at)
    .limit(_P("lim"))
)
_TAKE = (
    update(messages)
    .where(messages.c.sid == _P("b_sid"))
    .values(status=m.SENDING, lease_owner=_P("owner"), lease_until=_P("until"), attempts=messages.c.attempts + 1,
            date_updated=_P("now"))
)


async def claim_outbound(
    conn: AsyncConnection, owner: str, now: datetime, lease: float, limit: int, *, stale: bool = True,
    cursor: FairCursor | None = None,
) -> tuple[list[Row], list[Row]]:
    """Claim due outbound messages: (fresh ones now 'sending', interrupted ones whose lease expired).

    A fresh claim queues the 'sending' callback. An expired 'sending' row that had not been handed
    to anyone (route still null) is simply taken again; one that had been handed to a carrier is
    returned separately, because resending it could deliver it twice. ``stale=False`` skips the
    search for expired leases (they only appear when a node dies; the dispatcher looks on its polls).
    Fresh ones are shared fairly between the accounts waiting (``_Fair``; ``cursor`` is the node's).
    """
    until = now + timedelta(seconds=lease)
    params = {"now": now, "lim": limit}
    fresh = await _CLAIM_FRESH.claim(conn, cursor or FairCursor(), now, limit)
    expired = list((await conn.execute(_CLAIM_STALE(conn), {**params, "owner": owner})).mappings()) if stale else []
    retake = [r for r in expired if r["route"] is None]
    in_doubt = [r for r in expired if r["route"] is not None]
    taken = fresh + retake
    if taken:
        await conn.execute(
            _TAKE, [{"b_sid": sid, "owner": owner, "until": until, "now": now} for sid in sorted(r["sid"] for r in taken)]
        )
    # A message back from an unavailable carrier ('attempts' > 0) already reported 'sending'.
    first = [r for r in fresh if r["attempts"] == 0]
    count_status(first, m.SENDING)
    callbacks = [(r, m.SENDING, None, SEQ_SENDING) for r in first if r["status_callback"]]
    if callbacks:
        await enqueue_callbacks(conn, callbacks, now)
    claimed = [{**r, "status": m.SENDING, "lease_owner": owner, "lease_until": until} for r in taken]
    return claimed, in_doubt


# ---------------------------------------------------------------------------------------------
# Application sessions

_CLAIM_APPS = _Fair("messages", "app_state = 'pending'", "date_created", "", list(messages.c),
                    sqlite_index="ix_messages_pending_app_account")
_INTERRUPTED_APPS = _Claim(
    # Not this node's own sessions: they are alive here even when renewing their lease fell behind.
    select(messages)
    .where(messages.c.app_state == m.APP_RUNNING, messages.c.lease_until < _P("now"),
           messages.c.lease_owner != _P("owner"))
    .limit(_P("lim"))
)
_SET_APP_STATE = (
    update(messages)
    .where(messages.c.sid == _P("b_sid"))
    .values(app_state=_P("state"), lease_owner=_P("owner"), lease_until=_P("until"), date_updated=_P("now"))
)
_FINISH_APP = (
    update(messages)
    .where(messages.c.sid == _P("b_sid"), messages.c.lease_owner == _P("owner"))
    .values(app_state=_P("state"), lease_owner=None, lease_until=None, date_updated=_P("now"))
)


async def claim_apps(
    conn: AsyncConnection, owner: str, now: datetime, lease: float, limit: int, *,
    cursor: FairCursor | None = None, account_cap: int | None = None, account_load: Mapping[str, int] | None = None,
) -> tuple[list[Row], list[Row]]:
    """Claim inbound messages whose application should run: (now 'running' here, interrupted ones).

    'running' is committed here, before any request; the sessions start right after the commit. A
    'running' row whose lease expired belongs to a node that died with the session in hand (its
    request may have reached the application): it is returned as interrupted and is never run
    again, so no application sees a message twice. With ``limit`` 0 (every slot busy) only the
    interrupted ones are looked for.

    Pending ones are shared fairly between accounts (``_Fair``), and no account ends up with more than
    ``account_cap`` here, counting its ``account_load`` (account -> sessions it has running here).
    """
    until = now + timedelta(seconds=lease)
    pending = await _fair_within(_CLAIM_APPS, conn, cursor, None, limit, account_cap, account_load)
    interrupted = list((await conn.execute(_INTERRUPTED_APPS(conn), {"now": now, "lim": max(limit, 64), "owner": owner})).mappings())
    changes = [
        {"b_sid": r["sid"], "state": m.APP_RUNNING, "owner": owner, "until": until, "now": now} for r in pending
    ] + [
        {"b_sid": r["sid"], "state": m.APP_INTERRUPTED, "owner": None, "until": None, "now": now} for r in interrupted
    ]
    if changes:
        await conn.execute(_SET_APP_STATE, sorted(changes, key=lambda c: c["b_sid"]))
    return [{**r, "app_state": m.APP_RUNNING} for r in pending], interrupted


async def _fair_within(
    fair: _Fair, conn: AsyncConnection, cursor: FairCursor | None, now: datetime | None, limit: int,
    cap: int | None, load: Mapping[str, int] | None, params: Mapping[str, Any] | None = None,
) -> list[Row]:
    """A fair claim in which no account ends up with more than ``cap`` in hand (counting ``load``).

    Accounts at their cap are skipped by the walk; rows beyond an account's room are dropped
    before anything is written (on PostgreSQL they stay locked only until the commit).
    """
    load = load or {}
    if cap is None:
        return await fair.claim(conn, cursor or FairCursor(), now, limit, params=params)
    rows = await fair.claim(conn, cursor or FairCursor(), now, limit, skip=[a for a, n in load.items() if n >= cap],
                            params=params)
    kept: list[Row] = []
    counts = dict(load)
    for r in rows:
        a = r["account_sid"]
        if a is not None and counts.get(a, 0) >= cap:
            continue
        counts[a] = counts.get(a, 0) + 1
        kept.append(r)
    return kept


async def finish_apps(conn: AsyncConnection, owner: str, finished: Sequence[tuple[str, str]], now: datetime) -> None:
    """Record the end of this node's sessions: (inbound sid, final app_state) pairs, one statement."""
    await conn.execute(
        _FINISH_APP, [{"b_sid": sid, "owner": owner, "state": state, "now": now} for sid, state in sorted(finished)]
    )


_RENEW_MESSAGE = (
    update(messages)
    .where(messages.c.sid == _P("b_sid"), messages.c.lease_owner == _P("owner"))
    .values(lease_until=_P("until"))
)
_RENEW_CALLBACK = (
    update(status_callbacks)
    .where(status_callbacks.c.id == _P("b_id"), status_callbacks.c.lease_owner == _P("owner"))
    .values(lease_until=_P("until"))
)


async def renew_leases(
    conn: AsyncConnection, owner: str, now: datetime, lease: float, message_sids: Iterable[str],
    callback_ids: Iterable[int],
) -> None:
    """Keep alive the leases of the work this node has in hand (and only those: anything it let go
    of, through a bug or a failed write, expires and is taken over). Rows are updated in key order,
    so two transactions of this node can never wait on each other in a cycle."""
    until = now + timedelta(seconds=lease)
    sids = sorted(message_sids)
    if sids:
        await conn.execute(_RENEW_MESSAGE, [{"b_sid": sid, "owner": owner, "until": until} for sid in sids])
    ids = sorted(callback_ids)
    if ids:
        await conn.execute(_RENEW_CALLBACK, [{"b_id": i, "owner": owner, "until": until} for i in ids])


# ---------------------------------------------------------------------------------------------
# Callback outbox claiming

_earlier = status_callbacks.alias("earlier")
# Written inline (not as a bound parameter), so both databases can use the partial indexes over
# pending callbacks (schema.PENDING_CALLBACK) whatever plan a prepared statement gets.
_PENDING = literal_column("'pending'")
# Callbacks without an account (queued by a node older than revision 0011 during a rolling upgrade)
# are claimed on their own, oldest first, through a partial index that is otherwise empty.
_CLAIM_UNOWNED_CALLBACKS = _Claim(
    select(status_callbacks)
    .where(
        status_callbacks.c.state == _PENDING,
        status_callbacks.c.account_sid.is_(None),
        status_callbacks.c.next_attempt_at <= _P("now"),
        # A lease that ran out is taken over, unless it is this node's own (still in hand here:
        # renewing fell behind), which would send the callback twice at once.
        or_(
            status_callbacks.c.lease_until.is_(None),
            and_(status_callbacks.c.lease_until < _P("now"), status_callbacks.c.lease_owner != _P("owner")),
        ),
        ~select(_earlier.c.id)
        .where(
            _earlier.c.message_sid == status_callbacks.c.message_sid,
            _earlier.c.seq < status_callbacks.c.seq,
            _earlier.c.state == _PENDING,
        )
        .exists(),
    )
    .order_by(status_callbacks.c.next_attempt_at, status_callbacks.c.id)
    .limit(_P("lim"))
)
_CLAIM_CALLBACKS = _Fair(
    "status_callbacks", "state = 'pending'", "next_attempt_at, id", " AND next_attempt_at <= :now",
    list(status_callbacks.c),
    sqlite_index="ix_callbacks_pending_account",
    # A lease that ran out is taken over, unless it is this node's own (still in hand here:
    # renewing fell behind), which would send the callback twice at once.
    extra=(" AND (lease_until IS NULL OR (lease_until < :now AND lease_owner <> :owner))"
           " AND NOT EXISTS (SELECT 1 FROM status_callbacks"
           " AS earlier WHERE earlier.message_sid = {t}.message_sid AND earlier.seq < {t}.seq"
           " AND earlier.state = 'pending')"),
)
_LEASE_CALLBACK = (
    update(status_callbacks)
    .where(status_callbacks.c.id == _P("b_id"))
    .values(lease_owner=_P("owner"), lease_until=_P("until"))
)
_NEXT_DUE = select(func.min(status_callbacks.c.next_attempt_at)).where(
    status_callbacks.c.state == _PENDING, status_callbacks.c.next_attempt_at > _P("now")
)


async def claim_callbacks(
    conn: AsyncConnection, owner: str, now: datetime, lease: float, limit: int, *,
    cursor: FairCursor | None = None, account_cap: int | None = None, account_load: Mapping[str, int] | None = None,
) -> list[Row]:
    """Due callbacks whose predecessors (lower seq, same message) are all finished.

    Shared fairly between accounts, none above ``account_cap`` in flight (see claim_apps).
    """
    rows = await _fair_within(_CLAIM_CALLBACKS, conn, cursor, now, limit, account_cap, account_load,
                              {"owner": owner})
    if len(rows) < limit:
        rows += list((await conn.execute(_CLAIM_UNOWNED_CALLBACKS(conn),
                                         {"now": now, "lim": limit - len(rows), "owner": owner})).mappings())
    if rows:
        until = now + timedelta(seconds=lease)
        await conn.execute(
            _LEASE_CALLBACK, [{"b_id": i, "owner": owner, "until": until} for i in sorted(r["id"] for r in rows)]
        )
    return rows


async def next_callback_due(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the next retry falls due (callbacks already due are waiting for a predecessor)."""
    return (await conn.execute(_NEXT_DUE, {"now": now})).scalar()


# The statements above that run for every message go straight to the driver on SQLite's loop-thread
# connection (writer.precompiled), IN lists included (a form per length).
precompiled(
    INSERT_MESSAGES, _INSERT_CALLBACKS, _LAST_SEQ, _TAKE, _SET_APP_STATE, _FINISH_APP, _RENEW_MESSAGE, _RENEW_CALLBACK,
    _LEASE_CALLBACK, _NEXT_DUE, _CLAIM_STALE.plain, _INTERRUPTED_APPS.plain, _CLAIM_UNOWNED_CALLBACKS.plain,
    *(stmt for fair in (_CLAIM_FRESH, _CLAIM_APPS, _CLAIM_CALLBACKS) for stmt in (fair.walk_sqlite, fair.take_sqlite)),
    _OWNED, _OPTED_OUT, _OPT_OUT_TIMES, _ORGANIZATIONS,
)
