"""One module per RCML verb: its dataclass, its defaults and how it reads its element."""

from restcomm.rcml.verbs.email import Email
from restcomm.rcml.verbs.message import Message
from restcomm.rcml.verbs.redirect import Redirect
from restcomm.rcml.verbs.sms import Sms
from restcomm.rcml.verbs.unsupported import Unsupported

Verb = Sms | Message | Redirect | Email | Unsupported

__all__ = ["Email", "Message", "Redirect", "Sms", "Unsupported", "Verb"]
