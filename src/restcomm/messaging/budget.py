"""How much outbound work one application session may create.

A single API request (rate limited) to a number whose application answers with a thousand
``<Message>`` verbs, or keeps redirecting to documents that do, used to fan out into thousands of
messages and emails. A session now gets a budget: at most ``[sms] max_messages_per_session``
messages and emails together, and each one also takes a token from the account's API rate limit
(``[api] rate_limit``), so an application sends no faster than its owner may call the API. When
either runs out the verb reports 14109 (reply limit exceeded) and the session stops.

This is the ``rcml.runtime.Budget`` of SMS sessions: ``<Sms>``, ``<Message>`` and ``<Email>`` call
``allow`` right before they create work (rcml/verbs/sms.py, rcml/verbs/email.py); the session
runner passes it (messaging/rcml_sms.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restcomm.limits import RateLimiter

@dataclass
class SessionBudget:
    account_sid: str
    limit: int
    rate: RateLimiter | None = None
    used: int = 0
    refused: str | None = None  # why the last request was refused (for logs and tests)

    @classmethod
    def for_session(cls, messaging: Any, account_sid: str) -> SessionBudget:
        """The budget of a session run by ``messaging`` (its [sms] settings, its services' limits)."""
        limits = getattr(getattr(messaging, "services", None), "limits", None)
        return cls(account_sid, messaging.sms.max_messages_per_session, getattr(limits, "api", None))

    def allow(self, kind: str) -> bool:
        """``rcml.runtime.Budget``: may the session create one more message or email?"""
        refused = self.take(kind)
        if refused is not None:
            self.refused = refused
        return refused is None

    def take(self, what: str) -> str | None:
        """Count one message or email; None when it may be created, else why not (for the
        notification; the session then stops)."""
        if self.used >= self.limit:
            return (f"This application session already created {self.used} messages and emails "
                    f"([sms] max_messages_per_session = {self.limit}); the {what} and the rest of the "
                    "session were not run.")
        if self.rate is not None and self.rate.take(self.account_sid) is not None:
            return (f"The account's API rate limit is used up; the {what} and the rest of the session "
                    "were not run (messages an application creates count against the same limit).")
        self.used += 1
        return None
