"""One module per RCML verb: its dataclass, its defaults, how it reads its element and what it does
(``async run(ctx)``). The tables below say which verbs a channel has; ``rcml/channels.py`` hands
them to the parser. Nested nouns go through tables of their own (``Dial`` > ``Number``, ``Gather``
> ``Say``), kept in the parent verb's module."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from restcomm.rcml.verbs import (
    dial,
    email,
    gather,
    hangup,
    message,
    notyet,
    pause,
    play,
    record,
    redirect,
    reject,
    say,
    sms,
)
from restcomm.rcml.verbs.common import VerbReader
from restcomm.rcml.verbs.dial import Dial
from restcomm.rcml.verbs.email import Email
from restcomm.rcml.verbs.gather import Gather
from restcomm.rcml.verbs.hangup import Hangup
from restcomm.rcml.verbs.message import Message
from restcomm.rcml.verbs.notyet import NotYet
from restcomm.rcml.verbs.pause import Pause
from restcomm.rcml.verbs.play import Play
from restcomm.rcml.verbs.record import Record
from restcomm.rcml.verbs.redirect import Redirect
from restcomm.rcml.verbs.reject import Reject
from restcomm.rcml.verbs.say import Say
from restcomm.rcml.verbs.sms import Sms
from restcomm.rcml.verbs.unsupported import Unsupported

Verb = (
    Sms | Message | Redirect | Email | Say | Play | Pause | Gather | Record | Dial | Hangup | Reject | NotYet
    | Unsupported
)

#: SMS applications (``rcml.md`` §2.3, §6.2): anything else is 14110 and skipped.
SMS_VERBS: Mapping[str, VerbReader] = MappingProxyType({
    "Sms": sms.from_element,
    "Message": message.from_element,
    "Redirect": redirect.from_element,
    "Email": email.from_element,
})

#: Voice applications (``rcml.md`` §3.4, §6.3). Twilio's ``<Message>`` is not a voice verb;
#: ``<Connect>``, ``<Start>``, ``<Pay>``... are unknown (12200, skipped with their children).
VOICE_VERBS: Mapping[str, VerbReader] = MappingProxyType({
    "Say": say.from_element,
    "Play": play.from_element,
    "Pause": pause.from_element,
    "Gather": gather.from_element,
    "Record": record.from_element,
    "Dial": dial.from_element,
    "Hangup": hangup.from_element,
    "Reject": reject.from_element,
    "Redirect": redirect.from_element,
    "Sms": sms.from_element,
    "Email": email.from_element,
    "Enqueue": notyet.from_element,
    "Leave": notyet.from_element,
})

__all__ = [
    "SMS_VERBS", "VOICE_VERBS", "Dial", "Email", "Gather", "Hangup", "Message", "NotYet", "Pause", "Play",
    "Record", "Redirect", "Reject", "Say", "Sms", "Unsupported", "Verb", "VerbReader",
]
