"""Transaction layer with a fake clock: every RFC 3261 timer (A, B, D, E, F, G, H, I, J, K), the
2xx retransmission until ACK (§13.3.1.4), absorption of retransmitted requests, rport."""

from __future__ import annotations

from restcomm.sip.message import Headers, Request, Response, make_response, parse_message, parse_uri
from restcomm.sip.transaction import (
    AckTimeout,
    RequestReceived,
    ResponseReceived,
    Timers,
    TransactionLayer,
    TransactionTimeout,
)

UDP = ("UDP", "192.0.2.9", 5070)
TCP = ("TCP", "192.0.2.9", 40000)
T = Timers()


def request(method: str = "INVITE", branch: str = "z9hG4bKabc", *, rport: bool = True, seq: int = 1,
            call_id: str = "c1") -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 10.9.9.9:5060;branch={branch}" + (";rport" if rport else ""))
    h.add("From", "<sip:a@x>;tag=f1")
    h.add("To", "<sip:b@y>")
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{seq} {method}")
    h.add("Max-Forwards", "70")
    return Request(headers=h, method=method, uri=parse_uri("sip:b@y"))


def wire(msg: Request | Response) -> Request | Response:
    """Round-trip through the codec, as the transport would."""
    return parse_message(msg.encode())


def drain(layer: TransactionLayer) -> list:
    out = []
    while (e := layer.next_event()) is not None:
        out.append(e)
    return out


def sent(layer: TransactionLayer) -> list[tuple[str, tuple]]:
    return [(d.split(b"\r\n", 1)[0].decode(), dest) for d, dest in layer.datagrams_to_send()]


def run_until(layer: TransactionLayer, until: float, now: float = 0.0) -> list[float]:
    """Fire timers up to ``until``; return the times at which something was sent."""
    times = []
    while (t := layer.get_timer()) is not None and t <= until:
        now = t
        layer.handle_timer(now)
        if layer.datagrams_to_send():
            times.append(round(now, 3))
    return times


# ---------------------------------------------------------------- client INVITE


def test_timer_a_doubles_and_timer_b_times_out_over_udp() -> None:
    tl = TransactionLayer()
    key = tl.send_request(request(), UDP, 0.0)
    assert len(sent(tl)) == 1
    times = run_until(tl, 64 * T.t1)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: T1, 2T1, 4T1, ... (no T2 cap for INVITE)
    ev = drain(tl)
    assert ev == [TransactionTimeout(key, "INVITE", True)]  # B at 64*T1
    assert tl.transaction_count == 0


def test_no_retransmission_over_tcp_but_timer_b() -> None:
    tl = TransactionLayer()
    tl.send_request(request(), TCP, 0.0)
    sent(tl)
    assert run_until(tl, 100) == []
    assert isinstance(drain(tl)[0], TransactionTimeout)


def test_provisional_stops_a_and_b_then_2xx_goes_to_tu_with_retransmissions() -> None:
    tl = TransactionLayer()
    req = request()
    key = tl.send_request(req, UDP, 0.0)
    sent(tl)
    tl.receive(wire(make_response(req, 180, to_tag="t")), UDP, 0.2)
    assert [e.response.status for e in drain(tl)] == [180]
    assert run_until(tl, 40) == []  # no A, no B timeout in Proceeding (Timer C is minutes away)
    assert drain(tl) == []
    ok = make_response(req, 200, to_tag="t")
    tl.receive(wire(ok), UDP, 41)
    tl.receive(wire(ok), UDP, 41.5)  # retransmitted 2xx reaches the TU, which re-ACKs
    evs = drain(tl)
    assert [(e.response.status, e.key) for e in evs] == [(200, key), (200, key)]
    assert sent(tl) == []  # the ACK for a 2xx is the TU's job


def test_non_2xx_final_is_acked_by_the_transaction_and_timer_d() -> None:
    tl = TransactionLayer()
    req = request()
    tl.send_request(req, UDP, 0.0)
    sent(tl)
    busy = wire(make_response(req, 486, to_tag="t9"))
    tl.receive(busy, UDP, 0.1)
    out = tl.datagrams_to_send()
    assert len(out) == 1 and out[0][0].startswith(b"ACK sip:b@y SIP/2.0")
    ack = parse_message(out[0][0])
    assert ack.top_via.branch == "z9hG4bKabc" and ack.to.tag == "t9" and ack.cseq.method == "ACK"
    assert [e.response.status for e in drain(tl)] == [486]
    tl.receive(busy, UDP, 1.0)  # retransmitted final: ACK again, TU not told again
    assert len(sent(tl)) == 1 and drain(tl) == []
    tl.handle_timer(0.1 + 31.9)
    assert tl.transaction_count == 1
    tl.handle_timer(0.1 + 32.0)  # Timer D
    assert tl.transaction_count == 0


# ---------------------------------------------------------------- client non-INVITE


def test_timer_e_caps_at_t2_and_timer_f() -> None:
    tl = TransactionLayer()
    key = tl.send_request(request("OPTIONS"), UDP, 0.0)
    sent(tl)
    times = run_until(tl, 64 * T.t1)
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # doubling, then every T2
    assert drain(tl) == [TransactionTimeout(key, "OPTIONS", True)]


def test_timer_e_at_t2_in_proceeding_and_timer_k() -> None:
    tl = TransactionLayer()
    req = request("BYE")
    tl.send_request(req, UDP, 0.0)
    sent(tl)
    tl.receive(wire(make_response(req, 100)), UDP, 0.1)
    assert run_until(tl, 5.0) == [0.5, 4.5]  # first E was armed at T1, then T2 while proceeding
    tl.receive(wire(make_response(req, 200)), UDP, 5.0)
    assert [e.response.status for e in drain(tl)] == [100, 200]
    tl.handle_timer(5.0 + T.t4 - 0.01)
    assert tl.transaction_count == 1
    tl.handle_timer(5.0 + T.t4)  # Timer K
    assert tl.transaction_count == 0


def test_stray_response_is_surfaced_without_key() -> None:
    tl = TransactionLayer()
    tl.receive(wire(make_response(request(), 200, to_tag="x")), UDP, 0)
    (ev,) = drain(tl)
    assert isinstance(ev, ResponseReceived) and ev.key is None


# ---------------------------------------------------------------- server INVITE


def test_retransmitted_invite_reaches_tu_once_and_gets_last_provisional() -> None:
    tl = TransactionLayer()
    inv = request()
    tl.receive(wire(inv), UDP, 0.0)
    (ev,) = drain(tl)
    assert isinstance(ev, RequestReceived) and ev.request.method == "INVITE"
    tl.receive(wire(inv), UDP, 0.5)
    assert drain(tl) == [] and sent(tl) == []  # nothing sent yet: nothing to resend
    tl.send_response(make_response(ev.request, 180, to_tag="tt"), 0.6)
    assert sent(tl)[0][0] == "SIP/2.0 180 Ringing"
    tl.receive(wire(inv), UDP, 1.0)
    assert sent(tl)[0][0] == "SIP/2.0 180 Ringing" and drain(tl) == []


def test_rport_received_stamped_and_response_sent_to_source() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), UDP, 0.0)
    (ev,) = drain(tl)
    via = ev.request.top_via
    assert via.param("received") == "192.0.2.9" and via.param("rport") == "5070"
    tl.send_response(make_response(ev.request, 100), 0.0)
    ((first, dest),) = sent(tl)
    assert dest == UDP


def test_without_rport_response_goes_to_via_port() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request(rport=False)), UDP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 100), 0.0)
    assert sent(tl)[0][1] == ("UDP", "192.0.2.9", 5060)


def test_2xx_retransmitted_t1_to_t2_until_ack_and_invite_retransmission_absorbed() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), UDP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 200, to_tag="tt"), 0.0)
    assert sent(tl)[0][0] == "SIP/2.0 200 OK"
    assert run_until(tl, 12.0) == [0.5, 1.5, 3.5, 7.5, 11.5]
    tl.receive(wire(request()), UDP, 12.0)  # late INVITE retransmission after the 2xx
    assert drain(tl) == []
    ack = request("ACK", branch="z9hG4bKnewbranch")
    tl.receive(wire(ack), UDP, 12.1)
    (ack_ev,) = drain(tl)
    assert isinstance(ack_ev, RequestReceived) and ack_ev.request.method == "ACK"
    assert run_until(tl, 100) == [] and drain(tl) == []
    assert tl.transaction_count == 0  # Timer L cleaned the Accepted transaction


def test_2xx_never_acked_gives_ack_timeout_after_64_t1() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), UDP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 200, to_tag="tt"), 0.0)
    sent(tl)
    times = run_until(tl, 100)
    assert times[-1] < 32.0 and len(times) == 10
    assert drain(tl) == [AckTimeout("c1", 1)]


def test_2xx_over_tcp_not_retransmitted_but_ack_awaited() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), TCP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 200, to_tag="tt"), 0.0)
    assert sent(tl)[0][1] == TCP
    assert run_until(tl, 100) == []
    assert drain(tl) == [AckTimeout("c1", 1)]


def test_non_2xx_final_timer_g_then_ack_confirms_and_timer_i() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), UDP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 486, to_tag="tt"), 0.0)
    sent(tl)
    assert run_until(tl, 12.0) == [0.5, 1.5, 3.5, 7.5, 11.5]  # G: T1 doubling capped at T2
    tl.receive(wire(request()), UDP, 12.0)
    assert sent(tl)[0][0] == "SIP/2.0 486 Busy Here"  # retransmitted INVITE -> final again
    tl.receive(wire(request("ACK")), UDP, 12.5)  # same branch: absorbed, Confirmed
    assert drain(tl) == []
    assert run_until(tl, 12.5 + T.t4 - 0.01) == []
    assert tl.transaction_count == 1
    tl.handle_timer(12.5 + T.t4)  # Timer I
    assert tl.transaction_count == 0


def test_timer_h_without_ack() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), UDP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 603, to_tag="tt"), 0.0)
    sent(tl)
    run_until(tl, 64 * T.t1)
    (to,) = drain(tl)
    assert isinstance(to, TransactionTimeout) and not to.client
    assert tl.transaction_count == 0


# ---------------------------------------------------------------- server non-INVITE


def test_non_invite_server_timer_j_and_retransmissions() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request("OPTIONS")), UDP, 0.0)
    (ev,) = drain(tl)
    tl.receive(wire(request("OPTIONS")), UDP, 0.1)  # Trying: absorbed silently
    assert drain(tl) == [] and sent(tl) == []
    tl.send_response(make_response(ev.request, 200, to_tag="x"), 0.2)
    sent(tl)
    tl.receive(wire(request("OPTIONS")), UDP, 1.0)  # Completed: final resent
    assert sent(tl)[0][0] == "SIP/2.0 200 OK" and drain(tl) == []
    tl.handle_timer(0.2 + 64 * T.t1 - 0.01)
    assert tl.transaction_count == 1
    tl.handle_timer(0.2 + 64 * T.t1)  # Timer J
    assert tl.transaction_count == 0
    tl.receive(wire(request("OPTIONS")), UDP, 40)  # after J: a new request again
    assert len(drain(tl)) == 1


def test_timer_j_is_zero_over_tcp() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request("OPTIONS")), TCP, 0.0)
    (ev,) = drain(tl)
    tl.send_response(make_response(ev.request, 200, to_tag="x"), 0.0)
    tl.handle_timer(0.0)
    assert tl.transaction_count == 0


def test_cancel_is_its_own_transaction() -> None:
    tl = TransactionLayer()
    tl.receive(wire(request()), UDP, 0.0)
    tl.receive(wire(request("CANCEL")), UDP, 0.1)
    assert [e.request.method for e in drain(tl)] == ["INVITE", "CANCEL"]


# ---------------------------------------------------------------- property: no crash, no leak

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["recv_req", "recv_ack", "recv_cancel", "tu_1xx", "tu_2xx", "tu_4xx",
                         "send_req", "recv_1xx", "recv_2xx", "recv_4xx", "tick"]),
        st.sampled_from(["INVITE", "OPTIONS", "BYE"]),
        st.sampled_from(["z9hG4bK1", "z9hG4bK2"]),
        st.sampled_from([UDP, TCP]),
        st.floats(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_ACTIONS)
def test_random_interleavings_never_raise_and_every_transaction_ends(actions: list) -> None:
    tl = TransactionLayer()
    now = 0.0
    received: dict[str, Request] = {}
    sent_reqs: dict[str, Request] = {}
    for action, method, branch, peer, dt in actions:
        now += dt
        if action == "recv_req":
            tl.receive(wire(request(method, branch)), peer, now)
        elif action == "recv_ack":
            tl.receive(wire(request("ACK", branch)), peer, now)
        elif action == "recv_cancel":
            tl.receive(wire(request("CANCEL", branch)), peer, now)
        elif action.startswith("tu_"):
            for ev in drain(tl):
                if isinstance(ev, RequestReceived) and ev.request.method != "ACK":
                    received[ev.request.method + (ev.request.top_via.branch or "")] = ev.request
            req = received.get(method + branch)
            if req is not None:
                code = {"tu_1xx": 180, "tu_2xx": 200, "tu_4xx": 486}[action]
                tl.send_response(make_response(req, code, to_tag="t"), now)
        elif action == "send_req":
            r = request(method, branch + "c")
            sent_reqs[method + branch] = r
            tl.send_request(r, peer, now)
        elif action.startswith("recv_") and (r := sent_reqs.get(method + branch)) is not None:
            code = {"recv_1xx": 180, "recv_2xx": 200, "recv_4xx": 486}[action]
            tl.receive(wire(make_response(r, code, to_tag="t")), peer, now)
        tl.handle_timer(now)
        tl.datagrams_to_send()
    # every server transaction still waiting for the TU is finished by it...
    for ev in drain(tl):
        if isinstance(ev, RequestReceived) and ev.request.method != "ACK":
            received[ev.request.method + (ev.request.top_via.branch or "")] = ev.request
    for req in received.values():
        tl.send_response(make_response(req, 500, to_tag="t"), now)
    # ...then, with time running out, nothing is left behind
    for _ in range(200):
        t = tl.get_timer()
        if t is None:
            break
        now = max(now, t)
        tl.handle_timer(now)
    assert tl.transaction_count == 0


def test_timer_c_ends_an_invite_that_rings_forever() -> None:
    tl = TransactionLayer(Timers(timer_c=180))
    req = request()
    key = tl.send_request(req, UDP, 0.0)
    tl.receive(wire(make_response(req, 180, to_tag="t")), UDP, 1.0)
    tl.receive(wire(make_response(req, 180, to_tag="t")), UDP, 100.0)  # refreshes C
    drain(tl)
    tl.handle_timer(250.0)
    assert drain(tl) == []
    tl.handle_timer(280.0)
    assert drain(tl) == [TransactionTimeout(key, "INVITE", True)] and tl.transaction_count == 0


def test_transport_error_fails_client_transactions_to_that_peer_only() -> None:
    tl = TransactionLayer()
    k1 = tl.send_request(request(branch="z9hG4bKa"), TCP, 0.0)
    tl.send_request(request(branch="z9hG4bKb"), UDP, 0.0)
    tl.transport_error(TCP, 0.1)
    assert drain(tl) == [TransactionTimeout(k1, "INVITE", True, transport_error=True)]
    assert tl.transaction_count == 1
