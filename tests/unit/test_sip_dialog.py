"""Dialog state (RFC 3261 §12): route sets from Record-Route, remote target, CSeq ordering,
loose and strict routing, CANCEL construction."""

from __future__ import annotations

from restcomm.sip.dialog import Dialog, make_cancel
from restcomm.sip.message import Headers, Request, make_response, parse_message, parse_uri


def invite() -> Request:
    h = Headers()
    h.add("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKinv")
    h.add("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    h.add("From", "<sip:alice@a.example>;tag=ftag")
    h.add("To", "<sip:bob@b.example>")
    h.add("Call-ID", "call-1")
    h.add("CSeq", "10 INVITE")
    h.add("Contact", "<sip:alice@10.0.0.1:5060>")
    h.add("Route", "<sip:p1.example.com;lr>")
    return parse_message(Request(headers=h, method="INVITE", uri=parse_uri("sip:bob@b.example")).encode())  # type: ignore[return-value]


def test_uas_dialog_and_in_dialog_request() -> None:
    d = Dialog.as_uas(invite(), "ttag")
    assert d.key == ("call-1", "ttag", "ftag")
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(d.remote_target) == "sip:alice@10.0.0.1:5060"
    assert d.next_hop().host == "p1.example.com"
    bye = parse_message(d.create_request("BYE", "SIP/2.0/UDP me:5080;branch=z9hG4bKb").encode())
    assert isinstance(bye, Request)
    assert str(bye.uri) == "sip:alice@10.0.0.1:5060"  # loose routing: R-URI is the remote target
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.from_.tag == "ttag" and bye.to.tag == "ftag" and bye.cseq.seq == 1


def test_uac_dialog_reverses_route_set_and_uses_contact() -> None:
    inv = invite()
    ok = make_response(inv, 200, to_tag="rtag", extra=[("Contact", "<sip:bob@10.0.0.2:5062>")])
    ok = parse_message(ok.encode())  # type: ignore[assignment]
    d = Dialog.as_uac(inv, ok)  # type: ignore[arg-type]
    assert d.key == ("call-1", "ftag", "rtag")
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert d.remote_target.port == 5062
    ack = d.create_request("ACK", "SIP/2.0/UDP me;branch=z9hG4bKa", cseq=10)
    assert ack.cseq.seq == 10 and d.local_seq == 10
    bye = d.create_request("BYE", "SIP/2.0/UDP me;branch=z9hG4bKb")
    assert bye.cseq.seq == 11


def test_strict_router_becomes_request_uri() -> None:
    d = Dialog.as_uas(invite(), "t")
    d.route_set = ["<sip:strict.example.com>", "<sip:p2.example.com;lr>"]
    req = d.create_request("BYE", "SIP/2.0/UDP me;branch=z9hG4bKb")
    assert str(req.uri) == "sip:strict.example.com"
    assert req.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:alice@10.0.0.1:5060>"]


def test_remote_cseq_ordering_and_target_refresh() -> None:
    d = Dialog.as_uas(invite(), "t")
    older = invite()
    assert not d.accept_remote(older)  # same CSeq 10 again: out of order
    reinv = invite()
    reinv.headers.set("CSeq", "11 INVITE")
    reinv.headers.set("Contact", "<sip:alice@10.0.0.9>")
    assert d.accept_remote(reinv) and d.remote_target.host == "10.0.0.9"
    ack = invite()
    ack.method = "ACK"
    ack.headers.set("CSeq", "11 ACK")
    assert d.accept_remote(ack)


def test_cancel_matches_the_invite() -> None:
    inv = invite()
    c = parse_message(make_cancel(inv).encode())
    assert isinstance(c, Request) and c.method == "CANCEL"
    assert c.top_via.branch == "z9hG4bKinv" and c.cseq.seq == 10 and c.cseq.method == "CANCEL"
    assert str(c.uri) == str(inv.uri) and c.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
