"""What happens when a message arrives at a hosted number, whatever brought it (the internal route
or a carrier): the inbound record, opt-out keywords, the loop cap, and whether an app will run.

Everything here runs inside the transaction that stores the inbound message, so the opt-out, the
automatic keyword reply and the notification about a loop commit with it or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.encoding import segment
from restcomm.messaging import model as m
from restcomm.messaging.config import SmsSettings
from restcomm.messaging.store import INSERT_MESSAGES, count_status, insert_ignore, number_forms
from restcomm.notify import WARNING, write_notification
from restcomm.rcml.errors import Code
from restcomm.store.schema import opt_outs

log = logging.getLogger("restcomm.messaging.inbound")

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# Notification for a message that arrived after too many app-to-app hops (Twilio: "SMS Reply
# message limit exceeded").
LOOP_CODE = Code.REPLY_LIMIT_EXCEEDED


def keyword(body: str) -> str | None:
    """STOP, START or HELP when the whole body (trimmed, any case) is one of their keywords."""
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def has_app(number: Mapping[str, Any] | None) -> bool:
    return bool(number and (number.get("sms_application_sid") or number.get("sms_url")))


@dataclass
class Arrival:
    """A message for a hosted number, before it is stored."""

    number: Mapping[str, Any]  # the IncomingPhoneNumber row that receives it
    from_number: str
    to_number: str
    body: str
    hop: int = 0
    parent_sid: str | None = None
    num_segments: int | None = None
    encoding: str | None = None


@dataclass
class Stored:
    rows: list[dict[str, Any]]  # the inbound messages
    started: list[dict[str, Any]]  # those this node runs now (see store_arrivals)
    replies: int  # keyword auto-replies queued
    numbers: dict[str, Mapping[str, Any]]  # inbound sid -> the number that received it (started ones)

    @property
    def pending_apps(self) -> bool:
        return any(r["app_state"] == m.APP_PENDING for r in self.rows)


async def store_arrivals(
    conn: AsyncConnection,
    arrivals: list[Arrival],
    sms: SmsSettings,
    now: datetime,
    *,
    run_now: int = 0,
    owner: str | None = None,
) -> Stored:
    """Insert the inbound messages (and what their keywords cause).

    Up to ``run_now`` of them whose number has an application are stored directly as ``running``
    with ``owner``'s lease: this node starts their sessions right after the commit, without a
    separate claim round, and this commit is the one that precedes their requests.
    """
    rows: list[dict[str, Any]] = []
    started: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    numbers: dict[str, Mapping[str, Any]] = {}
    for i, a in enumerate(arrivals):
        # Arrivals of one batch get distinct instants, so "oldest first" keeps their order.
        at = now + timedelta(microseconds=i)
        number = a.number
        if a.num_segments is None or a.encoding is None:
            seg = segment(a.body)
            a.num_segments, a.encoding = seg.num_segments, seg.encoding
        app_state = m.APP_PENDING if has_app(number) else m.APP_NONE
        if app_state == m.APP_PENDING and a.hop > sms.hop_limit:
            app_state = m.APP_LOOP
        row = m.new_message(
            account_sid=number["account_sid"],
            from_number=a.from_number,
            to_number=a.to_number,
            body=a.body,
            direction=m.INBOUND,
            status=m.RECEIVED,
            num_segments=a.num_segments,
            encoding=a.encoding,
            now=at,
            hop=a.hop,
            parent_sid=a.parent_sid,
            app_state=app_state,
        )
        if app_state == m.APP_PENDING and len(started) < run_now:
            row.update(app_state=m.APP_RUNNING, lease_owner=owner, lease_until=at + timedelta(seconds=sms.lease_seconds))
            started.append(row)
            numbers[row["sid"]] = number
        rows.append(row)
        word = keyword(a.body)
        if word is not None:
            reply = await _apply_keyword(conn, word, row, sms, at)
            if reply is not None:
                replies.append(reply)
    if rows:
        await conn.execute(INSERT_MESSAGES, rows)
        count_status(rows, m.RECEIVED)
        if log.isEnabledFor(logging.INFO):
            for row in rows:
                log.info("message %s received: %s -> %s%s", row["sid"], row["from_number"], row["to_number"],
                         " (runs the number's application)" if row["app_state"] != m.APP_NONE else "")
    if replies:
        await conn.execute(INSERT_MESSAGES, replies)
        count_status(replies, m.QUEUED)
    for row in rows:
        if row["app_state"] == m.APP_LOOP:
            await write_notification(
                conn,
                account_sid=row["account_sid"],
                error_code=LOOP_CODE,
                log=WARNING,
                message_text=(
                    f"Message {row['sid']} from {row['from_number']} to {row['to_number']} went through "
                    f"{row['hop']} application hops (limit {sms.hop_limit}): the application was not run, "
                    "to stop two applications answering each other forever."
                ),
                message_sid=row["sid"],
                clock=lambda: now,
            )
    return Stored(rows, started, len(replies), numbers)


async def _apply_keyword(
    conn: AsyncConnection, word: str, inbound: dict[str, Any], sms: SmsSettings, now: datetime
) -> dict[str, Any] | None:
    sender, recipient = inbound["to_number"], inbound["from_number"]  # our number, their number
    if word == "STOP":
        await insert_ignore(
            conn,
            opt_outs,
            {"sender": sender, "recipient": recipient, "account_sid": inbound["account_sid"], "date_created": now},
        )
        text = sms.stop_reply
    elif word == "START":
        await conn.execute(
            delete(opt_outs).where(
                opt_outs.c.sender.in_(number_forms(sender)), opt_outs.c.recipient.in_(number_forms(recipient))
            )
        )
        text = sms.start_reply
    else:
        text = sms.help_reply
    if not text:
        return None
    seg = segment(text)
    return m.new_message(
        account_sid=inbound["account_sid"],
        from_number=sender,
        to_number=recipient,
        body=text,
        direction=m.OUTBOUND_REPLY,
        status=m.QUEUED,
        num_segments=seg.num_segments,
        encoding=seg.encoding,
        now=now,
        hop=inbound["hop"],
        parent_sid=inbound["sid"],
    )
