"""The voice channel profile of the one interpreter, and the session driver voice/ starts per call.

What voice adds to the interpreter (``rcml.md`` §3):

* **Parameters** on every request: ``CallSid``, ``AccountSid``, ``From``, ``To``, ``CallStatus``
  (``ringing`` until answered, ``in-progress``, ``completed`` once the call ended), ``ApiVersion``,
  ``Direction``, Twilio's ``Called``/``Caller``, and when known ``CallerName``, ``ForwardedFrom``,
  ``ParentCallSid`` (omitted when unknown: Restcomm sent the string ``null``) and one
  ``SipHeader_X-…`` per ``X-`` header of the INVITE.
* **Answering** (§3.3): ``<Reject>`` refuses a ringing call, ``<Pause>`` waits without answering
  (a first Pause delays the answer), ``<Redirect>`` needs no media and does not answer; every other
  verb answers first.
* **Hang-up**: when the caller hangs up, the running verb is cancelled (a long ``<Play>`` stops at
  once), except ``<Record>`` and ``<Dial>``, whose results say so and whose ``action`` is still
  requested (Twilio). Once the call has ended only ``<Sms>`` and ``<Email>`` still run.
* **End of document**: the call is hung up. **Failure** (an unreachable application, a document
  that does not parse, a bad URL): the caller hears ``error_prompt`` and the call ends; with no
  prompt a ringing call is refused with 500.
* **Limits**: at most ``max_documents`` documents per call (14106); unknown verbs are warning 12200.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from restcomm.rcml.call import MediaError, VoiceCall
from restcomm.rcml.errors import Code
from restcomm.rcml.interpreter import Ending, Entry, Fetcher, Interpreter
from restcomm.rcml.runtime import Budget, Context, EmailQueue, Notifier, Outcome, ReplySender, Verb
from restcomm.rcml.verbs import VOICE_VERBS, VerbReader
from restcomm.util import API_VERSION

_log = logging.getLogger("restcomm.rcml.interpreter")

DEFAULT_MAX_DOCUMENTS = 250
ERROR_PROMPT = "An application error has occurred. Goodbye."

RINGING = "ringing"
IN_PROGRESS = "in-progress"
COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class VoiceRequest:
    """Who the call is between; the standard parameters of every request are built from it."""

    call_sid: str
    account_sid: str
    from_: str
    to: str
    direction: str = "inbound"
    caller_name: str | None = None
    forwarded_from: str | None = None
    parent_call_sid: str | None = None
    sip_headers: Mapping[str, str] = field(default_factory=dict)

    def params(self, call_status: str) -> dict[str, str]:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "CallStatus": call_status,
            "ApiVersion": API_VERSION,
            "Direction": self.direction,
        }
        if self.caller_name:
            params["CallerName"] = self.caller_name
        if self.forwarded_from:
            params["ForwardedFrom"] = self.forwarded_from
        if self.parent_call_sid:
            params["ParentCallSid"] = self.parent_call_sid
        for name, value in self.sip_headers.items():
            if name.upper().startswith("X-"):
                params[f"SipHeader_{name}"] = value
        return params


class VoiceChannel:
    """The voice profile (see the module docstring)."""

    name = "voice"
    label = "Voice"
    verbs: Mapping[str, VerbReader] = VOICE_VERBS

    def __init__(
        self, call: VoiceCall, request: VoiceRequest, *, max_documents: int = DEFAULT_MAX_DOCUMENTS,
        error_prompt: str | None = ERROR_PROMPT,
    ) -> None:
        self.call = call
        self.request = request
        self.max_documents = max_documents
        self.error_prompt = error_prompt

    def status(self) -> str:
        if self.call.hung_up.is_set():
            return COMPLETED
        return IN_PROGRESS if self.call.answered else RINGING

    def params(self) -> dict[str, str]:
        return self.request.params(self.status())

    async def unsupported(self, ctx: Context, name: str) -> None:
        await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, f"<{name}> is not a voice verb: skipped")

    async def run_verb(self, ctx: Context, verb: Verb) -> Outcome:
        call = self.call
        if call.hung_up.is_set():
            return await verb.run(ctx) if verb.after_hangup else None
        if verb.answers and not call.answered:
            await call.answer()
            if call.hung_up.is_set():
                return None
        if getattr(verb, "handles_hangup", False):
            return await verb.run(ctx)
        return await _unless_hung_up(call, verb.run(ctx))

    async def end(self, ctx: Context) -> None:
        del ctx
        if not self.call.hung_up.is_set():
            await self.call.hangup()

    async def fail(self, ctx: Context) -> None:
        del ctx
        call = self.call
        if call.hung_up.is_set():
            return
        if self.error_prompt is None:
            if call.answered:
                await call.hangup()
            else:
                await call.reject(500, "Server Internal Error")
            return
        try:
            if not call.answered:
                await call.answer()
            if not call.hung_up.is_set():
                pcm = await call.say(self.error_prompt, "man", "en")
                await _unless_hung_up(call, call.play(pcm))
        except MediaError:
            pass  # the call ends all the same
        if not call.hung_up.is_set():
            await call.hangup()


async def _unless_hung_up(call: VoiceCall, work: Any) -> Any:
    """Run ``work`` until it ends or the call ends, whichever is first (then ``work`` is cancelled).
    If the session itself is cancelled (shutdown), ``work`` is cancelled with it, never orphaned."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(call.hung_up.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()


def voice_entry(owner: Mapping[str, Any], application: Mapping[str, Any] | None = None) -> Entry:
    """The entry of a number's or client's voice application: the application's ``RcmlUrl`` when
    ``VoiceApplicationSid`` is set, else ``VoiceUrl``/``VoiceMethod``; ``VoiceFallbackUrl`` either way."""
    fallback = owner.get("voice_fallback_url")
    fallback_method = owner.get("voice_fallback_method") or "POST"
    if application is not None and application.get("rcml_url"):
        url, method = application["rcml_url"], "POST"
    else:
        url, method = owner.get("voice_url"), owner.get("voice_method") or "POST"
    return Entry(url, method, fallback, fallback_method, label="VoiceUrl", fallback_label="VoiceFallbackUrl")


async def run_voice_application(
    call: VoiceCall,
    request: VoiceRequest,
    entry: Entry,
    *,
    fetcher: Fetcher,
    notifier: Notifier,
    public_base: str,
    replies: ReplySender | None = None,
    email: EmailQueue | None = None,
    budget: Budget | None = None,
    max_documents: int = DEFAULT_MAX_DOCUMENTS,
    error_prompt: str | None = ERROR_PROMPT,
) -> Ending:
    """Run a call's voice application until the call ends; voice/ calls this once per call leg
    that runs RCML (inbound calls, REST calls once answered). A call with no application is
    refused like a failure (``fail``)."""
    channel = VoiceChannel(call, request, max_documents=max_documents, error_prompt=error_prompt)
    ctx = Context(channel, notifier, replies=replies, email=email, call=call, budget=budget)
    interpreter = Interpreter(channel, ctx, fetcher, entry, public_base=public_base)
    try:
        if not entry.url:
            await channel.fail(ctx)
            return Ending.FAILED
        return await interpreter.run()
    except Exception:
        # A bug or a broken call implementation: the caller must not be left in a silent call.
        _log.exception("voice application session for %s failed", request.call_sid)
        with contextlib.suppress(Exception):
            await channel.fail(ctx)
        return Ending.FAILED
