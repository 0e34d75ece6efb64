"""Delivery receipts, owned by messaging: whatever channel brought them (SMPP today), a receipt
names a carrier's message id and a status, and this module turns a batch of them into segment and
message statuses and queued status callbacks.

:class:`ReceiptRecorder` is what ``Messaging.record_receipt`` and the SMPP inbound handler use.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.store.schema import message_segments, messages, status_callbacks

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

log = logging.getLogger("restcomm.messaging.receipts")

# Delivery receipt states a carrier may report, and what the message becomes.
RECEIPT_STATUSES = frozenset({m.SENT, m.DELIVERED, m.UNDELIVERED, m.FAILED})
#: Most receipts applied in one transaction (more wait for the next one).
RECEIPT_BATCH = 500


def message_status(segments: list[str]) -> str | None:
    """A message's status from its segments' receipts: the first failure, or delivered when all are."""
    for bad in (m.FAILED, m.UNDELIVERED):
        if bad in segments:
            return bad
    if segments and all(s == m.DELIVERED for s in segments):
        return m.DELIVERED
    return None


class ReceiptRecorder:
    """``Messaging.record_receipt`` for many receipts at once: the same rules, a few statements per
    batch instead of six per receipt.

    Receipts arrive in bursts (one TCP read carries dozens); each caller waits for the commit of
    the batch that carries its receipt, so the SMSC is still acknowledged only once the receipt is
    stored. While one batch is in the writer, the next one accumulates. The rules are those of
    ``record_receipt`` (the segment takes the receipt's status; the message is ``delivered`` when
    every segment is, and takes the first ``undelivered``/``failed`` as soon as one segment reports
    it, with that receipt's error code; a message already ``undelivered``/``failed`` stays so; the
    status callback is queued with the change).
    """

    def __init__(self, messaging: Messaging) -> None:
        self.messaging = messaging
        self._pending: list[tuple[str, str, str, int | None, asyncio.Future[bool]]] = []
        self._busy = False

    async def record(self, carrier: str, carrier_message_id: str, status: str, error_code: int | None) -> bool:
        """True once the receipt is committed; False when no stored segment has this id."""
        if status not in RECEIPT_STATUSES:
            raise ValueError(f"receipt status must be one of {sorted(RECEIPT_STATUSES)}")
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((carrier, carrier_message_id, status, error_code, fut))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch, self._pending = self._pending[:RECEIPT_BATCH], self._pending[RECEIPT_BATCH:]
        task = asyncio.create_task(self._apply(batch))
        task.add_done_callback(self._done)

    def _done(self, _task: asyncio.Task[None]) -> None:
        if self._pending:
            self._flush()
        else:
            self._busy = False

    async def _apply(self, batch: list[tuple[str, str, str, int | None, asyncio.Future[bool]]]) -> None:
        ms = self.messaging
        try:
            found = await ms.writer.run(lambda conn: self._job(conn, batch), retry=True)
        except BaseException as exc:
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            return
        if any(found):
            ms.wake(callbacks=True)
        for (carrier, mid, state, *_), fut, ok in zip(batch, (b[4] for b in batch), found, strict=True):
            if not ok:
                log.info("receipt from %s for unknown message id %s (not stored yet?)", carrier, mid)
            else:
                log.info("receipt from %s for message id %s: %s", carrier, mid, state)
            if not fut.done():
                fut.set_result(ok)

    async def _job(self, conn: AsyncConnection, batch: list[tuple[str, str, str, int | None, Any]]) -> list[bool]:
        seg = message_segments
        now = self.messaging.clock()
        # The segments these ids name, carrier by carrier.
        located: dict[tuple[str, str], tuple[str, int]] = {}
        by_carrier: dict[str, set[str]] = {}
        for carrier, mid, *_ in batch:
            by_carrier.setdefault(carrier, set()).add(mid)
        for carrier, ids in by_carrier.items():
            rows = await conn.execute(
                select(seg.c.carrier_message_id, seg.c.message_sid, seg.c.seq)
                .where(seg.c.carrier == carrier, seg.c.carrier_message_id.in_(sorted(ids)))
                .order_by(seg.c.message_sid, seg.c.seq)
            )
            for mid, sid, seq in rows:
                located.setdefault((carrier, mid), (sid, seq))
        found = [(carrier, mid) in located for carrier, mid, *_ in batch]
        if not any(found):
            return found
        # The last receipt for a segment wins (ENROUTE then DELIVRD in one batch: DELIVRD).
        latest: dict[tuple[str, str], tuple[str, int | None]] = {}
        for (carrier, mid, status, code, _), ok in zip(batch, found, strict=True):
            if ok:
                latest[(carrier, mid)] = (status, code)
        groups: dict[tuple[str, str, int | None], list[str]] = {}
        for (carrier, mid), (status, code) in latest.items():
            groups.setdefault((carrier, status, code), []).append(mid)
        for (carrier, status, code), ids in groups.items():
            for i in range(0, len(ids), 500):
                await conn.execute(
                    update(seg)
                    .where(seg.c.carrier == carrier, seg.c.carrier_message_id.in_(ids[i:i + 500]))
                    .values(status=status, error_code=code, date_updated=now)
                )
        sids = sorted({located[key][0] for key in latest})
        statuses: dict[str, list[str]] = {}
        rows_by_sid: dict[str, Any] = {}
        for i in range(0, len(sids), 500):
            chunk = sids[i:i + 500]
            for sid, status in await conn.execute(select(seg.c.message_sid, seg.c.status).where(seg.c.message_sid.in_(chunk))):
                statuses.setdefault(sid, []).append(status)
            for row in (await conn.execute(select(messages).where(messages.c.sid.in_(chunk)))).mappings():
                rows_by_sid[row["sid"]] = row
        # Error code of a bad outcome: the receipt in this batch that reported it for the message.
        codes: dict[str, int | None] = {}
        for key, (status, code) in latest.items():
            if status in (m.FAILED, m.UNDELIVERED):
                codes.setdefault(located[key][0], code)
        changes: dict[tuple[str, int | None], list[Any]] = {}
        for sid in sids:
            message = rows_by_sid.get(sid)
            if message is None:
                continue
            new = message_status(statuses.get(sid, []))
            if new is None or new == message["status"] or message["status"] in (m.FAILED, m.UNDELIVERED):
                continue
            changes.setdefault((new, codes.get(sid) if new != m.DELIVERED else None), []).append(message)
        # The callback of a receipt comes after whatever the message already queued (sending, sent):
        # one grouped query for the next sequence numbers instead of one per message.
        wants = sorted({r["sid"] for rows in changes.values() for r in rows if r.get("status_callback")})
        next_seq: dict[str, int] = {}
        if wants:
            cb = status_callbacks
            found_seq = await conn.execute(
                select(cb.c.message_sid, func.max(cb.c.seq)).where(cb.c.message_sid.in_(wants)).group_by(cb.c.message_sid))
            next_seq = {sid: (top or 0) + 1 for sid, top in found_seq}
        for (new, code), rows in changes.items():
            by_seq: dict[int, list[Any]] = {}
            for r in rows:
                by_seq.setdefault(next_seq.get(r["sid"], 1), []).append(r)
            for seq, group in by_seq.items():
                await store.set_status(conn, group, new, now, error_code=code, seq=seq)
        return found

