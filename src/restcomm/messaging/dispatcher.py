"""The outbound dispatcher: takes queued messages from the store and hands each one on.

One loop per node. Each round is a single group-commit job that claims a batch of due messages and,
in the same transaction, settles every one that needs nothing from outside:

* To a number hosted here (``find_hosted_number`` in the sender's organization: that exact number,
  never a pattern, which only catches traffic from carriers): the inbound
  message is stored and the outbound one becomes ``delivered`` (callbacks ``sending``, ``sent``,
  ``delivered``) in ONE commit, so a crash can neither lose the message nor deliver it twice.
* Opted out since it was accepted: ``failed`` with 21610.
* No hosted number and no carrier route: ``failed`` with 21612 and a notification.

Messages for a carrier leave the transaction as ``sending`` with this node's lease and wait here,
per carrier, until the carrier can take them: at most its ``capacity`` (what its windows hold
many times over, or two seconds at its TPS limit) is handed over at once. Before a chunk goes to
the transport its route is committed (``route = 'carrier'``): a message found later still
``sending`` with an expired lease and a route is *in doubt* (the carrier may have it), and is
failed rather than sent a second time; one without a route never left and is simply sent. So a
crash behind a slow carrier puts in doubt only what was really in the carrier's hands. Then the
transport's answer is recorded. While ``max_held`` messages wait here, the dispatcher claims no
more (they stay queued in the store); a graceful stop puts the waiting ones back in the queue.

The loop wakes at once when a commit queued new work on this node (``Messaging.outbound_ready``)
and otherwise polls every ``poll_interval`` seconds for work committed by other nodes. On SQLite a
round waits up to ``ROUND_WITHIN`` (5 ms) for the message writer's next batch and runs in its
transaction (writer.py, ``run(within=...)``), so that while messages flow it costs no commit (and
no fsync) of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm import routing
from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.messaging.inbound import Arrival, store_arrivals
from restcomm.messaging.transports import CarrierMessage, SendResult
from restcomm.notify import ERROR, write_notification
from restcomm.observability import bind
from restcomm.polling import PollingWorker
from restcomm.routing import find_hosted_number
from restcomm.store.schema import message_segments, messages

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

log = logging.getLogger("restcomm.messaging.dispatcher")

NO_ROUTE = m.ERR_NO_ROUTE  # Twilio: "The 'To' phone number is not currently reachable via SMS"
IN_DOUBT = 30008
RETRY_BASE = 2.0
RETRY_MAX = 300.0
DEFAULT_CAPACITY = 256  # messages handed at once to a transport that does not state its capacity
ROUND_WITHIN = 0.005  # seconds a dispatch round may wait to join another write's transaction


@dataclass
class Settled:
    """What a settling transaction did, for the caller to act on once it has committed."""

    carrier: list[dict[str, Any]] = field(default_factory=list)  # still 'sending': for a transport
    started: list[dict[str, Any]] = field(default_factory=list)  # inbound, claimed or running here
    numbers: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # their receiving numbers
    slots: int = 0  # application-runner slots reserved for ``started``
    slot_accounts: list[str] = field(default_factory=list)  # ... and the accounts they were reserved for
    full: bool = False
    apps: bool = False
    outbound: bool = False
    callbacks: bool = False


class Dispatcher(PollingWorker):
    task_name = "sms-dispatcher"

    def __init__(self, messaging: Messaging):
        super().__init__(messaging.outbound_ready)
        self.messaging = messaging
        self._carrier_tasks: set[asyncio.Task[None]] = set()
        self._stale_checked = datetime(1970, 1, 1)
        self._cursor = store.FairCursor()  # where the next fair claim starts among the accounts
        self.in_hand: set[str] = set()  # messages waiting for or handed to carriers (leases renewed)
        self._held: dict[str, deque[dict[str, Any]]] = {}  # per carrier: claimed, not handed yet
        self._handed: dict[str, int] = {}  # per carrier: messages in the transport's hands
        self.max_held = messaging.sms.batch_size * 4
        self.delivered = 0  # counters for the bench
        self.handed_to_carriers = 0

    async def start(self) -> None:
        self.start_loop()

    async def stop(self) -> None:
        """Stop claiming; finish the batch in hand and the carrier sends in flight."""
        await self.stop_loop()
        if self._carrier_tasks:
            await asyncio.gather(*self._carrier_tasks, return_exceptions=True)
        await self._release_held()

    async def _release_held(self) -> None:
        """Put the messages that never reached a carrier back in the queue, for whichever node runs
        next (their 'sending' callback was queued already: ``attempts`` > 0 says so)."""
        held = [row for rows in self._held.values() for row in rows]
        self._held.clear()
        if not held:
            return
        owner = self.messaging.node_id

        async def release(conn: AsyncConnection) -> None:
            await conn.execute(_RELEASE, [{"b_sid": sid, "owner": owner} for sid in sorted(r["sid"] for r in held)])

        if await self._persist(release, "putting back messages not handed to a carrier", held):
            self.in_hand.difference_update(r["sid"] for r in held)

    def can_claim(self) -> bool:
        """Whether a wake makes this dispatcher claim now (not stopping, room for more)."""
        return not self.stopping and self.held_count() < self.max_held

    def held_count(self) -> int:
        return sum(len(rows) for rows in self._held.values())

    async def run_pass(self, woken: bool) -> float:
        """One dispatch round; the next comes at once when the round was full."""
        ms = self.messaging
        result = Settled()
        try:
            # The round joins the writer's next batch when one comes within a few milliseconds (an
            # API send's, an application's reply): a commit fewer per message while they flow.
            await ms.writer.run(partial(self._round, result=result), within=ROUND_WITHIN)
        except Exception:
            log.exception("dispatch round failed")
            self.committed(result, ok=False)
            await asyncio.sleep(ms.sms.poll_interval)
            return 0
        self.committed(result)
        if result.full or self.stopping:
            return 0
        return ms.sms.poll_interval

    def committed(self, result: Settled, ok: bool = True) -> None:
        """After the settling transaction: start what it prepared (or give back what it reserved)."""
        ms = self.messaging
        if not ok:
            ms.apps.release(result.slots, result.slot_accounts)
            return
        ms.apps.adopt(result.started, reserved=result.slots, numbers=result.numbers, accounts=result.slot_accounts)
        ms.wake(apps=result.apps, callbacks=result.callbacks, outbound=result.outbound)
        # While stopping, messages for carriers stay 'sending' with no route: nothing was handed on,
        # so whichever node runs next takes them again once the lease runs out.
        if result.carrier and not self.stopping:
            self.in_hand.update(r["sid"] for r in result.carrier)
            for row in result.carrier:
                self._held.setdefault(ms.router.carrier_for(row["to_number"]) or "", deque()).append(row)
            for name in list(self._held):
                self._pump(name)

    def _pump(self, name: str) -> None:
        """Hand the carrier's waiting messages over, up to its capacity, in chunks."""
        held = self._held.get(name)
        transport = self.messaging.router.transports.get(name)
        capacity = max(int(getattr(transport, "capacity", DEFAULT_CAPACITY)), 1)
        while held and not self.stopping and self._handed.get(name, 0) < capacity:
            # Chunks of a quarter of the capacity, so a new one starts while others finish.
            n = min(len(held), capacity - self._handed.get(name, 0), max(capacity // 4, 1))
            chunk = [held.popleft() for _ in range(n)]
            self._handed[name] = self._handed.get(name, 0) + n
            task = asyncio.create_task(self._to_carriers(chunk, name))
            self._carrier_tasks.add(task)
            task.add_done_callback(self._carrier_tasks.discard)
        if held is not None and not held:
            del self._held[name]

    # -- one round: claim, and settle what needs nobody outside ------------------------------------

    async def _round(self, conn: AsyncConnection, result: Settled) -> None:
        ms = self.messaging
        now = ms.clock()
        # Carriers slower than the queue: leave the rest in the store until they catch up.
        limit = min(ms.sms.batch_size, self.max_held - self.held_count())
        if limit <= 0:
            return
        # Expired leases only appear when a node dies: look for them once per poll interval.
        stale = (now - self._stale_checked).total_seconds() >= ms.sms.poll_interval
        if stale:
            self._stale_checked = now
        claimed, in_doubt = await store.claim_outbound(conn, ms.node_id, now, ms.sms.lease_seconds, limit, stale=stale,
                                                     cursor=self._cursor)
        result.full = len(claimed) + len(in_doubt) >= limit or self._cursor.more
        result.callbacks = _wants_callbacks(claimed) or _wants_callbacks(in_doubt)
        if in_doubt:
            await self._fail_in_doubt(conn, in_doubt, now)
        if claimed:
            await self.settle(conn, claimed, now, result)

    async def settle(
        self,
        conn: AsyncConnection,
        claimed: list[dict[str, Any]],
        now: Any,
        result: Settled,
        *,
        organizations: dict[str, str] | None = None,
        opt_outs_checked: bool = False,
    ) -> None:
        """Route messages this node holds as 'sending' and settle those that need nobody outside.

        Used by the dispatcher's rounds and, for replies, right in the transaction that creates
        them (``Messaging.submit(..., dispatch=True)``), whose caller knows the sender's
        organization and has just checked the opt-outs.
        """
        ms = self.messaging
        expired = _expired(claimed, now, ms.sms.queue_timeout)
        if expired:
            await self._fail_expired(conn, expired, now)
            gone = {r["sid"] for r in expired}
            claimed = [r for r in claimed if r["sid"] not in gone]
            if not claimed:
                result.callbacks = True
                return
        opted = {} if opt_outs_checked else await store.opt_out_times(conn, claimed)
        orgs = organizations or await store.organizations(conn, (r["account_sid"] for r in claimed))
        numbers: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        internal: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        blocked: list[dict[str, Any]] = []
        no_route: list[dict[str, Any]] = []
        for row in claimed:
            if store.blocked_by_opt_out(row, opted):
                blocked.append(row)
                continue
            key = (orgs.get(row["account_sid"], ""), row["to_number"])
            if key not in numbers:
                numbers[key] = await find_hosted_number(conn, key[0], key[1])
            number = numbers[key]
            if number is not None:
                internal.append((row, number))
            elif ms.router.carrier_for(row["to_number"]) is not None:
                result.carrier.append(row)
            else:
                no_route.append(row)
        if internal:
            await self._deliver_internally(conn, internal, now, result)
        if blocked:
            await store.set_status(conn, blocked, m.FAILED, now, error_code=m.ERR_OPTED_OUT, seq=store.SEQ_FINAL)
        if no_route:
            await self._fail_no_route(conn, no_route, now)
        result.callbacks = result.callbacks or _wants_callbacks(claimed)

    async def _deliver_internally(
        self, conn: AsyncConnection, items: list[tuple[dict[str, Any], Mapping[str, Any]]], now: Any, result: Settled
    ) -> None:
        """Store the arrivals and settle the outbound rows, in this one transaction."""
        ms = self.messaging
        arrivals = [
            Arrival(
                number=number,
                from_number=row["from_number"],
                to_number=number["phone_number"] if not number["is_pattern"] else row["to_number"],
                body=row["body"],
                hop=row["hop"] + 1,
                parent_sid=row["sid"],
                num_segments=row["num_segments"],
                encoding=row["encoding"],
            )
            for row, number in items
        ]
        # Sessions this node can start at once are stored 'running' (saves a claim round trip).
        accounts = [number["account_sid"] for _, number in items]
        slots = ms.apps.reserve(accounts)
        result.slots += slots
        if slots:
            result.slot_accounts += accounts
        stored = await store_arrivals(conn, arrivals, ms.sms, now, run_now=slots, owner=ms.node_id)
        result.started.extend(stored.started)
        result.numbers.update(stored.numbers)
        await store.set_status(
            conn,
            [row for row, _ in items],
            m.DELIVERED,
            now,
            seq=store.SEQ_FINAL,
            extra_callbacks=[(m.SENT, store.SEQ_SENT)],
            route=m.ROUTE_INTERNAL,
        )
        self.delivered += len(items)
        result.apps = result.apps or stored.pending_apps
        result.outbound = result.outbound or stored.replies > 0

    async def _fail_no_route(self, conn: AsyncConnection, rows: list[dict[str, Any]], now: Any) -> None:
        await _fail(conn, rows, now, NO_ROUTE, lambda row: (
            f"Message {row['sid']} to {row['to_number']} failed: the number is not hosted here and no "
            "carrier serves it (configure one with [[carriers]] prefixes, or [[sms.routes]])."))

    async def _fail_expired(self, conn: AsyncConnection, rows: list[dict[str, Any]], now: Any) -> None:
        """Messages that waited longer than ``queue_timeout`` to be sent (a carrier down or slower
        than the account's traffic): failed with 30001, as Twilio does past the validity period."""
        timeout = self.messaging.sms.queue_timeout
        await _fail(conn, rows, now, m.ERR_QUEUE_OVERFLOW, lambda row: (
            f"Message {row['sid']} to {row['to_number']} waited more than {timeout:g} s to be sent "
            "([sms] queue_timeout) and was failed instead."))

    async def _fail_in_doubt(self, conn: AsyncConnection, rows: list[Any], now: Any) -> None:
        await _fail(conn, rows, now, IN_DOUBT, lambda row: (
            f"Message {row['sid']} was being handed to carrier {row['carrier']} when its node stopped; "
            "whether the carrier took it is unknown, so it is marked failed rather than sent twice."), seq=None)

    # -- carriers ---------------------------------------------------------------------------------

    async def _to_carriers(self, rows: list[dict[str, Any]], name: str) -> None:
        try:
            await self._hand_over(rows)
        finally:
            self.in_hand.difference_update(r["sid"] for r in rows)
            self._handed[name] -= len(rows)
            if not self.stopping:
                full = self.held_count() >= self.max_held
                self._pump(name)
                if full and self.held_count() < self.max_held:
                    self.messaging.outbound_ready.set()  # room again: claim more (this node only)

    async def _hand_over(self, rows: list[dict[str, Any]]) -> None:
        ms = self.messaging
        plan: list[tuple[dict[str, Any], str]] = []
        missing: list[dict[str, Any]] = []
        for row in rows:
            name = ms.router.carrier_for(row["to_number"])
            if name is not None and name in ms.router.transports:
                plan.append((row, name))
            else:
                missing.append(row)

        async def mark(conn: AsyncConnection) -> None:
            now = ms.clock()
            if plan:  # committed before the hand-off: from here on it is "in doubt"
                await conn.execute(
                    _MARK_CARRIER, sorted(({"b_sid": row["sid"], "carrier": name} for row, name in plan),
                                          key=lambda p: p["b_sid"])
                )
            if missing:
                await _fail_unregistered(conn, missing, now, ms)

        if not await self._persist(mark, "marking messages for their carrier", rows):
            return  # nothing was handed on; the leases run out and the messages are taken again
        results = await asyncio.gather(
            *(self._send(row, name) for row, name in plan), return_exceptions=True
        )

        answers: list[tuple[dict[str, Any], str, SendResult]] = []
        for (row, name), result in zip(plan, results, strict=True):
            if isinstance(result, BaseException):
                log.error("carrier %s raised for %s: %r", name, row["sid"], result)
                result = SendResult("rejected", error_code=m.ERR_UNKNOWN, error_message=repr(result))
            answers.append((row, name, result))

        async def record(conn: AsyncConnection) -> None:
            await _record_sends(conn, answers, ms.clock())

        if not await self._persist(record, "recording carrier answers", rows):
            return  # handed on but not recorded: after the lease they count as in doubt (30008)
        ms.wake(callbacks=_wants_callbacks(rows),
                outbound=any(isinstance(r, SendResult) and r.status == "unavailable" for r in results))
        self.handed_to_carriers += len(plan)

    async def _persist(self, job: Any, what: str, rows: list[dict[str, Any]]) -> bool:
        """Run a carrier bookkeeping job, retrying a few times (a deadlock victim, a database that
        blinked): giving up leaves the rows to their lease, which is the slow way to recover."""
        delay = 0.05
        for attempt in range(6):
            try:
                await self.messaging.writer.run(job, retry=True)
                return True
            except Exception:
                log.exception("%s failed (attempt %d) for %d message(s)", what, attempt + 1, len(rows))
                await asyncio.sleep(delay)
                delay = min(delay * 4, 5.0)
        return False

    async def _send(self, row: dict[str, Any], name: str) -> SendResult:
        # A task of its own (gather): binding here names the message in the transport's log lines.
        bind(message_sid=row["sid"])
        transport = self.messaging.router.transports[name]
        return await transport.send(
            CarrierMessage(
                sid=row["sid"],
                account_sid=row["account_sid"],
                source=row["from_number"],
                destination=row["to_number"],
                body=row["body"],
                encoding=row["encoding"],
                num_segments=row["num_segments"],
            )
        )


def _expired(rows: list[dict[str, Any]], now: Any, timeout: float) -> list[dict[str, Any]]:
    """Claimed messages older than the queue timeout (never one that was handed to a carrier:
    claimed rows have no route)."""
    if not timeout:
        return []
    limit = now - timedelta(seconds=timeout)
    return [r for r in rows if r["date_created"] < limit]


def _wants_callbacks(rows: list[Any]) -> bool:
    """Whether changing these messages queued status callbacks (only then is the outbox woken)."""
    return any(r.get("status_callback") for r in rows)


async def _fail(conn: AsyncConnection, rows: list[Any], now: Any, code: int, why: Callable[[Any], str],
                seq: int | None = store.SEQ_FINAL) -> None:
    """Fail ``rows`` with ``code`` (callbacks queued) and write each one's notification."""
    await store.set_status(conn, rows, m.FAILED, now, error_code=code, seq=seq)
    for row in rows:
        await write_notification(conn, account_sid=row["account_sid"], error_code=code, log=ERROR,
                                 message_text=why(row), message_sid=row["sid"], clock=lambda: now)


async def _fail_unregistered(conn: AsyncConnection, rows: list[dict[str, Any]], now: Any, ms: Messaging) -> None:
    await _fail(conn, rows, now, NO_ROUTE, lambda row: (
        f"Message {row['sid']} to {row['to_number']} failed: it is routed to carrier "
        f"{ms.router.carrier_for(row['to_number'])!r}, which is not configured on this node."))


_MARK_CARRIER = (
    update(messages).where(messages.c.sid == bindparam("b_sid")).values(route=m.ROUTE_CARRIER, carrier=bindparam("carrier"))
)
_RELEASE = (
    update(messages)
    .where(messages.c.sid == bindparam("b_sid"), messages.c.lease_owner == bindparam("owner"),
           messages.c.route.is_(None))
    .values(status=m.QUEUED, lease_owner=None, lease_until=None)
)
_REQUEUE = (
    update(messages)
    .where(messages.c.sid == bindparam("b_sid"))
    .values(status=m.QUEUED, route=None, carrier=None, lease_owner=None, lease_until=None,
            next_attempt_at=bindparam("due"), date_updated=bindparam("now"))
)
_INSERT_SEGMENTS = insert(message_segments)
# The number lookups run for every message delivered here and every application session (routing).
store.precompiled(_MARK_CARRIER, _RELEASE, _REQUEUE, _INSERT_SEGMENTS, routing._HOSTED, routing._EXACT)


async def _record_sends(conn: AsyncConnection, answers: list[tuple[dict[str, Any], str, SendResult]], now: Any) -> None:
    """Record the carriers' answers for a batch: a few statements whatever its size."""
    accepted: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    requeue: list[dict[str, Any]] = []
    failed: dict[int, list[dict[str, Any]]] = {}
    for row, carrier, result in answers:
        if result.status == "accepted":
            accepted.append(row)
            segments.extend(
                {"message_sid": row["sid"], "seq": i, "carrier": carrier, "carrier_message_id": mid,
                 "status": m.SENT, "error_code": None, "date_updated": now}
                for i, mid in enumerate(result.message_ids)
            )
        elif result.status == "unavailable":
            # Nothing was handed on: back to the queue, later, and no longer in doubt.
            delay = min(RETRY_BASE * (2 ** max(row["attempts"] - 1, 0)), RETRY_MAX)
            requeue.append({"b_sid": row["sid"], "due": now + timedelta(seconds=delay), "now": now})
        else:
            failed.setdefault(result.error_code or m.ERR_UNKNOWN, []).append(row)
    if accepted:
        await store.set_status(conn, accepted, m.SENT, now, seq=store.SEQ_SENT)
    if segments:
        await conn.execute(_INSERT_SEGMENTS, segments)
    if requeue:
        await conn.execute(_REQUEUE, sorted(requeue, key=lambda r: r["b_sid"]))
    for code, rows in sorted(failed.items()):
        await store.set_status(conn, rows, m.FAILED, now, error_code=code, seq=store.SEQ_FINAL)
