"""Email: a durable outbox in the ``emails`` table, drained by a background SMTP sender.

Both entry points, ``POST /Accounts/{AccountSid}/Email/Messages`` and the RCML ``<Email>`` verb, call
``queue_email`` inside their own transaction: once that commits, the email is on disk with status
``queued`` and the sender will get to it, whatever happens to this process. The sender claims due
rows with a lease (a conditional UPDATE, so several server processes on one database never take the
same row), hands each message to the configured SMTP server and records ``sent`` or, after the retry
budget or a permanent refusal (5xx), ``failed`` with a Notification for the account.

SMTP delivery is at least once: a crash after the SMTP server accepted a message but before ``sent``
was committed sends it again when the lease expires. Every message carries a ``Message-ID`` derived
from its SID, so a receiving system can recognise the repeat.

The ``[smtp]`` TOML section configures it (see ``SmtpConfig``); without a ``host`` there is no SMTP
server, the API refuses new emails and the sender fails queued ones (from RCML) with a Notification.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import aiosmtplib
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from restcomm.config import ConfigError, Settings
from restcomm.messaging.store import FairClaim, FairCursor, LockingClaim
from restcomm.notify import ERROR, write_notification
from restcomm.polling import PollingWorker
from restcomm.store.schema import emails
from restcomm.util import new_sid

if TYPE_CHECKING:
    from restcomm.container import Services

log = logging.getLogger("restcomm.email")

SID_PREFIX = "EM"
MAX_SUBJECT = 160  # Restcomm truncates longer subjects to 160 characters
CONTENT_TYPES = ("text/plain", "text/html")
# Notification code written when an email finally fails (Twilio has no email code; see
# docs/compatibility.md).
EMAIL_DELIVERY_FAILED = 19001

# A plain address: local@domain, no display name, no whitespace, no header metacharacters.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class InvalidEmail(ValueError):
    """An address list, subject or content type that cannot be sent; the message says which."""

    def __init__(self, field_name: str, message: str):
        self.field_name = field_name
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# Validation, shared by the API and the <Email> verb


def parse_addresses(value: str | Sequence[str] | None, field_name: str) -> list[str]:
    """A comma-separated list (or a sequence) of plain addresses, lowercased domain, in order."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    out: list[str] = []
    for part in parts:
        address = part.strip()
        if not address:
            continue
        if len(address) > 320 or not _ADDRESS.match(address):
            raise InvalidEmail(field_name, f"{address!r} is not a valid email address")
        local, domain = address.rsplit("@", 1)
        address = f"{local}@{domain.lower()}"
        if address not in out:
            out.append(address)
    return out


def clean_subject(subject: str) -> str:
    """One header line of at most 160 characters: control characters (CR/LF included) become spaces."""
    return _CONTROL.sub(" ", subject).strip()[:MAX_SUBJECT]


# ---------------------------------------------------------------------------------------------
# The outbox


async def queue_email(
    conn: AsyncConnection,
    *,
    account_sid: str,
    from_addr: str | None,
    to: str | Sequence[str],
    subject: str,
    body: str,
    cc: str | Sequence[str] | None = None,
    bcc: str | Sequence[str] | None = None,
    content_type: str = "text/plain",
    clock: Callable[[], datetime],
) -> str:
    """Insert one queued email on ``conn`` (the caller commits) and return its SID (``EM…``).

    Raises ``InvalidEmail`` for a missing or malformed recipient or sender, or an unknown content
    type. An empty ``from_addr`` is allowed: the ``[smtp] from`` default is used when it is sent.
    """
    recipients = parse_addresses(to, "To")
    if not recipients:
        raise InvalidEmail("To", "To must name at least one email address")
    senders = parse_addresses(from_addr, "From") if from_addr else []
    if len(senders) > 1:
        raise InvalidEmail("From", "From must be a single email address")
    if content_type not in CONTENT_TYPES:
        raise InvalidEmail("Type", "Type must be text/plain or text/html")
    now = clock()
    sid = new_sid(SID_PREFIX)
    await conn.execute(
        insert(emails).values(
            sid=sid,
            account_sid=account_sid,
            from_addr=senders[0] if senders else "",
            to_addr=", ".join(recipients),
            cc=", ".join(parse_addresses(cc, "CC")) or None,
            bcc=", ".join(parse_addresses(bcc, "BCC")) or None,
            subject=clean_subject(subject),
            body=body.replace("\x00", "\ufffd"),
            content_type=content_type,
            status="queued",
            error_message=None,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_until=None,
            date_created=now,
            date_updated=now,
            date_sent=None,
        )
    )
    return sid


def wake_sender(services: Services) -> None:
    """Tell this process's sender (and the other nodes') that an email was committed, so they need
    not wait for their poll."""
    sender = services.email_sender
    if sender is not None:
        sender.wake()
    services.publish_wake("email")


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SmtpConfig:
    """The ``[smtp]`` section. Only ``host`` is required; everything else has a default."""

    host: str
    port: int = 25
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False  # upgrade with STARTTLS (typically port 587)
    tls: bool = False  # implicit TLS from the first byte (typically port 465)
    validate_certs: bool = True
    from_default: str = ""  # the sender when an <Email> names none
    timeout_seconds: float = 30.0
    max_attempts: int = 5
    retry_base_seconds: float = 30.0  # first retry after this, doubling each time
    retry_max_seconds: float = 3600.0
    poll_seconds: float = 1.0
    lease_seconds: float = 0.0  # 0: derived from timeout_seconds
    batch: int = 10

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds or max(60.0, 4 * self.timeout_seconds))

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next attempt, after ``attempts`` failed ones (1, 2, 4, … × base)."""
        return timedelta(seconds=min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, attempts - 1)))


_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """The SMTP settings, or None when no ``[smtp] host`` is configured. Raises ConfigError when malformed."""
    raw: dict[str, Any] = dict(settings.section("smtp") or {})
    if not raw.get("host"):
        return None
    kinds = {
        "port": int, "timeout_seconds": float, "max_attempts": int, "retry_base_seconds": float,
        "retry_max_seconds": float, "poll_seconds": float, "lease_seconds": float, "batch": int,
    }
    values: dict[str, Any] = {"host": str(raw.pop("host"))}
    if "from" in raw:
        values["from_default"] = str(raw.pop("from"))
    for key, value in raw.items():
        try:
            if key in kinds:
                values[key] = kinds[key](value)
            elif key in ("starttls", "tls", "validate_certs"):
                values[key] = value if isinstance(value, bool) else _BOOL[str(value).strip().lower()]
            elif key in ("username", "password"):
                values[key] = str(value)
            else:
                raise ConfigError(f"[smtp] has an unknown setting {key!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"[smtp] {key} = {value!r} is not valid") from exc
    config = SmtpConfig(**values)
    if config.starttls and config.tls:
        raise ConfigError("[smtp] starttls and tls exclude each other: use one")
    if config.max_attempts < 1 or config.batch < 1 or config.poll_seconds <= 0:
        raise ConfigError("[smtp] max_attempts, batch and poll_seconds must be positive")
    if config.from_default and not _ADDRESS.match(config.from_default):
        raise ConfigError(f"[smtp] from = {config.from_default!r} is not an email address")
    return config


# ---------------------------------------------------------------------------------------------
# Sending


def build_message(row: Any, from_addr: str, domain: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = row["to_addr"]
    if row["cc"]:
        msg["Cc"] = row["cc"]
    msg["Subject"] = row["subject"]
    msg["Date"] = format_datetime(row["date_created"].replace(tzinfo=UTC), usegmt=True)  # stored as naive UTC
    msg["Message-ID"] = f"<{row['sid']}@{domain}>"
    subtype = "html" if row["content_type"] == "text/html" else "plain"
    msg.set_content(row["body"], subtype=subtype, charset="utf-8")
    return msg


def _split(value: str | None) -> list[str]:
    return [a.strip() for a in (value or "").split(",") if a.strip()]


@dataclass
class Outcome:
    sent: bool
    permanent: bool = False
    error: str | None = None


# Claims (see EmailSender._claim). Fresh emails are shared fairly between the accounts waiting, as
# SMS claims are (messaging/store.py ``_Fair``; partial index ix_emails_queued_account, migration
# 0013): one account's backlog of thousands of emails does not hold back another account's next one.
_CLAIM_QUEUED = FairClaim("emails", "status = 'queued'", "next_attempt_at, date_created",
                          " AND next_attempt_at <= :now", list(emails.c), sqlite_index="ix_emails_queued_account")
# A "sending" row whose lease ran out belonged to a process that died mid-send: taken again.
_CLAIM_ABANDONED = LockingClaim(
    select(emails)
    .where(emails.c.status == "sending", emails.c.lease_until < bindparam("now"))
    .order_by(emails.c.lease_until)
    .limit(bindparam("lim"))
)
_TAKE = (
    update(emails)
    .where(emails.c.sid == bindparam("b_sid"))
    .values(status="sending", lease_owner=bindparam("owner"), lease_until=bindparam("until"),
            date_updated=bindparam("now"))
)


class EmailSender(PollingWorker):
    """The background service that drains the ``emails`` outbox over SMTP."""

    task_name = "email-sender"

    def __init__(self, services: Services, smtp: SmtpConfig | None):
        super().__init__()
        self.services = services
        self.smtp = smtp
        self.engine: AsyncEngine = services.engine
        self.clock = services.clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_sid('')[:8]}"
        self.poll = smtp.poll_seconds if smtp else 1.0
        self.lease = smtp.lease if smtp else timedelta(seconds=60)
        self.batch = smtp.batch if smtp else 10
        self._cursor = FairCursor()  # where the next fair claim starts among the accounts
        if services.wakes is not None:  # emails committed on other nodes (store/wakeups.py)
            services.wakes.subscribe("email", self.wake)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.smtp is None:
            log.info("no [smtp] host configured: queued emails will fail with a notification")
        self.start_loop()

    async def stop(self) -> None:
        # The send in hand may finish (bounded by the SMTP timeout); then it is cancelled.
        await self.stop_loop(grace=(self.smtp.timeout_seconds if self.smtp else 5) + 5)

    async def run_pass(self, woken: bool) -> float:
        """Send what is due; the next pass comes at once after a full batch, else at the next retry."""
        try:
            done = await self.run_once()
            return 0.0 if done else await self._until_next_due()
        except Exception:
            log.exception("email sender pass failed")
            return self.poll

    async def _until_next_due(self) -> float:
        """Seconds until the earliest retry is due (at most the poll interval)."""
        async with self.engine.connect() as conn:
            due = (
                await conn.execute(select(func.min(emails.c.next_attempt_at)).where(emails.c.status == "queued"))
            ).scalar()
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, (due - self.clock()).total_seconds()))

    # -- one pass -----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim the due emails, send them concurrently, record the outcomes; return how many."""
        rows = await self._claim()
        if rows:
            await asyncio.gather(*(self._process(row) for row in rows))
        return len(rows)

    def _due(self, now: datetime) -> Any:
        queued = and_(emails.c.status == "queued", emails.c.next_attempt_at <= now)  # never NULL (0013)
        # A "sending" row whose lease ran out belonged to a process that died mid-send.
        abandoned = and_(emails.c.status == "sending", emails.c.lease_until < now)
        return or_(queued, abandoned)

    async def _claim(self) -> list[Any]:
        """Take up to a batch of due emails with this process's lease: fresh ones shared between the
        accounts waiting, then any a dead process left mid-send. Exclusive on both databases: on
        PostgreSQL the rows are locked (``FOR UPDATE SKIP LOCKED``, so two nodes skip each other's),
        on SQLite the claim runs in the single writer's ``BEGIN IMMEDIATE``."""
        now = self.clock()
        async with self.engine.connect() as conn:
            if self.services.settings.is_sqlite:
                # Look first without the write lock: an idle outbox must not contend with SMS
                # traffic for SQLite's single writer.
                async with conn.begin():
                    if (await conn.execute(select(emails.c.sid).where(self._due(now)).limit(1))).first() is None:
                        return []
                await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                rows = await _CLAIM_QUEUED.claim(conn, self._cursor, now, self.batch)
                if len(rows) < self.batch:
                    rows += list((await conn.execute(_CLAIM_ABANDONED(conn),
                                                     {"now": now, "lim": self.batch - len(rows)})).mappings())
                if not rows:
                    return []
                until = now + self.lease
                await conn.execute(_TAKE, [{"b_sid": sid, "owner": self.owner, "until": until, "now": now}
                                           for sid in sorted(r["sid"] for r in rows)])
        return [{**r, "status": "sending", "lease_owner": self.owner, "lease_until": until} for r in rows]

    async def _process(self, row: Any) -> None:
        try:
            outcome = await self._send(row)
        except Exception as exc:  # a bug must not leave the row leased forever
            log.exception("sending email %s failed unexpectedly", row["sid"])
            outcome = Outcome(False, error=f"internal error: {type(exc).__name__}")
        await self._record(row, outcome)

    async def _send(self, row: Any) -> Outcome:
        smtp = self.smtp
        if smtp is None:
            return Outcome(False, permanent=True, error="no SMTP server is configured ([smtp] host)")
        from_addr = row["from_addr"] or smtp.from_default
        if not from_addr:
            return Outcome(False, permanent=True, error="the email has no sender and [smtp] from is not set")
        message = build_message(row, from_addr, self.services.settings.domain)
        recipients = _split(row["to_addr"]) + _split(row["cc"]) + _split(row["bcc"])
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=from_addr,
                recipients=recipients,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password or None,
                use_tls=smtp.tls,
                start_tls=smtp.starttls,
                validate_certs=smtp.validate_certs,
                timeout=smtp.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            return Outcome(False, permanent=all(500 <= c < 600 for c in codes), error=f"recipients refused: {text}")
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Credentials are the operator's to fix; retry rather than drop the message at once.
            return Outcome(False, error=f"SMTP authentication failed: {exc.code} {exc.message}")
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome(False, permanent=500 <= exc.code < 600, error=f"SMTP error {exc.code}: {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Outcome(False, error=f"SMTP server {smtp.host}:{smtp.port} unreachable: {exc}")
        if refused:
            text = "; ".join(f"{addr}: {resp.code} {resp.message}" for addr, resp in refused.items())
            return Outcome(True, error=f"some recipients refused: {text}")
        return Outcome(True)

    async def _record(self, row: Any, outcome: Outcome) -> None:
        now = self.clock()
        attempts = row["attempts"] + 1
        mine = and_(emails.c.sid == row["sid"], emails.c.lease_owner == self.owner, emails.c.status == "sending")
        release = {"lease_owner": None, "lease_until": None, "attempts": attempts, "date_updated": now}
        final_failure = not outcome.sent and (outcome.permanent or attempts >= (self.smtp.max_attempts if self.smtp else 1))
        async with self.engine.connect() as conn:
            await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                if outcome.sent:
                    values = {**release, "status": "sent", "date_sent": now, "error_message": outcome.error,
                              "next_attempt_at": None}
                elif final_failure:
                    values = {**release, "status": "failed", "error_message": outcome.error, "next_attempt_at": None}
                else:
                    assert self.smtp is not None
                    values = {**release, "status": "queued", "error_message": outcome.error,
                              "next_attempt_at": now + self.smtp.backoff(attempts)}
                result = await conn.execute(update(emails).where(mine).values(**values))
                if result.rowcount != 1:
                    log.warning("email %s: lease lost before its outcome was recorded", row["sid"])
                    return
                if final_failure:
                    await write_notification(
                        conn,
                        account_sid=row["account_sid"],
                        error_code=EMAIL_DELIVERY_FAILED,
                        log=ERROR,
                        message_text=(
                            f"Email {row['sid']} to {row['to_addr']} could not be delivered after "
                            f"{attempts} attempt{'s' if attempts != 1 else ''}: {outcome.error}"
                        ),
                        clock=self.clock,
                    )
        if not outcome.sent:
            level = logging.WARNING if final_failure else logging.INFO
            log.log(level, "email %s attempt %d failed: %s", row["sid"], attempts, outcome.error)


def build_email_sender(services: Services) -> EmailSender:
    """The background service (the wiring also puts it in ``services.email_sender`` so writers can wake it)."""
    return EmailSender(services, smtp_config(services.settings))
