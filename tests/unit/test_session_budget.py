"""The send budget of one SMS application session (messaging/budget.py)."""

from __future__ import annotations

from restcomm.limits import RateLimiter
from restcomm.messaging.budget import SessionBudget


def test_the_session_cap_counts_messages_and_emails_together() -> None:
    budget = SessionBudget("AC1", limit=3)
    assert [budget.take(w) for w in ("<Message>", "<Email>", "<Sms>")] == [None, None, None]
    refused = budget.take("<Email>")
    assert refused is not None and "max_messages_per_session = 3" in refused


def test_created_messages_spend_the_accounts_api_tokens() -> None:
    now = [0.0]
    rate = RateLimiter(rate=1, burst=2, clock=lambda: now[0])
    budget = SessionBudget("AC1", limit=100, rate=rate)
    assert budget.take("<Message>") is None and budget.take("<Message>") is None
    refused = budget.take("<Message>")
    assert refused is not None and "rate limit" in refused
    assert rate.take("AC1") is not None, "the API shares the same bucket"
    assert SessionBudget("AC2", limit=100, rate=rate).take("<Message>") is None, "other accounts unaffected"
