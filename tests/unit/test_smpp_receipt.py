"""Delivery receipt parsing and the stat/err -> status/error-code mapping."""

from __future__ import annotations

from datetime import datetime

import pytest

from restcomm.smpp.pdu import DeliverSm, Tag, tlv_cstr, tlv_int
from restcomm.smpp.receipt import format_receipt_text, map_status, parse_receipt, parse_receipt_text

TEXT = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2311221530 done date:2311221531 "
    "stat:DELIVRD err:000 text:Hello id:fake stat:X"
)


def receipt(text: str = "", tlvs: dict[int, bytes] | None = None, esm_class: int = 0x04) -> DeliverSm:
    return DeliverSm(esm_class=esm_class, short_message=text.encode("latin-1"), tlvs=tlvs or {})


def test_parse_text_fields() -> None:
    f = parse_receipt_text(TEXT)
    assert f == {
        "id": "0123456789",
        "sub": "001",
        "dlvrd": "001",
        "submit_date": "2311221530",
        "done_date": "2311221531",
        "stat": "DELIVRD",
        "err": "000",
        "text": "Hello id:fake stat:X",  # text runs to the end and is never parsed further
    }


def test_parse_receipt_from_text() -> None:
    r = parse_receipt(receipt(TEXT))
    assert r is not None
    assert r.message_id == "0123456789"
    assert (r.status, r.error_code, r.final) == ("delivered", None, True)
    assert r.submit_date == datetime(2023, 11, 22, 15, 30)
    assert r.done_date == datetime(2023, 11, 22, 15, 31)
    assert (r.submitted, r.delivered) == (1, 1)


def test_tlvs_win_over_text() -> None:
    # The text id is the decimal form of the hex id some SMSCs use; the TLV is the one to match.
    r = parse_receipt(
        receipt(
            "id:255 sub:001 dlvrd:000 submit date:2311221530 done date:2311221531 stat:DELIVRD err:000 text:",
            {Tag.RECEIPTED_MESSAGE_ID: tlv_cstr("ff"), Tag.MESSAGE_STATE: tlv_int(5, 1)},
        )
    )
    assert r is not None
    assert r.message_id == "ff" and r.text_id == "255"
    assert (r.stat, r.status, r.error_code) == ("UNDELIV", "undelivered", 30003)


def test_tlv_only_receipt_in_message_payload() -> None:
    r = parse_receipt(
        DeliverSm(
            esm_class=0x04,
            tlvs={
                Tag.RECEIPTED_MESSAGE_ID: tlv_cstr("abc"),
                Tag.MESSAGE_STATE: tlv_int(8, 1),
                Tag.NETWORK_ERROR_CODE: bytes((3, 0x00, 0x22)),
            },
        )
    )
    assert r is not None
    assert (r.message_id, r.status, r.error_code, r.network_error_code) == ("abc", "failed", 30007, 0x22)


def test_not_a_receipt() -> None:
    assert parse_receipt(receipt(TEXT, esm_class=0x00)) is None
    assert parse_receipt(receipt("stat:DELIVRD")) is None  # no id anywhere: nothing to match


def test_lenient_text_forms() -> None:
    r = parse_receipt(receipt("ID:a1 SUB:1 DLVRD:1 SUBMIT DATE:231122153001 DONE DATE:231122153002 STAT:delivered"))
    assert r is not None
    assert (r.message_id, r.stat, r.status) == ("a1", "DELIVRD", "delivered")
    assert r.submit_date == datetime(2023, 11, 22, 15, 30, 1)
    r = parse_receipt(receipt("id:x submit date:garbage stat:DELIVRD"))
    assert r is not None and r.submit_date is None and r.err is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2311221530", datetime(2023, 11, 22, 15, 30)),
        ("231122153007", datetime(2023, 11, 22, 15, 30, 7)),
        ("20231122153007", datetime(2023, 11, 22, 15, 30, 7)),
        ("2313221530", None),  # month 13
        ("23112215", None),
        ("23112215x0", None),
        ("", None),
    ],
)
def test_receipt_dates(value: str, expected: datetime | None) -> None:
    r = parse_receipt(receipt(f"id:x submit date:{value} done date:{value} stat:DELIVRD"))
    assert r is not None and r.submit_date == expected and r.done_date == expected


@pytest.mark.parametrize(
    ("stat", "err", "status", "code"),
    [
        ("DELIVRD", "000", "delivered", None),
        ("DELIVRD", "001", "delivered", None),  # Restcomm would attach 30005; a delivered message has no error
        ("UNDELIV", "000", "undelivered", 30003),
        ("UNDELIV", "001", "undelivered", 30005),
        ("UNDELIV", "010", "undelivered", 30006),
        ("UNDELIV", "004", "undelivered", 30004),
        ("UNDELIV", "231", "undelivered", 30007),
        ("UNDELIV", "999", "undelivered", 30003),
        ("UNDELIV", "x1", "undelivered", 30003),
        ("EXPIRED", "000", "failed", 30008),
        ("EXPIRED", "008", "failed", 30003),
        ("DELETED", "000", "failed", 30008),
        ("REJECTD", "000", "failed", 30007),
        ("UNKNOWN", "000", "undelivered", 30008),
        ("ACCEPTD", "000", "sent", None),
        ("ENROUTE", "000", "sent", None),
        ("BOGUS", None, "undelivered", 30008),
    ],
)
def test_status_mapping(stat: str, err: str | None, status: str, code: int | None) -> None:
    assert map_status(stat, err) == (status, code)


@pytest.mark.parametrize(
    ("state", "stat", "status"),
    [(1, "ENROUTE", "sent"), (2, "DELIVRD", "delivered"), (3, "EXPIRED", "failed"), (4, "DELETED", "failed"),
     (5, "UNDELIV", "undelivered"), (6, "ACCEPTD", "sent"), (7, "UNKNOWN", "undelivered"), (8, "REJECTD", "failed")],
)
def test_message_state_mapping(state: int, stat: str, status: str) -> None:
    r = parse_receipt(receipt(tlvs={Tag.RECEIPTED_MESSAGE_ID: tlv_cstr("m"), Tag.MESSAGE_STATE: tlv_int(state, 1)}))
    assert r is not None and (r.stat, r.status) == (stat, status)
    assert r.final == (status != "sent")


def test_format_then_parse() -> None:
    text = format_receipt_text("00ab", "UNDELIV", 1, datetime(2024, 1, 2, 3, 4), None, "a long message text here")
    r = parse_receipt(receipt(text))
    assert r is not None
    assert (r.message_id, r.status, r.error_code, r.text) == ("00ab", "undelivered", 30005, "a long message text ")
