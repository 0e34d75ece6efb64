"""The sans-I/O ESME session, driven by hand: bytes in, bytes and events out, time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcomm.smpp.pdu import (
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
    DataSmResp,
    Decoder,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Status,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnknownPdu,
    encode,
)
from restcomm.smpp.session import (
    MAX_SEQUENCE,
    BindFailed,
    BindType,
    Bound,
    Closed,
    DeliverReceived,
    EsmeSession,
    Event,
    SessionError,
    SessionState,
    SubmitResult,
    Throttled,
    Timeout,
)


class Peer:
    """The SMSC side of the wire, using the same codec."""

    def __init__(self, session: EsmeSession) -> None:
        self.session = session
        self.decoder = Decoder()

    def sent(self) -> list[Pdu]:
        return self.decoder.feed(self.session.data_to_send())

    def send(self, *pdus: Pdu, now: float) -> list[Event]:
        self.session.receive_data(b"".join(encode(p) for p in pdus), now)
        return events(self.session)


def events(session: EsmeSession) -> list[Event]:
    out = []
    while (e := session.next_event()) is not None:
        out.append(e)
    return out


def new_session(**kw: object) -> tuple[EsmeSession, Peer]:
    s = EsmeSession("user", "secret", window=2, enquire_link_interval=30, response_timeout=10, bind_timeout=5,
                    unbind_timeout=3, **kw)  # type: ignore[arg-type]
    return s, Peer(s)


def bound_session(**kw: object) -> tuple[EsmeSession, Peer]:
    s, peer = new_session(**kw)
    s.connection_made(0.0)
    (bind,) = peer.sent()
    assert peer.send(BindTransceiverResp(bind.sequence_number, 0, "SMSC"), now=0.1) == [Bound("SMSC")]
    return s, peer


def submit(s: EsmeSession, now: float, tag: object) -> int:
    return s.send_submit(SubmitSm(destination_addr="1555", short_message=b"hi"), now, tag)


# --- binding ---------------------------------------------------------------------------------


def test_bind_sends_credentials_and_binds() -> None:
    s, peer = new_session(system_type="VMA")
    s.connection_made(100.0)
    (bind,) = peer.sent()
    assert bind == BindTransceiver(1, 0, "user", "secret", "VMA", 0x34, 0, 0, "")
    assert s.state is SessionState.BINDING
    assert s.get_timer() == 105.0
    assert peer.send(BindTransceiverResp(1, 0, "SMSC"), now=100.5) == [Bound("SMSC")]
    assert s.state is SessionState.BOUND and s.smsc_system_id == "SMSC"
    assert s.get_timer() == 130.5  # next keepalive: 30 s after the last received PDU


def test_bind_transmitter_type() -> None:
    s, peer = new_session(bind_type=BindType.TRANSMITTER)
    s.connection_made(0)
    (bind,) = peer.sent()
    assert isinstance(bind, BindTransmitter)
    # a transceiver resp to a transmitter bind is not a success
    evs = peer.send(BindTransceiverResp(1, 0, "SMSC"), now=0)
    assert isinstance(evs[0], BindFailed)
    s2, peer2 = new_session(bind_type=BindType.TRANSMITTER)
    s2.connection_made(0)
    peer2.sent()
    assert peer2.send(BindTransmitterResp(1, 0, "S"), now=0) == [Bound("S")]
    assert not s2.can_receive


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (BindTransceiverResp(1, Status.ESME_RINVPASWD), Status.ESME_RINVPASWD),
        (BindTransceiverResp(1, Status.ESME_RBINDFAIL), Status.ESME_RBINDFAIL),
        (GenericNack(1, Status.ESME_RINVCMDID), Status.ESME_RINVCMDID),
    ],
)
def test_bind_refused(reply: Pdu, status: int) -> None:
    s, peer = new_session()
    s.connection_made(0)
    peer.sent()
    evs = peer.send(reply, now=1)
    assert isinstance(evs[0], BindFailed) and evs[0].status == status
    assert isinstance(evs[1], Closed)
    assert s.state is SessionState.CLOSED and s.get_timer() is None


def test_bind_timeout() -> None:
    s, peer = new_session()
    s.connection_made(0)
    s.handle_timer(4.99)
    assert events(s) == []
    s.handle_timer(5.0)
    evs = events(s)
    assert evs[0] == BindFailed(None, "bind timeout")
    assert s.state is SessionState.CLOSED


def test_submit_before_bound_is_refused() -> None:
    s, _ = new_session()
    s.connection_made(0)
    with pytest.raises(SessionError):
        submit(s, 0, "x")
    assert s.window_available == 0


def test_deliver_before_bound_gets_invalid_bind_status() -> None:
    s, peer = new_session()
    s.connection_made(0)
    peer.sent()
    assert peer.send(DeliverSm(77), now=0) == []
    assert peer.sent() == [DeliverSmResp(77, Status.ESME_RINVBNDSTS)]


# --- submits and the window ------------------------------------------------------------------


def test_submit_window_and_results() -> None:
    s, peer = bound_session()
    a = submit(s, 1, "a")
    b = submit(s, 1, "b")
    assert (a, b) == (2, 3)  # 1 was the bind
    assert s.window_in_use == 2 and s.window_available == 0
    with pytest.raises(SessionError, match="window full"):
        submit(s, 1, "c")
    sent = peer.sent()
    assert [type(p) for p in sent] == [SubmitSm, SubmitSm]
    assert [p.sequence_number for p in sent] == [2, 3]
    evs = peer.send(SubmitSmResp(b, 0, "id-b"), SubmitSmResp(a, Status.ESME_RINVDSTADR), now=2)
    assert evs == [SubmitResult(b, "b", 0, "id-b"), SubmitResult(a, "a", Status.ESME_RINVDSTADR, None)]
    assert s.window_in_use == 0


@pytest.mark.parametrize("status", [Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL])
def test_throttle_statuses_are_their_own_event(status: int) -> None:
    s, peer = bound_session()
    seq = submit(s, 1, "t")
    assert peer.send(SubmitSmResp(seq, status), now=1) == [Throttled(seq, "t", status)]
    # the same through generic_nack
    seq = submit(s, 1, "u")
    assert peer.send(GenericNack(seq, status), now=1) == [Throttled(seq, "u", status)]


def test_generic_nack_fails_the_submit() -> None:
    s, peer = bound_session()
    seq = submit(s, 1, "n")
    assert peer.send(GenericNack(seq, Status.ESME_RINVCMDLEN), now=1) == [
        SubmitResult(seq, "n", Status.ESME_RINVCMDLEN, None)
    ]
    seq = submit(s, 1, "z")
    assert peer.send(GenericNack(seq, 0), now=1) == [SubmitResult(seq, "z", Status.ESME_RSYSERR, None)]


def test_response_timeout_frees_the_window_and_late_answer_is_ignored() -> None:
    s, peer = bound_session()
    a = submit(s, 10, "a")
    b = submit(s, 12, "b")
    assert s.get_timer() == 20
    s.handle_timer(19.999)
    assert events(s) == []
    s.handle_timer(20)
    assert events(s) == [Timeout(a, "a", 0x00000004)]
    assert s.window_in_use == 1
    assert s.get_timer() == 22
    assert peer.send(SubmitSmResp(a, 0, "late"), now=21) == []
    assert s.late_responses == 1
    assert peer.send(SubmitSmResp(b, 0, "ok"), now=21) == [SubmitResult(b, "b", 0, "ok")]


def test_sequence_numbers_wrap() -> None:
    s, peer = bound_session()
    s._next_seq = MAX_SEQUENCE
    assert submit(s, 1, "a") == MAX_SEQUENCE
    assert submit(s, 1, "b") == 1


def test_encode_error_leaves_no_trace() -> None:
    s, peer = bound_session()
    with pytest.raises(ValueError):
        s.send_submit(SubmitSm(destination_addr="1" * 30), 1, "bad")
    assert s.window_in_use == 0 and peer.sent() == []


# --- keepalive --------------------------------------------------------------------------------


def test_enquire_link_after_idle_interval_and_answer() -> None:
    s, peer = bound_session()
    s.handle_timer(30.0)
    assert peer.sent() == []  # last received at 0.1
    s.handle_timer(30.1)
    (enq,) = peer.sent()
    assert isinstance(enq, EnquireLink)
    assert s.get_timer() == pytest.approx(40.1)  # only the response deadline now
    assert peer.send(EnquireLinkResp(enq.sequence_number), now=31) == []
    assert s.get_timer() == 61


def test_traffic_postpones_enquire_link() -> None:
    s, peer = bound_session()
    seq = submit(s, 20, "a")
    peer.sent()
    peer.send(SubmitSmResp(seq, 0, "x"), now=25)
    s.handle_timer(30.1)
    assert peer.sent() == []
    assert s.get_timer() == 55


def test_enquire_link_timeout_closes_with_unacknowledged_submits() -> None:
    s, peer = bound_session()
    s.handle_timer(31)
    peer.sent()
    # a submit sent after the probe has a later deadline than the probe
    submit(s, 32, "pending")
    s.handle_timer(41)
    evs = events(s)
    assert evs == [Closed("enquire_link timeout", ("pending",))]
    assert s.state is SessionState.CLOSED


def test_answers_smsc_enquire_link_in_any_state() -> None:
    s, peer = new_session()
    s.connection_made(0)
    peer.sent()
    peer.send(EnquireLink(42), now=1)
    assert peer.sent() == [EnquireLinkResp(42)]


# --- inbound -----------------------------------------------------------------------------------


def test_deliver_is_acked_only_when_the_app_says_so() -> None:
    s, peer = bound_session()
    mo = DeliverSm(9, source_addr="1555", short_message=b"hello")
    assert peer.send(mo, now=1) == [DeliverReceived(mo)]
    assert peer.sent() == []
    s.send_deliver_sm_resp(9, Status.ESME_RX_T_APPN)
    assert peer.sent() == [DeliverSmResp(9, Status.ESME_RX_T_APPN)]


def test_data_sm_is_delivered_and_acked_with_data_sm_resp() -> None:
    s, peer = bound_session()
    dsm = DataSm(11, esm_class=4, tlvs={})
    assert peer.send(dsm, now=1) == [DeliverReceived(dsm)]
    s.acknowledge(dsm)
    assert peer.sent() == [DataSmResp(11)]
    mo = DeliverSm(12)
    peer.send(mo, now=1)
    s.acknowledge(mo, Status.ESME_RX_T_APPN)
    assert peer.sent() == [DeliverSmResp(12, Status.ESME_RX_T_APPN)]


def test_transmitter_refuses_deliver() -> None:
    s, peer = new_session(bind_type=BindType.TRANSMITTER)
    s.connection_made(0)
    peer.sent()
    peer.send(BindTransmitterResp(1, 0, "S"), now=0)
    assert peer.send(DeliverSm(5), now=1) == []
    assert peer.sent() == [DeliverSmResp(5, Status.ESME_RINVBNDSTS)]


@pytest.mark.parametrize(
    "pdu", [UnknownPdu(7, 0, 0x00000007, b""), SubmitSm(7), BindTransceiver(7)]
)
def test_unexpected_requests_get_generic_nack(pdu: Pdu) -> None:
    s, peer = bound_session()
    peer.send(pdu, now=1)
    assert peer.sent() == [GenericNack(7, Status.ESME_RINVCMDID)]
    assert s.state is SessionState.BOUND


def test_unknown_response_is_ignored() -> None:
    s, peer = bound_session()
    assert peer.send(UnknownPdu(7, 0, 0x80000007, b""), now=1) == []
    assert peer.sent() == [] and s.state is SessionState.BOUND


# --- closing -----------------------------------------------------------------------------------


def test_peer_unbind() -> None:
    s, peer = bound_session()
    submit(s, 1, "a")
    peer.sent()
    evs = peer.send(Unbind(50), now=2)
    assert peer.sent() == [UnbindResp(50)]
    assert evs == [Closed("unbound by SMSC", ("a",))]


def test_graceful_unbind() -> None:
    s, peer = bound_session()
    s.unbind(5)
    (unbind,) = peer.sent()
    assert isinstance(unbind, Unbind)
    assert s.state is SessionState.UNBINDING
    with pytest.raises(SessionError):
        submit(s, 5, "late")
    assert s.get_timer() == 8
    # responses still flow while unbinding
    assert peer.send(UnbindResp(unbind.sequence_number), now=6) == [Closed("unbound")]


def test_unbind_timeout() -> None:
    s, peer = bound_session()
    s.unbind(5)
    s.handle_timer(8)
    assert events(s) == [Closed("unbind timeout")]


def test_unbind_while_binding_just_closes() -> None:
    s, _ = new_session()
    s.connection_made(0)
    s.unbind(1)
    evs = events(s)
    assert isinstance(evs[0], BindFailed) and isinstance(evs[1], Closed)


def test_connection_lost_reports_unacknowledged() -> None:
    s, peer = bound_session()
    submit(s, 1, "a")
    submit(s, 1, "b")
    s.connection_lost(2)
    assert events(s) == [Closed("connection lost", ("a", "b"))]
    s.connection_lost(3)  # idempotent
    assert events(s) == []


def test_garbage_closes_with_generic_nack() -> None:
    s, peer = bound_session()
    s.receive_data(bytes.fromhex("00000005 00000004 00000000 0000002a".replace(" ", "")), 1)
    evs = events(s)
    assert len(evs) == 1 and isinstance(evs[0], Closed) and evs[0].reason.startswith("protocol error")
    assert peer.sent() == [GenericNack(42, Status.ESME_RINVCMDLEN)]
    s.receive_data(b"more", 2)  # ignored once closed
    assert events(s) == []


def test_split_bytes_are_reassembled() -> None:
    s, peer = bound_session()
    seq = submit(s, 1, "a")
    wire = encode(SubmitSmResp(seq, 0, "abc"))
    for i in range(len(wire) - 1):
        s.receive_data(wire[i : i + 1], 1)
        assert events(s) == []
    s.receive_data(wire[-1:], 1)
    assert events(s) == [SubmitResult(seq, "a", 0, "abc")]


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=6), st.lists(st.floats(0, 100), max_size=4))
def test_any_bytes_and_timers_never_raise(chunks: list[bytes], times: list[float]) -> None:
    """Whatever the SMSC sends, the session either handles it or closes; it never raises."""
    s, peer = bound_session()
    submit(s, 0.5, "a")
    for i, chunk in enumerate(chunks):
        s.receive_data(chunk, 1.0 + i)
        if times:
            s.handle_timer(times[i % len(times)] + 1.0)
    evs = events(s)
    assert sum(isinstance(e, Closed) for e in evs) <= 1
    if s.state is SessionState.CLOSED:
        assert s.get_timer() is None and s.window_in_use == 0
    else:
        assert 0 <= s.window_in_use <= s.window
