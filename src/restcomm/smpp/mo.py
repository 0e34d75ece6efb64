"""What a carrier delivers to us (``deliver_sm``/``data_sm``), handed to the messaging pipeline.

:class:`InboundHandler` is the ``on_deliver`` of every configured :class:`~restcomm.smpp.esme.Carrier`.
The Carrier acknowledges the SMSC only after it returns, and asks for re-delivery
(``ESME_RX_T_APPN``) if it raises, so each branch below returns only once what it did is
committed:

* **Receipts** (text ``id:… stat:…`` form or ``receipted_message_id``/``message_state`` TLVs,
  parsed by :mod:`restcomm.smpp.receipt`) go to ``Messaging.record_receipt``: the segment, then the
  message, become ``delivered``/``undelivered``/``failed`` with Twilio's 30xxx code, and the status
  callback is queued. ``ACCEPTD``/``ENROUTE`` are recorded per segment but change no message.
* **A receipt that arrives before its submit_sm_resp was recorded** (the SMSC may answer the
  submit and send the receipt in the same instant, while the dispatcher records the answers of a
  whole batch in one transaction) finds no segment. It is *parked* in ``smpp_parked_receipts``
  before the SMSC is acknowledged, and :class:`ParkedReceipts` re-applies it as soon as the
  carrier's id is stored (a sweep shortly after each park, then backing off; a slow sweep also
  picks up receipts parked before a restart). Receipts still unmatched after ``park_seconds``
  (their message was failed as in doubt after a crash, or the id was never ours) are dropped
  with a log line.
* **MO to a hosted number** enters the inbound pipeline through ``Messaging.receive`` (the
  number's application runs and its reply goes out through the carriers). Addresses with TON 1
  (international) get their ``+`` back, so applications see E.164.
* **Parts of a concatenated MO** (UDH with 8- or 16-bit reference, or SAR TLVs) come one by one
  (:class:`~restcomm.smpp.esme.MoPart`) and :class:`MoParts` reassembles them in the database:
  each part is stored in ``mo_parts`` before the SMSC is acknowledged, so an acknowledged part
  survives a crash. The transaction that stores the last part also moves the whole text into the
  inbound pipeline and deletes the parts, so the message enters it exactly once; a part the SMSC
  delivers again while its message waits hits the table's key (source, destination, reference,
  total, part) and is ignored. The key names no bind or node: with several nodes on one
  database, parts received by different nodes meet in the table.
* **MO whose parts never all arrived** within the receiving carrier's ``mo_reassembly_timeout``
  is recorded as a notification 30009 "Missing segment" carrying the text that did arrive, filed
  under the account of the number it was for (the administrator when no number matches); it is
  not given to the application, which would answer a truncated text. Deadlines are stored with
  the parts and swept from the table, so they hold across restarts and nodes.
* **MO to a number nobody hosts** is acknowledged and recorded as a notification 11005 under the
  organization's administrator account (Restcomm logged and dropped it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.encoding import GSM7, UCS2
from restcomm.messaging import store
from restcomm.messaging.dispatcher import Settled
from restcomm.messaging.receipts import ReceiptRecorder
from restcomm.notify import ERROR, WARNING, write_notification
from restcomm.observability import bind
from restcomm.polling import PollingWorker, wake_or_poll
from restcomm.routing import find_incoming_number
from restcomm.smpp.esme import Inbound, MoMessage, MoPart, ReceiptReceived
from restcomm.store.schema import (
    accounts,
    message_segments,
    mo_parts,
    smpp_parked_receipts,
)

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

log = logging.getLogger("restcomm.smpp.mo")

NOT_HOSTED = 11005  # Restcomm's code for SMS to a destination no account hosts
MISSING_SEGMENT = 30009

#: Sweep delays after a receipt is parked: the first retry comes quickly (the dispatcher records
#: a batch's answers within milliseconds to a second), then backs off to ``SWEEP_MAX``.
SWEEP_FIRST = 0.05
SWEEP_MAX = 2.0
#: Receipts parked longer than this are treated as "young" (swept on the fast schedule).
YOUNG_SECONDS = 60.0
#: Slow sweep, for receipts parked by an earlier run of the server (or another node).
SWEEP_IDLE = 30.0
SWEEP_BATCH = 500
#: Stored MO parts are swept when the earliest deadline among them comes, and at least this often
#: (parts stored by another node, or before a restart, whose node is gone).
PARTS_SWEEP_IDLE = 10.0
#: PostgreSQL (several writing transactions at once, on one node or several): the last two parts
#: of a message, stored by concurrent transactions, may each not see the other. A sweep this soon
#: after a part leaves its message one part short finds the message whole and delivers it.
PARTS_RECHECK = 0.2
#: Parts of a message that went through are kept this long, to recognize them if delivered again.
PARTS_KEEP_DONE = 600.0


def e164(address: str, ton: int) -> str:
    """The address as the pipeline stores numbers: ``+`` restored for TON 1 (international)."""
    if ton == 1 and address.isdigit():
        return "+" + address
    return address


class InboundHandler:
    """The ``on_deliver`` callback of the carriers (one instance shared by all of them)."""

    def __init__(self, messaging: Messaging, parking: ParkedReceipts) -> None:
        self.messaging = messaging
        self.parking = parking
        self.receipts = parking.receipts
        self.parts = MoParts(messaging, self)
        self._admin_sid: str | None = None
        self._counters: dict[str, dict[str, int]] = {}

    def counters(self, carrier: str) -> dict[str, int]:
        """Per carrier: receipts, receipts_parked, mo, mo_not_hosted, mo_incomplete, and
        mo_assembled (MO reassembled from parts in the database, counted by the carrier of its first
        part; the Carrier's own ``mo`` counter counts only messages that came whole)."""
        found = self._counters.get(carrier)
        if found is None:
            found = self._counters[carrier] = dict.fromkeys(
                ("receipts", "receipts_parked", "mo", "mo_not_hosted", "mo_incomplete", "mo_assembled"), 0)
        return found

    async def __call__(self, item: Inbound) -> None:
        # Each deliver_sm is handled in a task of its own (Carrier._handle_deliver): fields bound in
        # it name the message in its log lines, the "on_deliver failed" one included.
        if isinstance(item, ReceiptReceived):
            await self.receipt(item)
        elif isinstance(item, MoPart):
            await self.parts.add(item)
        else:
            await self.mo(item)

    # -- receipts ---------------------------------------------------------------------------------

    async def receipt(self, item: ReceiptReceived) -> None:
        r = item.receipt
        bind(carrier=item.carrier, carrier_message_id=r.message_id)
        counters = self.counters(item.carrier)
        counters["receipts"] += 1
        if await self.receipts.record(item.carrier, r.message_id, r.status, r.error_code):
            return
        # Some SMSCs write the text id in another base than the TLV / submit_sm_resp id.
        if r.text_id and r.text_id != r.message_id and await self.receipts.record(
            item.carrier, r.text_id, r.status, r.error_code
        ):
            return
        counters["receipts_parked"] += 1
        await self.parking.park(item.carrier, r.message_id, r.status, r.error_code)

    # -- mobile-originated ------------------------------------------------------------------------

    async def mo(self, item: MoMessage) -> None:
        source = e164(item.source, item.source_ton)
        destination = e164(item.destination, item.destination_ton)
        counters = self.counters(item.carrier)
        if item.missing:
            counters["mo_incomplete"] += 1
            await self._incomplete(item, source, destination)
            return
        counters["mo"] += 1
        encoding = item.alphabet if item.alphabet in (GSM7, UCS2) else None
        row = await self.messaging.receive(
            source, destination, item.body,
            num_segments=item.segments if encoding else None, encoding=encoding,
        )
        if row is None:
            counters["mo_not_hosted"] += 1
            await self._not_hosted(item, source, destination)
        else:
            bind(message_sid=row["sid"])

    async def _not_hosted(self, item: MoMessage, source: str, destination: str) -> None:
        ms = self.messaging

        async def job(conn: AsyncConnection) -> None:
            # receive() found no number a moment ago; look again inside this transaction so a
            # number provisioned in between is not reported as missing.
            if await find_incoming_number(conn, ms.services.organization_sid, destination) is not None:
                raise _Retry
            await self.note_not_hosted(conn, item.carrier, source, destination, item.body)

        try:
            await ms.writer.run(job)
        except _Retry:
            await self.mo(item)  # the number appeared: deliver after all

    async def _incomplete(self, item: MoMessage, source: str, destination: str) -> None:
        async def job(conn: AsyncConnection) -> None:
            await self.note_incomplete(conn, item.carrier, item.segments, item.missing, source, destination, item.body)

        await self.messaging.writer.run(job)

    async def note_not_hosted(self, conn: AsyncConnection, carrier: str, source: str, destination: str,
                              body: str) -> None:
        await write_notification(
            conn,
            account_sid=await self._admin(conn),
            error_code=NOT_HOSTED,
            log=WARNING,
            message_text=(
                f"Carrier {carrier} delivered a message from {source} to {destination}, which no "
                f"account hosts (no IncomingPhoneNumber matches); it was acknowledged and not delivered. "
                f"Text: {body}"
            ),
            clock=self.messaging.clock,
        )

    async def note_incomplete(self, conn: AsyncConnection, carrier: str, total: int, missing: tuple[int, ...],
                              source: str, destination: str, body: str) -> None:
        ms = self.messaging
        number = await find_incoming_number(conn, ms.services.organization_sid, destination)
        account = number["account_sid"] if number is not None else await self._admin(conn)
        await write_notification(
            conn,
            account_sid=account,
            error_code=MISSING_SEGMENT,
            log=ERROR,
            message_text=(
                f"A {total}-part message from {source} to {destination} (carrier {carrier}) "
                f"is missing part(s) {', '.join(str(p) for p in missing)}: they did not arrive "
                f"within the reassembly timeout, so it was not given to the application. "
                f"Text received: {body}"
            ),
            clock=ms.clock,
        )

    async def _admin(self, conn: AsyncConnection) -> str:
        if self._admin_sid is None:
            self._admin_sid = (
                await conn.execute(
                    select(accounts.c.sid)
                    .where(accounts.c.parent_sid.is_(None),
                           accounts.c.organization_sid == self.messaging.services.organization_sid)
                    .order_by(accounts.c.date_created)
                    .limit(1)
                )
            ).scalar_one()
        return self._admin_sid


class _Retry(Exception):
    pass


class _Taken(Exception):
    """Another transaction (this node's or another's) took the parts first: it delivers the message."""


PartsKey = tuple[str, str, int, int]  # source, destination, reference, total (as received)


def _key_params(key: PartsKey) -> dict[str, Any]:
    return {"k_source": key[0], "k_destination": key[1], "k_reference": key[2], "k_total": key[3]}


# The statements of a part's transaction, built once: building and compiling them per part cost
# more than running them.
_p = mo_parts
_OF = ((_p.c.source == bindparam("k_source")) & (_p.c.destination == bindparam("k_destination"))
       & (_p.c.reference == bindparam("k_reference")) & (_p.c.total == bindparam("k_total")))
_INSERT = {"postgresql": postgresql.insert(_p).on_conflict_do_nothing(),
           "sqlite": sqlite.insert(_p).on_conflict_do_nothing()}
_COPY = select(_p.c.body, _p.c.date_done).where(_OF, _p.c.part == bindparam("k_part"))
_DROP_DONE = delete(_p).where(_OF, _p.c.date_done.is_not(None))
_WAITING = select(_p).where(_OF, _p.c.date_done.is_(None)).order_by(_p.c.part)
_MARK_DONE = (update(_p).where(_OF, _p.c.date_done.is_(None))
              .values(date_done=bindparam("k_now"), date_expires=bindparam("k_keep")))
_DROP_WAITING = delete(_p).where(_OF, _p.c.date_done.is_(None))


class MoParts(PollingWorker):
    """Concatenated MO reassembled in the database (``mo_parts``), and the sweep of its timeouts.

    ``add`` stores one part in a group-commit job and returns after the commit, so the Carrier
    acknowledges the SMSC only for a stored part. The same job reads the message's parts; when
    they are all there it marks them done and stores the whole message (``Messaging.receive_in``)
    or, for a number nobody hosts, the 11005 notification, in that same transaction. The update
    must take every part it read, or the job is undone: two transactions never both deliver it.

    Done parts stay for ``PARTS_KEEP_DONE`` seconds: a part delivered again after its message went
    through (its deliver_sm_resp lost in a crash, say) finds its done copy and is ignored, instead
    of starting a message that would time out into a false 30009. A part with the same key but
    another text is a new message reusing the reference: the done parts make way for it.

    The sweep (``start``/``stop``) runs when the earliest stored deadline comes (and every
    ``PARTS_SWEEP_IDLE`` seconds for deadlines it does not know of): a message still incomplete at
    its deadline becomes the 30009 notification, its parts deleted in the same transaction, and
    done parts past their time are deleted. It also delivers messages found whole, which only
    happens when their last parts were stored by concurrent transactions (PostgreSQL) that each
    missed the other's part.
    """

    task_name = "smpp-mo-parts"

    def __init__(self, messaging: Messaging, handler: InboundHandler) -> None:
        super().__init__()
        self.messaging = messaging
        self.handler = handler
        self._due: float | None = None  # loop time of the next planned sweep
        # Several writing transactions at once (PostgreSQL): see PARTS_RECHECK.
        self._concurrent = messaging.writer.sync_engine is None
        self.stored = 0
        self.duplicates = 0
        self.assembled = 0
        self.expired = 0

    # -- a part arrives ---------------------------------------------------------------------------

    async def add(self, item: MoPart) -> None:
        ms = self.messaging
        now = ms.clock()
        key: PartsKey = (item.source, item.destination, item.reference, item.total)
        bind(carrier=item.carrier, mo_part=f"{item.seq}/{item.total}", mo_reference=item.reference)
        row = {
            "source": item.source, "destination": item.destination, "reference": item.reference,
            "total": item.total, "part": item.seq, "carrier": item.carrier, "body": item.body,
            "data_coding": item.data_coding, "alphabet": item.alphabet, "source_ton": item.source_ton,
            "destination_ton": item.destination_ton, "date_received": now,
            "date_expires": now + timedelta(seconds=item.timeout),
        }
        params = _key_params(key)
        result = Settled()

        async def job(conn: AsyncConnection) -> tuple[str, Any]:
            insert = _INSERT["postgresql" if store.is_postgres(conn) else "sqlite"]
            if not (await conn.execute(insert, row)).rowcount:
                there = (await conn.execute(_COPY, {**params, "k_part": item.seq})).first()
                if there is None or there.date_done is None or there.body == item.body:
                    return "duplicate", 0  # waiting already, or delivered with its message
                # Same addresses, reference and total but another text: a new message reusing the
                # reference of one that went through. The done parts make way for it.
                await conn.execute(_DROP_DONE, params)
                await conn.execute(insert, row)
            return await self._settle(conn, key, result, now, expire=False)

        kind, detail = await self._write(job, result)
        if kind == "duplicate":
            self.duplicates += 1
            log.info("MO part %d/%d (reference %d) from %s delivered again: ignored", item.seq, item.total,
                     item.reference, item.source)
            return
        self.stored += 1
        if kind == "waiting":
            loop = asyncio.get_running_loop()
            due = loop.time() + item.timeout
            if self._concurrent and detail == item.total - 1:
                due = loop.time() + PARTS_RECHECK
            if self._due is None or due < self._due:
                self._due = due
                self.wake()

    async def _write(self, job: Any, result: Settled) -> tuple[str, Any]:
        ms = self.messaging
        try:
            kind, detail = await ms.writer.run(job)
        except BaseException:
            ms.dispatcher.committed(result, ok=False)
            raise
        ms.dispatcher.committed(result)
        self._count(kind, detail)
        return kind, detail

    def _count(self, kind: str, detail: Any) -> None:
        if kind in ("assembled", "not_hosted", "expired"):
            carrier, sid = detail
            counters = self.handler.counters(carrier)
            if kind == "assembled":
                self.assembled += 1
                counters["mo"] += 1
                counters["mo_assembled"] += 1
                bind(message_sid=sid)
            elif kind == "not_hosted":
                self.assembled += 1
                counters["mo"] += 1
                counters["mo_assembled"] += 1
                counters["mo_not_hosted"] += 1
            else:
                self.expired += 1
                counters["mo_incomplete"] += 1

    async def _settle(self, conn: AsyncConnection, key: PartsKey, result: Settled, now: Any, *,
                      expire: bool) -> tuple[str, Any]:
        """Deliver the message if all its parts are stored (or, with ``expire``, give it up if its
        time is up); ``(outcome, detail)``: ``waiting``/parts stored, ``gone``, ``assembled``/
        (carrier, sid), ``not_hosted``/(carrier, None), ``expired``/(carrier, None)."""
        params = _key_params(key)
        parts = list((await conn.execute(_WAITING, params)).mappings())
        total = key[3]
        if not parts:
            return "gone", 0
        complete = len(parts) >= total
        if not complete and not (expire and min(r["date_expires"] for r in parts) <= now):
            return "waiting", len(parts)
        if complete:
            take, args = _MARK_DONE, {**params, "k_now": now, "k_keep": now + timedelta(seconds=PARTS_KEEP_DONE)}
        else:
            take, args = _DROP_WAITING, params
        try:
            async with conn.begin_nested():
                if (await conn.execute(take, args)).rowcount != len(parts):
                    raise _Taken
                return await self._deliver(conn, parts, result, complete)
        except _Taken:
            return "gone", 0

    async def _deliver(self, conn: AsyncConnection, parts: list[Any], result: Settled,
                       complete: bool) -> tuple[str, Any]:
        ms = self.messaging
        first = parts[0]
        carrier, total = first["carrier"], first["total"]
        source = e164(first["source"], first["source_ton"])
        destination = e164(first["destination"], first["destination_ton"])
        body = "".join(r["body"] for r in parts)
        if not complete:
            have = {r["part"] for r in parts}
            missing = tuple(i for i in range(1, total + 1) if i not in have)
            await self.handler.note_incomplete(conn, carrier, total, missing, source, destination, body)
            return "expired", (carrier, None)
        alphabet = first["alphabet"]
        encoding = alphabet if alphabet in (GSM7, UCS2) else None
        row = await ms.receive_in(conn, result, ms.services.organization_sid, source, destination, body,
                                  num_segments=total if encoding else None, encoding=encoding)
        if row is None:
            log.warning("message from %s to %s: no number matches, dropped", source, destination)
            await self.handler.note_not_hosted(conn, carrier, source, destination, body)
            return "not_hosted", (carrier, None)
        return "assembled", (carrier, row["sid"])

    # -- the sweep --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.start_loop()

    async def stop(self) -> None:
        await self.stop_loop(cancel=True)

    async def run_pass(self, woken: bool) -> float:
        """Sweep; the next sweep is planned at the earliest deadline (which ``add`` may bring nearer)."""
        loop = asyncio.get_running_loop()
        self._due = None  # from here on, add() plans the next sweep (a deadline sooner than ours)
        try:
            wait = await self.sweep()
        except Exception:
            log.exception("sweeping stored MO parts failed")
            wait = None
        due = loop.time() + (PARTS_SWEEP_IDLE if wait is None else min(max(wait, 0.0), PARTS_SWEEP_IDLE))
        if self._due is None or due < self._due:
            self._due = due
        return self._due - loop.time()

    async def pause(self, delay: float | None) -> None:
        """Until the planned sweep: a wake re-reads the plan (``add`` moved it nearer) rather than ending the wait.

        Ends at once when the loop is stopping: ``stop_loop`` sets the wake event and cancels the task,
        and on Python 3.11 ``asyncio.wait_for`` drops a cancellation that meets an already-set event,
        so without the check the next round of this loop waited out the plan (up to 10 s) at shutdown."""
        loop = asyncio.get_running_loop()
        assert self._due is not None
        while loop.time() < self._due and not self.stopping:
            self.wake_event.clear()
            await wake_or_poll(self.wake_event, self._due - loop.time())

    async def sweep(self) -> float | None:
        """Settle every message that is whole or past its deadline; seconds until the next
        deadline among the parts left (None when none is stored)."""
        ms = self.messaging
        p = mo_parts
        cols = (p.c.source, p.c.destination, p.c.reference, p.c.total)

        async def find(conn: AsyncConnection) -> tuple[list[PartsKey], Any]:
            now = ms.clock()
            await conn.execute(delete(p).where(p.c.date_done.is_not(None), p.c.date_expires <= now))
            due = [tuple(r) for r in await conn.execute(
                select(*cols).where(p.c.date_done.is_(None)).group_by(*cols)
                .having((func.count() >= p.c.total) | (func.min(p.c.date_expires) <= now))
                .limit(SWEEP_BATCH)
            )]
            return due, now  # type: ignore[return-value]

        while True:
            due, now = await ms.writer.run(find)
            for key in due:
                result = Settled()

                async def job(conn: AsyncConnection, key: PartsKey = key, result: Settled = result) -> tuple[str, Any]:
                    return await self._settle(conn, key, result, ms.clock(), expire=True)

                try:
                    kind, _ = await self._write(job, result)
                except Exception:
                    log.exception("settling stored MO parts %s failed", key)
                    continue
                if kind == "expired":
                    log.warning("MO from %s to %s (reference %d) incomplete after its reassembly timeout: "
                                "recorded as notification %d", key[0], key[1], key[2], MISSING_SEGMENT)
            if len(due) < SWEEP_BATCH:
                break

        async def next_deadline(conn: AsyncConnection) -> Any:
            return (await conn.execute(select(func.min(p.c.date_expires)))).scalar()

        earliest = await ms.writer.run(next_deadline)
        if earliest is None:
            return None
        return (earliest - ms.clock()).total_seconds()


class ParkedReceipts(PollingWorker):
    """Receipts waiting for their message id to be recorded, and the task that re-applies them."""

    task_name = "smpp-parked-receipts"

    def __init__(self, messaging: Messaging, *, park_seconds: float = 3600.0) -> None:
        super().__init__()
        self.messaging = messaging
        self.receipts = ReceiptRecorder(messaging)
        self.park_seconds = park_seconds
        self._delay = 0.0  # the wait planned after the last sweep (it backs off while nothing applies)
        self.applied = 0
        self.expired = 0

    async def park(self, carrier: str, message_id: str, status: str, error_code: int | None) -> None:
        ms = self.messaging
        await ms.writer.insert((smpp_parked_receipts, [{
            "carrier": carrier, "carrier_message_id": message_id, "status": status, "error_code": error_code,
            "date_received": ms.clock(),
        }]))
        self.wake()

    async def start(self) -> None:
        self._delay = 0.0  # one sweep at start: receipts parked before a restart
        self.start_loop()

    async def stop(self) -> None:
        await self.stop_loop(cancel=True)

    async def run_pass(self, woken: bool) -> float:
        """Sweep; quickly after a receipt was parked, then backing off while receipts are young."""
        if woken:
            await asyncio.sleep(SWEEP_FIRST)  # let the dispatcher record the answers first
            self._delay = SWEEP_FIRST
        delay = self._delay
        try:
            applied, young = await self.sweep()
        except Exception:
            log.exception("re-applying parked receipts failed")
            applied, young = 0, True
        if not young:
            delay = SWEEP_IDLE
        elif applied:
            delay = SWEEP_FIRST
        else:
            delay = min(SWEEP_MAX, max(delay, SWEEP_FIRST) * 2)
        self._delay = delay
        return delay

    async def sweep(self) -> tuple[int, bool]:
        """Apply every parked receipt whose id is now stored; ``(applied, young ones left)``."""
        ms = self.messaging
        p, s = smpp_parked_receipts, message_segments

        async def find(conn: AsyncConnection) -> tuple[list[Any], list[Any], bool]:
            now = ms.clock()
            matched = list((await conn.execute(
                select(p.c.id, p.c.carrier, p.c.carrier_message_id, p.c.status, p.c.error_code)
                .select_from(p.join(s, (s.c.carrier == p.c.carrier) & (s.c.carrier_message_id == p.c.carrier_message_id)))
                .order_by(p.c.id)
                .limit(SWEEP_BATCH)
            )).all())
            old = list((await conn.execute(
                select(p.c.id, p.c.carrier, p.c.carrier_message_id)
                .where(p.c.date_received < now - timedelta(seconds=self.park_seconds))
                .limit(SWEEP_BATCH)
            )).all())
            if old:
                await conn.execute(delete(p).where(p.c.id.in_([r.id for r in old])))
            young = (await conn.execute(
                select(p.c.id).where(p.c.date_received >= now - timedelta(seconds=YOUNG_SECONDS)).limit(1)
            )).first() is not None
            return matched, old, young

        matched, old, young = await ms.writer.run(find)
        for r in old:
            log.warning("receipt from %s for unknown message id %s dropped after %.0f s", r.carrier,
                        r.carrier_message_id, self.park_seconds)
        self.expired += len(old)
        if not matched:
            return 0, young
        # Submitted in arrival order (the writer keeps it), so ENROUTE lands before DELIVRD.
        unique = list({r.id: r for r in matched}.values())
        await asyncio.gather(*(self.receipts.record(r.carrier, r.carrier_message_id, r.status, r.error_code)
                               for r in unique))
        ids = [r.id for r in unique]

        async def forget(conn: AsyncConnection) -> None:
            await conn.execute(delete(p).where(p.c.id.in_(ids)))

        await ms.writer.run(forget)
        self.applied += len(ids)
        return len(ids), young or len(matched) == SWEEP_BATCH
