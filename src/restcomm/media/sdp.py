"""SDP (RFC 4566) parse/serialize and the offer/answer rules (RFC 3264) for G.711 audio calls.

We speak PCMU and PCMA at 8 kHz with RFC 4733 telephone-events, 20 ms packets. The answer picks
the first codec in the *offer's* order that we support (the offerer's preference, RFC 3264 §6.1),
echoes the peer's telephone-event payload type, mirrors the direction, and answers every other
m-line with port 0 so the m-line count matches. Hold is recognised both ways peers signal it: the
old c=0.0.0.0 (RFC 2543) and a=sendonly/inactive.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 3: ("GSM", 8000), 9: ("G722", 8000), 18: ("G729", 8000)}


class SdpError(ValueError):
    """Malformed SDP, or an offer/answer we cannot accept (SIP answers 488 Not Acceptable Here)."""


@dataclass(frozen=True, slots=True)
class Codec:
    name: str
    payload_type: int
    clock_rate: int = 8000


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
SUPPORTED: tuple[Codec, ...] = (PCMU, PCMA)
DEFAULT_DTMF_PT = 101


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None  # the c= value, e.g. "IN IP4 192.0.2.1"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i=, b=, k= lines kept verbatim

    def attr(self, name: str) -> str | None:
        for k, v in self.attributes:
            if k == name:
                return v if v is not None else ""
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name, clock rate), static types filled in from RFC 3551."""
        out: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in _STATIC:
                out[int(fmt)] = _STATIC[int(fmt)]
        for k, v in self.attributes:
            if k == "rtpmap" and v:
                try:
                    pt_text, enc = v.split(None, 1)
                    name, _, rest = enc.partition("/")
                    rate = int(rest.split("/")[0]) if rest else 8000
                    out[int(pt_text)] = (name.strip(), rate)
                except ValueError:
                    continue  # a malformed rtpmap only loses that format
        return out

    @property
    def direction(self) -> str | None:
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return None

    @property
    def ptime(self) -> int | None:
        v = self.attr("ptime")
        try:
            return int(float(v)) if v else None
        except ValueError:
            return None


@dataclass
class SessionDescription:
    origin: str = "- 0 0 IN IP4 0.0.0.0"
    session_name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        sd = cls()
        seen_version = False
        current: MediaDescription | None = None
        for raw in text.replace("\r\n", "\n").split("\n"):
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"not an SDP line: {line[:40]!r}")
            kind, value = line[0], line[2:]
            if kind == "v":
                if value.strip() != "0":
                    raise SdpError(f"SDP version {value!r}")
                seen_version = True
            elif kind == "m":
                parts = value.split()
                if len(parts) < 3:
                    raise SdpError(f"bad m= line: {value!r}")
                try:
                    port = int(parts[1].split("/")[0])
                except ValueError as exc:
                    raise SdpError(f"bad m= port: {parts[1]!r}") from exc
                if not 0 <= port <= 65535:
                    raise SdpError(f"bad m= port: {port}")
                current = MediaDescription(parts[0], port, parts[2], parts[3:])
                sd.media.append(current)
            elif kind == "c":
                if current is None:
                    sd.connection = value.strip()
                else:
                    current.connection = value.strip()
            elif kind == "a":
                name, sep, val = value.partition(":")
                target = current.attributes if current is not None else sd.attributes
                target.append((name.strip(), val.strip() if sep else None))
            elif current is not None:
                current.other.append((kind, value))
            elif kind == "o":
                sd.origin = value
            elif kind == "s":
                sd.session_name = value
            elif kind == "t":
                sd.timing = value
            else:
                sd.other.append((kind, value))
        if not seen_version:
            raise SdpError("missing v=0")
        return sd

    def serialize(self) -> str:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name or '-'}"]
        lines += [f"{k}={v}" for k, v in self.other]
        if self.connection:
            lines.append(f"c={self.connection}")
        lines.append(f"t={self.timing}")
        lines += [_attr_line(k, v) for k, v in self.attributes]
        for m in self.media:
            lines.append(f"m={m.media} {m.port} {m.proto} {' '.join(m.formats)}".rstrip())
            lines += [f"{k}={v}" for k, v in m.other]
            if m.connection:
                lines.append(f"c={m.connection}")
            lines += [_attr_line(k, v) for k, v in m.attributes]
        return "\r\n".join(lines) + "\r\n"

    def connection_address(self, m: MediaDescription) -> str | None:
        value = m.connection or self.connection
        if not value:
            return None
        parts = value.split()
        if len(parts) < 3:
            raise SdpError(f"bad c= line: {value!r}")
        return parts[2].split("/")[0]

    def direction(self, m: MediaDescription) -> str:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1)."""
        if m.direction:
            return m.direction
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return "sendrecv"


def _attr_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one offer/answer exchange, from our side."""

    sdp: str  # the answer we produced (negotiate) or received (parse_answer)
    codec: Codec
    remote_addr: tuple[str, int]
    dtmf_pt: int | None
    direction: str = "sendrecv"  # the remote side's direction attribute
    on_hold: bool = False  # the remote put us on hold (c=0.0.0.0, sendonly or inactive)
    ptime: int = 20  # the remote's a=ptime (we always send 20 ms)

    @property
    def remote_sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def remote_receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly") and not self.on_hold


def _addr_type(ip: str) -> str:
    return "IP6" if ":" in ip else "IP4"


def _origin(local_ip: str, session_id: int | None, version: int) -> str:
    sid = session_id if session_id is not None else secrets.randbelow(2**62)
    return f"- {sid} {version} IN {_addr_type(local_ip)} {local_ip}"


def _audio_lines(codecs: list[Codec], dtmf_pt: int | None, direction: str) -> list[tuple[str, str | None]]:
    attrs: list[tuple[str, str | None]] = [("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}") for c in codecs]
    if dtmf_pt is not None:
        attrs += [("rtpmap", f"{dtmf_pt} telephone-event/8000"), ("fmtp", f"{dtmf_pt} 0-16")]
    attrs += [("ptime", "20"), (direction, None)]
    return attrs


def make_offer(local_ip: str, local_port: int, *, codecs: tuple[Codec, ...] = SUPPORTED,
               dtmf_pt: int | None = DEFAULT_DTMF_PT, direction: str = "sendrecv",
               session_id: int | None = None, session_version: int = 0) -> str:
    """An audio offer listing `codecs` in preference order plus telephone-event."""
    if direction not in DIRECTIONS:
        raise SdpError(f"bad direction {direction!r}")
    formats = [str(c.payload_type) for c in codecs] + ([str(dtmf_pt)] if dtmf_pt is not None else [])
    sd = SessionDescription(
        origin=_origin(local_ip, session_id, session_version),
        connection=f"IN {_addr_type(local_ip)} {local_ip}",
        media=[MediaDescription("audio", local_port, "RTP/AVP", formats,
                                attributes=_audio_lines(list(codecs), dtmf_pt, direction))],
    )
    return sd.serialize()


def _audio_media(sd: SessionDescription) -> tuple[int, MediaDescription]:
    for i, m in enumerate(sd.media):
        if m.media == "audio" and m.port != 0 and m.proto.upper() in ("RTP/AVP", "RTP/AVPF"):
            return i, m
    raise SdpError("no usable audio stream (RTP/AVP) in the SDP")


def _pick(m: MediaDescription, supported: tuple[Codec, ...]) -> tuple[Codec | None, int | None]:
    """First supported codec in the order the SDP lists its formats; the telephone-event type."""
    rtpmap = m.rtpmap()
    by_name = {c.name.upper(): c for c in supported}
    codec: Codec | None = None
    dtmf: int | None = None
    for fmt in m.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        name, rate = rtpmap.get(pt, ("", 0))
        if name.lower() == "telephone-event" and rate == 8000 and dtmf is None:
            dtmf = pt
        elif codec is None and name.upper() in by_name and rate == 8000:
            codec = Codec(by_name[name.upper()].name, pt, rate)  # the peer's payload type wins
    return codec, dtmf


def _remote(sd: SessionDescription, m: MediaDescription) -> tuple[tuple[str, int], str, bool]:
    address = sd.connection_address(m)
    if address is None:
        raise SdpError("no c= line at session or media level")
    direction = sd.direction(m)
    on_hold = address in ("0.0.0.0", "::") or direction in ("sendonly", "inactive")
    return (address, m.port), direction, on_hold


def _read(text: str, supported: tuple[Codec, ...], no_codec: str) -> tuple[SessionDescription, int, Answer]:
    """The audio stream of an offer or answer as an Answer (its `sdp` is the text read)."""
    sd = SessionDescription.parse(text)
    index, m = _audio_media(sd)
    codec, dtmf_pt = _pick(m, supported)
    if codec is None:
        raise SdpError(no_codec)
    remote_addr, direction, on_hold = _remote(sd, m)
    return sd, index, Answer(text, codec, remote_addr, dtmf_pt, direction, on_hold, m.ptime or 20)


def negotiate(offer: str, local_ip: str, local_port: int, *, supported: tuple[Codec, ...] = SUPPORTED,
              session_id: int | None = None, session_version: int = 0,
              local_direction: str = "sendrecv") -> Answer:
    """Answer an offer (RFC 3264 §6). Raises SdpError when nothing is acceptable (SIP 488)."""
    sd, index, offered = _read(offer, supported, "no common audio codec (we accept PCMU and PCMA)")
    m = sd.media[index]
    codec, dtmf_pt, direction = offered.codec, offered.dtmf_pt, offered.direction
    ours = _MIRROR[direction]
    if local_direction != "sendrecv":  # we hold the peer: intersect both wishes
        allowed = {"sendrecv": {"sendrecv", "sendonly", "recvonly", "inactive"},
                   "sendonly": {"sendonly", "inactive"}, "recvonly": {"recvonly", "inactive"},
                   "inactive": {"inactive"}}[local_direction]
        if ours not in allowed:
            ours = "inactive" if ours in ("sendonly", "recvonly") else local_direction
    media: list[MediaDescription] = []
    for i, other in enumerate(sd.media):
        if i == index:
            formats = [str(codec.payload_type)] + ([str(dtmf_pt)] if dtmf_pt is not None else [])
            media.append(MediaDescription("audio", local_port, m.proto, formats,
                                          attributes=_audio_lines([codec], dtmf_pt, ours)))
        else:  # rejected stream: same type, port 0 (RFC 3264 §6)
            media.append(MediaDescription(other.media, 0, other.proto, other.formats[:1] or ["0"]))
    answer = SessionDescription(
        origin=_origin(local_ip, session_id, session_version),
        connection=f"IN {_addr_type(local_ip)} {local_ip}",
        media=media,
    )
    return dataclasses.replace(offered, sdp=answer.serialize())


def parse_answer(answer: str, *, supported: tuple[Codec, ...] = SUPPORTED) -> Answer:
    """Read the peer's answer to our offer: its codec, address, telephone-event type and direction."""
    return _read(answer, supported, "the answer selected no codec we offered")[2]
