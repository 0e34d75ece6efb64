"""The status-callback outbox worker: every queued callback is delivered, in order, with retries.

Status changes queue their callbacks in the same transaction as the change (``messaging.store``,
``voice.store``), numbered per message or call (``seq``). This worker claims callbacks that are due and whose predecessors
are all finished, so a message's ``delivered`` is never sent before its ``sent``, not even when
``sent`` needed retries. Each request is signed with the message account's AuthToken.

A failure the application may recover from (connection errors, timeouts, 5xx, 408/425/429) is
retried after ``callback_backoff`` seconds, doubling each time up to ``callback_backoff_max``, for
at most ``callback_max_attempts`` attempts. Then, or at once for an answer that retrying cannot
change (other 4xx, bad URL), it is given up: ``failed`` plus an 11200 notification with the request
and the answer's excerpt, and the next callback of the message may go.

Fairness between accounts: the claim shares the free slots between the accounts with callbacks due
(messaging/store.py), and one account has at most ``[sms] callback_concurrency_per_account`` in
flight per node (a quarter of the slots by default), so a slow or unreachable callback URL of one
account cannot hold every slot while others' callbacks wait.

Delivery is at least once: a node that dies after the application answered but before ``done`` was
committed leaves the callback to be sent again when its lease expires.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import store
from restcomm.notify import ERROR, write_notification
from restcomm.observability import bind
from restcomm.polling import PollingWorker
from restcomm.rcml.errors import Code
from restcomm.store.schema import accounts, calls, messages, status_callbacks
from restcomm.webhooks.fetch import FetchResult, post_callback

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

log = logging.getLogger("restcomm.webhooks.callbacks")  # the name operators filter on (docs/operations.md)

_DONE = (
    update(status_callbacks)
    .where(status_callbacks.c.id == bindparam("b_id"))
    .values(state="done", lease_owner=None, lease_until=None, attempts=bindparam("attempts"))
)


def _status(params: dict[str, str]) -> str | None:
    """The status a callback reports: a message's MessageStatus or a call's event."""
    return params.get("MessageStatus") or params.get("StatusCallbackEvent") or params.get("CallStatus")


def _what(sid: str) -> str:
    return f"call {sid}" if sid.startswith("CA") else f"message {sid}"


class CallbackWorker(PollingWorker):
    task_name = "sms-status-callbacks"

    def __init__(self, messaging: Messaging):
        super().__init__(messaging.callbacks_ready)
        self.messaging = messaging
        self._inflight: set[asyncio.Task[None]] = set()
        self._by_account: Counter[str] = Counter()  # in flight per account
        self._cursor = store.FairCursor()  # where the next fair claim starts among the accounts
        self.delivered = 0
        self.in_hand: set[int] = set()  # callbacks being delivered (their leases are renewed)
        # Delivered callbacks waiting to be recorded: one statement per writer batch for all of them.
        self._ok: list[tuple[int, int]] = []  # (id, attempts)
        self._ok_flush: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self.start_loop()

    async def stop(self) -> None:
        await self.stop_loop()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def run_pass(self, woken: bool) -> float:
        """Claim the callbacks that are due, up to the free delivery slots, and start them."""
        ms = self.messaging
        capacity = ms.sms.callback_concurrency - len(self._inflight)
        claimed: list[Any] = []
        if capacity > 0:
            try:
                claimed, tokens, due = await ms.writer.run(partial(self._claim, limit=capacity), retry=True)
            except Exception:
                log.exception("claiming status callbacks failed")
                await asyncio.sleep(ms.sms.poll_interval)
                return 0
            for row in claimed:
                self.in_hand.add(row["id"])
                task = asyncio.create_task(self._deliver(row, tokens.get(row["message_sid"])))
                self._inflight.add(task)
                account = row["account_sid"] or ""
                self._by_account[account] += 1
                task.add_done_callback(lambda t, a=account: self._done(t, a))
            if len(claimed) >= capacity or self._cursor.more:
                return 0
        else:
            due = None
        # Sleep until the next retry falls due; a finishing delivery (whose successor may now go)
        # or a new commit wakes us earlier.
        wait = ms.sms.poll_interval
        if due is not None:
            wait = min(wait, max((due - ms.clock()).total_seconds(), 0.001))
        return wait

    def _done(self, task: asyncio.Task[None], account: str) -> None:
        self._inflight.discard(task)
        self._by_account[account] -= 1
        if self._by_account[account] <= 0:
            del self._by_account[account]
        self.messaging.callbacks_ready.set()

    async def _claim(self, conn: AsyncConnection, limit: int) -> tuple[list[Any], dict[str, str], datetime | None]:
        ms = self.messaging
        now = ms.clock()
        load = {a: n for a, n in self._by_account.items() if a}
        rows = await store.claim_callbacks(conn, ms.node_id, now, ms.sms.lease_seconds, limit, cursor=self._cursor,
                                           account_cap=ms.sms.callback_account_limit, account_load=load)
        tokens: dict[str, str] = {}
        if rows:
            # A callback reports on a message (SM…) or a call (CA…): its account signs it.
            sids = {r["message_sid"] for r in rows}
            for table, group in ((calls, sorted(s for s in sids if s.startswith("CA"))),
                                 (messages, sorted(s for s in sids if not s.startswith("CA")))):
                if not group:
                    continue
                found = await conn.execute(
                    select(table.c.sid, accounts.c.auth_token)
                    .join(accounts, accounts.c.sid == table.c.account_sid)
                    .where(table.c.sid.in_(group))
                )
                for sid, token in found:
                    tokens[sid] = token
        due = None if rows else await store.next_callback_due(conn, now)
        return rows, tokens, due

    async def _deliver(self, row: Any, token: str | None) -> None:
        ms = self.messaging
        bind(message_sid=row["message_sid"])  # this task's own context: its log lines name the message
        params = orjson.loads(row["params"])
        assert ms.callback_http is not None
        try:
            result = await post_callback(
                ms.callback_http, row["url"], params, token, method=row["method"],
                timeout=ms.sms.callback_timeout, max_redirects=ms.sms.app_max_redirects, guard=ms.guard,
            )
        except Exception as exc:  # a bug, not the application's doing: retry later like a failure
            log.exception("status callback %s raised", row["id"])
            result = None
            error = repr(exc)
        else:
            error = result.error
        try:
            if result is not None and result.ok:
                await self._record_ok(row)
            elif await ms.writer.run(lambda conn: self._record(conn, row, params, result, error), retry=True):
                log.warning("status callback %s to %s given up: %s", _status(params), row["url"], error)
        except Exception:
            log.exception("recording status callback %s failed", row["id"])  # sent again after the lease
        finally:
            self.in_hand.discard(row["id"])
        if result is not None and result.ok:
            self.delivered += 1

    async def _record_ok(self, row: Any) -> None:
        """Mark a delivered callback done: joins the next group-commit job that marks the others
        delivered meanwhile (at 1,000 messages/s there are 3,000 of these a second)."""
        self._ok.append((row["id"], row["attempts"] + 1))
        if self._ok_flush is None:
            flush = self._ok_flush = asyncio.ensure_future(self.messaging.writer.run(self._ok_job(), retry=True))
            flush.add_done_callback(self._flushed)
        await asyncio.shield(self._ok_flush)

    def _flushed(self, flush: asyncio.Future[None]) -> None:
        if self._ok_flush is flush:  # failed before its job ran: the next delivery starts another
            self._ok_flush = None
        if not flush.cancelled():
            flush.exception()  # its waiters see it; don't report it again as never retrieved

    def _ok_job(self) -> Any:
        taken: list[list[tuple[int, int]]] = []

        async def write_ok(conn: AsyncConnection) -> None:
            if not taken:  # the first run takes what is waiting; later ones go to the next job
                taken.append(self._ok)
                self._ok, self._ok_flush = [], None
            # (A re-run, after the writer lost the transaction, writes the same ones again.)
            await conn.execute(_DONE, [{"b_id": i, "attempts": n} for i, n in sorted(taken[0])])

        return write_ok

    async def _record(
        self, conn: AsyncConnection, row: Any, params: dict[str, str], result: FetchResult | None, error: str | None
    ) -> bool:
        """Record a delivery that did not succeed; True when the callback is given up."""
        ms = self.messaging
        now = ms.clock()
        sc = status_callbacks
        if result is not None and result.ok:
            await conn.execute(_DONE, [{"b_id": row["id"], "attempts": row["attempts"] + 1}])
            return False
        attempts = row["attempts"] + 1
        retry = result is None or result.retryable
        if retry and attempts < ms.sms.callback_max_attempts:
            await conn.execute(
                update(sc)
                .where(sc.c.id == row["id"])
                .values(attempts=attempts, lease_owner=None, lease_until=None,
                        next_attempt_at=now + timedelta(seconds=ms.sms.callback_delay(attempts)))
            )
            return False
        await conn.execute(update(sc).where(sc.c.id == row["id"]).values(state="failed", attempts=attempts,
                                                                         lease_owner=None, lease_until=None))
        account_sid = params.get("AccountSid", "")
        is_call = row["message_sid"].startswith("CA")
        why = "giving up" if retry else "not retried: the answer will not change"
        response = result.response if result is not None else None
        await write_notification(
            conn,
            account_sid=account_sid,
            error_code=Code.HTTP_RETRIEVAL_FAILURE if response is not None else Code.HTTP_CONNECTION_FAILURE,
            log=ERROR,
            message_text=(
                f"Status callback {_status(params)} for {_what(row['message_sid'])} to {row['url']} "
                f"failed after {attempts} attempt(s) ({error}); {why}."
            ),
            request_url=row["url"],
            request_method=row["method"],
            request_variables=params,
            response_headers=response.headers_text() if response else None,
            response_body=response.body if response else None,
            message_sid=None if is_call else row["message_sid"],
            call_sid=row["message_sid"] if is_call else None,
            clock=lambda: now,
        )
        return True
