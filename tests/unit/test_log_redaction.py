"""Secrets never reach a log line: what the redaction masks, what it leaves alone, and the handler
that applies it to every record (traceback included) with the bound log context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from restcomm.observability import configure_logging, log_context, redact

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging rewires the root logger; leave it as the other tests expect it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ("sqlalchemy", "aiosqlite", "asyncpg", "aiosmtplib", "httpcore", "httpx", "hpack", "alembic",
             "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
             for n in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for n, (lvl, hs, prop) in saved.items():
        lg = logging.getLogger(n)
        lg.setLevel(lvl)
        lg.handlers[:] = hs
        lg.propagate = prop
BASIC = "QUMxMjM0NTY3ODkwOjAxMjM0NTY3ODlhYmNkZWY="


@pytest.mark.parametrize("line", [
    f"Authorization: Basic {BASIC}",
    f"headers={{'authorization': 'Basic {BASIC}'}}",
    f"[(b'authorization', b'Basic {BASIC}')]",
    f'{{"Authorization": "Bearer {TOKEN}"}}',
    f'127.0.0.1:5000 - "GET /restcomm/2012-04-24/Accounts.json?Password={TOKEN}&x=1 HTTP/1.1" 200',
    f"POST body EmailAddress=a%40b.com&Password={TOKEN}",
    f"AuthToken={TOKEN}",
    f"{{'auth_token': '{TOKEN}', 'sid': 'AC1'}}",
    f'"secondary_auth_token": "{TOKEN}"',
    f"secret: {TOKEN}",
    f"fetching https://user:{TOKEN}@example.com/sms",
    f"client_secret={TOKEN}",
])
def test_secrets_are_masked(line: str) -> None:
    out = redact(line)
    assert TOKEN not in out and BASIC not in out, out
    assert "[REDACTED]" in out


@pytest.mark.parametrize("line", [
    "GET /restcomm/2012-04-24/Accounts/AC0123456789abcdef0123456789abcdef.json 200",
    "message SM0123 queued for +15551234567",
    "carrier acme: 2 bind(s) to 127.0.0.1:2775",
    'WWW-Authenticate: Basic realm="Restcomm realm"',
])
def test_ordinary_lines_are_untouched(line: str) -> None:
    assert redact(line) == line


def test_handler_redacts_args_tracebacks_and_adds_context() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    log = logging.getLogger("restcomm.test")
    with log_context(request_id="RQ1", message_sid="SM1"):
        log.info("login with %s", {"Password": TOKEN})
        try:
            raise ValueError(f"bad form Password={TOKEN}")
        except ValueError:
            log.exception("failed")
    log.info("outside")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert TOKEN not in stream.getvalue()
    assert lines[0]["request_id"] == "RQ1" and lines[0]["message_sid"] == "SM1" and lines[0]["level"] == "INFO"
    assert "[REDACTED]" in lines[1]["exception"] and "ValueError" in lines[1]["exception"]
    assert "request_id" not in lines[2]


def test_text_format_carries_the_context() -> None:
    stream = io.StringIO()
    configure_logging("text", "INFO", stream)
    with log_context(message_sid="SM9"):
        logging.getLogger("restcomm.test").warning("retrying AuthToken=%s", TOKEN)
    text = stream.getvalue()
    assert TOKEN not in text and "[message_sid=SM9]" in text and "WARNING restcomm.test retrying" in text
