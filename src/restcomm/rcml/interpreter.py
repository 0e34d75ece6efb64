"""The RCML interpreter: one for every channel (SMS and voice), configured by a channel profile.

Restcomm-Connect had three near-identical interpreters (SIP SMS, SMPP SMS, voice). Here there is
one loop; what differs lives elsewhere:

* each verb module (``rcml/verbs/``) owns its attributes, parsing and behaviour (``run(ctx)``);
* the channel profile (``rcml/channels.py``) says which verbs and request parameters apply, what
  an unsupported verb, the end of a document and a failure mean (SMS: nothing; voice: hang up), and
  how a verb is run (voice: answering rules, hang-up cancels it);
* the services a verb uses (replies, e-mail, the call, notifications) are Protocols
  (``rcml/runtime.py``, ``rcml/voice.py``) implemented by messaging/, voice/ and the store.

A session:

1. resolves its entry URL (``SmsUrl``, ``VoiceUrl`` or an application's ``RcmlUrl``) against this
   server's public URL, and requests it, signed with the account's AuthToken, through the webhook
   destination guard (``webhooks/fetch.py``); when that first request fails it records the
   notification and tries the fallback URL (with Twilio's ``ErrorCode``/``ErrorUrl``);
2. runs the verbs in document order; a verb answering ``Fetch`` (Redirect, any ``action``) makes the
   fetched document replace the current one;
3. records a notification, with the request and an excerpt of the answer, for every failure;
4. fetches at most ``channel.max_documents`` documents (14106): a Redirect loop ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlencode

from restcomm.notify import ERROR
from restcomm.rcml.errors import Code, RcmlParseError, RcmlUrlError, notification_code
from restcomm.rcml.parser import parse_rcml
from restcomm.rcml.runtime import FINISH, Channel, Context, Fetch, Outcome, Stop
from restcomm.rcml.urls import resolve_url
from restcomm.webhooks.fetch import FetchResult, fetch_document

if TYPE_CHECKING:
    import aiohttp

    from restcomm.config import Settings

_log = logging.getLogger("restcomm.rcml.interpreter")

DOCUMENT_LIMIT = Code.DOCUMENT_RETRIEVAL_LIMIT


class Ending(StrEnum):
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Entry:
    """Where a session starts: the number's (or application's) URL and its fallback.

    ``label``/``fallback_label`` name them in notifications (``SmsUrl``, ``VoiceFallbackUrl``).
    """

    url: str | None
    method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str = "POST"
    label: str = "SmsUrl"
    fallback_label: str = "SmsFallbackUrl"


class Fetcher(Protocol):
    """Where the interpreter gets documents; ``DocumentFetcher`` in the server, a fake in tests."""

    async def fetch(self, url: str, method: str, params: Mapping[str, str], kind: str = "app") -> FetchResult: ...


class DocumentFetcher:
    """Requests documents for one session: signed with the account's AuthToken, through the
    destination guard, with the channel's time and redirect limits."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        auth_token: str | None,
        *,
        timeout: float,  # noqa: ASYNC109 - a timeout is an outcome the fetch classifies (11205)
        max_redirects: int,
        guard: Settings | None = None,
        before_first_request: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.http = http
        self.auth_token = auth_token
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.guard = guard
        self._before_first = before_first_request

    async def fetch(self, url: str, method: str, params: Mapping[str, str], kind: str = "app") -> FetchResult:
        if self._before_first is not None:
            hook, self._before_first = self._before_first, None
            await hook()
        return await fetch_document(
            self.http, url, method, params, self.auth_token, timeout=self.timeout,
            max_redirects=self.max_redirects, kind=kind, guard=self.guard,
        )


class Interpreter:
    """Runs one application session on one channel; ``run`` returns how it ended."""

    def __init__(
        self, channel: Channel, ctx: Context, fetcher: Fetcher, entry: Entry, *, public_base: str
    ) -> None:
        self.channel = channel
        self.ctx = ctx
        self.fetcher = fetcher
        self.entry = entry
        self.public_base = public_base
        self.documents = 0

    async def run(self) -> Ending:
        try:
            ending = await self._run()
        except Stop:
            ending = Ending.FAILED
        if ending is Ending.FAILED:
            await self.channel.fail(self.ctx)
        return ending

    async def _run(self) -> Ending:
        entry = self.entry
        url = entry.url
        if not url:
            return Ending.DONE
        try:
            url = self._absolute(url)
        except RcmlUrlError as exc:
            await self.ctx.notifier.notify(Code.INVALID_URL, f"{entry.label} {url!r}: {exc.message}",
                                           log=ERROR, request_url=url)
            return Ending.FAILED
        params = self.channel.params()
        result = await self._fetch(url, entry.method, params)
        if not result.ok:
            await self._notify_fetch(result)
            fallback = entry.fallback_url
            if not fallback:
                return Ending.FAILED
            try:
                fallback = self._absolute(fallback)
            except RcmlUrlError as exc:
                await self.ctx.notifier.notify(
                    Code.INVALID_URL, f"{entry.fallback_label} {fallback!r}: {exc.message}", log=ERROR)
                return Ending.FAILED
            params = {**params, "ErrorCode": str(result.code or Code.HTTP_RETRIEVAL_FAILURE), "ErrorUrl": url}
            result = await self._fetch(fallback, entry.fallback_method or "POST", params, kind="fallback")
            if not result.ok:
                await self._notify_fetch(result)
                return Ending.FAILED
        while True:
            outcome = await self._execute(result)
            if outcome is FINISH:
                return Ending.DONE
            if not isinstance(outcome, Fetch):
                await self.channel.end(self.ctx)
                return Ending.DONE
            limit = self.channel.max_documents
            if self.documents >= limit:
                await self.ctx.notifier.notify(
                    DOCUMENT_LIMIT,
                    f"The session already fetched {self.documents} documents (limit {limit}); "
                    f"not requesting {outcome.url}.",
                    log=ERROR, request_url=outcome.url, request_method=outcome.method,
                    request_variables=urlencode(list(outcome.params.items())),
                )
                return Ending.FAILED
            result = await self._fetch(outcome.url, outcome.method, outcome.params)
            if not result.ok:
                await self._notify_fetch(result)
                return Ending.FAILED

    def _absolute(self, url: str) -> str:
        """Number and application URLs may be paths on this server (Restcomm's demo apps are)."""
        return resolve_url(self.public_base + "/", url)

    async def _fetch(self, url: str, method: str, params: Mapping[str, str], kind: str = "app") -> FetchResult:
        self.documents += 1
        return await self.fetcher.fetch(url, method, params, kind)

    async def _execute(self, result: FetchResult) -> Outcome:
        """Run one document; returns the first verb outcome that leaves it (``None``: its end)."""
        ctx = self.ctx
        ctx.document = result
        if not result.body.strip():
            return None  # an empty 200 answer: nothing to do, like an empty <Response/>
        try:
            parsed = parse_rcml(result.body, charset=result.charset, verbs=self.channel.verbs)
        except RcmlParseError as exc:
            await ctx.notify(exc.code, exc.message)
            raise Stop from None
        for index, verb in enumerate(parsed.verbs):
            for warning in parsed.warnings_for(index):
                await ctx.warn(warning.code, warning.message)
            outcome = await self.channel.run_verb(ctx, verb)
            if outcome is not None:
                return outcome
        return None

    async def _notify_fetch(self, result: FetchResult) -> None:
        code = result.code or Code.HTTP_RETRIEVAL_FAILURE
        what = f"{result.request.method} {result.request.url}"
        _log.warning("%s application request failed (%s): %s: %s", self.channel.label, code, what,
                     result.error or result.outcome.value)
        self.ctx.document = result
        await self.ctx.notify(code, f"{_title(code)}: {what}: {result.error or result.outcome.value}")


def _title(code: int) -> str:
    try:
        return notification_code(code).message
    except KeyError:
        return "Error"
