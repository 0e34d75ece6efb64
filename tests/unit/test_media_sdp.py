"""SDP parse/serialize and offer/answer (RFC 3264) choices, table-driven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restcomm.media import sdp


def offer(m_line: str = "m=audio 49170 RTP/AVP 0 8 101", *, session_c: str | None = "c=IN IP4 192.0.2.10",
          extra: str = "", media_c: str | None = None) -> str:
    lines = ["v=0", "o=alice 2890844526 2890844526 IN IP4 192.0.2.10", "s=-"]
    if session_c:
        lines.append(session_c)
    lines += ["t=0 0", m_line]
    if media_c:
        lines.append(media_c)
    lines += ["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
              "a=fmtp:101 0-15"]
    lines += [x for x in extra.split("|") if x]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("m_line", "extra", "codec", "dtmf_pt"),
    [
        ("m=audio 49170 RTP/AVP 0 8 101", "", sdp.PCMU, 101),
        ("m=audio 49170 RTP/AVP 8 0 101", "", sdp.PCMA, 101),  # the offer's order wins
        ("m=audio 49170 RTP/AVP 18 8 0", "a=rtpmap:18 G729/8000", sdp.PCMA, None),  # skips unsupported
        ("m=audio 49170 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000", sdp.PCMU, 96),  # peer's type
        ("m=audio 49170 RTP/AVP 97 0", "a=rtpmap:97 pcma/8000", sdp.Codec("PCMA", 97), None),  # dynamic PCMA
        ("m=audio 49170 RTP/AVP 0 100", "a=rtpmap:100 telephone-event/16000", sdp.PCMU, None),  # wrong rate
    ],
)
def test_codec_and_dtmf_choice(m_line: str, extra: str, codec: sdp.Codec, dtmf_pt: int | None) -> None:
    ans = sdp.negotiate(offer(m_line, extra=extra), "203.0.113.5", 20000, session_id=1)
    assert ans.codec == codec
    assert ans.dtmf_pt == dtmf_pt
    assert ans.remote_addr == ("192.0.2.10", 49170)


def test_answer_bytes() -> None:
    ans = sdp.negotiate(offer(), "203.0.113.5", 20000, session_id=42, session_version=1)
    assert ans.sdp == (
        "v=0\r\no=- 42 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
        "m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )


@pytest.mark.parametrize(
    ("extra", "session_c", "direction", "answer_dir", "on_hold"),
    [
        ("", "c=IN IP4 192.0.2.10", "sendrecv", "sendrecv", False),
        ("a=sendonly", "c=IN IP4 192.0.2.10", "sendonly", "recvonly", True),
        ("a=recvonly", "c=IN IP4 192.0.2.10", "recvonly", "sendonly", False),
        ("a=inactive", "c=IN IP4 192.0.2.10", "inactive", "inactive", True),
        ("", "c=IN IP4 0.0.0.0", "sendrecv", "sendrecv", True),  # RFC 2543 hold
    ],
)
def test_direction_and_hold(extra: str, session_c: str, direction: str, answer_dir: str, on_hold: bool) -> None:
    ans = sdp.negotiate(offer(extra=extra, session_c=session_c), "203.0.113.5", 20000)
    assert (ans.direction, ans.on_hold) == (direction, on_hold)
    assert f"a={answer_dir}\r\n" in ans.sdp


def test_session_level_direction_applies_to_media() -> None:
    text = offer().replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert sdp.negotiate(text, "10.0.0.1", 20000).direction == "sendonly"


def test_media_level_connection_overrides_session() -> None:
    ans = sdp.negotiate(offer(media_c="c=IN IP4 198.51.100.7", session_c="c=IN IP4 192.0.2.10"), "10.0.0.1", 20000)
    assert ans.remote_addr == ("198.51.100.7", 49170)
    ans = sdp.negotiate(offer(media_c="c=IN IP4 198.51.100.7", session_c=None), "10.0.0.1", 20000)
    assert ans.remote_addr == ("198.51.100.7", 49170)


def test_ptime_and_other_streams_rejected_with_port_zero() -> None:
    text = offer(extra="a=ptime:30|m=video 51372 RTP/AVP 31|a=rtpmap:31 H261/90000")
    ans = sdp.negotiate(text, "10.0.0.1", 20000)
    assert ans.ptime == 30
    assert "m=video 0 RTP/AVP 31\r\n" in ans.sdp
    assert sdp.SessionDescription.parse(ans.sdp).media[0].port == 20000


def test_local_hold_answers_sendonly() -> None:
    ans = sdp.negotiate(offer(), "10.0.0.1", 20000, local_direction="sendonly")
    assert "a=sendonly\r\n" in ans.sdp


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (offer("m=audio 49170 RTP/AVP 18", extra="a=rtpmap:18 G729/8000"), "codec"),
        (offer("m=audio 0 RTP/AVP 0"), "audio"),
        (offer("m=audio 49170 RTP/SAVP 0"), "audio"),
        (offer(session_c=None), "c="),
        ("o=x\r\n", "v=0"),
        ("v=0\r\nm=audio x RTP/AVP 0\r\n", "port"),
        ("v=0\r\nbogus\r\n", "SDP line"),
    ],
)
def test_unacceptable_offers(text: str, message: str) -> None:
    with pytest.raises(sdp.SdpError, match=message):
        sdp.negotiate(text, "10.0.0.1", 20000)


def test_offer_and_parse_answer_round_trip() -> None:
    text = sdp.make_offer("10.0.0.1", 20002, session_id=7)
    assert text == (
        "v=0\r\no=- 7 0 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=audio 20002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
    peer = sdp.negotiate(text, "10.0.0.2", 30000)  # the far end answers our offer
    ours = sdp.parse_answer(peer.sdp)
    assert (ours.codec, ours.remote_addr, ours.dtmf_pt) == (sdp.PCMU, ("10.0.0.2", 30000), 101)


def test_ipv6_and_parse_serialize_keep_unknown_lines() -> None:
    text = sdp.make_offer("2001:db8::1", 20000, session_id=1)
    assert "c=IN IP6 2001:db8::1\r\n" in text
    original = offer(extra="a=rtcp:49171|b=AS:64")
    parsed = sdp.SessionDescription.parse(original)
    assert sdp.SessionDescription.parse(parsed.serialize()) == parsed
    assert parsed.media[0].attr("rtcp") == "49171"


@given(st.text(max_size=300))
def test_parser_rejects_cleanly(text: str) -> None:
    try:
        sdp.negotiate(text, "10.0.0.1", 20000)
    except sdp.SdpError:
        pass
