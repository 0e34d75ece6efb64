"""Pure parts of the email outbox and of usage records: address lists, subjects, [smtp], periods."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from restcomm.api.errors import ApiError
from restcomm.api.usage import _money, bucket, category, fixed_window
from restcomm.config import ConfigError, Settings
from restcomm.messaging.email import InvalidEmail, SmtpConfig, clean_subject, parse_addresses, smtp_config


@pytest.mark.parametrize(
    "value,expected",
    [
        ("a@example.com", ["a@example.com"]),
        (" Ann@Example.COM , b@x.org,,", ["Ann@example.com", "b@x.org"]),
        ("a@example.com, a@EXAMPLE.com", ["a@example.com"]),
        (["a@example.com", "b@x.org, c@x.org"], ["a@example.com", "b@x.org", "c@x.org"]),
        ("", []),
        (None, []),
    ],
)
def test_parse_addresses(value: object, expected: list[str]) -> None:
    assert parse_addresses(value, "To") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    ["nope", "a@b", "a@@b.com", "a b@c.com", "a@b.com\r\nBcc: x@y.com", "<a@b.com>", "Ann <a@b.com>", "a@-b.com",
     "a@b.com;c@d.com", "x" * 320 + "@b.com"],
)
def test_parse_addresses_refuses(value: str) -> None:
    with pytest.raises(InvalidEmail) as err:
        parse_addresses(value, "CC")
    assert err.value.field_name == "CC"


def test_clean_subject() -> None:
    assert clean_subject("  hi\r\nBcc: x@y.com\tthere ") == "hi Bcc: x@y.com there"
    assert len(clean_subject("é" * 500)) == 160


def test_smtp_config() -> None:
    assert smtp_config(Settings(raw={})) is None
    assert smtp_config(Settings(raw={"smtp": {"port": 25}})) is None
    cfg = smtp_config(Settings(raw={"smtp": {"host": "mx", "port": "587", "starttls": "true", "from": "a@b.com"}}))
    assert cfg == SmtpConfig(host="mx", port=587, starttls=True, from_default="a@b.com")
    assert cfg.lease == timedelta(seconds=120)
    for bad in ({"host": "mx", "port": "x"}, {"host": "mx", "bogus": 1}, {"host": "mx", "starttls": True, "tls": True},
                {"host": "mx", "from": "nope"}, {"host": "mx", "max_attempts": 0}):
        with pytest.raises(ConfigError):
            smtp_config(Settings(raw={"smtp": bad}))


def test_backoff_doubles_up_to_the_cap() -> None:
    cfg = SmtpConfig(host="mx", retry_base_seconds=10, retry_max_seconds=35)
    assert [cfg.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 35, 35]


def test_usage_categories() -> None:
    assert category("sms").name == category("SMS").name == "sms"
    assert category("SMS_OUTBOUND").name == category("sms-outbound").name == "sms-outbound"
    assert category("TotalPrice").name == "totalprice"
    assert category("CALLS_INBOUND").name == "calls-inbound" and category("recordings").usage_unit == "minutes"
    for bad in ("transcriptions", "sms_inbound ", "SMS-INBOUND-X", "x"):
        with pytest.raises(ApiError):
            category(bad)


def test_usage_periods() -> None:
    assert bucket(date(2024, 2, 10), "day") == (date(2024, 2, 10), date(2024, 2, 10))
    assert bucket(date(2024, 2, 10), "month") == (date(2024, 2, 1), date(2024, 2, 29))
    assert bucket(date(2023, 12, 31), "month") == (date(2023, 12, 1), date(2023, 12, 31))
    assert bucket(date(2024, 7, 4), "year") == (date(2024, 1, 1), date(2024, 12, 31))
    today = date(2024, 3, 1)
    assert fixed_window("Today", today) == (today, today)
    assert fixed_window("Yesterday", today) == (date(2024, 2, 29), date(2024, 2, 29))
    assert fixed_window("ThisMonth", today) == (date(2024, 3, 1), today)
    assert fixed_window("LastMonth", today) == (date(2024, 2, 1), date(2024, 2, 29))
    assert fixed_window("LastMonth", date(2024, 1, 15)) == (date(2023, 12, 1), date(2023, 12, 31))
    assert fixed_window("Daily", today) is None


def test_money() -> None:
    assert _money(Decimal("0")) == "0"
    assert _money(Decimal("0.0450")) == "0.045"
    assert _money(Decimal("12.000001")) == "12"
    assert _money(Decimal("100")) == "100"
