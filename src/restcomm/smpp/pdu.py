"""Sans-I/O SMPP 3.4 codec: PDU dataclasses, ``encode(pdu) -> bytes`` and an incremental ``Decoder``.

Nothing here touches a socket or a clock (the h11/aioquic shape): the session state machine and the
asyncio layers feed bytes in and take bytes out, so every wire detail is testable byte by byte.

Why these choices:

* The decoder is *incremental* (bytes arrive split anywhere) and *strict about framing*: a
  ``command_length`` below 16 or above :data:`MAX_PDU_LENGTH`, or mandatory fields that run past
  the PDU's own length, raise :class:`PduError`. After that the stream cannot be resynchronised
  (SMPP has no frame marker), so the decoder stays failed and the caller drops the bind.
* An *unknown* ``command_id`` inside a well-framed PDU is not fatal: it decodes to
  :class:`UnknownPdu` so the session can answer ``generic_nack``/``ESME_RINVCMDID`` as 3.4 §2.8
  asks, and keep the bind.
* Response PDUs with a non-zero status may omit their body (many SMSCs send a bare 16-octet
  ``submit_sm_resp`` on error), so the body of a response is optional on decode.
* C-octet strings are Latin-1 on both sides: decoding never fails on odd bytes, and a round trip
  is lossless.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from restcomm.encoding import Concat, parse_udh

HEADER = struct.Struct("!IIII")
HEADER_LEN = 16
#: Largest PDU we accept. 3.4 allows message_payload up to 64 KiB; anything longer is garbage.
MAX_PDU_LENGTH = 65_536 + 1_024
INTERFACE_VERSION = 0x34
RESPONSE_BIT = 0x80000000


class CommandId(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class Status(IntEnum):
    """SMPP 3.4 ``command_status`` values (section 5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF


def status_name(code: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; vendor codes as ``0x00000400``."""
    try:
        return Status(code).name
    except ValueError:
        return f"0x{code:08x}"


class Tag(IntEnum):
    """Optional parameter (TLV) tags, SMPP 3.4 section 5.3.2."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class MessageState(IntEnum):
    """``message_state`` TLV values (SMPP 3.4 section 5.2.28)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


#: esm_class bits that matter to us.
ESM_UDHI = 0x40
ESM_MSG_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04


class PduError(Exception):
    """The byte stream is not valid SMPP: the bind cannot continue.

    ``command_id``/``sequence_number`` are set when the header was readable, so a caller may send
    a ``generic_nack`` before closing.
    """

    def __init__(self, message: str, command_id: int | None = None, sequence_number: int | None = None):
        super().__init__(message)
        self.command_id = command_id
        self.sequence_number = sequence_number


# --- TLV helpers ---------------------------------------------------------------------------------

Tlvs = dict[int, bytes]


def tlv_int(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def tlv_cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def _encode_tlvs(tlvs: Tlvs) -> bytes:
    out = bytearray()
    for tag, value in tlvs.items():
        if len(value) > 0xFFFF:
            raise ValueError(f"TLV 0x{tag:04x} value too long ({len(value)} octets)")
        out += struct.pack("!HH", tag, len(value))
        out += value
    return bytes(out)


def _decode_tlvs(body: bytes, i: int) -> Tlvs:
    tlvs: Tlvs = {}
    n = len(body)
    while i < n:
        if i + 4 > n:
            raise PduError("truncated TLV header")
        tag, length = struct.unpack_from("!HH", body, i)
        i += 4
        if i + length > n:
            raise PduError(f"TLV 0x{tag:04x} length {length} runs past the PDU")
        tlvs[tag] = body[i : i + length]
        i += length
    return tlvs


class _TlvAccess:
    """Typed reads of TLV values; a malformed value reads as absent rather than raising."""

    __slots__ = ()
    tlvs: Tlvs

    def tlv_int(self, tag: int) -> int | None:
        v = self.tlvs.get(tag)
        if v is None or not 1 <= len(v) <= 4:
            return None
        return int.from_bytes(v, "big")

    def tlv_str(self, tag: int) -> str | None:
        v = self.tlvs.get(tag)
        if v is None:
            return None
        return v.split(b"\0", 1)[0].decode("latin-1")


def _cstr(s: str, max_len: int, name: str) -> bytes:
    b = s.encode("latin-1")
    if len(b) >= max_len:
        raise ValueError(f"{name} is {len(b)} octets; SMPP allows {max_len - 1}")
    return b + b"\0"


def _read_cstr(body: bytes, i: int, name: str) -> tuple[str, int]:
    j = body.find(b"\0", i)
    if j < 0:
        raise PduError(f"{name}: C-octet string not terminated inside the PDU")
    return body[i:j].decode("latin-1"), j + 1


def _read_addresses(body: bytes) -> tuple[str, int, int, str, int, int, str, int]:
    """service_type and the source/destination TON, NPI and address that open submit_sm,
    deliver_sm and data_sm; returns them and the offset after them."""
    n = len(body)
    service_type, i = _read_cstr(body, 0, "service_type")
    if i + 2 > n:
        raise PduError("truncated before source_addr_ton")
    s_ton, s_npi = body[i], body[i + 1]
    source_addr, i = _read_cstr(body, i + 2, "source_addr")
    if i + 2 > n:
        raise PduError("truncated before dest_addr_ton")
    d_ton, d_npi = body[i], body[i + 1]
    destination_addr, i = _read_cstr(body, i + 2, "destination_addr")
    return service_type, s_ton, s_npi, source_addr, d_ton, d_npi, destination_addr, i


# --- PDU dataclasses ---------------------------------------------------------------------------


@dataclass(slots=True)
class Pdu:
    """Common header. ``command_id`` is a class constant on each concrete PDU."""

    command_id: ClassVar[int] = 0
    sequence_number: int = 0
    command_status: int = 0

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        return cls(sequence_number=sequence_number, command_status=command_status)

    def encode(self) -> bytes:
        body = self.body()
        return HEADER.pack(HEADER_LEN + len(body), self.command_id, self.command_status, self.sequence_number) + body

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


@dataclass(slots=True)
class _Bind(Pdu):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def body(self) -> bytes:
        return b"".join(
            (
                _cstr(self.system_id, 16, "system_id"),
                _cstr(self.password, 9, "password"),
                _cstr(self.system_type, 13, "system_type"),
                bytes((self.interface_version, self.addr_ton, self.addr_npi)),
                _cstr(self.address_range, 41, "address_range"),
            )
        )

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        system_id, i = _read_cstr(body, 0, "system_id")
        password, i = _read_cstr(body, i, "password")
        system_type, i = _read_cstr(body, i, "system_type")
        if i + 3 > len(body):
            raise PduError("bind body truncated before interface_version/addr_ton/addr_npi")
        iv, ton, npi = body[i], body[i + 1], body[i + 2]
        address_range, i = _read_cstr(body, i + 3, "address_range")
        return cls(sequence_number, command_status, system_id, password, system_type, iv, ton, npi, address_range)


@dataclass(slots=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER


@dataclass(slots=True)
class BindReceiver(_Bind):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER


@dataclass(slots=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER


@dataclass(slots=True)
class _BindResp(Pdu, _TlvAccess):
    system_id: str = ""
    tlvs: Tlvs = field(default_factory=dict)

    def body(self) -> bytes:
        if self.command_status and not self.system_id and not self.tlvs:
            return b""  # 3.4 section 4.1: no body on a failed bind
        return _cstr(self.system_id, 16, "system_id") + _encode_tlvs(self.tlvs)

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        if not body:  # allowed when command_status != 0, and tolerated otherwise
            return cls(sequence_number, command_status)
        system_id, i = _read_cstr(body, 0, "system_id")
        return cls(sequence_number, command_status, system_id, _decode_tlvs(body, i))


@dataclass(slots=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(slots=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP


@dataclass(slots=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(slots=True)
class _ShortMessage(Pdu, _TlvAccess):
    """submit_sm and deliver_sm share one body layout (3.4 sections 4.4.1 and 4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: Tlvs = field(default_factory=dict)

    def body(self) -> bytes:
        sm = self.short_message
        if len(sm) > 254:
            raise ValueError(f"short_message is {len(sm)} octets; use message_payload above 254")
        return b"".join(
            (
                _cstr(self.service_type, 6, "service_type"),
                bytes((self.source_addr_ton, self.source_addr_npi)),
                _cstr(self.source_addr, 21, "source_addr"),
                bytes((self.dest_addr_ton, self.dest_addr_npi)),
                _cstr(self.destination_addr, 21, "destination_addr"),
                bytes((self.esm_class, self.protocol_id, self.priority_flag)),
                _cstr(self.schedule_delivery_time, 17, "schedule_delivery_time"),
                _cstr(self.validity_period, 17, "validity_period"),
                bytes(
                    (
                        self.registered_delivery,
                        self.replace_if_present_flag,
                        self.data_coding,
                        self.sm_default_msg_id,
                        len(sm),
                    )
                ),
                sm,
                _encode_tlvs(self.tlvs) if self.tlvs else b"",
            )
        )

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        n = len(body)
        service_type, s_ton, s_npi, source_addr, d_ton, d_npi, destination_addr, i = _read_addresses(body)
        if i + 3 > n:
            raise PduError("truncated before esm_class")
        esm_class, protocol_id, priority_flag = body[i], body[i + 1], body[i + 2]
        schedule, i = _read_cstr(body, i + 3, "schedule_delivery_time")
        validity, i = _read_cstr(body, i, "validity_period")
        if i + 5 > n:
            raise PduError("truncated before sm_length")
        rd, rip, dc, dflt, sm_len = body[i : i + 5]
        i += 5
        if i + sm_len > n:
            raise PduError(f"sm_length {sm_len} runs past the PDU")
        short_message = body[i : i + sm_len]
        tlvs = _decode_tlvs(body, i + sm_len) if i + sm_len < n else {}
        return cls(
            sequence_number,
            command_status,
            service_type,
            s_ton,
            s_npi,
            source_addr,
            d_ton,
            d_npi,
            destination_addr,
            esm_class,
            protocol_id,
            priority_flag,
            schedule,
            validity,
            rd,
            rip,
            dc,
            dflt,
            short_message,
            tlvs,
        )

    @property
    def is_receipt(self) -> bool:
        """Any non-default message type in esm_class bits 2-5 (SMSC receipt, SME ack, ...)."""
        return bool(self.esm_class & ESM_MSG_TYPE_MASK)

    @property
    def text_bytes(self) -> bytes:
        """The user data: short_message, or message_payload when short_message is empty."""
        if self.short_message:
            return self.short_message
        return self.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")


@dataclass(slots=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM


@dataclass(slots=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[int] = CommandId.DELIVER_SM


@dataclass(slots=True)
class _MessageIdResp(Pdu):
    message_id: str = ""

    def body(self) -> bytes:
        if self.command_status and not self.message_id:
            return b""  # 3.4 section 4.4.2: no body when command_status is non-zero
        return _cstr(self.message_id, 66, "message_id")

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        if not body:
            return cls(sequence_number, command_status)
        message_id, _ = _read_cstr(body, 0, "message_id")
        return cls(sequence_number, command_status, message_id)


@dataclass(slots=True)
class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP


@dataclass(slots=True)
class DeliverSmResp(_MessageIdResp):
    """deliver_sm_resp's message_id is unused by 3.4 and sent as a single NUL."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP


@dataclass(slots=True)
class DataSm(Pdu, _TlvAccess):
    """data_sm (3.4 section 4.7.1): no short_message, the text is in message_payload.

    Some SMSCs (Jasmin by default) send delivery receipts and MOs as data_sm, so an ESME that
    only understands deliver_sm loses them.
    """

    command_id: ClassVar[int] = CommandId.DATA_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    tlvs: Tlvs = field(default_factory=dict)

    def body(self) -> bytes:
        return b"".join(
            (
                _cstr(self.service_type, 6, "service_type"),
                bytes((self.source_addr_ton, self.source_addr_npi)),
                _cstr(self.source_addr, 65, "source_addr"),
                bytes((self.dest_addr_ton, self.dest_addr_npi)),
                _cstr(self.destination_addr, 65, "destination_addr"),
                bytes((self.esm_class, self.registered_delivery, self.data_coding)),
                _encode_tlvs(self.tlvs),
            )
        )

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        service_type, s_ton, s_npi, source_addr, d_ton, d_npi, destination_addr, i = _read_addresses(body)
        if i + 3 > len(body):
            raise PduError("truncated before esm_class")
        esm_class, rd, dc = body[i], body[i + 1], body[i + 2]
        tlvs = _decode_tlvs(body, i + 3)
        return cls(sequence_number, command_status, service_type, s_ton, s_npi, source_addr, d_ton, d_npi,
                   destination_addr, esm_class, rd, dc, tlvs)

    @property
    def is_receipt(self) -> bool:
        return bool(self.esm_class & ESM_MSG_TYPE_MASK)

    @property
    def short_message(self) -> bytes:
        return b""

    @property
    def text_bytes(self) -> bytes:
        return self.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")


@dataclass(slots=True)
class DataSmResp(Pdu, _TlvAccess):
    command_id: ClassVar[int] = CommandId.DATA_SM_RESP
    message_id: str = ""
    tlvs: Tlvs = field(default_factory=dict)

    def body(self) -> bytes:
        if self.command_status and not self.message_id and not self.tlvs:
            return b""
        return _cstr(self.message_id, 66, "message_id") + _encode_tlvs(self.tlvs)

    @classmethod
    def decode_body(cls, body: bytes, sequence_number: int, command_status: int) -> Pdu:
        if not body:
            return cls(sequence_number, command_status)
        message_id, i = _read_cstr(body, 0, "message_id")
        return cls(sequence_number, command_status, message_id, _decode_tlvs(body, i))


#: The two PDUs an SMSC uses to hand a message or a receipt to an ESME.
InboundMessage = DeliverSm | DataSm


@dataclass(slots=True)
class EnquireLink(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK


@dataclass(slots=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP


@dataclass(slots=True)
class Unbind(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND


@dataclass(slots=True)
class UnbindResp(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND_RESP


@dataclass(slots=True)
class GenericNack(Pdu):
    command_id: ClassVar[int] = CommandId.GENERIC_NACK


@dataclass(slots=True)
class UnknownPdu(Pdu):
    """A well-framed PDU whose command we do not implement; the body is kept raw.

    ``command_id`` is per instance here (it shadows the class constant through ``raw_command_id``).
    """

    raw_command_id: int = 0
    raw_body: bytes = b""

    def body(self) -> bytes:
        return self.raw_body

    def encode(self) -> bytes:
        return (
            HEADER.pack(HEADER_LEN + len(self.raw_body), self.raw_command_id, self.command_status, self.sequence_number)
            + self.raw_body
        )

    @property
    def is_response(self) -> bool:
        return bool(self.raw_command_id & RESPONSE_BIT)


_BY_ID: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter,
        BindReceiver,
        BindTransceiver,
        BindTransmitterResp,
        BindReceiverResp,
        BindTransceiverResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        EnquireLink,
        EnquireLinkResp,
        Unbind,
        UnbindResp,
        GenericNack,
    )
}

BIND_RESPONSES: dict[int, type[_BindResp]] = {
    CommandId.BIND_TRANSMITTER: BindTransmitterResp,
    CommandId.BIND_RECEIVER: BindReceiverResp,
    CommandId.BIND_TRANSCEIVER: BindTransceiverResp,
}


def split_user_data(pdu: SubmitSm | DeliverSm | DataSm) -> tuple[bytes, Concat | None]:
    """The user data without its UDH, and which part of a concatenated message it is.

    Concatenation comes either in a UDH (esm_class UDHI, IE 0x00 or 0x08) or in the SAR TLVs;
    both sides of the link (ESME for MO, simulator for MT) read it the same way. A UDH whose
    lengths overrun raises :class:`~restcomm.encoding.UdhError`.
    """
    data = pdu.text_bytes
    if pdu.esm_class & ESM_UDHI:
        udh, data = parse_udh(data)
        return data, udh.concat
    ref = pdu.tlv_int(Tag.SAR_MSG_REF_NUM)
    total = pdu.tlv_int(Tag.SAR_TOTAL_SEGMENTS)
    seq = pdu.tlv_int(Tag.SAR_SEGMENT_SEQNUM)
    if ref is not None and total and seq and 1 <= seq <= total:
        return data, Concat(ref, total, seq, 16)
    return data, None


def command_id_of(pdu: Pdu) -> int:
    """The wire command_id, including for :class:`UnknownPdu`."""
    return pdu.raw_command_id if isinstance(pdu, UnknownPdu) else pdu.command_id


def encode(pdu: Pdu) -> bytes:
    """Serialize one PDU. Field values that SMPP cannot carry raise ``ValueError``."""
    return pdu.encode()


def decode_one(data: bytes) -> Pdu:
    """Decode exactly one complete PDU (``len(data)`` must equal its command_length)."""
    dec = Decoder()
    pdus = dec.feed(data)
    if len(pdus) != 1 or dec.buffered:
        raise PduError(f"expected exactly one PDU, got {len(pdus)} and {dec.buffered} spare octets")
    return pdus[0]


class Decoder:
    """Incremental decoder: ``feed`` any chunk, get the complete PDUs it finished.

    Once it has raised :class:`PduError` it is poisoned and raises again on every feed: the byte
    stream has lost framing and the only correct action is to drop the connection.
    """

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._error: PduError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Pdu]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[Pdu] = []
        pos = 0
        n = len(buf)
        try:
            while n - pos >= HEADER_LEN:
                length, cmd, status, seq = HEADER.unpack_from(buf, pos)
                if length < HEADER_LEN or length > self.max_length:
                    raise PduError(f"invalid command_length {length}", cmd, seq)
                if n - pos < length:
                    break
                body = bytes(buf[pos + HEADER_LEN : pos + length])
                pos += length
                cls = _BY_ID.get(cmd)
                if cls is None:
                    out.append(UnknownPdu(seq, status, cmd, body))
                    continue
                try:
                    out.append(cls.decode_body(body, seq, status))
                except PduError as exc:
                    raise PduError(f"{CommandId(cmd).name.lower()}: {exc}", cmd, seq) from None
        except PduError as exc:
            self._error = exc
            del buf[:]
            raise
        if pos:
            del buf[:pos]
        return out
