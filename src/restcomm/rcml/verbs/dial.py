"""``<Dial>`` and its nouns ``<Number>``, ``<Client>``, ``<Sip>`` (``rcml.md`` §3.4, §6.3).

Every noun rings at once; the call's ``dial`` primitive bridges the first to answer and cancels the
others. When the dial ends, ``action`` (if any) is requested with ``DialCallStatus`` (Twilio's
values), ``DialCallSid`` (omitted when no leg existed; Restcomm sent ``null``),
``DialCallDuration`` and, when recorded, ``RecordingUrl``/``RecordingSid``; its document replaces
this one, also when the caller hung up (Twilio). Without ``action`` the next verb runs.

Text instead of nouns is a shorthand: with ``@`` a SIP URI, starting with ``client`` a client
(``client:alice``), else a number. ``?X-Name=value&...`` after a noun's address becomes SIP headers.

Attributes: ``method`` POST (else 13210), ``timeout`` 30 (else 13212), ``timeLimit`` 14400 (else
13216), ``callerId`` (default: the caller's From), ``hangupOnStar``, ``record`` (``true`` and
Twilio's ``record-from-answer``/``record-from-ringing`` and ``-dual`` forms record;
``false``/``do-not-record`` do not), ``recordingStatusCallback(Method)``. Nouns: ``sendDigits``
(Number), ``url``/``method`` (screening), ``username``/``password`` (Sip), ``statusCallback``,
``statusCallbackMethod``, ``statusCallbackEvent`` (space- or comma-separated; default
``completed`` as Twilio and Restcomm's docs). ``<Conference>`` and ``<Queue>`` are read but not
supported yet (12200).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

from restcomm.rcml.call import Callback, DialOptions, DialTarget
from restcomm.rcml.errors import Code, RcmlWarning
from restcomm.rcml.runtime import Fetch
from restcomm.rcml.verbs.common import Attributes, attr, local_name, method_attr, own_text, read_nouns
from restcomm.rcml.verbs.notyet import NotYet

if TYPE_CHECKING:
    from restcomm.rcml.runtime import Context

DEFAULT_TIMEOUT = 30
DEFAULT_TIME_LIMIT = 4 * 60 * 60  # 14400 s, Restcomm's default bridge limit
RECORD_ON = frozenset({"true", "record-from-answer", "record-from-ringing", "record-from-answer-dual",
                       "record-from-ringing-dual"})
RECORD_OFF = frozenset({"false", "do-not-record"})
_DIGITS = re.compile(r"[0-9*#wW]+")

NounReader = Callable[[Element, int, list[RcmlWarning]], "DialTarget | NotYet"]


def _split_headers(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    address, _, query = text.partition("?")
    headers = tuple((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.upper().startswith("X-"))
    return address.strip(), headers


def _status_callback(element: Element, index: int, warnings: list[RcmlWarning], noun: str) -> Callback | None:
    url = attr(element, "statusCallback")
    if url is None:
        return None
    method = method_attr(element, verb=noun, verb_index=index, warning_code=Code.INVALID_DIAL_METHOD,
                         warnings=warnings, name="statusCallbackMethod")
    raw = attr(element, "statusCallbackEvent")
    events = tuple(e for e in re.split(r"[\s,]+", raw) if e) if raw else ("completed",)
    return Callback(url, method, events)


def _target(kind: str, element: Element, index: int, warnings: list[RcmlWarning], address: str) -> DialTarget:
    noun = local_name(element.tag)
    address, headers = _split_headers(address)
    url = attr(element, "url")
    return DialTarget(
        kind=kind, address=address, headers=headers, url=url,
        method=method_attr(element, verb=noun, verb_index=index, warning_code=Code.INVALID_DIAL_METHOD,
                           warnings=warnings) if url else "POST",
        status_callback=_status_callback(element, index, warnings, noun),
    )


def number(element: Element, index: int, warnings: list[RcmlWarning]) -> DialTarget:
    target = _target("number", element, index, warnings, own_text(element))
    digits = attr(element, "sendDigits")
    if digits is not None and not _DIGITS.fullmatch(digits):
        warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING, f"Invalid sendDigits {digits!r} on <Number>: "
                                    "not sent", index, "Number", "sendDigits", digits))
        digits = None
    return dataclasses.replace(target, send_digits=digits)


def client(element: Element, index: int, warnings: list[RcmlWarning]) -> DialTarget:
    """The client name is the text, or Twilio's ``<Identity>`` child; ``<Parameter name value>``
    children are custom parameters for the client."""
    name = own_text(element)
    parameters: list[tuple[str, str]] = []
    for child in element:
        tag = local_name(child.tag) if isinstance(child.tag, str) else ""
        if tag == "Identity":
            name = own_text(child)
        elif tag == "Parameter" and child.get("name"):
            parameters.append((child.get("name") or "", child.get("value") or ""))
    target = _target("client", element, index, warnings, name)
    return dataclasses.replace(target, parameters=tuple(parameters))


def sip(element: Element, index: int, warnings: list[RcmlWarning]) -> DialTarget:
    target = _target("sip", element, index, warnings, own_text(element))
    return dataclasses.replace(target, username=attr(element, "username"), password=attr(element, "password"))


def _not_yet(element: Element, index: int, warnings: list[RcmlWarning]) -> NotYet:
    del index, warnings
    return NotYet(local_name(element.tag))


#: The nouns <Dial> understands; other children are warning 12200 and ignored.
DIAL_NOUNS: Mapping[str, NounReader] = MappingProxyType({
    "Number": number,
    "Client": client,
    "Sip": sip,
    "Conference": _not_yet,
    "Queue": _not_yet,
})


def shorthand(text: str) -> DialTarget:
    """``<Dial>text</Dial>``: Restcomm's rule for which noun the text means."""
    address, headers = _split_headers(text)
    if "@" in address:
        return DialTarget("sip", address, headers=headers)
    if address.lower().startswith("client"):
        name = address[len("client"):].lstrip(":")
        return DialTarget("client", name, headers=headers)
    return DialTarget("number", address, headers=headers)


@dataclass(frozen=True, slots=True)
class Dial:
    name: ClassVar[str] = "Dial"
    answers: ClassVar[bool] = True
    after_hangup: ClassVar[bool] = False
    handles_hangup: ClassVar[bool] = True  # the action is requested even when the caller hangs up

    targets: tuple[DialTarget, ...] = ()
    not_supported: tuple[str, ...] = ()
    action: str | None = None
    method: str = "POST"
    timeout: int = 30
    time_limit: int = DEFAULT_TIME_LIMIT
    caller_id: str | None = None
    hangup_on_star: bool = False
    record: bool = False
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"

    async def run(self, ctx: Context) -> Fetch | None:
        call = ctx.require_call()
        for noun in self.not_supported:
            await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, f"<{noun}> in <Dial> is not supported yet: skipped")
        if not self.targets:
            await ctx.warn(Code.SCHEMA_VALIDATION_WARNING, "<Dial> has nothing to dial: skipped")
            return None
        targets = [await self._resolved(ctx, t) for t in self.targets]
        action = await ctx.resolve(self.action, "<Dial action>") if self.action else None
        recording_callback = None
        if self.recording_status_callback:
            url = await ctx.resolve(self.recording_status_callback, "<Dial recordingStatusCallback>")
            recording_callback = Callback(url, self.recording_status_callback_method)
        options = DialOptions(
            caller_id=self.caller_id or ctx.params().get("From"), timeout=self.timeout, time_limit=self.time_limit,
            hangup_on_star=self.hangup_on_star, record=self.record, recording_status_callback=recording_callback,
        )
        result = await call.dial(targets, options)
        if action is None:
            return None
        extra = {"DialCallStatus": result.status, "DialCallDuration": str(result.duration)}
        if result.call_sid:
            extra["DialCallSid"] = result.call_sid
        if result.recording_url:
            extra["RecordingUrl"] = result.recording_url
        if result.recording_sid:
            extra["RecordingSid"] = result.recording_sid
        return Fetch(action, self.method, ctx.params(extra))

    @staticmethod
    async def _resolved(ctx: Context, target: DialTarget) -> DialTarget:
        """The target with its screening and status-callback URLs resolved against the document."""
        url = await ctx.resolve(target.url, f"<{target.kind} url>") if target.url else None
        callback = target.status_callback
        if callback is not None:
            callback = dataclasses.replace(
                callback, url=await ctx.resolve(callback.url, f"<{target.kind} statusCallback>"))
        return dataclasses.replace(target, url=url, status_callback=callback)


def from_element(element: Element, index: int, warnings: list[RcmlWarning]) -> Dial:
    at = Attributes(element, "Dial", index, warnings)
    targets: list[DialTarget] = []
    not_supported: list[str] = []
    for noun in read_nouns(element, DIAL_NOUNS, index, warnings):
        if isinstance(noun, NotYet):
            not_supported.append(noun.name)
        elif noun.address:
            targets.append(noun)
    text = own_text(element)
    if text and not targets:
        targets.append(shorthand(text))
    record_value = (attr(element, "record") or "false").lower()
    if record_value not in RECORD_ON | RECORD_OFF:
        warnings.append(RcmlWarning(Code.SCHEMA_VALIDATION_WARNING, f"Invalid record {record_value!r} on <Dial>, "
                                    "not recording", index, "Dial", "record", record_value))
    timeout = at.int("timeout", 30, Code.INVALID_DIAL_TIMEOUT, minimum=1)
    time_limit = at.int("timeLimit", DEFAULT_TIME_LIMIT, Code.INVALID_DIAL_TIME_LIMIT, minimum=1)
    return Dial(
        targets=tuple(targets),
        not_supported=tuple(not_supported),
        action=attr(element, "action"),
        method=method_attr(element, verb="Dial", verb_index=index, warning_code=Code.INVALID_DIAL_METHOD,
                           warnings=warnings),
        timeout=30 if timeout is None else timeout,
        time_limit=DEFAULT_TIME_LIMIT if time_limit is None else time_limit,
        caller_id=attr(element, "callerId"),
        hangup_on_star=at.bool("hangupOnStar", False, Code.SCHEMA_VALIDATION_WARNING),
        record=record_value in RECORD_ON,
        recording_status_callback=attr(element, "recordingStatusCallback"),
        recording_status_callback_method=method_attr(
            element, verb="Dial", verb_index=index, warning_code=Code.INVALID_DIAL_METHOD, warnings=warnings,
            name="recordingStatusCallbackMethod"),
    )
