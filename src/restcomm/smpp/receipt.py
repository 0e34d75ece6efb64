"""Delivery receipts (DLRs): parse them and map them to our message status and Twilio error codes.

A receipt is a ``deliver_sm`` whose esm_class message type (bits 2-5) is non-zero. Carriers
describe the outcome in two ways, often both at once:

* the de-facto text form of SMPP 3.4 Appendix B in ``short_message`` (or ``message_payload``):
  ``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...``
* the TLVs ``receipted_message_id`` (0x001E) and ``message_state`` (0x0427), and sometimes
  ``network_error_code`` (0x0423).

When both are present the TLVs win: they are typed, and ``receipted_message_id`` is defined to
equal the ``message_id`` of the submit_sm_resp, whereas the text ``id`` is, on some SMSCs, the
same number written in decimal. Parsing is lenient (keys in any case, values up to the next key,
``text:`` runs to the end, dates with or without seconds) because a receipt we cannot read leaves
a message stuck in ``sent`` forever.

Status mapping (``stat`` text, or ``message_state`` TLV):

=================  ===============  ===========  ======================================
stat               message_state    status       error code when ``err`` is not listed
=================  ===============  ===========  ======================================
DELIVRD            2 DELIVERED      delivered    none (``err`` is ignored, unlike Restcomm)
UNDELIV            5 UNDELIVERABLE  undelivered  30003 Unreachable destination handset
EXPIRED            3 EXPIRED        failed       30008 Unknown error
DELETED            4 DELETED        failed       30008 Unknown error
REJECTD            8 REJECTED       failed       30007 Carrier violation
UNKNOWN            7 UNKNOWN        undelivered  30008 Unknown error
ACCEPTD, ENROUTE   6, 1             sent         none; not final, more receipts may follow
anything else      other            undelivered  30008 Unknown error
=================  ===============  ===========  ======================================

``failed`` for EXPIRED/DELETED/REJECTD follows Restcomm (rcml.md 5.5) so that records written by
either system read the same. Restcomm leaves UNKNOWN in ``sent``; we make it final
(``undelivered``/30008), since no further receipt will come and a stuck ``sent`` helps nobody.

Error code from ``err`` (Restcomm's table, decimal ``err``), checked before the defaults above for
every non-delivered state:

=========================================================  =====
err                                                        code
=========================================================  =====
001 002 003 038 039 232                                    30005 Unknown destination handset
004 005 007 022 224 225 229 230                            30004 Message blocked
008 011 023 228                                            30003 Unreachable destination handset
010                                                        30006 Landline or unreachable carrier
231                                                        30007 Carrier violation
012 013 014 034 040 045 051 194 226 227                    30008 Unknown error
=========================================================  =====
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .pdu import InboundMessage, MessageState, Tag

ReceiptStatus = Literal["delivered", "undelivered", "failed", "sent"]

_ERR_TABLE: dict[int, int] = {}
for _code, _errs in {
    30005: (1, 2, 3, 38, 39, 232),
    30004: (4, 5, 7, 22, 224, 225, 229, 230),
    30003: (8, 11, 23, 228),
    30006: (10,),
    30007: (231,),
    30008: (12, 13, 14, 34, 40, 45, 51, 194, 226, 227),
}.items():
    for _e in _errs:
        _ERR_TABLE[_e] = _code

# stat -> (status, default error code)
_STAT: dict[str, tuple[ReceiptStatus, int | None]] = {
    "DELIVRD": ("delivered", None),
    "UNDELIV": ("undelivered", 30003),
    "EXPIRED": ("failed", 30008),
    "DELETED": ("failed", 30008),
    "REJECTD": ("failed", 30007),
    "UNKNOWN": ("undelivered", 30008),
    "ACCEPTD": ("sent", None),
    "ENROUTE": ("sent", None),
}

_STATE_TO_STAT: dict[int, str] = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}

# Some SMSCs write the full words; normalise to the 7-letter forms.
_STAT_ALIASES: dict[str, str] = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "REJECTED": "REJECTD",
    "ACCEPTED": "ACCEPTD",
    "EXPIRE": "EXPIRED",
}

_KEY_RE = re.compile(r"(?i)(?:^|(?<=\s))(id|sub|dlvrd|submit date|submit_date|done date|done_date|stat|err|text):")


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """One receipt, normalised. ``message_id`` is what to match against submit_sm_resp's id."""

    message_id: str
    stat: str
    status: ReceiptStatus
    error_code: int | None
    err: str | None = None
    submitted: int | None = None
    delivered: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    text: str | None = None
    text_id: str | None = None
    network_error_code: int | None = None

    @property
    def final(self) -> bool:
        return self.status != "sent"


def parse_receipt_text(text: str) -> dict[str, str]:
    """Split the Appendix B text into ``{key: value}`` with keys lower-case, spaces as ``_``.

    ``text:`` is always last and takes the rest of the string, so an ``id:`` inside a message
    preview is not mistaken for a field.
    """
    fields: dict[str, str] = {}
    matches = list(_KEY_RE.finditer(text))
    for n, m in enumerate(matches):
        key = m.group(1).lower().replace(" ", "_")
        if key == "text":
            fields[key] = text[m.end() :]
            break
        end = matches[n + 1].start() if n + 1 < len(matches) else len(text)
        value = text[m.end() : end].strip()
        fields.setdefault(key, value)
    return fields


def _parse_date(value: str | None) -> datetime | None:
    """YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss; anything else (or an impossible date) is None.

    Sliced by hand: strptime is lenient about digit counts (it reads the 10-digit
    "2311221530" as 15:03:00 under "%y%m%d%H%M%S") and costs ~25 us, a third of a receipt.
    """
    if not value or not value.isdigit():
        return None
    n = len(value)
    if n == 14:
        year, rest = int(value[:4]), value[4:]
    elif n in (10, 12):
        year, rest = 2000 + int(value[:2]), value[2:]
    else:
        return None
    try:
        return datetime(year, int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]),
                        int(rest[8:10]) if len(rest) == 10 else 0)
    except ValueError:
        return None


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def map_status(stat: str, err: str | None = None) -> tuple[ReceiptStatus, int | None]:
    """``(status, twilio_error_code)`` for a receipt's ``stat`` and ``err`` (see module table)."""
    stat = _STAT_ALIASES.get(stat.upper(), stat.upper())
    status, default = _STAT.get(stat, ("undelivered", 30008))
    if status in ("delivered", "sent"):
        return status, None
    err_num = _parse_int(err)
    if err_num is not None and err_num in _ERR_TABLE:
        return status, _ERR_TABLE[err_num]
    return status, default


def parse_receipt(pdu: InboundMessage) -> DeliveryReceipt | None:
    """The receipt carried by ``pdu`` (deliver_sm or data_sm), or ``None`` if it is not a
    receipt or names no message.

    Text is decoded as Latin-1: receipts are ASCII in practice, and Latin-1 never fails.
    """
    if not pdu.is_receipt:
        return None
    fields = parse_receipt_text(pdu.text_bytes.decode("latin-1"))
    tlv_id = pdu.tlv_str(Tag.RECEIPTED_MESSAGE_ID)
    text_id = fields.get("id")
    message_id = tlv_id or text_id
    if not message_id:
        return None
    state = pdu.tlv_int(Tag.MESSAGE_STATE)
    stat = fields.get("stat", "")
    if state is not None and state in _STATE_TO_STAT:
        stat = _STATE_TO_STAT[state]
    elif not stat:
        stat = "UNKNOWN"
    stat = _STAT_ALIASES.get(stat.upper(), stat.upper())
    err = fields.get("err")
    nec_raw = pdu.tlvs.get(Tag.NETWORK_ERROR_CODE)
    network_error = int.from_bytes(nec_raw[1:3], "big") if nec_raw is not None and len(nec_raw) == 3 else None
    status, code = map_status(stat, err)
    return DeliveryReceipt(
        message_id=message_id,
        stat=stat,
        status=status,
        error_code=code,
        err=err,
        submitted=_parse_int(fields.get("sub")),
        delivered=_parse_int(fields.get("dlvrd")),
        submit_date=_parse_date(fields.get("submit_date")),
        done_date=_parse_date(fields.get("done_date")),
        text=fields.get("text"),
        text_id=text_id,
        network_error_code=network_error,
    )


def format_receipt_text(
    message_id: str,
    stat: str,
    err: int = 0,
    submit_date: datetime | None = None,
    done_date: datetime | None = None,
    text: str = "",
) -> str:
    """The Appendix B text, as the simulator sends it (``text`` cut to 20 characters, as usual)."""
    delivered = 1 if stat == "DELIVRD" else 0
    sd = submit_date.strftime("%y%m%d%H%M") if submit_date else "0000000000"
    dd = done_date.strftime("%y%m%d%H%M") if done_date else sd
    return (
        f"id:{message_id} sub:001 dlvrd:{delivered:03d} submit date:{sd} done date:{dd} "
        f"stat:{stat} err:{err:03d} text:{text[:20]}"
    )


STAT_TO_STATE: dict[str, int] = {v: k for k, v in _STATE_TO_STAT.items()}
