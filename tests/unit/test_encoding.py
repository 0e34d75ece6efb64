"""GSM-7 / UCS-2 encoding, segmentation and UDH: table-driven cases, then properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcomm.encoding import (
    GSM7,
    UCS2,
    Concat,
    EncodingError,
    Reassembler,
    UdhError,
    alphabet_of,
    build_udh,
    build_udh16,
    choose_encoding,
    decode_data_coding,
    decode_gsm7,
    decode_ucs2,
    encode_gsm7,
    encode_ucs2,
    gsm7_length,
    parse_udh,
    segment,
    ucs2_length,
)

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = "\f^{}\\[~]|€"
gsm_text = st.text(alphabet=GSM_BASIC + GSM_EXT, max_size=700)
any_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # no lone surrogates: not encodable text
    max_size=500,
)


# --- table-driven ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "septets"),
    [
        ("@", b"\x00"),
        ("£", b"\x01"),
        ("$", b"\x02"),
        ("\n", b"\x0a"),
        ("Δ", b"\x10"),
        ("_", b"\x11"),
        (" ", b"\x20"),
        ("¤", b"\x24"),
        ("A", b"\x41"),
        ("¡", b"\x40"),
        ("§", b"\x5f"),
        ("¿", b"\x60"),
        ("à", b"\x7f"),
        ("€", b"\x1b\x65"),
        ("[", b"\x1b\x3c"),
        ("]", b"\x1b\x3e"),
        ("{", b"\x1b\x28"),
        ("}", b"\x1b\x29"),
        ("\\", b"\x1b\x2f"),
        ("~", b"\x1b\x3d"),
        ("|", b"\x1b\x40"),
        ("^", b"\x1b\x14"),
        ("\f", b"\x1b\x0a"),
    ],
)
def test_gsm7_table(char: str, septets: bytes) -> None:
    assert encode_gsm7(char) == septets
    assert decode_gsm7(septets) == char


def test_gsm7_whole_word() -> None:
    assert encode_gsm7("Hi €5 [ok]") == bytes.fromhex("4869201b6535201b3c6f6b1b3e")


@pytest.mark.parametrize("char", ["`", "\x1b", "á", "ç", "😀", "\u00a0", "\t"])
def test_not_gsm7(char: str) -> None:
    assert choose_encoding("abc" + char) == UCS2
    with pytest.raises(EncodingError):
        encode_gsm7(char)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", GSM7), ("hello", GSM7), ("€[]", GSM7), ("Ça va", GSM7), ("ça va", UCS2), ("😀", UCS2)],
)
def test_choose_encoding(text: str, expected: str) -> None:
    assert choose_encoding(text) == expected


def test_decode_gsm7_escape_edge_cases() -> None:
    # Unknown extension code shows the basic-table character; trailing escape shows a space.
    assert decode_gsm7(b"\x1b\x41") == "A"
    assert decode_gsm7(b"a\x1b") == "a "
    with pytest.raises(EncodingError):
        decode_gsm7(b"\x80")
    assert decode_gsm7(b"a\x80b", errors="replace") == "a\ufffdb"


def test_ucs2_is_utf16_be_with_surrogates() -> None:
    assert encode_ucs2("é") == b"\x00\xe9"
    assert encode_ucs2("😀") == b"\xd8\x3d\xde\x00"
    assert decode_ucs2(b"\xd8\x3d\xde\x00") == "😀"
    assert ucs2_length("a😀") == 3
    with pytest.raises(EncodingError):
        decode_ucs2(b"\x00")


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        ("", GSM7, 1, 0),
        ("a" * 160, GSM7, 1, 160),
        ("a" * 161, GSM7, 2, 161),
        ("a" * 306, GSM7, 2, 306),
        ("a" * 307, GSM7, 3, 307),
        ("€" * 80, GSM7, 1, 160),
        ("€" * 81, GSM7, 2, 162),
        ("a" * 159 + "€", GSM7, 2, 161),
        ("é" * 160, GSM7, 1, 160),  # é (0x05) is in the default alphabet
        ("ç" * 70, UCS2, 1, 70),
        ("ç" * 71, UCS2, 2, 71),
        ("ç" * 134, UCS2, 2, 134),
        ("ç" * 135, UCS2, 3, 135),
        ("😀" * 35, UCS2, 1, 70),
        ("😀" * 36, UCS2, 2, 72),
        ("a" * 1600, GSM7, 11, 1600),
    ],
)
def test_segment_counts(text: str, encoding: str, segments: int, units: int) -> None:
    seg = segment(text)
    assert (seg.encoding, seg.num_segments, seg.units) == (encoding, segments, units)
    assert "".join(seg.parts) == text


def test_escape_pair_is_never_split() -> None:
    # 152 plain septets then '€' (2 septets) would straddle the 153 boundary: it moves whole.
    text = "a" * 152 + "€" + "b" * 10
    seg = segment(text)
    assert seg.parts[0] == "a" * 152
    assert seg.parts[1].startswith("€")
    assert len(encode_gsm7(seg.parts[0])) == 152


def test_surrogate_pair_is_never_split() -> None:
    text = "ç" * 66 + "😀" + "ç" * 10
    seg = segment(text)
    assert seg.parts[0] == "ç" * 66
    assert seg.parts[1].startswith("😀")


def test_forced_encoding() -> None:
    assert segment("hello", UCS2).encoding == UCS2
    assert segment("hello", UCS2).data_coding == 8
    assert segment("hello").data_coding == 0
    with pytest.raises(EncodingError):
        segment("ça", GSM7)


def test_payloads() -> None:
    assert segment("€").payloads() == [b"\x1b\x65"]
    assert segment("ç").payloads() == [b"\x00\xe7"]


def test_build_udh_bytes() -> None:
    assert build_udh(0xAB, 3, 1) == bytes.fromhex("050003ab0301")
    assert build_udh16(0x1234, 2, 2) == bytes.fromhex("0608041234" "0202")
    for bad in [(256, 2, 1), (-1, 2, 1), (1, 2, 0), (1, 2, 3), (1, 256, 1)]:
        with pytest.raises(ValueError):
            build_udh(*bad)


@pytest.mark.parametrize(
    ("data", "concat", "rest"),
    [
        (bytes.fromhex("050003ab0301") + b"hi", Concat(0xAB, 3, 1, 8), b"hi"),
        (bytes.fromhex("0608041234020268"), Concat(0x1234, 2, 2, 16), b"h"),
        # port addressing IE (0x05) before the concatenation IE
        (bytes.fromhex("0b" "050400000000" "0003010201") + b"x", Concat(1, 2, 1, 8), b"x"),
        # seq 0 and seq > total: ignored as 23.040 says, the header still parses
        (bytes.fromhex("050003010200"), None, b""),
        (bytes.fromhex("050003010203"), None, b""),
    ],
)
def test_parse_udh(data: bytes, concat: Concat | None, rest: bytes) -> None:
    udh, tail = parse_udh(data)
    assert udh.concat == concat
    assert tail == rest


@pytest.mark.parametrize("data", [b"", b"\x05\x00\x03", bytes.fromhex("0300050102"), bytes.fromhex("0100")])
def test_parse_udh_rejects_overruns(data: bytes) -> None:
    with pytest.raises(UdhError):
        parse_udh(data)


@pytest.mark.parametrize(
    ("dc", "alphabet"),
    [(0, GSM7), (1, "ASCII"), (3, "Latin-1"), (8, UCS2), (4, "binary"), (0xF0, GSM7), (0xF4, "binary"),
     (0x08 | 0x10, UCS2), (0x18, UCS2), (0xE0, UCS2)],
)
def test_alphabet_of(dc: int, alphabet: str) -> None:
    assert alphabet_of(dc) == alphabet


def test_decode_data_coding_never_raises() -> None:
    assert decode_data_coding(b"\x00\xe7", 8) == ("ç", UCS2)
    assert decode_data_coding(b"\xe7", 3) == ("ç", "Latin-1")
    assert decode_data_coding(b"\xff", 0)[0] == "\ufffd"


def test_reassembler_in_any_order_and_timeout() -> None:
    r = Reassembler(timeout=10)
    assert r.add(("a", "b", 1, 3), 3, 2, "B", now=0) is None
    assert r.add(("a", "b", 1, 3), 3, 3, "C", now=1) is None
    assert r.add(("a", "b", 9, 2), 2, 1, "x", now=2) is None
    done = r.add(("a", "b", 1, 3), 3, 1, "A", now=3)
    assert done is not None and done.text == "ABC" and done.missing == ()
    assert r.next_deadline() == 12
    assert r.expire(11.9) == []
    (partial,) = r.expire(12)
    assert partial.missing == (2,) and partial.text == "x"
    assert len(r) == 0


def test_reassembler_duplicate_part_does_not_duplicate_text() -> None:
    r = Reassembler()
    r.add("k", 2, 1, "A", 0)  # type: ignore[arg-type]
    assert r.add("k", 2, 1, "A", 0) is None  # type: ignore[arg-type]
    done = r.add("k", 2, 2, "B", 0)  # type: ignore[arg-type]
    assert done is not None and done.text == "AB"


# --- properties -------------------------------------------------------------------------------


@given(gsm_text)
def test_gsm7_round_trip(text: str) -> None:
    data = encode_gsm7(text)
    assert len(data) == gsm7_length(text)
    assert all(b < 0x80 for b in data)
    assert decode_gsm7(data) == text


@given(st.binary(max_size=300))
def test_decode_gsm7_replace_never_raises(data: bytes) -> None:
    decode_gsm7(data, errors="replace")


@given(any_text)
def test_ucs2_round_trip(text: str) -> None:
    assert decode_ucs2(encode_ucs2(text)) == text
    assert len(encode_ucs2(text)) == 2 * ucs2_length(text)


@settings(max_examples=300)
@given(st.one_of(gsm_text, any_text))
def test_segments_rejoin_and_respect_limits(text: str) -> None:
    seg = segment(text)
    assert "".join(seg.parts) == text
    if seg.encoding == GSM7:
        sizes = [len(p) for p in seg.payloads()]
        single, multi = 160, 153
        # no part ends with a dangling escape
        assert all(not p or p[-1] != 0x1B or (len(p) >= 2 and p[-2] == 0x1B) for p in seg.payloads())
        for p in seg.payloads():
            assert decode_gsm7(p) is not None
    else:
        sizes = [len(p) // 2 for p in seg.payloads()]
        single, multi = 70, 67
        for p in seg.payloads():
            decode_ucs2(p)  # strict: raises if a surrogate pair was cut
    assert sum(sizes) == seg.units
    if seg.num_segments == 1:
        assert sizes[0] <= single
    else:
        assert seg.units > single
        assert all(0 < s <= multi for s in sizes)
        # greedy packing: each part but the last is full up to one character
        assert all(s >= multi - 1 for s in sizes[:-1])


@given(st.integers(0, 255), st.integers(1, 255).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, t))),
       st.binary(max_size=20))
def test_udh_round_trip(ref: int, total_seq: tuple[int, int], body: bytes) -> None:
    total, seq = total_seq
    udh, rest = parse_udh(build_udh(ref, total, seq) + body)
    assert udh.concat == Concat(ref, total, seq, 8)
    assert rest == body


@given(st.binary(max_size=64))
def test_parse_udh_only_raises_udh_error(data: bytes) -> None:
    try:
        parse_udh(data)
    except UdhError:
        pass
