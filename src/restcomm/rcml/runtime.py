"""What a verb sees when it runs, what it can answer, and the services a channel lends it.

Every verb module (``rcml/verbs/``) has an ``async run(ctx)`` that works only through the
``Context`` below, so the one interpreter (``rcml/interpreter.py``) can run SMS and voice documents
alike: the channel profile (``rcml/channels.py``) decides which verbs exist, which parameters go
with each request and what ending a document means; the verb decides what the verb does.

The services are Protocols so this package never imports the domains that implement them:
``messaging/`` implements ``ReplySender`` and ``EmailQueue`` (replies and e-mails through its
durable pipeline), ``voice/`` implements ``VoiceCall`` (``rcml/voice.py``), and the store writes
notifications (``rcml/notifications.py``). Tests pass fakes.

A verb answers with one of:

* ``None``: go on with the next verb of the document;
* ``Fetch(url, method, params)``: request that document; it replaces the current one (Redirect, and
  every ``action``);
* ``FINISH``: the session is over (Hangup, Reject);

or raises ``Stop`` after writing the notification that explains why the session ends in failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, Protocol

from restcomm.notify import WARNING
from restcomm.rcml.errors import Code, RcmlUrlError, notification_code
from restcomm.rcml.urls import resolve_url

if TYPE_CHECKING:
    from restcomm.rcml.call import VoiceCall
    from restcomm.rcml.verbs.common import VerbReader
    from restcomm.webhooks.fetch import FetchResult


@dataclass(frozen=True, slots=True)
class Fetch:
    """Request ``url`` with ``params``; the document it returns replaces the current one."""

    url: str
    method: str
    params: dict[str, str]


class _Finish:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FINISH"


FINISH: Final = _Finish()

Outcome = Fetch | _Finish | None


class Stop(Exception):
    """The session ends here, in failure; the notification that says why is already written."""


class Verb(Protocol):
    """What the interpreter needs of a verb. ``answers``: running it answers a ringing call
    (``rcml.md`` §3.3); ``after_hangup``: it still runs once the call has ended (Sms, Email)."""

    name: ClassVar[str]
    answers: ClassVar[bool]
    after_hangup: ClassVar[bool]

    async def run(self, ctx: Context) -> Outcome: ...


# -- services a channel lends its verbs -----------------------------------------------------------


class Refused(Exception):
    """A reply or e-mail the pipeline will not take; ``code`` is the notification to write."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ReplySender(Protocol):
    """Sends ``<Sms>``/``<Message>`` through the messaging pipeline (implemented in messaging/).

    Two steps, so a verb reports problems in Restcomm's order: the format checks (``prepare``,
    raising ``Refused`` with the code to notify; the session then stops) come before the URLs are
    resolved, and the checks that need the database (``send``, raising ``Refused``: only that reply
    is dropped) come last. ``prepare`` returns an opaque token for ``send``.
    """

    default_to: str  # the party a reply goes to when ``to`` is absent (the sender / the caller)
    default_from: str  # our number that received the message or the call

    def prepare(self, sender: str, to: str, body: str) -> object: ...

    async def send(
        self, prepared: object, *, own_number: bool, status_callback: str | None,
        status_callback_method: str | None,
    ) -> None: ...


class EmailQueue(Protocol):
    """Queues an ``<Email>`` (implemented in messaging/); raises ``Refused`` for bad addresses."""

    async def queue(
        self, *, from_addr: str, to: str, subject: str, body: str, cc: list[str], bcc: list[str]
    ) -> None: ...


class Notifier(Protocol):
    """Records a Notification for the session's account (``rcml/notifications.py`` writes rows)."""

    async def notify(
        self, code: int, text: str, *, log: int, request_url: str | None = None,
        request_method: str | None = None, request_variables: str | None = None,
        response_headers: str | None = None, response_body: bytes | None = None,
    ) -> None: ...


class Budget(Protocol):
    """How much work one session may create (messages, e-mails). The one place a per-session cap
    sits: ``<Sms>``, ``<Message>`` and ``<Email>`` ask ``allow`` right before they hand work over."""

    def allow(self, kind: str) -> bool: ...


class Unlimited:
    """The default budget: everything allowed."""

    def allow(self, kind: str) -> bool:
        del kind
        return True


class Channel(Protocol):
    """A channel profile: what differs between SMS and voice (``SmsChannel`` in
    ``rcml/channels.py``, ``VoiceChannel`` in ``rcml/voice.py``)."""

    name: str
    label: str  # "SMS" / "Voice", for log lines and notification texts
    verbs: Mapping[str, VerbReader]  # the parser's table: element name -> reader
    max_documents: int  # documents one session may fetch (14106 beyond)

    def params(self) -> dict[str, str]:
        """The standard parameters of every request, as of now."""

    async def unsupported(self, ctx: Context, name: str) -> None:
        """A verb the channel does not have was reached."""

    async def run_verb(self, ctx: Context, verb: Verb) -> Outcome:
        """Run one verb (voice: answering rules, cancellation on hang-up)."""

    async def end(self, ctx: Context) -> None:
        """The document ran out of verbs (voice: hang up)."""

    async def fail(self, ctx: Context) -> None:
        """The session ends in failure; the notification is written (voice: tell the caller, hang up)."""


# -- the context ------------------------------------------------------------------------------------


class Context:
    """One verb's view of the running session: the current document, the standard request
    parameters, notifications tied to the current document, and the channel's services."""

    def __init__(
        self,
        channel: Channel,
        notifier: Notifier,
        *,
        replies: ReplySender | None = None,
        email: EmailQueue | None = None,
        call: VoiceCall | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.channel = channel
        self.notifier = notifier
        self.replies = replies
        self.email = email
        self.call = call
        self.budget: Budget = budget or Unlimited()
        self.document: FetchResult | None = None

    @property
    def document_url(self) -> str:
        """Base of relative URLs: where the current document finally came from."""
        assert self.document is not None
        return self.document.url

    def params(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A fresh copy of the channel's standard parameters (voice: with the current CallStatus)."""
        params = self.channel.params()
        if extra:
            params.update(extra)
        return params

    async def notify(self, code: int, text: str, *, log: int | None = None) -> None:
        """Notification tied to the current document's request and answer."""
        result = self.document
        if result is None:
            await self.notifier.notify(code, text, log=_level(code) if log is None else log)
            return
        response = result.response
        await self.notifier.notify(
            code, text, log=_level(code) if log is None else log,
            request_url=result.request.url, request_method=result.request.method,
            request_variables=result.request.variables,
            response_headers=response.headers_text() if response else None,
            response_body=response.body if response else None,
        )

    async def warn(self, code: int, text: str) -> None:
        await self.notify(code, text, log=WARNING)

    async def resolve(self, url: str, what: str | None = None) -> str:
        """``url`` resolved against the document; 11100 and ``Stop`` when it cannot be."""
        try:
            return resolve_url(self.document_url, url)
        except RcmlUrlError as exc:
            await self.notify(Code.INVALID_URL, f"{what}: {exc.message}" if what else exc.message)
            raise Stop from None

    def require_call(self) -> VoiceCall:
        if self.call is None:  # a voice verb in a channel without a call: the profile's table is wrong
            raise RuntimeError("this verb needs a call")
        return self.call


def _level(code: int) -> int:
    """The Log level of ``code``; codes of other tables (21606 from the message checks) are errors."""
    try:
        return int(notification_code(code).level)
    except KeyError:
        return 0
