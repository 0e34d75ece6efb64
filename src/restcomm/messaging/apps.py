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


class AppRunner:
    def __init__(self, messaging: Messaging):
        self.messaging = messaging
        self._task: asyncio.Task[None] | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        # The last session of each conversation (our number, their number): the next one waits for
        # it, so an application sees one sender's messages in the order they arrived.
        self._conversations: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._stopping = False
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

    async def _run(self) -> None:
        ms = self.messaging
        event = ms.apps_ready
        while not self._stopping:
            event.clear()
            capacity = ms.sms.app_concurrency - len(self._sessions)
            if capacity <= 0:
                await event.wait()  # a finishing session sets it
                continue
            try:
                claimed = await ms.writer.run(partial(self._claim, limit=capacity))
            except Exception:
                log.exception("claiming application work failed")
                await asyncio.sleep(ms.sms.poll_interval)
                continue
            for row in claimed:
                key = (row["to_number"], row["from_number"])
                task = asyncio.create_task(self._session(row, self._conversations.get(key)))
                self._conversations[key] = task
                self._sessions.add(task)
                task.add_done_callback(lambda t, key=key: self._done(t, key))
            if len(claimed) >= capacity or self._stopping:
                continue
            try:
                await asyncio.wait_for(event.wait(), ms.sms.poll_interval)
            except TimeoutError:
                pass

    def _done(self, task: asyncio.Task[None], key: tuple[str, str]) -> None:
        self._sessions.discard(task)
        if self._conversations.get(key) is task:
            del self._conversations[key]
        self.messaging.apps_ready.set()

    async def _claim(self, conn: AsyncConnection, limit: int) -> list[Any]:
        ms = self.messaging
        now = ms.clock()
        claimed, interrupted = await store.claim_apps(conn, ms.node_id, now, ms.sms.lease_seconds, limit)
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
        return claimed

    async def _session(self, inbound: Any, previous: asyncio.Task[None] | None) -> None:
        ms = self.messaging
        state = m.APP_FAILED
        if previous is not None:
            await asyncio.wait([previous])
        try:
            async with ms.services.engine.connect() as conn:
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
                state = await SmsSession(ms, inbound, number, account, application).run()
        except Exception:
            log.exception("SMS application session for %s failed", inbound["sid"])
        finally:
            try:
                await ms.writer.run(lambda conn: store.finish_app(conn, inbound["sid"], state, ms.clock()))
            except Exception:
                log.exception("recording the end of the session for %s failed", inbound["sid"])
            self.completed += 1
