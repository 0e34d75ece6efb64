"""Channel profiles: what the one interpreter does differently for SMS and for voice.

A profile says which verbs exist (the parser's table), what the standard request parameters are,
what an unsupported verb, the end of a document and a failure mean, and how each verb is run. The
verbs themselves are the same modules in both channels (``<Sms>``, ``<Redirect>``, ``<Email>``).
The voice profile lives in ``rcml/voice.py`` beside the ``VoiceCall`` Protocol it drives.
"""

from __future__ import annotations

from collections.abc import Mapping

from restcomm.notify import WARNING
from restcomm.rcml.errors import Code
from restcomm.rcml.runtime import Context, Outcome, Verb
from restcomm.rcml.verbs import SMS_VERBS, VerbReader


class SmsChannel:
    """SMS applications (``rcml.md`` §2): Sms, Message, Redirect, Email; anything else is warning
    14110 and skipped; the end of a document or a failure just ends the session."""

    name = "sms"
    label = "SMS"
    verbs: Mapping[str, VerbReader] = SMS_VERBS

    def __init__(self, params: Mapping[str, str], *, max_documents: int) -> None:
        self._params = dict(params)
        self.max_documents = max_documents

    def params(self) -> dict[str, str]:
        return dict(self._params)

    async def unsupported(self, ctx: Context, name: str) -> None:
        await ctx.notify(Code.INVALID_VERB_FOR_SMS, f"<{name}> is not an SMS verb: skipped", log=WARNING)

    async def run_verb(self, ctx: Context, verb: Verb) -> Outcome:
        return await verb.run(ctx)

    async def end(self, ctx: Context) -> None:
        del ctx  # nothing to close: replies already queued go on through the pipeline

    async def fail(self, ctx: Context) -> None:
        del ctx
