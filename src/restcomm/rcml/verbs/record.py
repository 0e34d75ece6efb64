"""``<Record>``: record the caller (``rcml.md`` §3.4, §6.3).

The call records up to ``maxLength`` seconds (3600), stopping after ``timeout`` seconds of silence
(5) or on a ``finishOnKey`` key (any of ``1234567890*#`` when absent; empty or ``-1`` disables;
invalid is 13613 and ``#``), after a beep unless ``playBeep="false"``. Then ``action`` (the current
document's URL when absent, as Twilio) is requested with ``RecordingUrl`` (the public URL),
``RecordingSid``, ``RecordingDuration`` (whole seconds, as Twilio; Restcomm sent ``4.52``) and
``Digits`` (the key, or ``hangup``), and its document replaces this one. An empty recording still
requests the action, without the URL (Restcomm). A caller hanging up still gets the action
requested. ``recordingStatusCallback`` is handed to the call, which posts it when the file is
complete. ``transcribe``/``transcribeCallback`` are read but there is no transcription yet
(warning 12200).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from restcomm.rcml.call import Callback
from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Fetch
from restcomm.rcml.verbs.common import Attributes, attr, method_attr

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

ALL_KEYS = "1234567890*#"


@dataclass(frozen=True, slots=True)
class Record:
    name: ClassVar[str] = "Record"
    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = False
    handles_hangup: ClassVar[bool] = True  # the action is requested even when the caller hangs up

    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    max_length: int = 3600
    finish_on_key: str = ALL_KEYS
    play_beep: bool = True
    transcribe: bool = False
    transcribe_callback: str | None = None
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"

    async def run(self, ctx: Context) -> Fetch:
        call = ctx.require_call()
        status_callback = None
        if self.recording_status_callback:
            url = await ctx.resolve(self.recording_status_callback, "<Record recordingStatusCallback>")
            status_callback = Callback(url, self.recording_status_callback_method)
        action = await ctx.resolve(self.action, "<Record action>") if self.action else ctx.document_url
        result = await call.record(max_length=self.max_length, silence_timeout=self.timeout,
                                   finish_on_key=self.finish_on_key, play_beep=self.play_beep,
                                   status_callback=status_callback)
        extra = {"RecordingDuration": str(round(result.duration)), "Digits": result.digits}
        if result.url:
            extra["RecordingUrl"] = result.url
        if result.sid:
            extra["RecordingSid"] = result.sid
        return Fetch(action, self.method, ctx.params(extra))


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Record:
    at = Attributes(element, "Record", index, warnings)
    timeout = at.int("timeout", 5, Code.INVALID_RECORD_ATTRIBUTE)
    max_length = at.int("maxLength", 3600, Code.INVALID_RECORD_ATTRIBUTE, minimum=1)
    transcribe_callback = attr(element, "transcribeCallback")
    transcribe = at.bool("transcribe", False, Code.SCHEMA_VALIDATION_WARNING) or transcribe_callback is not None
    if transcribe:
        warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING,
                                    "<Record transcribe>: transcription is not available, recording only", index,
                                    "Record", "transcribe"))
    return Record(
        action=attr(element, "action"),
        method=method_attr(element, verb="Record", verb_index=index, warning_code=Code.INVALID_RECORD_METHOD,
                           warnings=warnings),
        timeout=5 if timeout is None else timeout,
        max_length=3600 if max_length is None else max_length,
        finish_on_key=at.keys("finishOnKey", ALL_KEYS, Code.INVALID_RECORD_FINISH_ON_KEY),
        play_beep=at.bool("playBeep", True, Code.INVALID_RECORD_ATTRIBUTE),
        transcribe=transcribe,
        transcribe_callback=transcribe_callback,
        recording_status_callback=attr(element, "recordingStatusCallback"),
        recording_status_callback_method=method_attr(
            element, verb="Record", verb_index=index, warning_code=Code.INVALID_RECORD_METHOD, warnings=warnings,
            name="recordingStatusCallbackMethod"),
    )
