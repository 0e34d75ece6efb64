"""The application runner: starts the SMS interpreter for inbound messages, at most once each.

A message to a number with an SMS application is stored ``pending``, or, when this node has room
for a session, directly ``running`` with this node's lease in the transaction that delivers it (the
dispatcher's, or a carrier's arrival). The claim loop takes ``pending`` messages the same way: it
marks them ``running`` in its own commit. Either way the commit precedes the session's first
request, and sessions start right after it.

Crash behaviour, decided so that no application ever sees a message twice: a message found
``running`` whose lease expired belongs to a node that died with the session in hand (the request
may or may not have reached the application). It is never run again: it becomes ``interrupted`` and
the account gets a notification (11200) naming the message. Replies the session had already
committed are dispatched normally; one not committed yet was never sent. Messages still ``pending``
are simply run by whichever node is up. At most ``[sms] app_concurrency`` messages per node are
``running`` at a time, which bounds what a crash can interrupt.

Fairness between accounts: the claim shares its slots between the accounts with pending messages
(messaging/store.py), and one account has at most ``[sms] app_concurrency_per_account`` sessions
running per node (a quarter of the slots by default), so one slow application cannot hold every slot
while other accounts' messages wait. While any account is at its limit, arrivals are not started
directly: they are stored ``pending`` and go through the fair claim.

Live nodes renew their leases (``[sms] lease_seconds``), so only a dead node's work is taken over,
on SQLite or PostgreSQL alike.

Order within a conversation (our number, their number): sessions start in arrival order, and a
session sends its first request only after the previous session of the conversation has sent its
own. Requests are not held back until the previous one is answered: that would cap a busy
conversation at one message per application round trip. Like Twilio's, requests on separate
connections can therefore overtake each other at the application.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.messaging.rcml_sms import run_sms_application
from restcomm.notify import ERROR, write_notification
from restcomm.observability import bind
from restcomm.polling import PollingWorker
from restcomm.rcml.errors import Code
from restcomm.routing import find_incoming_number
from restcomm.store.db import database_unavailable
from restcomm.store.schema import accounts, applications

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

log = logging.getLogger("restcomm.messaging.apps")

# How long the record of ended sessions may wait to join another write (see _flush).
FINISH_WITHIN = 0.1

_ACCOUNT = select(accounts).where(accounts.c.sid == bindparam("sid"))
_APPLICATION = select(applications).where(applications.c.sid == bindparam("sid"))
store.precompiled(_ACCOUNT, _APPLICATION)


@dataclass
class _Claim:
    rows: list[Any] = field(default_factory=list)
    reserved: int = 0
    full: bool = False


@dataclass
class Turn:
    """A session's place in its conversation: set when its first request goes out (or it ends)."""

    issued: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self) -> None:
        self.issued.set()


class AppRunner(PollingWorker):
    task_name = "sms-app-runner"

    def __init__(self, messaging: Messaging):
        super().__init__(messaging.apps_ready)
        self.messaging = messaging
        self._sessions: set[asyncio.Task[None]] = set()
        self._conversations: dict[tuple[str, str], Turn] = {}  # the latest session's turn
        self._reserved = 0
        self._by_account: Counter[str] = Counter()  # sessions running + reserved, per account
        self._account_cap = messaging.sms.app_account_limit
        self._finished: list[tuple[str, str]] = []
        self.in_hand: set[str] = set()  # inbound messages 'running' here (their leases are renewed)
        self._flusher: asyncio.Task[None] | None = None
        # True while messages may be waiting as 'pending' (a claim came back full, or a transaction
        # could not start all its arrivals): then arrivals are not started directly (see reserve).
        self._backlog = True
        self._cursor = store.FairCursor()  # where the next fair claim starts among the accounts
        self.completed = 0

    async def start(self) -> None:
        self.start_loop()

    async def stop(self) -> None:
        """Stop starting sessions and let the running ones finish (they are bounded by timeouts)."""
        await self.stop_loop()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._flusher is not None:
            await self._flusher

    # -- capacity: sessions running + slots reserved by transactions not yet committed ----------

    def free(self) -> int:
        return max(self.messaging.sms.app_concurrency - len(self._sessions) - self._reserved, 0)

    def account_load(self) -> dict[str, int]:
        """Sessions running or reserved here, per account (what the claim's account limit counts)."""
        return {a: n for a, n in self._by_account.items() if n > 0}

    def reserve(self, accounts: Sequence[str]) -> int:
        """Slots for sessions a transaction is about to store as 'running' (see store_arrivals).

        ``accounts``: the account of each arrival. None while pending messages wait to be claimed,
        so a newer message of a conversation never starts before an older one, nor when an arrival's
        account would go over its limit (they go through the fair claim instead). The reservation
        holds every arrival's account until ``adopt`` or ``release`` with the same ``accounts``.
        """
        if self._backlog or self.stopping or not accounts:
            return 0
        wanted = Counter(accounts)
        if any(self._by_account[a] + k > self._account_cap for a, k in wanted.items()):
            self._backlog = True
            self.messaging.apps_ready.set()
            return 0
        n = min(len(accounts), self.free())
        if n == 0:
            self._backlog = True
            self.messaging.apps_ready.set()
            return 0
        self._reserved += n
        self._by_account.update(wanted)
        if n < len(accounts):
            self._backlog = True  # some will be stored 'pending'; the claim loop takes them in order
            self.messaging.apps_ready.set()
        return n

    def release(self, n: int, accounts: Sequence[str] = ()) -> None:
        """Give back what a transaction that failed had reserved."""
        self._reserved -= n
        self._by_account.subtract(accounts)

    def adopt(self, rows: list[Any], reserved: int, numbers: Mapping[str, Any] | None = None,
              accounts: Sequence[str] = ()) -> None:
        """Start sessions for rows committed as 'running' with this node's lease.

        ``numbers`` (inbound sid -> receiving number) spares the sessions a lookup when the
        transaction that stored the rows already made it; ``accounts`` is what ``reserve`` was given.
        """
        self._reserved -= reserved
        self._by_account.subtract(accounts)
        for row in rows:
            self._by_account[row["account_sid"]] += 1
            self.in_hand.add(row["sid"])
            key = (row["to_number"], row["from_number"])
            turn = Turn()
            number = numbers.get(row["sid"]) if numbers else None
            task = asyncio.create_task(self._session(row, self._conversations.get(key), turn, number))
            self._conversations[key] = turn
            self._sessions.add(task)
            task.add_done_callback(lambda t, key=key, turn=turn, a=row["account_sid"]: self._done(t, key, turn, a))

    # -- the claim loop (pending messages, and those a dead node left) --------------------------

    async def run_pass(self, woken: bool) -> float | None:
        """Claim pending work (and what dead nodes left) up to the free session slots."""
        ms = self.messaging
        if self.free() <= 0 and woken:
            # Every slot busy. The wake may say work is pending (from another node, too): the next
            # session to finish looks for it (and arrivals meanwhile queue behind it, in order).
            self._backlog = True
            return ms.sms.poll_interval
        # Every slot busy or not, a poll also looks for the sessions a dead node left running.
        claim = _Claim()
        try:
            await ms.writer.run(partial(self._claim, claim=claim))
        except Exception:
            log.exception("claiming application work failed")
            self.release(claim.reserved)
            await asyncio.sleep(ms.sms.poll_interval)
            return 0
        self.adopt(claim.rows, claim.reserved)
        if claim.full or self.stopping:
            return 0
        return ms.sms.poll_interval

    def _done(self, task: asyncio.Task[None], key: tuple[str, str], turn: Turn, account: str) -> None:
        self._sessions.discard(task)
        self._by_account[account] -= 1
        if self._by_account[account] <= 0:
            del self._by_account[account]
        turn.end()
        if self._conversations.get(key) is turn:
            del self._conversations[key]
        if self._backlog:  # a slot opened for messages waiting as 'pending'
            self.messaging.apps_ready.set()

    async def _claim(self, conn: AsyncConnection, claim: _Claim) -> None:
        ms = self.messaging
        now = ms.clock()
        limit = self.free()
        self._reserved += limit
        claim.reserved = limit
        load = self.account_load()
        rows, interrupted = await store.claim_apps(conn, ms.node_id, now, ms.sms.lease_seconds, limit,
                                                   cursor=self._cursor, account_cap=self._account_cap,
                                                   account_load=load)
        claim.rows = rows
        claim.full = limit > 0 and (len(rows) >= limit or self._cursor.more)
        at_cap = any(n + sum(1 for r in rows if r["account_sid"] == a) >= self._account_cap for a, n in load.items())
        if limit > 0 and not claim.full and not at_cap:
            # Everything pending is in hand (no account was held back by its limit): new arrivals
            # may start directly.
            self._backlog = False
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

    # -- one session ----------------------------------------------------------------------------

    async def _session(self, inbound: Any, previous: Turn | None, turn: Turn, number: Any = None) -> None:
        ms = self.messaging
        state = m.APP_FAILED
        bind(message_sid=inbound["sid"])  # the session's own task: every line it logs names the message

        async def before_first_request() -> None:
            if previous is not None:
                await previous.issued.wait()
            turn.issued.set()

        try:
            async with ms.read() as conn:
                account = (await conn.execute(_ACCOUNT, {"sid": inbound["account_sid"]})).mappings().first()
                application = None
                if account is not None and number is None:
                    number = await find_incoming_number(conn, account["organization_sid"], inbound["to_number"])
                if number is not None and number.get("sms_application_sid"):
                    application = (
                        await conn.execute(_APPLICATION, {"sid": number["sms_application_sid"]})
                    ).mappings().first()
            if account is None or number is None:
                state = m.APP_DONE  # the number was released since the message arrived: no app to run
            else:
                state = await run_sms_application(ms, inbound, number, account, application,
                                                  before_first_request=before_first_request)
        except Exception as exc:
            if not turn.issued.is_set() and database_unavailable(exc):
                # The database went away before any request reached the application: the message
                # waits as 'pending' and runs once it is back (if this cannot even be recorded, the
                # lease runs out and it is reported as interrupted).
                log.warning("SMS application session for %s postponed: database unavailable", inbound["sid"])
                state = m.APP_PENDING
                self._backlog = True
            else:
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
                # Bookkeeping that nobody waits for: it joins the writer's next batch (the next
                # message's) rather than costing a transaction and a commit of its own.
                await ms.writer.run(partial(_finish_apps, owner=ms.node_id, finished=batch, now=ms.clock()),
                                    retry=True, within=FINISH_WITHIN)
            except Exception:
                # Left 'running': when the lease runs out they are reported as interrupted.
                log.exception("recording the end of %d sessions failed", len(batch))
            self.in_hand.difference_update(sid for sid, _ in batch)


async def _finish_apps(conn: AsyncConnection, owner: str, finished: list[tuple[str, str]], now: Any) -> None:
    await store.finish_apps(conn, owner, finished, now)
