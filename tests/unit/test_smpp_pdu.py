"""SMPP 3.4 codec: byte-exact encodings against hand-written hex, framing errors, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcomm.encoding import Concat, UdhError
from restcomm.smpp.pdu import (
    MAX_PDU_LENGTH,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CommandId,
    DataSm,
    DataSmResp,
    Decoder,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MessageState,
    PduError,
    Status,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Unbind,
    UnbindResp,
    UnknownPdu,
    decode_one,
    encode,
    split_user_data,
    status_name,
    tlv_cstr,
    tlv_int,
)


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


BIND_TRX = h(
    "0000002a 00000009 00000000 00000001"
    "736d7070636c69656e743100"  # system_id "smppclient1"
    "70617373776f726400"  # password "password"
    "00"  # system_type ""
    "34 00 00"  # interface_version 3.4, addr_ton, addr_npi
    "00"  # address_range ""
)

SUBMIT = h(
    "0000003f 00000004 00000000 00000002"
    "00"  # service_type
    "01 01 3135353531323334353637 00"  # ton 1 npi 1 "15551234567"
    "01 01 3434373730303930303132 00"  # "44770090012"
    "40 00 00"  # esm_class UDHI, protocol_id, priority
    "00 00"  # schedule, validity
    "01 00 00 00"  # registered_delivery, replace, data_coding, default msg id
    "08 050003ab0201 6869"  # sm_length 8: UDH + "hi"
)

RECEIPT = h(
    "00000051 00000005 00000000 00000007"
    "00 0101 3434373730303930303132 00 0101 3135353531323334353637 00"
    "04 00 00 00 00 00 00 00 00"
    "0a 69643a61626331323320"  # sm_length 10: "id:abc123 " (text truncated on purpose)
    "001e 0007 61626331323300"  # receipted_message_id "abc123"
    "0427 0001 02"  # message_state DELIVERED
)


def test_bind_transceiver_encode_decode() -> None:
    pdu = BindTransceiver(1, system_id="smppclient1", password="password")
    assert encode(pdu) == BIND_TRX
    assert decode_one(BIND_TRX) == pdu


def test_submit_sm_encode_decode() -> None:
    pdu = SubmitSm(
        2,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="15551234567",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="44770090012",
        esm_class=0x40,
        registered_delivery=1,
        short_message=h("050003ab0201") + b"hi",
    )
    assert encode(pdu) == SUBMIT
    assert decode_one(SUBMIT) == pdu


def test_deliver_sm_receipt_with_tlvs() -> None:
    pdu = decode_one(RECEIPT)
    assert isinstance(pdu, DeliverSm)
    assert pdu.is_receipt
    assert pdu.tlv_str(Tag.RECEIPTED_MESSAGE_ID) == "abc123"
    assert pdu.tlv_int(Tag.MESSAGE_STATE) == MessageState.DELIVERED
    assert pdu.short_message == b"id:abc123 "
    again = DeliverSm(
        7,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="44770090012",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="15551234567",
        esm_class=4,
        short_message=b"id:abc123 ",
        tlvs={Tag.RECEIPTED_MESSAGE_ID: tlv_cstr("abc123"), Tag.MESSAGE_STATE: tlv_int(2, 1)},
    )
    assert encode(again) == RECEIPT


@pytest.mark.parametrize(
    ("wire", "pdu"),
    [
        (h("00000017 80000004 00000000 00000002 61626331323300"), SubmitSmResp(2, 0, "abc123")),
        # error responses may come without a body
        (h("00000010 80000004 00000058 00000003"), SubmitSmResp(3, Status.ESME_RTHROTTLED)),
        (h("00000011 80000005 00000000 00000007 00"), DeliverSmResp(7)),
        (h("00000010 00000015 00000000 00000005"), EnquireLink(5)),
        (h("00000010 80000015 00000000 00000005"), EnquireLinkResp(5)),
        (h("00000010 00000006 00000000 00000009"), Unbind(9)),
        (h("00000010 80000006 00000000 00000009"), UnbindResp(9)),
        (h("00000010 80000000 00000003 00000004"), GenericNack(4, Status.ESME_RINVCMDID)),
        (h("00000015 80000009 00000000 00000001 534d534300"), BindTransceiverResp(1, 0, "SMSC")),
        (h("0000001a 80000009 00000000 00000001 534d534300 0210 0001 34"),
         BindTransceiverResp(1, 0, "SMSC", {Tag.SC_INTERFACE_VERSION: b"\x34"})),
        (h("00000010 80000009 0000000e 00000001"), BindTransceiverResp(1, Status.ESME_RINVPASWD)),
    ],
)
def test_header_and_small_pdus(wire: bytes, pdu: object) -> None:
    assert decode_one(wire) == pdu
    assert encode(pdu) == wire  # type: ignore[arg-type]


def test_deliver_sm_resp_encodes_empty_message_id() -> None:
    assert encode(DeliverSmResp(7)) == h("00000011 80000005 00000000 00000007 00")


def test_data_sm_receipt() -> None:
    wire = h(
        "00000031 00000103 00000000 00000003"
        "00 0000 3100 0000 3200"  # service_type, source 1, destination 2
        "04 00 00"  # esm_class receipt, registered_delivery, data_coding
        "0424 0011 69643a3120737461743a44454c49565244"  # message_payload "id:1 stat:DELIVRD"
    )
    pdu = decode_one(wire)
    assert pdu == DataSm(3, source_addr="1", destination_addr="2", esm_class=4,
                         tlvs={Tag.MESSAGE_PAYLOAD: b"id:1 stat:DELIVRD"})
    assert isinstance(pdu, DataSm) and pdu.is_receipt and pdu.text_bytes == b"id:1 stat:DELIVRD"
    assert encode(pdu) == wire
    assert encode(DataSmResp(3)) == h("00000011 80000103 00000000 00000003 00")
    assert decode_one(h("00000010 80000103 00000008 00000003")) == DataSmResp(3, Status.ESME_RSYSERR)


def test_unknown_command_is_kept_not_fatal() -> None:
    wire = h("00000014 00000003 00000000 0000000a deadbeef")  # query_sm: not implemented
    pdu = decode_one(wire)
    assert isinstance(pdu, UnknownPdu)
    assert pdu.raw_command_id == CommandId.QUERY_SM and pdu.raw_body == h("deadbeef")
    assert not pdu.is_response
    assert encode(pdu) == wire


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (h("0000000f 00000015 00000000 00000001"), "command_length 15"),
        (h("00000000 00000015 00000000 00000001"), "command_length 0"),
        ((MAX_PDU_LENGTH + 1).to_bytes(4, "big") + h("00000004 00000000 00000001"), "command_length"),
        (h("ffffffff 00000004 00000000 00000001"), "command_length"),
        # system_id without a NUL inside the PDU
        (h("00000014 00000009 00000000 00000001 41424344"), "system_id"),
        # submit_sm whose sm_length runs past the end
        (SUBMIT[:3] + bytes([SUBMIT[3] - 2]) + SUBMIT[4:-2], "sm_length"),
        # TLV whose length runs past the end
        (RECEIPT[:3] + bytes([RECEIPT[3] - 1]) + RECEIPT[4:-1], "TLV 0x0427"),
        # truncated TLV header
        (RECEIPT[:3] + bytes([RECEIPT[3] + 2]) + RECEIPT[4:] + b"\x00\x01", "truncated TLV"),
    ],
)
def test_framing_errors(wire: bytes, match: str) -> None:
    dec = Decoder()
    with pytest.raises(PduError, match=match) as info:
        dec.feed(wire)
    assert info.value.sequence_number == 1 or info.value.sequence_number is not None
    # poisoned: the stream cannot be resynchronised
    with pytest.raises(PduError):
        dec.feed(h("00000010 00000015 00000000 00000001"))


def test_incremental_feed_byte_by_byte() -> None:
    stream = BIND_TRX + SUBMIT + RECEIPT + h("00000010 00000015 00000000 00000005")
    dec = Decoder()
    out = []
    for i in range(len(stream)):
        out.extend(dec.feed(stream[i : i + 1]))
    assert [type(p) for p in out] == [BindTransceiver, SubmitSm, DeliverSm, EnquireLink]
    assert dec.buffered == 0


def test_many_pdus_in_one_chunk_and_partial_tail() -> None:
    dec = Decoder()
    out = dec.feed(SUBMIT * 3 + SUBMIT[:10])
    assert len(out) == 3
    assert dec.buffered == 10
    assert len(dec.feed(SUBMIT[10:])) == 1


def test_field_limits_on_encode() -> None:
    with pytest.raises(ValueError, match="system_id"):
        encode(BindTransmitter(1, system_id="x" * 16))
    with pytest.raises(ValueError, match="short_message"):
        encode(SubmitSm(1, short_message=b"x" * 255))
    with pytest.raises(ValueError, match="destination_addr"):
        encode(SubmitSm(1, destination_addr="1" * 21))


def test_status_names() -> None:
    assert status_name(0x58) == "ESME_RTHROTTLED"
    assert status_name(0x14) == "ESME_RMSGQFUL"
    assert status_name(0x400) == "0x00000400"
    assert Status.ESME_RINVBNDSTS == 0x04 and Status.ESME_RBINDFAIL == 0x0D and Status.ESME_RSYSERR == 0x08


def test_tlv_accessors_tolerate_bad_values() -> None:
    pdu = DeliverSm(tlvs={Tag.MESSAGE_STATE: b"", Tag.SAR_MSG_REF_NUM: b"\x01\x02"})
    assert pdu.tlv_int(Tag.MESSAGE_STATE) is None
    assert pdu.tlv_int(Tag.SAR_MSG_REF_NUM) == 0x0102
    assert pdu.tlv_str(Tag.RECEIPTED_MESSAGE_ID) is None


def test_text_bytes_falls_back_to_message_payload() -> None:
    assert DeliverSm(tlvs={Tag.MESSAGE_PAYLOAD: b"long"}).text_bytes == b"long"
    assert DeliverSm(short_message=b"s", tlvs={Tag.MESSAGE_PAYLOAD: b"long"}).text_bytes == b"s"


# --- properties -------------------------------------------------------------------------------

cstr = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=10)
octet = st.integers(0, 255)


@st.composite
def short_messages(draw: st.DrawFn) -> SubmitSm | DeliverSm:
    cls = draw(st.sampled_from([SubmitSm, DeliverSm]))
    tlvs = draw(st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=4))
    return cls(
        draw(st.integers(0, 0x7FFFFFFF)),
        0,
        draw(cstr.filter(lambda s: len(s) <= 5)),
        draw(octet),
        draw(octet),
        draw(cstr),
        draw(octet),
        draw(octet),
        draw(cstr),
        draw(octet),
        draw(octet),
        draw(octet),
        draw(cstr),
        draw(cstr),
        draw(octet),
        draw(octet),
        draw(octet),
        draw(octet),
        draw(st.binary(max_size=254)),
        tlvs,
    )


@given(short_messages())
def test_round_trip(pdu: SubmitSm | DeliverSm) -> None:
    assert decode_one(encode(pdu)) == pdu


@given(st.lists(short_messages(), min_size=1, max_size=5), st.data())
def test_round_trip_any_chunking(pdus: list[SubmitSm], data: st.DataObject) -> None:
    stream = b"".join(encode(p) for p in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    dec = Decoder()
    out = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out.extend(dec.feed(stream[prev:c]))
        prev = c
    assert out == pdus


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_pdu_error(data: bytes) -> None:
    dec = Decoder()
    try:
        dec.feed(data)
    except PduError:
        pass


@settings(max_examples=500)
@given(st.sampled_from(list(CommandId)), st.binary(max_size=120))
def test_random_bodies_only_raise_pdu_error(command_id: int, body: bytes) -> None:
    wire = (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big") + bytes(8) + body
    try:
        Decoder().feed(wire)
    except PduError:
        pass


@pytest.mark.parametrize(
    ("pdu", "data", "concat"),
    [
        (DeliverSm(esm_class=0x40, short_message=h("050003ab0201") + b"hi"), b"hi", Concat(0xAB, 2, 1, 8)),
        (DeliverSm(esm_class=0x40, short_message=h("0608041234020268")), b"h", Concat(0x1234, 2, 2, 16)),
        (DeliverSm(short_message=b"part", tlvs={Tag.SAR_MSG_REF_NUM: tlv_int(300, 2),
                                                Tag.SAR_TOTAL_SEGMENTS: tlv_int(3, 1),
                                                Tag.SAR_SEGMENT_SEQNUM: tlv_int(2, 1)}), b"part", Concat(300, 3, 2, 16)),
        # SAR with seq > total is not concatenation
        (DeliverSm(short_message=b"x", tlvs={Tag.SAR_MSG_REF_NUM: tlv_int(1, 2), Tag.SAR_TOTAL_SEGMENTS: tlv_int(1, 1),
                                             Tag.SAR_SEGMENT_SEQNUM: tlv_int(2, 1)}), b"x", None),
        # UDHI clear: a leading 05 00 03 is text, not a header
        (DeliverSm(short_message=h("050003ab0201")), h("050003ab0201"), None),
        (DataSm(esm_class=0x40, tlvs={Tag.MESSAGE_PAYLOAD: h("050003010101") + b"p"}), b"p", Concat(1, 1, 1, 8)),
    ],
)
def test_split_user_data(pdu: DeliverSm | DataSm, data: bytes, concat: Concat | None) -> None:
    assert split_user_data(pdu) == (data, concat)


def test_split_user_data_broken_udh() -> None:
    with pytest.raises(UdhError):
        split_user_data(DeliverSm(esm_class=0x40, short_message=h("0a0003")))
