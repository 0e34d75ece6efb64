"""The SMS interpreter: one application session for one inbound message, whatever carried it.

Restcomm had two near-identical SMS interpreters (SIP and SMPP). Here every inbound message, from
the internal route or from a carrier, is first stored, and the application runner starts exactly
this session for it. The session:

1. picks the URL: the number's SMS application (``SmsApplicationSid`` → its ``RcmlUrl``) or
   ``SmsUrl``/``SmsMethod``; relative URLs are resolved against this server's public URL;
2. requests it, signed with the owning account's AuthToken, with the union of Restcomm's and
   Twilio's parameters (``model.app_params``), plus ``OptOutType`` for STOP/START/HELP keywords;
   when that first request fails it records the notification and tries ``SmsFallbackUrl`` (with
   Twilio's ``ErrorCode``/``ErrorUrl``);
3. runs the verbs in document order (``rcml.md`` §2.3, §6.2):
   ``<Sms>``/``<Message>`` queue an ``outbound-reply`` through the same pipeline as the API (one
   commit each, in order); their ``action`` is requested right after (``SmsStatus=sending``) and its
   answer replaces the document; ``<Redirect>`` fetches the next document; ``<Email>`` queues an
   email; any other verb is warning 14110 and skipped;
4. records a notification, with the request and an excerpt of the answer, for every failure.

A session may fetch at most ``[sms] max_documents`` documents (14106): a Redirect loop ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restcomm.messaging import model as m
from restcomm.messaging.inbound import keyword
from restcomm.messaging.validation import Rejected, check_static
from restcomm.notify import ERROR, WARNING, write_notification
from restcomm.rcml.errors import Code, RcmlParseError, RcmlUrlError, notification_code
from restcomm.rcml.parser import Email, Message, Redirect, Sms, Unsupported, parse_rcml
from restcomm.rcml.urls import resolve_url
from restcomm.webhooks.fetch import FetchResult, fetch_document

if TYPE_CHECKING:
    from restcomm.messaging.engine import Messaging

_log = logging.getLogger("restcomm.rcml.interpreter")

DOCUMENT_LIMIT = Code.DOCUMENT_RETRIEVAL_LIMIT
MEDIA_DROPPED = Code.SCHEMA_VALIDATION_WARNING

# A reply that fails the message checks becomes the notification Restcomm writes for <Sms>.
_REPLY_CODES = {21211: Code.INVALID_SMS_TO, 21604: Code.INVALID_SMS_TO, 21212: Code.INVALID_SMS_FROM,
                21603: Code.INVALID_SMS_FROM, 21602: Code.INVALID_SMS_BODY, 21617: Code.INVALID_SMS_BODY}


@dataclass
class _Next:
    url: str
    method: str
    params: dict[str, str]


class SmsSession:
    def __init__(
        self,
        messaging: Messaging,
        inbound: Mapping[str, Any],
        number: Mapping[str, Any],
        account: Mapping[str, Any],
        application: Mapping[str, Any] | None = None,
        *,
        before_first_request: Callable[[], Awaitable[None]] | None = None,
    ):
        """``before_first_request`` lets the application runner commit ``running`` right before the
        first request and order a conversation's sessions (see messaging/apps.py)."""
        self.ms = messaging
        self._before_first = before_first_request
        self.inbound = inbound
        self.number = number
        self.account = account
        self.application = application
        self.documents = 0
        params = m.app_params(inbound)
        word = keyword(inbound["body"])
        if word is not None:
            params["OptOutType"] = word
        self.params = params

    # -- entry ------------------------------------------------------------------------------------

    async def run(self) -> str:
        """Run the application; returns the final app_state (done or failed)."""
        url, method = self._entry()
        if not url:
            return m.APP_DONE
        try:
            url = self._absolute(url)
        except RcmlUrlError as exc:
            await self._notify(Code.INVALID_URL, f"SmsUrl {url!r}: {exc.message}", request_url=url)
            return m.APP_FAILED
        result = await self._fetch(url, method, self.params)
        if not result.ok:
            await self._notify_fetch(result)
            fallback = self.number.get("sms_fallback_url")
            if not fallback:
                return m.APP_FAILED
            try:
                fallback = self._absolute(fallback)
            except RcmlUrlError as exc:
                await self._notify(Code.INVALID_URL, f"SmsFallbackUrl {fallback!r}: {exc.message}")
                return m.APP_FAILED
            params = {**self.params, "ErrorCode": str(result.code or Code.HTTP_RETRIEVAL_FAILURE), "ErrorUrl": url}
            result = await self._fetch(fallback, self.number.get("sms_fallback_method") or "POST", params,
                                       kind="fallback")
            if not result.ok:
                await self._notify_fetch(result)
                return m.APP_FAILED
        while True:
            try:
                nxt = await self._execute(result)
            except _Stop:
                return m.APP_FAILED
            if nxt is None:
                return m.APP_DONE
            if self.documents >= self.ms.sms.max_documents:
                await self._notify(
                    DOCUMENT_LIMIT,
                    f"The session already fetched {self.documents} documents (limit {self.ms.sms.max_documents}); "
                    f"not requesting {nxt.url}.",
                    request_url=nxt.url, request_method=nxt.method, request_variables=nxt.params, log=ERROR,
                )
                return m.APP_FAILED
            result = await self._fetch(nxt.url, nxt.method, nxt.params)
            if not result.ok:
                await self._notify_fetch(result)
                return m.APP_FAILED

    def _entry(self) -> tuple[str | None, str]:
        if self.application is not None and self.application.get("rcml_url"):
            return self.application["rcml_url"], "POST"
        return self.number.get("sms_url"), (self.number.get("sms_method") or "POST")

    def _absolute(self, url: str) -> str:
        """Number and application URLs may be paths on this server (Restcomm's demo apps are)."""
        return resolve_url(self.ms.public_base() + "/", url)

    async def _fetch(self, url: str, method: str, params: Mapping[str, str], kind: str = "app") -> FetchResult:
        assert self.ms.http is not None
        if self._before_first is not None:
            hook, self._before_first = self._before_first, None
            await hook()
        self.documents += 1
        return await fetch_document(
            self.ms.http,
            url,
            method,
            params,
            self.account["auth_token"],
            timeout=self.ms.sms.app_timeout,
            max_redirects=self.ms.sms.app_max_redirects,
            kind=kind,
            guard=self.ms.guard,
        )

    # -- one document ------------------------------------------------------------------------------

    async def _execute(self, result: FetchResult) -> _Next | None:
        if not result.body.strip():
            return None  # an empty 200 answer: nothing to do, like an empty <Response/>
        try:
            parsed = parse_rcml(result.body, charset=result.charset)
        except RcmlParseError as exc:
            await self._notify_result(exc.code, exc.message, result)
            raise _Stop from None
        base = result.url
        for index, verb in enumerate(parsed.verbs):
            for warning in parsed.warnings_for(index):
                await self._notify_result(warning.code, warning.message, result, log=WARNING)
            if isinstance(verb, Sms | Message):
                nxt = await self._reply(verb, base, result)
                if nxt is not None:
                    return nxt
            elif isinstance(verb, Redirect):
                if not verb.url:
                    continue  # Restcomm skips an empty Redirect
                try:
                    url = resolve_url(base, verb.url)
                except RcmlUrlError as exc:
                    await self._notify_result(Code.INVALID_URL, f"<Redirect>: {exc.message}", result)
                    raise _Stop from None
                return _Next(url, verb.method, dict(self.params))
            elif isinstance(verb, Email):
                await self._email(verb, result)
            elif isinstance(verb, Unsupported):
                await self._notify_result(
                    Code.INVALID_VERB_FOR_SMS, f"<{verb.name}> is not an SMS verb: skipped", result, log=WARNING
                )
        return None

    async def _reply(self, verb: Sms | Message, base: str, result: FetchResult) -> _Next | None:
        if isinstance(verb, Message) and verb.media:
            await self._notify_result(
                MEDIA_DROPPED,
                f"<Media> is not supported on SMS: {len(verb.media)} media URL(s) dropped, the text is sent alone",
                result, log=WARNING,
            )
        if not verb.body:
            await self._notify_result(Code.INVALID_SMS_BODY, f"<{verb.name}> has no body: nothing to send", result)
            raise _Stop
        to = verb.to or self.inbound["from_number"]
        sender = verb.from_ or self.inbound["to_number"]
        try:
            out = check_static(sender, to, verb.body)
        except Rejected as r:
            await self._notify_result(_REPLY_CODES.get(r.code, r.code), r.message, result)
            raise _Stop from None
        try:
            callback = self._callback_url(verb, base)
            action = resolve_url(base, verb.action) if verb.action else None
        except RcmlUrlError as exc:
            await self._notify_result(Code.INVALID_URL, exc.message, result)
            raise _Stop from None
        try:
            if verb.from_:
                await self.ms.check_sender(self.account, out)
            else:  # our own number, which received the message
                await self.ms.check_opt_out(out)
        except Rejected as r:
            # The other replies of the document still go (Restcomm sends each <Sms> on its own).
            await self._notify_result(r.code, r.message, result)
            return None
        await self.ms.submit(
            self.account["sid"],
            out,
            direction=m.OUTBOUND_REPLY,
            status_callback=callback,
            status_callback_method=(verb.method if callback and callback == action else "POST") if callback else None,
            hop=self.inbound["hop"],
            parent_sid=self.inbound["sid"],
            dispatch=True,
            organization_sid=self.account["organization_sid"],
        )
        if action is None:
            return None
        params = {**self.params, "SmsStatus": m.SENDING, "MessageStatus": m.SENDING}
        return _Next(action, verb.method, params)

    def _callback_url(self, verb: Sms | Message, base: str) -> str | None:
        """statusCallback when given; otherwise the action URL, which Restcomm also notifies."""
        if verb.status_callback:
            return resolve_url(base, verb.status_callback)
        if verb.action:
            return resolve_url(base, verb.action)
        return None

    async def _email(self, verb: Email, result: FetchResult) -> None:
        if not verb.is_sendable:
            await self._notify_result(
                Code.SCHEMA_VALIDATION_WARNING, "<Email> needs both 'to' and 'from': not sent", result, log=WARNING
            )
            return
        try:
            from restcomm.messaging.email import InvalidEmail, queue_email, wake_sender
        except ImportError:  # pragma: no cover - the e-mail module ships with the package
            await self._notify_result(Code.SCHEMA_VALIDATION_WARNING, "<Email> is not available", result, log=WARNING)
            return

        async def job(conn: Any) -> str:
            return await queue_email(
                conn, account_sid=self.account["sid"], from_addr=verb.from_, to=verb.to or "", subject=verb.subject,
                body=verb.body, cc=list(verb.cc), bcc=list(verb.bcc), clock=self.ms.clock,
            )

        try:
            await self.ms.writer.run(job)
        except InvalidEmail as exc:
            await self._notify_result(Code.SCHEMA_VALIDATION_WARNING, f"<Email> not sent: {exc}", result, log=WARNING)
            return
        wake_sender(self.ms.services)

    # -- notifications -----------------------------------------------------------------------------

    async def _notify_fetch(self, result: FetchResult) -> None:
        code = result.code or Code.HTTP_RETRIEVAL_FAILURE
        what = f"{result.request.method} {result.request.url}"
        _log.warning("SMS application request failed (%s): %s: %s", code, what, result.error or result.outcome.value)
        await self._notify_result(code, f"{_title(code)}: {what}: {result.error or result.outcome.value}", result)

    async def _notify_result(self, code: int, text: str, result: FetchResult, log: int | None = None) -> None:
        response = result.response
        await self._notify(
            code,
            text,
            request_url=result.request.url,
            request_method=result.request.method,
            request_variables=result.request.variables,
            response_headers=response.headers_text() if response else None,
            response_body=response.body if response else None,
            log=log,
        )

    async def _notify(self, code: int, text: str, *, log: int | None = None, **request: Any) -> None:
        level = log if log is not None else _level(code)

        async def job(conn: Any) -> None:
            await write_notification(
                conn, account_sid=self.account["sid"], error_code=code, log=level, message_text=text,
                message_sid=self.inbound["sid"], clock=self.ms.clock, **request,
            )

        try:
            await self.ms.writer.run(job)
        except Exception:
            _log.exception("could not record notification %s for %s", code, self.inbound["sid"])


class _Stop(Exception):
    """The session ends here (an error the notification already describes)."""


def _title(code: int) -> str:
    try:
        return notification_code(code).message
    except KeyError:
        return "Error"


def _level(code: int) -> int:
    try:
        return int(notification_code(code).level)
    except KeyError:
        return ERROR

