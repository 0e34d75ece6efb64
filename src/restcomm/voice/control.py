"""Running RCML so the Calls API can replace the document (``Url=`` on a live call).

``run_redirectable`` runs a call's application like ``rcml.voice.run_voice_application`` and
registers it by call SID (process-wide; SIDs are unique); ``redirect`` cancels the running
document (the verb in progress stops at once) and the loop starts the new one on the same leg.
No interpreter hook is needed: cancelling the session task is the interruption. The call ends when
a document ends (as always) or the leg hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restcomm.rcml.call import VoiceCall
from restcomm.rcml.interpreter import Entry
from restcomm.rcml.voice import VoiceRequest, run_voice_application


@dataclass
class _Run:
    task: asyncio.Task[Any] | None = None
    next_entry: Entry | None = None


_running: dict[str, _Run] = {}


async def run_redirectable(call: VoiceCall, request: VoiceRequest, entry: Entry, env: Mapping[str, Any]) -> None:
    """Run ``entry`` (then whatever ``redirect`` asks for) on ``call`` until a document ends."""
    run = _Run()
    _running[request.call_sid] = run
    try:
        while True:
            run.next_entry = None
            run.task = asyncio.ensure_future(run_voice_application(call, request, entry, **env))
            await asyncio.wait({run.task})
            if run.next_entry is None or call.hung_up.is_set():
                return
            entry = run.next_entry
    finally:
        if _running.get(request.call_sid) is run:
            del _running[request.call_sid]
        if run.task is not None and not run.task.done():
            run.task.cancel()
            with contextlib.suppress(BaseException):
                await run.task


def redirect(call_sid: str, url: str, method: str) -> bool:
    """Switch the call's running document to ``url``; False when no document runs for it here."""
    run = _running.get(call_sid)
    if run is None or run.task is None or run.task.done():
        return False
    run.next_entry = Entry(url, method or "POST", label="Url", fallback_label="FallbackUrl")
    run.task.cancel()
    return True
