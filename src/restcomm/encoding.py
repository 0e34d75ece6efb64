"""SMS text encodings and segmentation: GSM 03.38 (GSM-7) and UCS-2, plus UDH concatenation.

Why this module exists: the number of segments a message costs, and whether a carrier renders it
correctly, depends on three details that generic codecs get wrong:

* GSM-7 has an *extension table* reached through the escape septet 0x1B. ``€``, ``[``, ``{`` ...
  cost two septets, and a segment boundary must never fall between the escape and its character
  (smpplib's ``make_parts`` can split one; ours cannot, by construction).
* "UCS-2" on the wire is really UTF-16-BE in practice: handsets render surrogate pairs, so a
  character outside the BMP (most emoji) costs two 16-bit units and a boundary must never fall
  inside the pair.
* SMPP with ``data_coding`` 0 carries GSM-7 *unpacked*: one septet per octet. The SMSC packs it
  for the air interface. So ``encode_gsm7`` returns one byte per septet, and the per-segment
  limits (160 single / 153 with a 6-octet concatenation UDH) are counted in septets.

Limits per segment: single part 160 septets or 70 UTF-16 units; multipart 153 septets or 67 units
(the 6-octet UDH takes 7 septets / 3 units). The 1600-character API limit is enforced by the API,
not here.

UDH: :func:`build_udh` writes the 8-bit-reference concatenation IE (0x00); :func:`parse_udh`
reads both the 8-bit (0x00) and 16-bit (0x08) forms, which is what arrives on MO traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7: Encoding = "GSM-7"
UCS2: Encoding = "UCS-2"

#: SMPP ``data_coding`` values for the two encodings we send.
DATA_CODING: dict[str, int] = {GSM7: 0x00, UCS2: 0x08}

ESCAPE = 0x1B

# GSM 03.38 default alphabet, indexed by septet value. 0x1B is the escape to the extension table;
# it is not a character, so it is a placeholder here and excluded from the reverse map.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128

# GSM 03.38 extension table (after 0x1B), default national language.
_EXTENSION: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_CHAR_TO_SEPTET: dict[str, int] = {ch: i for i, ch in enumerate(_BASIC) if i != ESCAPE}
_CHAR_TO_EXT: dict[str, int] = {ch: code for code, ch in _EXTENSION.items()}
_GSM_CHARS = frozenset(_CHAR_TO_SEPTET) | frozenset(_CHAR_TO_EXT)

# Per-character encodings, prebuilt so encoding is one dict lookup per character.
_ENCODE_TABLE: dict[str, bytes] = {ch: bytes([v]) for ch, v in _CHAR_TO_SEPTET.items()}
_ENCODE_TABLE.update({ch: bytes([ESCAPE, v]) for ch, v in _CHAR_TO_EXT.items()})

SINGLE_LIMIT: dict[str, int] = {GSM7: 160, UCS2: 70}
MULTI_LIMIT: dict[str, int] = {GSM7: 153, UCS2: 67}


class EncodingError(ValueError):
    """Text cannot be represented in the requested encoding, or bytes are not valid for it."""


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 default or extension table."""
    return _GSM_CHARS.issuperset(text)


def choose_encoding(text: str) -> Encoding:
    """GSM-7 when the text fits the default alphabet (+ extension), otherwise UCS-2.

    There is no "smart" transliteration (e.g. curly quotes to straight): silently changing what a
    customer wrote is a product decision, not an encoding one.
    """
    return GSM7 if is_gsm7(text) else UCS2


def gsm7_length(text: str) -> int:
    """Septets needed for ``text`` (extension characters count 2). Raises on non-GSM text."""
    n = 0
    for ch in text:
        if ch in _CHAR_TO_SEPTET:
            n += 1
        elif ch in _CHAR_TO_EXT:
            n += 2
        else:
            raise EncodingError(f"character {ch!r} is not in the GSM 03.38 alphabet")
    return n


def ucs2_length(text: str) -> int:
    """UTF-16 code units for ``text``: characters outside the BMP are surrogate pairs (2 units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM-7: one septet per byte, extension characters as ``0x1B xx``."""
    try:
        return b"".join([_ENCODE_TABLE[ch] for ch in text])
    except KeyError as exc:
        raise EncodingError(f"character {exc.args[0]!r} is not in the GSM 03.38 alphabet") from None


def decode_gsm7(data: bytes, errors: Literal["strict", "replace"] = "strict") -> str:
    """Decode unpacked GSM-7 (one septet per byte).

    ``errors="replace"`` is for inbound traffic, where a carrier may put anything in a
    ``data_coding`` 0 message: bytes above 0x7F become U+FFFD instead of failing the MO.
    An escape followed by a code with no extension character decodes as the basic-table character
    (what 03.38 tells handsets to display); a trailing lone escape decodes as a space.
    """
    out: list[str] = []
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b > 0x7F:
            if errors == "strict":
                raise EncodingError(f"byte 0x{b:02x} at offset {i} is not a GSM-7 septet")
            out.append("\ufffd")
        elif b == ESCAPE:
            i += 1
            if i >= n:
                out.append(" ")
                break
            nb = data[i]
            if nb > 0x7F:
                if errors == "strict":
                    raise EncodingError(f"byte 0x{nb:02x} at offset {i} is not a GSM-7 septet")
                out.append("\ufffd")
            else:
                ext = _EXTENSION.get(nb)
                out.append(ext if ext is not None else (_BASIC[nb] if nb != ESCAPE else " "))
        else:
            out.append(_BASIC[b])
        i += 1
    return "".join(out)


def encode_ucs2(text: str) -> bytes:
    """UTF-16-BE, no BOM (what SMPP ``data_coding`` 8 carries in practice)."""
    return text.encode("utf-16-be", errors="surrogatepass")


def decode_ucs2(data: bytes, errors: Literal["strict", "replace"] = "strict") -> str:
    """Decode UTF-16-BE; an odd trailing byte or a lone surrogate raises (or is replaced)."""
    try:
        return data.decode("utf-16-be", errors=errors)
    except UnicodeDecodeError as exc:
        raise EncodingError(str(exc)) from None


def encode_text(text: str, encoding: Encoding) -> bytes:
    return encode_gsm7(text) if encoding == GSM7 else encode_ucs2(text)


def decode_text(data: bytes, encoding: Encoding, errors: Literal["strict", "replace"] = "strict") -> str:
    return decode_gsm7(data, errors) if encoding == GSM7 else decode_ucs2(data, errors)


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text is sent: its encoding and the text of each segment, in order.

    ``units`` counts septets (GSM-7) or UTF-16 code units (UCS-2) over the whole text; that is the
    number pricing and the API's ``num_segments`` are derived from.
    """

    encoding: Encoding
    parts: tuple[str, ...]
    units: int

    @property
    def num_segments(self) -> int:
        return len(self.parts)

    @property
    def data_coding(self) -> int:
        return DATA_CODING[self.encoding]

    def payloads(self) -> list[bytes]:
        """Each part encoded for SMPP ``short_message`` (without UDH)."""
        return [encode_text(p, self.encoding) for p in self.parts]


def segment(text: str, encoding: Encoding | None = None) -> Segmentation:
    """Split ``text`` into SMS segments.

    ``encoding`` forces an encoding (e.g. the API's ``Encoding=UCS-2``); forcing GSM-7 on text
    that does not fit raises :class:`EncodingError`. An empty text is one empty segment: a
    submit_sm with no short_message is legal, and the count must never be 0.
    """
    enc: Encoding = encoding or choose_encoding(text)
    if enc == GSM7:
        costs = [2 if ch in _CHAR_TO_EXT else 1 for ch in text]
        if not is_gsm7(text):
            bad = next(ch for ch in text if ch not in _GSM_CHARS)
            raise EncodingError(f"character {bad!r} is not in the GSM 03.38 alphabet")
    elif enc == UCS2:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    else:  # pragma: no cover - guarded by the Literal type, kept for callers without a checker
        raise EncodingError(f"unknown encoding {enc!r}")
    total = sum(costs)
    if total <= SINGLE_LIMIT[enc]:
        return Segmentation(enc, (text,), total)
    limit = MULTI_LIMIT[enc]
    parts: list[str] = []
    start = 0
    used = 0
    for i, cost in enumerate(costs):
        # A character never straddles two parts: an escape pair or surrogate pair moves whole.
        if used + cost > limit:
            parts.append(text[start:i])
            start = i
            used = 0
        used += cost
    parts.append(text[start:])
    return Segmentation(enc, tuple(parts), total)


# --- User Data Header (concatenation) ------------------------------------------------------------

IE_CONCAT_8 = 0x00
IE_CONCAT_16 = 0x08


class UdhError(ValueError):
    """A UDH whose lengths run past the data it claims to describe."""


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation info: which part (``seq``, 1-based) of ``total`` parts, under reference ``ref``."""

    ref: int
    total: int
    seq: int
    ref_bits: int = 8


@dataclass(frozen=True, slots=True)
class Udh:
    """A parsed User Data Header: every information element, and concatenation if present."""

    elements: tuple[tuple[int, bytes], ...] = field(default_factory=tuple)
    concat: Concat | None = None


def build_udh(ref: int, total: int, seq: int) -> bytes:
    """The 6-octet UDH for part ``seq`` of ``total`` with an 8-bit reference (IE 0x00)."""
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"8-bit concatenation reference out of range: {ref}")
    if not 1 <= seq <= total <= 0xFF:
        raise ValueError(f"invalid concatenation part {seq}/{total}")
    return bytes((0x05, IE_CONCAT_8, 0x03, ref, total, seq))


def build_udh16(ref: int, total: int, seq: int) -> bytes:
    """The 7-octet UDH with a 16-bit reference (IE 0x08); used by the simulator's MO injection."""
    if not 0 <= ref <= 0xFFFF:
        raise ValueError(f"16-bit concatenation reference out of range: {ref}")
    if not 1 <= seq <= total <= 0xFF:
        raise ValueError(f"invalid concatenation part {seq}/{total}")
    return bytes((0x06, IE_CONCAT_16, 0x04, ref >> 8, ref & 0xFF, total, seq))


def parse_udh(data: bytes) -> tuple[Udh, bytes]:
    """Split ``short_message`` (sent with UDHI set) into its UDH and the remaining user data.

    A concatenation IE with ``seq`` 0, ``seq > total`` or ``total`` 0 is ignored, as 23.040 tells
    receivers to do, so such a part is treated as a standalone message. Lengths that run past the
    data raise :class:`UdhError`: that PDU cannot be trusted at all.
    """
    if not data:
        raise UdhError("empty user data with UDHI set")
    udhl = data[0]
    if 1 + udhl > len(data):
        raise UdhError(f"UDH length {udhl} exceeds the {len(data) - 1} octets that follow")
    elements: list[tuple[int, bytes]] = []
    concat: Concat | None = None
    i = 1
    end = 1 + udhl
    while i < end:
        if i + 2 > end:
            raise UdhError("truncated information element header")
        iei, iedl = data[i], data[i + 1]
        if i + 2 + iedl > end:
            raise UdhError(f"information element 0x{iei:02x} runs past the UDH")
        ied = bytes(data[i + 2 : i + 2 + iedl])
        elements.append((iei, ied))
        if iei == IE_CONCAT_8 and iedl == 3:
            c = Concat(ied[0], ied[1], ied[2], 8)
            concat = c if 1 <= c.seq <= c.total else concat
        elif iei == IE_CONCAT_16 and iedl == 4:
            c = Concat((ied[0] << 8) | ied[1], ied[2], ied[3], 16)
            concat = c if 1 <= c.seq <= c.total else concat
        i += 2 + iedl
    return Udh(tuple(elements), concat), bytes(data[end:])


# --- Reassembly of concatenated messages -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A whole message rebuilt from its parts, or what arrived of it before the timeout.

    ``missing`` lists the 1-based sequence numbers that never arrived (Twilio/Restcomm error 30009
    "Missing segment"); ``text`` then joins the parts that did arrive, in order.
    """

    key: tuple[object, ...]
    text: str
    total: int
    missing: tuple[int, ...] = ()


@dataclass
class _Pending:
    total: int
    first_seen: float
    parts: dict[int, str]


class Reassembler:
    """Collects parts of concatenated messages; sans-I/O, time is passed in.

    The key identifies one message: callers use (source, destination, reference, total), which is
    what handsets use too, so the same reference reused by another sender never mixes messages.
    Duplicates of a part (an SMSC re-sending after a lost resp) overwrite, never duplicate text.
    """

    def __init__(self, timeout: float = 60.0, max_pending: int = 10_000) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[tuple[object, ...], _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: tuple[object, ...], total: int, seq: int, text: str, now: float) -> Reassembled | None:
        """Store one part; return the whole message once every part has arrived."""
        if not 1 <= seq <= total:
            raise ValueError(f"invalid part {seq}/{total}")
        if total == 1:
            return Reassembled(key, text, 1)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                # Bound memory under a flood of never-completed parts: drop the oldest.
                oldest = next(iter(self._pending))
                del self._pending[oldest]
            entry = self._pending[key] = _Pending(total, now, {})
        entry.parts[seq] = text
        if len(entry.parts) == total:
            del self._pending[key]
            return Reassembled(key, "".join(entry.parts[i] for i in range(1, total + 1)), total)
        return None

    def next_deadline(self) -> float | None:
        """When the oldest incomplete message times out (insertion order is age order)."""
        for entry in self._pending.values():
            return entry.first_seen + self.timeout
        return None

    def expire(self, now: float) -> list[Reassembled]:
        """Give up on messages older than the timeout and return what arrived of them."""
        out: list[Reassembled] = []
        while self._pending:
            key, entry = next(iter(self._pending.items()))
            if entry.first_seen + self.timeout > now:
                break
            del self._pending[key]
            missing = tuple(i for i in range(1, entry.total + 1) if i not in entry.parts)
            text = "".join(entry.parts[i] for i in sorted(entry.parts))
            out.append(Reassembled(key, text, entry.total, missing))
        return out


# --- inbound data_coding ------------------------------------------------------------------------


def alphabet_of(data_coding: int) -> str:
    """The alphabet an SMPP ``data_coding`` names: ``GSM-7``, ``UCS-2``, ``ASCII``, ``Latin-1`` or ``binary``.

    Values 0x00-0x0F are SMPP's own table (3.4 section 5.2.19); from 0x10 up the octet is a GSM
    03.38 Data Coding Scheme (message class / general coding groups). Unknown values read as
    GSM-7, the SMSC default alphabet, which is what data_coding 0 means anyway.
    """
    if data_coding <= 0x0F:
        return {0x01: "ASCII", 0x03: "Latin-1", 0x08: UCS2, 0x02: "binary", 0x04: "binary"}.get(data_coding, GSM7)
    group = data_coding & 0xF0
    if data_coding & 0xC0 == 0x00:  # general data coding, bits 3-2 give the alphabet
        return (GSM7, "binary", UCS2, GSM7)[(data_coding >> 2) & 0x03]
    if group == 0xF0:
        return "binary" if data_coding & 0x04 else GSM7
    if group == 0xE0:
        return UCS2
    return GSM7


def decode_data_coding(data: bytes, data_coding: int) -> tuple[str, str]:
    """Decode inbound user data leniently: ``(text, alphabet)``; never raises.

    Binary payloads come back as Latin-1 text so nothing is lost; the alphabet tells the caller.
    """
    alphabet = alphabet_of(data_coding)
    if alphabet == GSM7:
        return decode_gsm7(data, errors="replace"), alphabet
    if alphabet == UCS2:
        return data.decode("utf-16-be", errors="replace"), alphabet
    if alphabet == "ASCII":
        return data.decode("ascii", errors="replace"), alphabet
    return data.decode("latin-1"), alphabet
