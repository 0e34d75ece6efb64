"""Notification codes an application (SMS or voice) can produce, and the exceptions that carry them.

Restcomm records problems with an application as *Notifications* (``NO…`` sids) whose ``ErrorCode``
is a Twilio-style number and whose ``Log`` is 0 for an error and 1 for a warning. The SMS pipeline
looks codes up here instead of spelling messages inline, so that every entry point (SMPP, SIP, REST
replies) writes the same text for the same problem.

Where a code comes from matters when judging compatibility: ``origin="restcomm"`` codes are the ones
Restcomm-Connect itself writes (``rcml.md`` §4); ``origin="twilio"`` codes are Twilio's, added where
Restcomm stays silent or lumps failures together (11200 for a non-200 answer, 12100 for a document
that does not parse, and so on). Both sets use Twilio's numbering, so a code means the same thing to an
operator who knows either platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Literal


class LogLevel(IntEnum):
    """Values of the Notification ``Log`` field (Restcomm: 0 = error, 1 = warning)."""

    ERROR = 0
    WARNING = 1


class Code(IntEnum):
    """Named notification codes, so call sites read ``Code.INVALID_SMS_BODY`` rather than 14103."""

    FEATURE_REFUSED = 11001
    ACCOUNT_NOT_ACTIVE = 11005
    INVALID_URL = 11100
    HTTP_RETRIEVAL_FAILURE = 11200
    HTTP_CONNECTION_FAILURE = 11205
    HTTP_PROTOCOL_VIOLATION = 11206
    HTTP_BAD_HOST_NAME = 11210
    HTTP_TOO_MANY_REDIRECTS = 11215
    RESPONSE_BODY_TOO_LARGE = 11750
    NO_VALID_SMS_URL = 12003
    DOCUMENT_PARSE_FAILURE = 12100
    ROOT_MUST_BE_RESPONSE = 12102
    SCHEMA_VALIDATION_WARNING = 12200
    INVALID_CONTENT_TYPE = 12300
    MEDIA_FAILURE = 12400
    INVALID_DIAL_METHOD = 13210
    INVALID_DIAL_TIMEOUT = 13212
    INVALID_DIAL_TIME_LIMIT = 13216
    PLAY_DOWNLOAD_FAILURE = 13233
    INVALID_GATHER_FINISH_ON_KEY = 13310
    INVALID_GATHER_TIMEOUT = 13313
    INVALID_GATHER_NUM_DIGITS = 13314
    INVALID_GATHER_SAY_VOICE = 13321
    INVALID_GATHER_SAY_LOOP = 13322
    INVALID_GATHER_PLAY_URL = 13325
    INVALID_PLAY_LOOP = 13410
    INVALID_SAY_LOOP = 13510
    INVALID_SAY_VOICE = 13511
    INVALID_RECORD_METHOD = 13610
    INVALID_RECORD_ATTRIBUTE = 13612
    INVALID_RECORD_FINISH_ON_KEY = 13613
    INVALID_REDIRECT_METHOD = 13710
    INVALID_PAUSE_LENGTH = 13910
    INVALID_SMS_TO = 14101
    INVALID_SMS_FROM = 14102
    INVALID_SMS_BODY = 14103
    INVALID_SMS_METHOD = 14104
    DOCUMENT_RETRIEVAL_LIMIT = 14106
    REPLY_LIMIT_EXCEEDED = 14109
    INVALID_VERB_FOR_SMS = 14110


Origin = Literal["restcomm", "twilio"]


@dataclass(frozen=True, slots=True)
class NotificationCode:
    """One row of the table: enough to write a Notification without further lookups."""

    code: int
    level: LogLevel
    message: str
    origin: Origin
    when: str


def _rows(*rows: NotificationCode) -> Mapping[int, NotificationCode]:
    table = {row.code: row for row in rows}
    if len(table) != len(rows):
        raise ValueError("duplicate notification code in table")
    return MappingProxyType(table)


_E, _W = LogLevel.ERROR, LogLevel.WARNING

NOTIFICATION_CODES: Mapping[int, NotificationCode] = _rows(
    NotificationCode(Code.FEATURE_REFUSED, _W, "The SMS was refused by an access-control extension", "restcomm",
                     "inbound or outbound SMS denied by an extension; the session ends"),
    NotificationCode(Code.ACCOUNT_NOT_ACTIVE, _E, "Account is not active", "restcomm",
                     "SMS to a number whose owning account is not active, or (from a carrier) to a number "
                     "no account hosts"),
    NotificationCode(Code.INVALID_URL, _E, "Invalid URL", "restcomm",
                     "action or Redirect URL cannot be resolved to an http(s) URL; the interpreter stops"),
    NotificationCode(Code.HTTP_RETRIEVAL_FAILURE, _E, "HTTP retrieval failure", "twilio",
                     "the application answered with a status other than 200"),
    NotificationCode(Code.HTTP_CONNECTION_FAILURE, _E, "HTTP connection failure", "restcomm",
                     "connection refused or reset, or the request timed out"),
    NotificationCode(Code.HTTP_PROTOCOL_VIOLATION, _E, "HTTP protocol violation", "restcomm",
                     "the application's answer is not valid HTTP (bad status line, truncated body, "
                     "redirect without Location)"),
    NotificationCode(Code.HTTP_BAD_HOST_NAME, _E, "HTTP bad host name", "twilio",
                     "the host name of the URL does not resolve"),
    NotificationCode(Code.HTTP_TOO_MANY_REDIRECTS, _E, "HTTP too many redirects", "twilio",
                     "more redirects than the configured limit (Restcomm has no limit)"),
    NotificationCode(Code.RESPONSE_BODY_TOO_LARGE, _E, "Response body too large", "twilio",
                     "the RCML document is larger than the size cap (64 KiB, as Twilio)"),
    NotificationCode(Code.NO_VALID_SMS_URL, _W, "No valid SMS Request URL", "restcomm",
                     "the hosted SMS application could not be started"),
    NotificationCode(Code.DOCUMENT_PARSE_FAILURE, _E, "Document parse failure", "twilio",
                     "the document is not well-formed XML, or contains a DTD/entity declaration"),
    NotificationCode(Code.ROOT_MUST_BE_RESPONSE, _E, "The root element must be Response", "twilio",
                     "well-formed XML whose root element is not <Response>"),
    NotificationCode(Code.SCHEMA_VALIDATION_WARNING, _W, "Schema validation warning", "twilio",
                     "something in the document is understood but cannot be honoured (e.g. <Media> on an "
                     "SMS-only route, a verb the channel does not have, <Conference> or <Enqueue> in a call)"),
    NotificationCode(Code.INVALID_CONTENT_TYPE, _W, "Invalid Content-Type", "restcomm",
                     "200 answer whose Content-Type is not text/xml, application/xml or text/html"),
    NotificationCode(Code.MEDIA_FAILURE, _E, "Media failure", "restcomm",
                     "a prompt could not be produced (text to speech failed); the call is hung up"),
    NotificationCode(Code.INVALID_DIAL_METHOD, _W, "Invalid method for Dial action, using POST", "restcomm",
                     "<Dial method> is neither GET nor POST"),
    NotificationCode(Code.INVALID_DIAL_TIMEOUT, _W, "Invalid Dial timeout, using 30", "restcomm",
                     "<Dial timeout> is not a positive whole number of seconds"),
    NotificationCode(Code.INVALID_DIAL_TIME_LIMIT, _W, "Invalid Dial timeLimit, using 14400", "restcomm",
                     "<Dial timeLimit> is not a positive whole number of seconds"),
    NotificationCode(Code.PLAY_DOWNLOAD_FAILURE, _W, "Play: audio could not be fetched", "restcomm",
                     "the audio of <Play> could not be downloaded or decoded; the call is hung up"),
    NotificationCode(Code.INVALID_GATHER_FINISH_ON_KEY, _W, "Invalid Gather finishOnKey, using #", "restcomm",
                     "<Gather finishOnKey> has characters other than 0-9, * and #"),
    NotificationCode(Code.INVALID_GATHER_TIMEOUT, _W, "Invalid Gather timeout, using 5", "restcomm",
                     "<Gather timeout> is not a whole number of seconds"),
    NotificationCode(Code.INVALID_GATHER_NUM_DIGITS, _W, "Invalid Gather numDigits, no limit", "restcomm",
                     "<Gather numDigits> is not a positive whole number"),
    NotificationCode(Code.INVALID_GATHER_SAY_VOICE, _W, "Invalid voice in Gather's Say, using man", "restcomm",
                     "<Say voice> inside <Gather> is not a known voice"),
    NotificationCode(Code.INVALID_GATHER_SAY_LOOP, _W, "Invalid loop in Gather's Say, using 1", "restcomm",
                     "<Say loop> inside <Gather> is not a whole number"),
    NotificationCode(Code.INVALID_GATHER_PLAY_URL, _E, "Invalid URL in Gather's Play", "restcomm",
                     "<Play> inside <Gather> has a URL that cannot be resolved; the call is hung up"),
    NotificationCode(Code.INVALID_PLAY_LOOP, _W, "Invalid Play loop, using 1", "restcomm",
                     "<Play loop> is not a whole number"),
    NotificationCode(Code.INVALID_SAY_LOOP, _W, "Invalid Say loop, using 1", "restcomm",
                     "<Say loop> is not a whole number"),
    NotificationCode(Code.INVALID_SAY_VOICE, _W, "Invalid Say voice, using man", "restcomm",
                     "<Say voice> is none of man, woman, alice, Polly.* or Google.*"),
    NotificationCode(Code.INVALID_RECORD_METHOD, _W, "Invalid method for Record action, using POST", "restcomm",
                     "<Record method> is neither GET nor POST"),
    NotificationCode(Code.INVALID_RECORD_ATTRIBUTE, _W, "Invalid Record attribute, using the default", "restcomm",
                     "<Record maxLength>, <Record timeout> or <Record playBeep> has a value it cannot take"),
    NotificationCode(Code.INVALID_RECORD_FINISH_ON_KEY, _W, "Invalid Record finishOnKey, using #", "restcomm",
                     "<Record finishOnKey> has characters other than 0-9, * and #"),
    NotificationCode(Code.INVALID_REDIRECT_METHOD, _W, "Invalid method for Redirect, using POST", "restcomm",
                     "<Redirect method> is neither GET nor POST"),
    NotificationCode(Code.INVALID_PAUSE_LENGTH, _W, "Invalid Pause length, using 1", "restcomm",
                     "<Pause length> is not a whole number of seconds"),
    NotificationCode(Code.INVALID_SMS_TO, _E, "Invalid 'to' phone number", "restcomm",
                     "<Sms>/<Message> 'to' cannot be normalised"),
    NotificationCode(Code.INVALID_SMS_FROM, _E, "Invalid 'from' phone number", "restcomm",
                     "<Sms>/<Message> 'from' cannot be normalised; the interpreter stops"),
    NotificationCode(Code.INVALID_SMS_BODY, _E, "Invalid SMS body (empty)", "restcomm",
                     "<Sms>/<Message> with no text; the interpreter stops"),
    NotificationCode(Code.INVALID_SMS_METHOD, _W, "Invalid method, using POST", "restcomm",
                     "<Sms>/<Message> method or a status-callback method is neither GET nor POST"),
    NotificationCode(Code.DOCUMENT_RETRIEVAL_LIMIT, _E, "Document retrieval limit reached", "twilio",
                     "the session already fetched [sms] max_documents documents (a Redirect loop); it ends"),
    NotificationCode(Code.REPLY_LIMIT_EXCEEDED, _W, "SMS reply message limit exceeded", "twilio",
                     "the message went through more application hops than [sms] hop_limit: its application "
                     "is not run, so two applications cannot answer each other forever"),
    NotificationCode(Code.INVALID_VERB_FOR_SMS, _W, "Invalid verb for SMS reply", "restcomm",
                     "a verb other than Sms, Message, Redirect or Email in an SMS application; it is skipped"),
)

#: The same table under its first name (SMS came first; voice codes share it).
SMS_NOTIFICATION_CODES = NOTIFICATION_CODES


def notification_code(code: int) -> NotificationCode:
    """Return the table row for ``code``; a KeyError means a code nobody registered (a bug)."""
    return NOTIFICATION_CODES[code]


def more_info_url(error_dictionary_uri: str, code: int) -> str:
    """The Notification ``MoreInfo`` value: Restcomm points at ``{error-dictionary-uri}/{code}.html``."""
    return f"{error_dictionary_uri.rstrip('/')}/{int(code)}.html"


class RcmlError(Exception):
    """Base for RCML problems that end in a Notification; ``code`` is the notification code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    @property
    def level(self) -> LogLevel:
        return notification_code(self.code).level

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.message!r})"


class RcmlParseError(RcmlError):
    """The document cannot be used at all (12100 parse failure, 12102 wrong root, 11750 too large)."""


class RcmlUrlError(RcmlError, ValueError):
    """A URL in the document cannot be resolved to something fetchable (11100)."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.INVALID_URL, message)


@dataclass(frozen=True, slots=True)
class RcmlWarning:
    """A problem inside an otherwise usable document, tied to the verb it belongs to.

    ``verb_index`` lets the interpreter write the notification when it reaches that verb, as
    Restcomm does: verbs after a ``<Redirect>`` are never reached and so never warn.
    """

    code: int
    message: str
    verb_index: int
    verb: str
    attribute: str | None = None
    value: str | None = None
