"""SMS applications: the messaging side of the RCML interpreter.

``rcml/`` never imports messaging; it declares what it needs as Protocols (``ReplySender``,
``EmailQueue``, ``Notifier``) and this module implements them with the messaging pipeline, then
starts the interpreter with the SMS channel profile for one inbound message:

* replies (``<Sms>``/``<Message>``) are checked like API messages and queued as ``outbound-reply``
  with the inbound message as parent, one commit each, in document order, dispatched at once;
* ``<Email>`` is queued in the e-mail outbox and the sender woken;
* notifications are written through the group-commit writer, tied to the inbound message.

The entry is the number's SMS application (``SmsApplicationSid`` -> its ``RcmlUrl``) or
``SmsUrl``/``SmsMethod``, with ``SmsFallbackUrl``; the parameters are Restcomm's and Twilio's
(``model.app_params``) plus ``OptOutType`` for STOP/START/HELP keywords.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from restcomm.messaging import model as m
from restcomm.messaging.budget import SessionBudget
from restcomm.messaging.email import InvalidEmail, queue_email, wake_sender
from restcomm.messaging.inbound import keyword
from restcomm.messaging.validation import Outbound, Rejected, check_static
from restcomm.rcml.channels import SmsChannel
from restcomm.rcml.errors import Code
from restcomm.rcml.interpreter import DocumentFetcher, Ending, Entry, Interpreter
from restcomm.rcml.notifications import StoreNotifier
from restcomm.rcml.runtime import Budget, Context, Refused

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

# A reply that fails the message checks becomes the notification Restcomm writes for <Sms>.
_REPLY_CODES = {21211: Code.INVALID_SMS_TO, 21604: Code.INVALID_SMS_TO, 21212: Code.INVALID_SMS_FROM,
                21603: Code.INVALID_SMS_FROM, 21602: Code.INVALID_SMS_BODY, 21617: Code.INVALID_SMS_BODY}


class PipelineReplies:
    """``ReplySender``: replies go through the same checks and outbox as API messages."""

    def __init__(
        self, ms: Messaging, account: Mapping[str, Any], *, default_to: str, default_from: str,
        direction: str = m.OUTBOUND_REPLY, hop: int = 0, parent_sid: str | None = None,
    ) -> None:
        self.ms = ms
        self.account = account
        self.default_to = default_to
        self.default_from = default_from
        self.direction = direction
        self.hop = hop
        self.parent_sid = parent_sid

    def prepare(self, sender: str, to: str, body: str) -> Outbound:
        try:
            return check_static(sender, to, body)
        except Rejected as r:
            raise Refused(_REPLY_CODES.get(r.code, r.code), r.message) from None

    async def send(
        self, prepared: object, *, own_number: bool, status_callback: str | None,
        status_callback_method: str | None,
    ) -> None:
        assert isinstance(prepared, Outbound)
        try:
            await self.ms.check_destination(self.account, prepared)
            if own_number:  # our own number, which received the message or the call
                await self.ms.check_opt_out(prepared)
            else:
                await self.ms.check_sender(self.account, prepared)
        except Rejected as r:
            raise Refused(r.code, r.message) from None
        await self.ms.submit(
            self.account["sid"], prepared, direction=self.direction, status_callback=status_callback,
            status_callback_method=status_callback_method, hop=self.hop, parent_sid=self.parent_sid,
            dispatch=True, organization_sid=self.account["organization_sid"],
        )


class PipelineEmail:
    """``EmailQueue``: ``<Email>`` is queued in the e-mail outbox like an API e-mail."""

    def __init__(self, ms: Messaging, account_sid: str) -> None:
        self.ms = ms
        self.account_sid = account_sid

    async def queue(
        self, *, from_addr: str, to: str, subject: str, body: str, cc: list[str], bcc: list[str]
    ) -> None:
        async def job(conn: Any) -> str:
            return await queue_email(conn, account_sid=self.account_sid, from_addr=from_addr, to=to,
                                     subject=subject, body=body, cc=cc, bcc=bcc, clock=self.ms.clock)

        try:
            await self.ms.writer.run(job)
        except InvalidEmail as exc:
            raise Refused(Code.SCHEMA_VALIDATION_WARNING, str(exc)) from None
        wake_sender(self.ms.services)


async def run_sms_application(
    ms: Messaging,
    inbound: Mapping[str, Any],
    number: Mapping[str, Any],
    account: Mapping[str, Any],
    application: Mapping[str, Any] | None = None,
    *,
    before_first_request: Callable[[], Awaitable[None]] | None = None,
    budget: Budget | None = None,
) -> str:
    """Run the SMS application for one inbound message; returns its app_state (done or failed).

    ``before_first_request`` lets the application runner commit ``running`` right before the first
    request and order a conversation's sessions (see messaging/apps.py).
    """
    params = m.app_params(inbound)
    word = keyword(inbound["body"])
    if word is not None:
        params["OptOutType"] = word
    if application is not None and application.get("rcml_url"):
        entry = Entry(application["rcml_url"], "POST", number.get("sms_fallback_url"),
                      number.get("sms_fallback_method") or "POST")
    else:
        entry = Entry(number.get("sms_url"), number.get("sms_method") or "POST", number.get("sms_fallback_url"),
                      number.get("sms_fallback_method") or "POST")
    channel = SmsChannel(params, max_documents=ms.sms.max_documents)
    notifier = StoreNotifier(ms.writer.run, account["sid"], clock=ms.clock, message_sid=inbound["sid"])
    replies = PipelineReplies(ms, account, default_to=inbound["from_number"], default_from=inbound["to_number"],
                              hop=inbound["hop"], parent_sid=inbound["sid"])
    if budget is None:  # at most [sms] max_messages_per_session, each spending an API rate-limit token
        budget = SessionBudget.for_session(ms, account["sid"])
    ctx = Context(channel, notifier, replies=replies, email=PipelineEmail(ms, account["sid"]), budget=budget)
    # Documents come through the lean keep-alive client that status callbacks use
    # (webhooks/lean.py): same redirects, signatures, guard and outcomes (webhooks/fetch.py), at a
    # fraction of a general client's cost per request; it keeps bodies up to the documents' limit.
    http: Any = ms.callback_http or ms.http
    assert http is not None
    fetcher = DocumentFetcher(http, account["auth_token"], timeout=ms.sms.app_timeout,
                              max_redirects=ms.sms.app_max_redirects, guard=ms.guard,
                              before_first_request=before_first_request)
    ending = await Interpreter(channel, ctx, fetcher, entry, public_base=ms.public_base()).run()
    return m.APP_DONE if ending is Ending.DONE else m.APP_FAILED
