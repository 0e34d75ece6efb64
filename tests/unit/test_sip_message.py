"""SIP codec: RFC 4475 torture messages (valid ones parse, invalid ones raise SipError), the
stream decoder's framing, structured header views, and a fuzz test that only SipError escapes."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcomm.sip.message import (
    Request,
    Response,
    SipError,
    StreamDecoder,
    make_response,
    parse_address,
    parse_message,
    parse_uri,
    parse_via,
    split_commas,
)


def crlf(text: str) -> bytes:
    """RFC text uses bare newlines; the wire uses CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


# RFC 4475 §3.1.1.1 (wsinv): line folding, escaped quotes, empty subject, LWS everywhere.
WSINV = crlf(
    'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n'
    'TO :\n'
    ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n'
    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n'
    '  ;\n'
    '  tag = 98asjd8\n'
    'MaX-fOrWaRdS: 0068\n'
    'Call-ID: wsinv.ndaksdj@192.0.2.1\n'
    'Content-Length   : 150\n'
    'cseq: 0009\n'
    '  INVITE\n'
    'Via  : SIP  /   2.0\n'
    ' /UDP\n'
    '    192.0.2.2;rport;branch=390skdjuw\n'
    's :\n'
    'NewFangledHeader:   newfangled value\n'
    ' continued newfangled value\n'
    'UnknownHeaderWithUnusualValue: ;;,,;;,;\n'
    'Content-Type: application/sdp\n'
    'Route:\n'
    ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n'
    'v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n'
    '  branch  =   z9hG4bK9ikj8  ,\n'
    ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n'
    ' z9hG4bK30239\n'
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\n'
    '      newvalue ;\n'
    '  secondparam ; q = 0.33\n'
    '\n'
    'v=0\n'
    'o=mhandley 29739 7272939 IN IP4 192.0.2.3\n'
    's=-\n'
    'c=IN IP4 192.0.2.4\n'
    't=0 0\n'
    'm=audio 49217 RTP/AVP 0 12\n'
    'm=video 3227 RTP/AVP 31\n'
    'a=rtpmap:31 LPC\n'
)

# §3.1.1.2 (intmeth): a wide range of valid characters.
INTMETH = crlf(
    "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\n"
    "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
    'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>\n'
    "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    '"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9";tag=_token~1\'+`*%!-.\n'.encode("latin-1").decode("utf-8")
    + "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
    "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n"
    "Max-Forwards: 255\n"
    "extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\n".encode("latin-1").decode("utf-8")
    + "Content-Length: 0\n\n"
)

# §3.1.1.3 (esc01): escapes in URIs.
ESC01 = crlf(
    "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n"
    "To: sip:%75se%72@example.com\n"
    "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
    "Max-Forwards: 87\n"
    "i: esc01.239409asdfakjkn23onasd0-3234\n"
    "CSeq: 234234 INVITE\n"
    "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n"
    "C: application/sdp\n"
    "Contact:\n"
    "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
    "Content-Length: 150\n"
    "\n"
    "v=0\n"
    "o=mhandley 29739 7272939 IN IP4 192.0.2.1\n"
    "s=-\n"
    "c=IN IP4 192.0.2.1\n"
    "t=0 0\n"
    "m=audio 49217 RTP/AVP 0 12\n"
    "m=video 3227 RTP/AVP 31\n"
    "a=rtpmap:31 LPC\n"
)

# §3.1.1.5 (esc02): escapes in the method (an unknown method, legal).
ESC02 = crlf(
    "RE%47IST%45R sip:registrar.example.com SIP/2.0\n"
    "To: \"%Z%45\" <sip:resource@example.com>\n"
    "From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23\n"
    "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\n"
    "Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209823\n"
    "CSeq: 29344 RE%47IST%45R\n"
    "Max-Forwards: 70\n"
    "Contact: <sip:alias1@host1.example.com>\n"
    "C%6Fntact: <sip:alias2@host2.example.com>\n"
    "Contact: <sip:alias3@host3.example.com>\n"
    "l: 0\n\n"
)

# §3.1.1.6 (lwsdisp): no LWS between display name and <.
LWSDISP = crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: caller<sip:caller@example.com>;tag=323\n"
    "Max-Forwards: 70\n"
    "Call-ID: lwsdisp.1234abcd@funky.example.com\n"
    "CSeq: 60 OPTIONS\n"
    "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\n"
    "l: 0\n\n"
)

# §3.1.1.8 (dblreq): two messages in one datagram; only the first, framed by Content-Length.
DBLREQ = crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: sip:j.user@example.com\n"
    "From: sip:j.user@example.com;tag=43251j3j324\n"
    "Max-Forwards: 8\n"
    "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n"
    "Contact: sip:j.user@host.example.com\n"
    "CSeq: 8 REGISTER\n"
    "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\n"
    "Content-Length: 0\n"
    "\n\n"
    "INVITE sip:joe@example.com SIP/2.0\n"
    "t: sip:joe@example.com\n"
    "From: sip:caller@example.net;tag=141334\n"
    "Max-Forwards: 8\n"
    "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\n"
    "Content-Length: 0\n\n"
)

# §3.1.1.9 (semiuri): semicolon-separated parameters in the user part.
SEMIURI = crlf(
    "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\n"
    "To: sip:j_user@example.com\n"
    "From: sip:caller@example.org;tag=33242\n"
    "Max-Forwards: 3\n"
    "Call-ID: semiuri.0ha0isndaksdj\n"
    "CSeq: 8 OPTIONS\n"
    "Accept: application/sdp, application/pkcs7-mime,\n"
    "        multipart/mixed, multipart/signed,\n"
    "        message/sip, message/sipfrag\n"
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\n"
    "l: 0\n\n"
)

# §3.1.1.10 (transports): Via with several transports, spread over header lines.
TRANSPORTS = crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: <sip:caller@example.com>;tag=323\n"
    "Max-Forwards: 70\n"
    "Call-ID:  transports.kijh4akdnaqjkwendsasfdj\n"
    "Accept: application/sdp\n"
    "CSeq: 60 OPTIONS\n"
    "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\n"
    "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n"
    "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n"
    "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n"
    "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\n"
    "l: 0\n\n"
)

# §3.1.1.12 (unreason): a reason phrase in UTF-8; §3.1.1.13 (noreason): an empty one.
UNREASON = crlf(
    "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e"
    " \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435\n"
    "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
    "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\n"
    "CSeq: 35 INVITE\n"
    "From: sip:user@example.com;tag=11141343\n"
    "To: sip:user@example.edu;tag=2229\n"
    "Content-Length: 0\n\n"
)
NOREASON = crlf(
    "SIP/2.0 100 \n"
    "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
    "Call-ID: noreason.asndj203insdf99223ndf\n"
    "CSeq: 35 INVITE\n"
    "From: <sip:user@example.com>;tag=39ansfi3\n"
    "To: <sip:user@example.edu>;tag=902jndnke3\n"
    "Content-Length: 0\n\n"
)

# §3.1.1.14 (ipv6 request URI and Via, RFC 5118-style), §3.1.1.11 (unknown-scheme Request-URI).
IPV6 = crlf(
    "REGISTER sip:[2001:db8::10]:5070 SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: sip:user@example.com;tag=81x2\n"
    "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111\n"
    "Call-ID: SSG9559905523997077@hlau_4100\n"
    "Max-Forwards: 70\n"
    "Contact: \"Caller\" <sip:caller@[2001:db8::1]>\n"
    "CSeq: 98176 REGISTER\n"
    "Content-Length: 0\n\n"
)
UNKSCHEME = crlf(
    "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\n"
    "To: sip:user@example.com\n"
    "From: sip:caller@example.com;tag=384\n"
    "Max-Forwards: 3\n"
    "Call-ID: novelsc.asdfasser0q239nwsdfasdkl34\n"
    "CSeq: 3923423 OPTIONS\n"
    "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\n"
    "Content-Length: 0\n\n"
)

VALID = {
    "wsinv": WSINV, "intmeth": INTMETH, "esc01": ESC01, "esc02": ESC02, "lwsdisp": LWSDISP,
    "dblreq": DBLREQ, "semiuri": SEMIURI, "transports": TRANSPORTS, "unreason": UNREASON,
    "noreason": NOREASON, "ipv6": IPV6, "novelsc": UNKSCHEME,
}

_BASE = (
    "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=134161461246\n"
    "Max-Forwards: 7\n"
    "Call-ID: bad.09afd8uasdf\n"
)

INVALID = {
    # §3.1.2.1 badinv01: extraneous header field separators.
    "badinv01": crlf(
        "INVITE sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n"
        "From: sip:caller@example.net;tag=134161461246\nMax-Forwards: 7\nCall-ID: badinv01.0ha0isndaksdjasdf3234nas\n"
        "CSeq: 8 INVITE\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\nContact: \"Joe\" <sip:joe@example.org>;;;;\n"
        "Content-Length: 0\n\n"),
    # §3.1.2.2 clerr: Content-Length larger than the message.
    "clerr": crlf("INVITE sip:user@example.com SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: 9999\n\nv=0\n"),
    # §3.1.2.3 ncl: negative Content-Length.
    "ncl": crlf("INVITE sip:user@example.com SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: -999\n\n"),
    # §3.1.2.4 scalar02: overlarge scalar values.
    "scalar02": crlf("REGISTER sip:example.com SIP/2.0\n" + _BASE.replace("Max-Forwards: 7", "Max-Forwards: 300")
                     + "CSeq: 36893488147419103232 REGISTER\nContent-Length: 0\n\n"),
    # §3.1.2.5 bigcode / scalarlg: a status code that is not three digits.
    "bigcode": crlf("SIP/2.0 4294967301 better not break the receiver\n" + _BASE + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n"),
    # §3.1.2.6 quotbal: unterminated quoted display name.
    "quotbal": crlf("INVITE sip:user@example.com SIP/2.0\n"
                    + _BASE.replace("From: sip:caller@example.net;tag=134161461246",
                                    'From: "Bell, Alexander <sip:a.g.bell@example.com>;tag=43')
                    + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.7 ltgtruri: <> around the Request-URI.
    "ltgtruri": crlf("INVITE <sip:user@example.com> SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.8 lwsruri: LWS inside the Request-URI.
    "lwsruri": crlf("INVITE sip:user@example.com; lr SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.9 lwsstart: several SP in the start line.
    "lwsstart": crlf("INVITE  sip:user@example.com  SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.10 trws: trailing whitespace on the request line.
    "trws": crlf("OPTIONS sip:remote-target@example.com SIP/2.0  \n" + _BASE + "CSeq: 8 OPTIONS\nContent-Length: 0\n\n"),
    # §3.1.2.11 escruri: escaped headers in the Request-URI.
    "escruri": crlf("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n" + _BASE
                    + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.14 badaspec: whitespace inside <>.
    "badaspec": crlf("OPTIONS sip:user@example.org SIP/2.0\n"
                     + _BASE.replace("To: sip:j.user@example.com", 'To: "Watson, Thomas" < sip:t.watson@example.org >')
                     + "CSeq: 8 OPTIONS\nContent-Length: 0\n\n"),
    # §3.1.2.15 baddn: unquoted display name with a comma.
    "baddn": crlf("OPTIONS sip:t.watson@example.org SIP/2.0\n"
                  + _BASE.replace("From: sip:caller@example.net;tag=134161461246",
                                  "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43")
                  + "CSeq: 8 OPTIONS\nContent-Length: 0\n\n"),
    # §3.1.2.16 badvers: SIP/7.0.
    "badvers": crlf("OPTIONS sip:t.watson@example.org SIP/7.0\n" + _BASE + "CSeq: 8 OPTIONS\nContent-Length: 0\n\n"),
    # §3.1.2.17 mismatch01: CSeq method differs from the request method.
    "mismatch01": crlf("OPTIONS sip:user@example.com SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.18 mismatch02: unknown method, CSeq mismatch.
    "mismatch02": crlf("NEWMETHOD sip:user@example.com SIP/2.0\n" + _BASE + "CSeq: 8 INVITE\nContent-Length: 0\n\n"),
    # §3.1.2.19 insuf: missing mandatory headers.
    "insuf": crlf("INVITE sip:user@example.com SIP/2.0\nCSeq: 193942 INVITE\n"
                  "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\nContent-Length: 0\n\n"),
    "garbage": b"\x00\xff\xfe not sip at all\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_rfc4475_valid_messages_parse(name: str) -> None:
    msg = parse_message(VALID[name])
    # every valid message round-trips through the serializer
    again = parse_message(msg.encode())
    assert again.call_id == msg.call_id
    assert again.cseq == msg.cseq
    assert again.body == msg.body


@pytest.mark.parametrize("name", sorted(INVALID))
def test_rfc4475_invalid_messages_are_rejected(name: str) -> None:
    with pytest.raises(SipError):
        parse_message(INVALID[name])


def test_wsinv_structure() -> None:
    msg = parse_message(WSINV)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri.user == "vivekg" and msg.uri.param("unknownparam") == ""
    assert msg.to.tag == "1918181833n"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    assert msg.headers.get("Max-Forwards") == "0068"
    assert msg.headers.get("Subject") == ""
    vias = msg.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert vias[0].param("rport") == "" and vias[0].branch == "390skdjuw"
    assert vias[1].host == "spindle.example.com" and vias[1].branch == "z9hG4bK9ikj8"
    assert vias[2].branch == "z9hG4bK30239"
    contact = msg.contacts[0]
    assert contact.param("newparam") == "newvalue" and contact.param("q") == "0.33"
    assert len(msg.body) == 150
    assert msg.content_type == "application/sdp"


def test_esc02_contact_compact_and_escaped_names() -> None:
    msg = parse_message(ESC02)
    assert msg.method == "RE%47IST%45R"  # type: ignore[union-attr]
    # C%6Fntact is a different (unknown) header: only two real Contacts
    assert [c.uri.user for c in msg.contacts] == ["alias1", "alias3"]


def test_dblreq_only_first() -> None:
    msg = parse_message(DBLREQ)
    assert isinstance(msg, Request) and msg.method == "REGISTER" and msg.body == b""


def test_responses() -> None:
    r = parse_message(UNREASON)
    assert isinstance(r, Response) and r.status == 200 and "\u043f\u0440\u043e\u0441\u0442\u043e\u0435" in r.reason
    n = parse_message(NOREASON)
    assert isinstance(n, Response) and n.status == 100 and n.reason == ""


def test_ipv6() -> None:
    msg = parse_message(IPV6)
    assert isinstance(msg, Request)
    assert msg.uri.host == "[2001:db8::10]" and msg.uri.port == 5070
    assert msg.uri.host_port == ("2001:db8::10", 5070)
    assert msg.top_via.host == "[2001:db8::9:1]"
    assert msg.contacts[0].uri.host == "[2001:db8::1]"


def test_uri_parsing() -> None:
    u = parse_uri("sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=x")
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sips", "alice", "secret", "example.com", 5061)
    assert u.param("transport") == "tcp" and u.param("lr") == "" and u.headers == "subject=x"
    assert str(u) == "sips:alice:secret@example.com:5061;transport=tcp;lr?subject=x"
    t = parse_uri("tel:+15551234567;phone-context=example.com")
    assert t.scheme == "tel" and t.user == "+15551234567"
    for bad in ("http://x", "sip:", "sip:a b@c", "sip:u@h:99999", "nocolon"):
        with pytest.raises(SipError):
            parse_uri(bad)


def test_address_and_via_and_split() -> None:
    a = parse_address('"A, B" <sip:a@b.c>;tag=x;expires=60')
    assert a.display == "A, B" and a.tag == "x" and a.param("expires") == "60"
    b = parse_address("sip:a@b.c;tag=y")
    assert b.uri.params == () and b.tag == "y"
    assert split_commas('"x, y" <sip:a@b>, <sip:c@d;p=1,2>') == ['"x, y" <sip:a@b>', "<sip:c@d;p=1,2>"]
    v = parse_via("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport")
    assert v.port == 5060 and v.param("rport") == ""
    v2 = v.with_param("received", "1.2.3.4").with_param("rport", "7777")
    assert str(v2) == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;received=1.2.3.4;rport=7777"


def test_make_response_copies_headers_and_adds_tag() -> None:
    req = parse_message(LWSDISP)
    assert isinstance(req, Request)
    resp = make_response(req, 200, to_tag="abc")
    again = parse_message(resp.encode())
    assert isinstance(again, Response)
    assert again.to.tag == "abc" and again.call_id == req.call_id and again.cseq == req.cseq
    assert again.top_via.branch == "z9hG4bKkdjuw"


def test_stream_decoder_framing() -> None:
    dec = StreamDecoder()
    data = b"\r\n\r\n" + ESC01 + LWSDISP
    out = []
    for i in range(0, len(data), 7):  # dribble
        out += dec.feed(data[i : i + 7])
    assert [m.call_id for m in out] == [parse_message(ESC01).call_id, parse_message(LWSDISP).call_id]
    assert len(out[0].body) == 150


def test_stream_decoder_requires_content_length_and_poisons() -> None:
    dec = StreamDecoder()
    with pytest.raises(SipError):
        dec.feed(LWSDISP.replace(b"l: 0\r\n", b""))
    with pytest.raises(SipError):
        dec.feed(LWSDISP)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_decoder_raises_only_sip_error(data: bytes) -> None:
    try:
        parse_message(data)
    except SipError:
        pass
    dec = StreamDecoder()
    try:
        dec.feed(data)
    except SipError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(WSINV) - 1), st.binary(min_size=1, max_size=8))
def test_fuzz_mutated_torture_message(pos: int, junk: bytes) -> None:
    data = WSINV[:pos] + junk + WSINV[pos + len(junk):]
    try:
        msg = parse_message(data)
        msg.encode()
        for v in msg.headers.get_all("Route"):
            parse_address(v)
    except SipError:
        pass


TYPICAL_INVITE = crlf(
    "INVITE sip:+15551234567@10.0.0.2:5080 SIP/2.0\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-524287-1---a4f5;rport\n"
    "Max-Forwards: 70\n"
    'From: "Alice" <sip:alice@10.0.0.1>;tag=1928301774\n'
    "To: <sip:+15551234567@10.0.0.2>\n"
    "Call-ID: a84b4c76e66710@10.0.0.1\n"
    "CSeq: 314159 INVITE\n"
    "Contact: <sip:alice@10.0.0.1:5060>\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 127\n\n"
    "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 20000 RTP/AVP 0 8 101\n"
    "a=rtpmap:101 telephone-event/8000\n"
)


def test_parse_serialize_rate_is_printed() -> None:
    """Not a timed assertion: prints a rough rate for the report (parse + views + encode)."""
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        m = parse_message(TYPICAL_INVITE)
        m.top_via, m.from_, m.to, m.cseq  # noqa: B018
        m.encode()
    rate = n / (time.perf_counter() - t0)
    print(f"\nparse+views+serialize of a typical INVITE: {rate:,.0f}/s")
    assert rate > 0
