"""One module per RCML verb: its dataclass, its defaults, how it reads its element and what it does
(``async run(ctx)``). The tables below say which verbs a channel has; ``rcml/channels.py`` hands
them to the parser. Nested nouns go through tables of their own (``Dial`` > ``Number``, ``Gather``
> ``Say``), kept in the parent verb's module."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from restcomm.rcml.verbs import email, message, redirect, sms
from restcomm.rcml.verbs.common import VerbReader
from restcomm.rcml.verbs.email import Email
from restcomm.rcml.verbs.message import Message
from restcomm.rcml.verbs.redirect import Redirect
from restcomm.rcml.verbs.sms import Sms
from restcomm.rcml.verbs.unsupported import Unsupported

Verb = Sms | Message | Redirect | Email | Unsupported

#: SMS applications (``rcml.md`` §2.3, §6.2): anything else is 14110 and skipped.
SMS_VERBS: Mapping[str, VerbReader] = MappingProxyType({
    "Sms": sms.from_element,
    "Message": message.from_element,
    "Redirect": redirect.from_element,
    "Email": email.from_element,
})

__all__ = ["SMS_VERBS", "Email", "Message", "Redirect", "Sms", "Unsupported", "Verb", "VerbReader"]
