"""Every error code the source can write has a page in the errors dictionary.

Codes reach clients as API errors (``more_info``), as a message's ``error_code`` and as
Notifications (``more_info``), all pointing at ``/restcomm/errors/{code}.html``. The codes are
collected from the source itself: every integer literal in the range Twilio uses for error codes
(11000-39999; nothing else in the source falls in it), which covers ``Code`` members, module
constants (``IN_DOUBT = 30008``), ``error_code=...`` arguments, ``ApiError(400, 21620, ...)``,
``Rejected(21606, ...)`` and the carriers' mapping tables.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

from tests.support.server import ROOT, Server

LOW, HIGH = 11000, 40000
# Packages that write no error codes: the SIP stack and the media engine know nothing of accounts or
# notifications (the layer rule), and their numbers in this range are sample values and port ranges.
NO_CODES = frozenset({"sip", "media"})


def codes_in_source() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for path in sorted((ROOT / "src" / "restcomm").rglob("*.py")):
        if path.relative_to(ROOT / "src" / "restcomm").parts[0] in NO_CODES:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) is int and LOW <= node.value < HIGH:
                found.setdefault(node.value, []).append(f"{Path(path).relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_scan_finds_the_codes_written_everywhere() -> None:
    codes = codes_in_source()
    # One from each place codes are written: notifications of the interpreter, of arrivals, of the
    # dispatcher, message errors, carrier receipts, email, API errors.
    assert {14106, 14109, 21612, 30008, 30003, 19001, 21620, 20429, 11200} <= codes.keys()


def test_every_code_has_a_page(server: Server) -> None:
    from restcomm.codes import ERRORS

    codes = codes_in_source()
    missing = {code: where for code, where in codes.items() if code not in ERRORS}
    assert not missing, f"codes written without an entry in restcomm.codes: {missing}"
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        for code in sorted(codes.keys() | ERRORS.keys()):
            r = c.get(f"/restcomm/errors/{code}.html")
            assert r.status_code == 200, (code, r.status_code)
            assert r.text.startswith(f"<h1>{code}: ") and ERRORS[code].title.split("'")[0] in r.text
        assert c.get("/restcomm/errors/99999.html").status_code == 404


def test_message_error_messages_come_from_the_table() -> None:
    from restcomm.codes import ERRORS, MESSAGE_CODES
    from restcomm.messaging.model import MESSAGE_ERRORS

    assert MESSAGE_ERRORS == {code: ERRORS[code].title for code in MESSAGE_CODES}
    assert {21610, 21612, 30008, 30009} <= MESSAGE_CODES
