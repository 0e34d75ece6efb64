"""The messaging engine of one node: the entry points everyone calls, and the workers it runs.

Entry points:

* ``submit`` — an outbound message from the API or from an application's ``<Sms>``/``<Message>``:
  checked, committed as ``queued``, then dispatched from the store.
* ``receive`` — a message a carrier delivered to one of our numbers (SMPP ``deliver_sm``).
* ``record_receipt`` — a carrier's delivery receipt for a message it accepted.
* ``register_carrier`` — a carrier transport offering routes (see transports.py).

Workers (started and stopped with the server, in this order): the group-commit writer, the
dispatcher, the application runner, the status-callback outbox, and a lease keeper that renews this
node's claims while it works on them. On SIGTERM they stop in reverse: nothing new is claimed, work
in hand is finished, and the writer commits what is left before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.messaging.config import SmsSettings, load_sms_settings
from restcomm.messaging.dispatcher import Settled
from restcomm.messaging.inbound import Arrival, store_arrivals
from restcomm.messaging.reads import EngineChecks, SendChecks, make_checks
from restcomm.messaging.receipts import ReceiptRecorder
from restcomm.messaging.transports import CarrierRouter, Transport
from restcomm.messaging.validation import Outbound, Rejected, is_phone_number
from restcomm.messaging.writer import GroupCommitWriter, LoopConnection, sqlite_sync_engine
from restcomm.profiles import SMS
from restcomm.routing import find_incoming_number
from restcomm.store.schema import messages
from restcomm.webhooks.lean import LeanClient

if TYPE_CHECKING:
    from restcomm.container import Services

log = logging.getLogger("restcomm.messaging")



class Messaging:
    def __init__(self, services: Services, sms: SmsSettings | None = None):
        self.services = services
        self.sms = sms or load_sms_settings(services.settings)
        self.clock = services.clock
        self.node_id = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        settings = services.settings
        # SQLite: the writer and the pipeline's reads run on synchronous connections in the loop
        # thread (see writer.py); PostgreSQL uses the pooled async engine throughout.
        self.sync_engine = (
            sqlite_sync_engine(services.engine, settings.sqlite_synchronous) if settings.is_sqlite else None
        )
        self.writer = GroupCommitWriter(
            services.engine, sync_engine=self.sync_engine, max_batch=self.sms.group_commit_max_batch,
            shared=services.db if settings.is_sqlite else None,
        )
        self._read_conn: Connection | None = None
        self.router = CarrierRouter()
        for route in self.sms.routes:
            self.router.add_route(route.prefix, route.carrier)
        self.outbound_ready = asyncio.Event()
        self.apps_ready = asyncio.Event()
        self.callbacks_ready = asyncio.Event()
        if services.wakes is not None:  # other nodes' commits wake these too (store/wakeups.py)
            services.wakes.subscribe("outbound", self.outbound_ready.set)
            services.wakes.subscribe("apps", self.apps_ready.set)
            services.wakes.subscribe("callbacks", self.callbacks_ready.set)
        self.http: aiohttp.ClientSession | None = None
        self.callback_http: LeanClient | None = None  # status callbacks (webhooks/lean.py)
        self._receipts: ReceiptRecorder | None = None  # made on first use
        # The webhook destination guard (restcomm.webhooks.guard), None when private destinations are allowed.
        self.guard = settings if settings.webhook_block_private else None

        from restcomm.messaging.apps import AppRunner
        from restcomm.messaging.callbacks import CallbackWorker
        from restcomm.messaging.dispatcher import Dispatcher

        self.dispatcher = Dispatcher(self)
        self.apps = AppRunner(self)
        self.callbacks = CallbackWorker(self)
        self._keeper: asyncio.Task[None] | None = None
        self._drained = False
        self.checks: SendChecks = EngineChecks(services.engine)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._drained = False
        from restcomm.webhooks.fetch import USER_AGENT, create_session
        from restcomm.webhooks.guard import check_addresses

        self.http = create_session(limit=max(self.sms.app_concurrency, self.sms.callback_concurrency) * 2,
                                   limit_per_host=max(self.sms.app_concurrency, self.sms.callback_concurrency),
                                   settings=self.services.settings)
        settings = self.services.settings
        self.callback_http = LeanClient(
            check=check_addresses if settings.webhook_block_private else None, headers={"User-Agent": USER_AGENT}
        )
        self.checks = make_checks(self.services.engine)
        await self.writer.start()
        await self.dispatcher.start()
        await self.apps.start()
        await self.callbacks.start()
        self._keeper = asyncio.create_task(self._keep_leases(), name="sms-lease-keeper")

    async def drain(self) -> None:
        """Stop claiming outbound work; sends in hand finish (the carriers are still up)."""
        if not self._drained:
            self._drained = True
            await self.dispatcher.stop()
            self.services.publish_wake("outbound")  # what is queued here is for the other nodes now

    async def stop(self) -> None:
        await self.drain()
        await self.apps.stop()
        await self.callbacks.stop()
        if self._keeper is not None:
            self._keeper.cancel()
            try:
                await self._keeper
            except asyncio.CancelledError:
                pass
        await self.writer.stop()
        if self.http is not None:
            await self.http.close()
        if self.callback_http is not None:
            await self.callback_http.close()
        self.checks.close()
        if self._read_conn is not None:
            self._read_conn.close()
        if self.sync_engine is not None:
            self.sync_engine.dispose()

    async def _keep_leases(self) -> None:
        interval = self.sms.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                sids = set(self.dispatcher.in_hand) | set(self.apps.in_hand)
                ids = set(self.callbacks.in_hand)
                if sids or ids:
                    await self.writer.run(
                        partial(store.renew_leases, owner=self.node_id, now=self.clock(),
                                lease=self.sms.lease_seconds, message_sids=sids, callback_ids=ids),
                        retry=True,
                    )
            except Exception:
                log.exception("renewing leases failed")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        """A connection for reads outside any write (application sessions)."""
        if self.sync_engine is None:
            async with self.services.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN/ROLLBACK round trips
                yield conn
            return
        if self._read_conn is None:
            # Statements in autocommit, as on PostgreSQL (each one a snapshot of its own): a
            # BEGIN and a ROLLBACK fewer for every use (sqlite_sync_engine's "begin" hook).
            self._read_conn = self.sync_engine.connect().execution_options(autocommit_reads=True)
        try:
            yield LoopConnection(self._read_conn)
        finally:
            self._read_conn.rollback()  # ends SQLAlchemy's transaction (a no-op for SQLite when it read only)

    def wake(self, *, outbound: bool = False, apps: bool = False, callbacks: bool = False) -> None:
        """Call after a commit that created work, so the worker looks now rather than at its next
        poll; the other nodes are told too (they may take it: a free slot, a carrier bound there)."""
        topics = []
        if outbound:
            self.outbound_ready.set()
            if not self.dispatcher.can_claim():
                # Only then: this node's dispatcher takes what it wakes for within milliseconds, and
                # other nodes woken for it would only race it for the rows.
                topics.append("outbound")
        if apps:
            self.apps_ready.set()
            topics.append("apps")
        if callbacks:
            self.callbacks_ready.set()
            topics.append("callbacks")
        if topics:
            self.services.publish_wake(*topics)

    # -- carriers ---------------------------------------------------------------------------------

    def register_carrier(self, transport: Transport, prefixes: tuple[str, ...] = ()) -> None:
        self.router.register(transport, prefixes)
        self.outbound_ready.set()

    # -- submit -----------------------------------------------------------------------------------

    async def check_sender(self, account: Mapping[str, Any], out: Outbound) -> None:
        """21606 unless the account owns From (or it is an allowed alphanumeric sender); 21610 if
        the recipient opted out of this sender."""
        if is_phone_number(out.from_number):
            if not await self.checks.owns_number(account, out.from_number):
                raise Rejected(21606, f"The From phone number {out.from_number} is not a valid, SMS-capable "
                                      "inbound phone number or short code for your account.")
        elif not self.sms.alphanumeric_senders:
            raise Rejected(21606, f"The alphanumeric sender {out.from_number!r} is not allowed: set "
                                  "[sms] alphanumeric_senders = true to permit sender IDs.")
        await self.check_opt_out(out)

    async def check_destination(self, account: Mapping[str, Any], out: Outbound) -> None:
        """21408 when the account's effective profile does not let it send SMS to ``out.to_number``
        (featureEnablement, restcomm.profiles); the policy is cached, so this reads nothing most times."""
        refusal = (await self.services.profiles.policy(account)).refusal(SMS, out.to_number)
        if refusal is not None:
            raise Rejected(21408, f"Permission to send an SMS to {out.to_number} has not been enabled: {refusal}")

    async def check_opt_out(self, out: Outbound) -> None:
        if await self.checks.opted_out(out.from_number, out.to_number):
            raise Rejected(21610, f"Attempt to send to unsubscribed recipient {out.to_number}: it replied STOP to "
                                  f"{out.from_number}.")

    async def submit(
        self,
        account_sid: str,
        out: Outbound,
        *,
        direction: str = m.OUTBOUND_API,
        status_callback: str | None = None,
        status_callback_method: str | None = None,
        hop: int = 0,
        parent_sid: str | None = None,
        dispatch: bool = False,
        organization_sid: str | None = None,
    ) -> dict[str, Any]:
        """Commit a checked message; returns its row (as accepted: ``queued``) once it is durable.

        ``dispatch=True`` (application replies) routes it in the same transaction: a reply to a
        number hosted here is delivered, and the other application's session started, in one
        commit instead of waiting for the dispatcher's next round. Replies are few per document
        and latency is what an application conversation feels; bulk sends from the API go through
        the dispatcher, whose rounds share their lookups across hundreds of messages. The caller
        passes the sender's ``organization_sid`` and has checked opt-outs just before.
        """
        row = m.new_message(
            account_sid=account_sid,
            from_number=out.from_number,
            to_number=out.to_number,
            body=out.body,
            direction=direction,
            status=m.QUEUED,
            num_segments=out.num_segments,
            encoding=out.encoding,
            now=self.clock(),
            status_callback=status_callback,
            status_callback_method=status_callback_method,
            hop=hop,
            parent_sid=parent_sid,
        )
        if log.isEnabledFor(logging.INFO):
            log.info("message %s %s: %s -> %s, %d segment(s)", row["sid"],
                     "accepted" if direction == m.OUTBOUND_API else f"queued ({direction})",
                     out.from_number, out.to_number, out.num_segments)
        if not dispatch:
            await self.writer.insert((messages, [row]))
            store.count_status([row], m.QUEUED)  # committed
            self.wake(outbound=True)
            return row
        result = Settled()

        async def job(conn: AsyncConnection) -> None:
            now = row["date_created"]
            claimed = {**row, "status": m.SENDING, "attempts": 1, "lease_owner": self.node_id,
                       "lease_until": now + timedelta(seconds=self.sms.lease_seconds)}
            await conn.execute(store.INSERT_MESSAGES, [claimed])
            store.count_status([claimed], m.QUEUED, m.SENDING)
            await store.enqueue_callbacks(conn, [(claimed, m.SENDING, None, store.SEQ_SENDING)], now)
            orgs = {account_sid: organization_sid} if organization_sid else None
            await self.dispatcher.settle(conn, [claimed], now, result, organizations=orgs,
                                         opt_outs_checked=True)

        try:
            await self.writer.run(job)
        except BaseException:
            self.dispatcher.committed(result, ok=False)
            raise
        self.dispatcher.committed(result)
        return row

    # -- carrier entry points -----------------------------------------------------------------------

    async def receive(
        self,
        source: str,
        destination: str,
        body: str,
        *,
        organization_sid: str | None = None,
        num_segments: int | None = None,
        encoding: str | None = None,
    ) -> dict[str, Any] | None:
        """A message from a carrier to one of our numbers; stored (durably) before this returns.

        Returns the inbound row, or None when no number matches (the carrier's message is dropped,
        as Restcomm does, and logged).
        """
        org = organization_sid or self.services.organization_sid

        result = Settled()

        async def job(conn: AsyncConnection) -> dict[str, Any] | None:
            return await self.receive_in(conn, result, org, source, destination, body,
                                         num_segments=num_segments, encoding=encoding)

        try:
            row = await self.writer.run(job)
        except BaseException:
            self.dispatcher.committed(result, ok=False)
            raise
        self.dispatcher.committed(result)
        if row is None:
            log.warning("message from %s to %s: no number matches, dropped", source, destination)
        return row

    async def receive_in(
        self,
        conn: AsyncConnection,
        result: Settled,
        org: str,
        source: str,
        destination: str,
        body: str,
        *,
        num_segments: int | None = None,
        encoding: str | None = None,
    ) -> dict[str, Any] | None:
        """``receive`` inside a group-commit job of the caller's (which then calls
        ``dispatcher.committed(result)``, with ``ok=False`` if the job failed)."""
        number = await find_incoming_number(conn, org, destination)
        if number is None:
            return None
        arrival = Arrival(number=number, from_number=source,
                          to_number=number["phone_number"] if not number["is_pattern"] else destination,
                          body=body, num_segments=num_segments, encoding=encoding)
        result.slots = self.apps.reserve([number["account_sid"]])
        result.slot_accounts = [number["account_sid"]] if result.slots else []
        stored = await store_arrivals(conn, [arrival], self.sms, self.clock(), run_now=result.slots,
                                      owner=self.node_id)
        result.started = stored.started
        result.numbers = stored.numbers
        result.apps = stored.pending_apps
        result.outbound = stored.replies > 0
        return stored.rows[0]

    async def record_receipt(self, carrier: str, carrier_message_id: str, status: str, error_code: int | None) -> bool:
        """A delivery receipt for one segment; the message's status follows its segments.

        The message is ``delivered`` when every segment is, and takes the first bad outcome
        (``undelivered``/``failed``) as soon as one segment reports it. Returns False for an
        unknown id (logged and ignored, as Restcomm does).
        """
        if self._receipts is None:
            self._receipts = ReceiptRecorder(self)
        return bool(await self._receipts.record(carrier, carrier_message_id, status, error_code))

    def public_base(self) -> str:
        """This server's own URL, against which relative SmsUrl/RcmlUrl paths are resolved."""
        settings = self.services.settings
        return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
