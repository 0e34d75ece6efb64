"""The application runner: starts the SMS interpreter for inbound messages, at most once each.

A message to a number with an SMS application is stored with ``app_state = 'pending'``. This loop
claims pending messages and marks them ``running`` (with this node's lease) in a commit of its own,
before any request goes to an application. Only then does each session start.

Crash behaviour, decided so that no application ever sees a message twice: a message found
``running`` whose lease expired belongs to a node that died while its application was being asked
(the request may or may not have reached the application). It is never run again; it becomes
``interrupted`` and the account gets a notification (11200) naming the message, so the operator
can decide. Replies the session had already committed are dispatched normally; a reply that was not
committed yet was never sent. On SQLite (one node) this is settled at start; on PostgreSQL when the
lease (``[sms] lease_seconds``) runs out, since live nodes renew theirs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.notify import ERROR, write_notification
from restcomm.rcml.errors import Code
from restcomm.rcml.interpreter import SmsSession
from restcomm.routing import find_incoming_number
from restcomm.store.schema import accounts, applications

if TYPE_CHECKING:
    from restcomm.messaging.service import Messaging

log = logging.getLogger("restcomm.messaging.apps")


@dataclass
class _Claim:
    rows: list[Any] = field(default_factory=list)
    reserved: int = 0
    full: bool = False


class AppRunner:
    def __init__(self, messaging: Messaging):
        self.messaging = messaging
        self._task: asyncio.Task[None] | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        # Per conversation (our number, their number), the "first request answered" event of its
        # latest session: the next session sends its first request only after that, so an
        # application receives one sender's messages in the order they arrived, while the rest of
        # each session (replies, redirects) overlaps with the next one.
        self._conversations: dict[tuple[str, str], asyncio.Event] = {}
        self._stopping = False
        self._reserved = 0
        self._finished: list[tuple[str, str]] = []
        self._flusher: asyncio.Task[None] | None = None
        # True while messages may be waiting as 'pending' (a claim came back full, or a transaction
        # could not start all its arrivals): then arrivals are not started directly (see reserve).
        self._backlog = True
        self.completed = 0

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="sms-app-runner")

    async def stop(self) -> None:
        """Stop starting sessions and let the running ones finish (they are bounded by timeouts)."""
        self._stopping = True
        self.messaging.apps_ready.set()
        if self._task is not None:
            await self._task
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._flusher is not None:
            await self._flusher

    # -- capacity: sessions running + slots reserved by transactions not yet committed ----------

    def free(self) -> int:
        return max(self.messaging.sms.app_concurrency - len(self._sessions) - self._reserved, 0)

    def reserve(self, wanted: int) -> int:
        """Slots for sessions a transaction is about to store as 'running' (see store_arrivals).

        None while pending messages wait to be claimed, so a newer message of a conversation never
        starts before an older one.
        """
        if self._backlog or self._stopping:
            return 0
        n = min(wanted, self.free())
        self._reserved += n
        if n < wanted:
            self._backlog = True  # some will be stored 'pending'; the claim loop takes them in order
            self.messaging.apps_ready.set()
        return n

    def release(self, n: int) -> None:
        self._reserved -= n

    def adopt(self, rows: list[Any], reserved: int) -> None:
        """Start sessions for rows committed as 'running' with this node's lease."""
        self._reserved -= reserved
        for row in rows:
            key = (row["to_number"], row["from_number"])
            admitted = asyncio.Event()
            task = asyncio.create_task(self._session(row, self._conversations.get(key), admitted))
            self._conversations[key] = admitted
            self._sessions.add(task)
            task.add_done_callback(lambda t, key=key, admitted=admitted: self._done(t, key, admitted))

    async def _run(self) -> None:
        ms = self.messaging
        event = ms.apps_ready
        while not self._stopping:
            event.clear()
            if self.free() <= 0:
                await event.wait()  # a finishing session sets it
                continue
            claim = _Claim()
            try:
                await ms.writer.run(partial(self._claim, claim=claim))
            except Exception:
                log.exception("claiming application work failed")
                self.release(claim.reserved)
                await asyncio.sleep(ms.sms.poll_interval)
                continue
            self.adopt(claim.rows, claim.reserved)
            if claim.full or self._stopping:
                continue
            try:
                await asyncio.wait_for(event.wait(), ms.sms.poll_interval)
            except TimeoutError:
                pass

    def _done(self, task: asyncio.Task[None], key: tuple[str, str], admitted: asyncio.Event) -> None:
        self._sessions.discard(task)
        admitted.set()
        if self._conversations.get(key) is admitted:
            del self._conversations[key]
        if self._backlog:  # a slot opened for messages waiting as 'pending'
            self.messaging.apps_ready.set()

    async def _claim(self, conn: AsyncConnection, claim: _Claim) -> None:
        ms = self.messaging
        now = ms.clock()
        limit = self.free()
        self._reserved += limit
        claim.reserved = limit
        rows, interrupted = await store.claim_apps(conn, ms.node_id, now, ms.sms.lease_seconds, limit)
        claim.rows = rows
        claim.full = len(rows) >= limit
        if not claim.full:
            self._backlog = False  # everything pending is in hand: new arrivals may start directly
        for row in interrupted:
            await write_notification(
                conn,
                account_sid=row["account_sid"],
                error_code=Code.HTTP_RETRIEVAL_FAILURE,
                log=ERROR,
                message_text=(
                    f"The server stopped while the SMS application for message {row['sid']} (from "
                    f"{row['from_number']} to {row['to_number']}) was running. It is not run again, so the "
                    "application never sees the message twice; replies it had already queued are sent."
                ),
                message_sid=row["sid"],
                clock=lambda: now,
            )

    async def _session(self, inbound: Any, previous: asyncio.Event | None, admitted: asyncio.Event) -> None:
        ms = self.messaging
        state = m.APP_FAILED
        try:
            async with ms.read() as conn:
                account = (
                    await conn.execute(select(accounts).where(accounts.c.sid == inbound["account_sid"]))
                ).mappings().first()
                number = None
                application = None
                if account is not None:
                    number = await find_incoming_number(conn, account["organization_sid"], inbound["to_number"])
                if number is not None and number.get("sms_application_sid"):
                    application = (
                        await conn.execute(
                            select(applications).where(applications.c.sid == number["sms_application_sid"])
                        )
                    ).mappings().first()
            if account is None or number is None:
                state = m.APP_DONE  # the number was released since the message arrived: no app to run
            else:
                session = SmsSession(ms, inbound, number, account, application, after=previous, admitted=admitted)
                state = await session.run()
        except Exception:
            log.exception("SMS application session for %s failed", inbound["sid"])
        finally:
            self._finish(inbound["sid"], state)
            self.completed += 1

    def _finish(self, sid: str, state: str) -> None:
        """Session ends are recorded together: one statement for all that ended meanwhile."""
        self._finished.append((sid, state))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        ms = self.messaging
        while self._finished:
            batch, self._finished = self._finished, []
            try:
                await ms.writer.run(partial(_finish_apps, finished=batch, now=ms.clock()))
            except Exception:
                log.exception("recording the end of %d sessions failed", len(batch))


async def _finish_apps(conn: AsyncConnection, finished: list[tuple[str, str]], now: Any) -> None:
    await store.finish_apps(conn, finished, now)
