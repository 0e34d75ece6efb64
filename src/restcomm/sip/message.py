"""SIP message codec (RFC 3261 §7, §19, §20, §25): parse and serialize, no I/O.

Like :mod:`restcomm.smpp.pdu`, this module only turns bytes into values and back. It is strict
where a wrong guess would be dangerous (framing, the start line, CSeq, Content-Length, Via) and
lenient where RFC 4475 says a robust element should be (line folding, LWS around separators,
unknown headers, header-name case, compact forms). Every failure is a :class:`SipError`, so
the transport can answer 400 or drop the datagram and never dies on garbage.

Headers keep their wire order and their original values; structured views (:class:`URI`,
:class:`Address`, :class:`Via`, :class:`CSeq`) are parsed on demand, because most headers of
most messages are never looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

__all__ = [
    "Address",
    "CSeq",
    "Headers",
    "Message",
    "Request",
    "Response",
    "SipError",
    "StreamDecoder",
    "URI",
    "Via",
    "parse_address",
    "parse_message",
    "parse_uri",
    "parse_via",
    "split_commas",
    "REASONS",
]

MAX_MESSAGE = 65535
MAX_HEADERS = 200


class SipError(ValueError):
    """A message (or part of one) that cannot be understood; the only error the codec raises."""


# Compact forms (RFC 3261 §7.3.3 and extensions) mapped to canonical names.
COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
}
_CANONICAL = {
    n.lower(): n
    for n in (
        "Call-ID", "Contact", "From", "To", "Via", "Content-Length", "Content-Type", "Supported",
        "Subject", "Content-Encoding", "CSeq", "Max-Forwards", "Route", "Record-Route", "Expires",
        "Min-Expires", "Allow", "User-Agent", "Server", "WWW-Authenticate", "Authorization",
        "Proxy-Authenticate", "Proxy-Authorization", "Require", "Proxy-Require", "Unsupported",
        "Accept", "Date", "Timestamp", "Event", "Refer-To", "Allow-Events", "Reason",
        "Authentication-Info", "Retry-After", "Warning", "Path",
    )
}
# Headers whose values may never be split on commas (RFC 3261 §7.3.1: auth headers and the
# single-valued ones that may contain commas in their grammar).
_NO_SPLIT = {
    "www-authenticate", "authorization", "proxy-authenticate", "proxy-authorization",
    "date", "call-id", "cseq", "content-length", "max-forwards", "subject", "user-agent",
    "server", "timestamp", "retry-after", "content-type", "from", "to",
    "authentication-info", "content-disposition", "organization",
}

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_TOKEN_RE = re.compile(_TOKEN + r"\Z")
_REQUEST_LINE = re.compile(r"(" + _TOKEN + r") (\S+) SIP/(\d+\.\d+)\Z")
_STATUS_LINE = re.compile(r"SIP/(\d+\.\d+) (\d{3})(?: (.*))?\Z")

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 301: "Moved Permanently",
    302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 407: "Proxy Authentication Required",
    408: "Request Timeout", 415: "Unsupported Media Type", 420: "Bad Extension",
    423: "Interval Too Brief", 429: "Too Many Requests", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
}


def canonical(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded)."""
    low = name.lower()
    if low in COMPACT:
        return COMPACT[low]
    return _CANONICAL.get(low, name)


# --------------------------------------------------------------------------- splitting helpers


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and ``<...>`` (RFC 3261 §7.3.1)."""
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
        i += 1
    if quoted:
        raise SipError("unbalanced quotes in header value")
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


def _split_semis(value: str) -> list[str]:
    """Split on ``;`` outside quotes (parameter lists)."""
    out: list[str] = []
    quoted = False
    start = 0
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == ";":
            out.append(value[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise SipError("unbalanced quotes in parameters")
    out.append(value[start:])
    return out


Params = tuple[tuple[str, str | None], ...]


def _parse_params(parts: list[str]) -> Params:
    params: list[tuple[str, str | None]] = []
    for raw in parts:
        p = raw.strip()
        if not p:
            raise SipError("empty parameter")
        if "=" in p:
            k, v = p.split("=", 1)
            k, v = k.strip(), v.strip()
            if not k or not _TOKEN_RE.match(k):
                raise SipError(f"bad parameter name {k!r}")
            params.append((k, v))
        else:
            if not _TOKEN_RE.match(p):
                raise SipError(f"bad parameter {p!r}")
            params.append((p, None))
    return tuple(params)


def _render_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _get_param(params: Params, name: str) -> str | None:
    low = name.lower()
    for k, v in params:
        if k.lower() == low:
            return v if v is not None else ""
    return None


def _set_param(params: Params, name: str, value: str | None) -> Params:
    low = name.lower()
    kept = tuple(p for p in params if p[0].lower() != low)
    return kept + ((name, value),)


# --------------------------------------------------------------------------- URI

_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::(\d{1,5}))?\Z")
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+\Z")


@dataclass(frozen=True, slots=True)
class URI:
    """A SIP/SIPS/tel URI (RFC 3261 §19.1, RFC 3966 loosely). ``host`` keeps IPv6 brackets."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: str | None = None

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> URI:
        return replace(self, params=_set_param(self.params, name, value))

    @property
    def host_port(self) -> tuple[str, int | None]:
        return self.host.strip("[]"), self.port

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{_render_params(self.params)}"
        s = f"{self.scheme}:"
        if self.user is not None:
            s += self.user
            if self.password is not None:
                s += ":" + self.password
            s += "@"
        s += self.host
        if self.port is not None:
            s += f":{self.port}"
        s += _render_params(self.params)
        if self.headers:
            s += "?" + self.headers
        return s


def parse_uri(text: str) -> URI:
    """Parse a sip:, sips: or tel: URI; anything else raises :class:`SipError`."""
    text = text.strip()
    if ":" not in text:
        raise SipError(f"not a URI: {text!r}")
    scheme, rest = text.split(":", 1)
    scheme = scheme.lower()
    if scheme == "tel":
        parts = rest.split(";")
        if not parts[0]:
            raise SipError("empty tel URI")
        return URI("tel", user=parts[0], params=_parse_params(parts[1:]))
    if scheme not in ("sip", "sips"):
        raise SipError(f"unsupported URI scheme {scheme!r}")
    if any(c in rest for c in " \t\r\n<>\""):
        raise SipError(f"illegal character in URI {text!r}")
    headers = None
    user = password = None
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        if ":" in userinfo:
            user, password = userinfo.split(":", 1)
        else:
            user = userinfo
        if not user or not _USER_RE.match(user):
            raise SipError(f"bad user part in {text!r}")
    if "?" in rest:
        rest, headers = rest.split("?", 1)
    hostport, *params = rest.split(";")
    m = _HOST_RE.match(hostport)
    if not m:
        raise SipError(f"bad host in URI {text!r}")
    port = int(m.group(2)) if m.group(2) else None
    if port is not None and port > 65535:
        raise SipError(f"bad port in URI {text!r}")
    return URI(scheme, user, password, m.group(1).lower(), port, _parse_params(params), headers)


# --------------------------------------------------------------------------- name-addr

_DISPLAY_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~ \t]*\Z")


@dataclass(frozen=True, slots=True)
class Address:
    """name-addr or addr-spec with header parameters (From, To, Contact, Route...)."""

    uri: URI
    display: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return _get_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Address:
        return replace(self, params=_set_param(self.params, name, value))

    def __str__(self) -> str:
        disp = f'"{self.display}" ' if self.display else ""
        return f"{disp}<{self.uri}>{_render_params(self.params)}"


def parse_address(text: str) -> Address:
    """Parse ``"Name" <uri>;p=v``, ``Name <uri>`` or a bare addr-spec ``uri;p=v``."""
    s = text.strip()
    display: str | None = None
    if s.startswith('"'):
        i = 1
        buf = []
        while i < len(s):
            ch = s[i]
            if ch == "\\" and i + 1 < len(s):
                buf.append(s[i + 1])
                i += 2
                continue
            if ch == '"':
                break
            buf.append(ch)
            i += 1
        else:
            raise SipError("unterminated display name")
        display = "".join(buf)
        s = s[i + 1 :].lstrip()
        if not s.startswith("<"):
            raise SipError("display name not followed by <uri>")
    if "<" in s:
        lt = s.index("<")
        if display is None:
            token = s[:lt]
            if not _DISPLAY_TOKEN_RE.match(token):
                raise SipError(f"bad display name {token!r}")
            display = token.strip() or None
        gt = s.find(">", lt)
        if gt < 0:
            raise SipError("unterminated <uri>")
        inner = s[lt + 1 : gt]
        if inner != inner.strip():
            raise SipError("whitespace inside <uri>")
        uri = parse_uri(inner)
        tail = s[gt + 1 :].strip()
        if tail and not tail.startswith(";"):
            raise SipError(f"garbage after address: {tail!r}")
        params = _parse_params(_split_semis(tail)[1:] if tail else [])
        return Address(uri, display, params)
    # addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10)
    parts = _split_semis(s)
    if s.startswith("*"):
        raise SipError("'*' is not an address")
    return Address(parse_uri(parts[0]), None, _parse_params(parts[1:]))


# --------------------------------------------------------------------------- Via


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return _get_param(self.params, "branch")

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=_set_param(self.params, name, value))

    def __str__(self) -> str:
        hp = self.host + (f":{self.port}" if self.port is not None else "")
        return f"SIP/2.0/{self.transport} {hp}{_render_params(self.params)}"


_VIA_RE = re.compile(
    r"SIP\s*/\s*2\.0\s*/\s*(" + _TOKEN + r")\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:\s*:\s*(\d{1,5}))?\s*(;.*)?\Z",
    re.S,
)


def parse_via(text: str) -> Via:
    m = _VIA_RE.match(text.strip())
    if not m:
        raise SipError(f"bad Via {text!r}")
    port = int(m.group(3)) if m.group(3) else None
    if port is not None and port > 65535:
        raise SipError("bad Via port")
    params = _parse_params(_split_semis(m.group(4))[1:]) if m.group(4) else ()
    return Via(m.group(1).upper(), m.group(2).lower(), port, params)


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or not _TOKEN_RE.match(parts[1]):
        raise SipError(f"bad CSeq {text!r}")
    seq = int(parts[0])
    if seq >= 2**31:
        raise SipError("CSeq out of range")
    return CSeq(seq, parts[1])


# --------------------------------------------------------------------------- headers


class Headers:
    """Ordered, case-insensitive multi-map of header fields, compact names canonicalised."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = [(canonical(k), v) for k, v in items or []]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h

    def get(self, name: str, default: str | None = None) -> str | None:
        low = canonical(name).lower()
        for k, v in self._items:
            if k.lower() == low:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value, comma-separated lists split (unless the header may contain commas)."""
        low = canonical(name).lower()
        out: list[str] = []
        for k, v in self._items:
            if k.lower() == low:
                if low in _NO_SPLIT:
                    out.append(v)
                else:
                    out.extend(split_commas(v))
        return out

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one (kept at the first one's position)."""
        cname = canonical(name)
        low = cname.lower()
        out: list[tuple[str, str]] = []
        done = False
        for k, v in self._items:
            if k.lower() == low:
                if not done:
                    out.append((cname, value))
                    done = True
            else:
                out.append((k, v))
        if not done:
            out.append((cname, value))
        self._items = out

    def remove(self, name: str) -> None:
        low = canonical(name).lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != low]

    def replace_first_value(self, name: str, value: str) -> None:
        """Replace the first comma-separated value of ``name`` (the top Via)."""
        low = canonical(name).lower()
        for i, (k, v) in enumerate(self._items):
            if k.lower() == low:
                rest = split_commas(v)[1:]
                self._items[i] = (k, ", ".join([value, *rest]))
                return
        raise KeyError(name)


# --------------------------------------------------------------------------- messages


@dataclass(eq=False)
class Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # -- convenient structured views -------------------------------------------------------
    @property
    def call_id(self) -> str:
        v = self.headers.get("Call-ID")
        if not v:
            raise SipError("missing Call-ID")
        return v.strip()

    @property
    def cseq(self) -> CSeq:
        v = self.headers.get("CSeq")
        if v is None:
            raise SipError("missing CSeq")
        return parse_cseq(v)

    @property
    def from_(self) -> Address:
        v = self.headers.get("From")
        if v is None:
            raise SipError("missing From")
        return parse_address(v)

    @property
    def to(self) -> Address:
        v = self.headers.get("To")
        if v is None:
            raise SipError("missing To")
        return parse_address(v)

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        vals = self.headers.get_all("Via")
        if not vals:
            raise SipError("missing Via")
        return parse_via(vals[0])

    @property
    def contacts(self) -> list[Address]:
        return [parse_address(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    @property
    def content_type(self) -> str | None:
        v = self.headers.get("Content-Type")
        return v.split(";")[0].strip().lower() if v else None

    def _render(self, first: str) -> bytes:
        lines = [first]
        for k, v in self.headers:
            if k == "Content-Length":
                continue
            lines.append(f"{k}: {v}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(eq=False)
class Request(Message):
    method: str = "OPTIONS"
    uri: URI = field(default_factory=lambda: URI("sip", host="invalid"))

    def encode(self) -> bytes:
        return self._render(f"{self.method} {self.uri} SIP/2.0")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


@dataclass(eq=False)
class Response(Message):
    status: int = 200
    reason: str = "OK"

    def encode(self) -> bytes:
        return self._render(f"SIP/2.0 {self.status} {self.reason}")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def make_response(request: Request, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, body: bytes = b"",
                  extra: list[tuple[str, str]] | None = None) -> Response:
    """Build a response copying Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2)."""
    h = Headers()
    for k, v in request.headers:
        if k in ("Via", "From", "Call-ID", "CSeq", "Record-Route") or k == "To":
            if k == "Record-Route" and not (200 <= status < 300 or 100 < status < 200):
                continue
            h.add(k, v)
    if to_tag is not None:
        to = request.to
        if to.tag is None:
            h.set("To", str(to.with_param("tag", to_tag)))
    for k, v in extra or []:
        h.add(k, v)
    return Response(headers=h, body=body, status=status, reason=reason or REASONS.get(status, "Unknown"))


# --------------------------------------------------------------------------- parsing


def _unfold(head: str) -> list[str]:
    """Header lines with continuation lines (leading SP/HT) joined (RFC 3261 §7.3.1)."""
    lines: list[str] = []
    for line in head.split("\r\n") if "\r\n" in head else head.split("\n"):
        if line[:1] in (" ", "\t"):
            if not lines:
                raise SipError("continuation line before any header")
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


_HNAME_RE = re.compile(r"(" + _TOKEN + r")[ \t]*:(.*)\Z", re.S)


def _parse_head(head: bytes) -> tuple[str, Headers]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = _unfold(text)
    if not lines or not lines[0]:
        raise SipError("empty start line")
    start = lines[0]
    if len(lines) - 1 > MAX_HEADERS:
        raise SipError("too many header fields")
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        m = _HNAME_RE.match(line)
        if not m:
            raise SipError(f"malformed header line {line[:40]!r}")
        items.append((m.group(1), m.group(2).strip()))
    return start, Headers(items)


def _build(start: str, headers: Headers, body: bytes) -> Message:
    msg: Message
    if start.startswith("SIP/"):
        m = _STATUS_LINE.match(start)
        if not m:
            raise SipError(f"bad status line {start[:60]!r}")
        if m.group(1) != "2.0":
            raise SipError(f"unsupported SIP version {m.group(1)}")
        status = int(m.group(2))
        if not 100 <= status <= 699:
            raise SipError(f"status code out of range: {status}")
        msg = Response(headers=headers, body=body, status=status, reason=m.group(3) or "")
    else:
        m = _REQUEST_LINE.match(start)
        if not m:
            raise SipError(f"bad request line {start[:60]!r}")
        if m.group(3) != "2.0":
            raise SipError(f"unsupported SIP version {m.group(3)}")
        uri_text = m.group(2)
        try:
            uri = parse_uri(uri_text)
        except SipError:
            # Any absoluteURI is legal on the request line (RFC 4475 §3.1.1.9); keep it opaque.
            if not re.match(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>]+\Z", uri_text):
                raise
            scheme, rest = uri_text.split(":", 1)
            uri = URI(scheme.lower(), user=rest, host="")
        if uri.headers is not None:
            raise SipError("a Request-URI must not carry headers (RFC 3261 §19.1.5)")
        msg = Request(headers=headers, body=body, method=m.group(1), uri=uri)
    _validate(msg)
    return msg


def _validate(msg: Message) -> None:
    """The mandatory headers every transaction needs (RFC 3261 §8.1.1), checked once here."""
    cs = msg.cseq
    msg.call_id  # noqa: B018 - raises if missing
    msg.from_  # noqa: B018
    msg.to  # noqa: B018
    if not msg.vias:
        raise SipError("missing Via")
    if isinstance(msg, Request) and cs.method != msg.method:
        raise SipError(f"CSeq method {cs.method} does not match {msg.method}")
    mf = msg.headers.get("Max-Forwards")
    if mf is not None and (not mf.isdigit() or int(mf) > 255):
        raise SipError(f"bad Max-Forwards {mf!r}")


def _content_length(headers: Headers) -> int | None:
    values = [v for k, v in headers if k == "Content-Length"]
    if not values:
        return None
    if len(set(v.strip() for v in values)) > 1:
        raise SipError("conflicting Content-Length headers")
    v = values[0].strip()
    if not v.isdigit() or len(v) > 9:
        raise SipError(f"bad Content-Length {v!r}")
    return int(v)


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    i = data.find(b"\r\n\r\n")
    j = data.find(b"\n\n")
    if i < 0 and j < 0:
        return None
    if i >= 0 and (j < 0 or i <= j):
        return data[:i], data[i + 4 :]
    return data[:j], data[j + 2 :]


def parse_message(data: bytes) -> Request | Response:
    """Parse one datagram. Body framed by Content-Length when present (RFC 3261 §18.3)."""
    if len(data) > MAX_MESSAGE:
        raise SipError("message too large")
    data = data.lstrip(b"\r\n")
    parts = _split_head(data)
    if parts is None:
        raise SipError("no end of headers")
    head, body = parts
    start, headers = _parse_head(head)
    length = _content_length(headers)
    if length is not None:
        if length > len(body):
            raise SipError(f"Content-Length {length} larger than the body ({len(body)})")
        body = body[:length]
    msg = _build(start, headers, body)
    return msg  # type: ignore[return-value]


class StreamDecoder:
    """Incremental decoder for stream transports (TCP), fed like h11; Content-Length is mandatory.

    Keep-alive CRLFs between messages (RFC 5626 §3.5.1) are skipped. After a :class:`SipError`
    the stream has lost framing: the decoder is poisoned and the connection should be closed.
    """

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buf = bytearray()
        self._error: SipError | None = None

    def feed(self, data: bytes) -> list[Request | Response]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Request | Response] = []
        try:
            while True:
                while self._buf[:2] == b"\r\n":
                    del self._buf[:2]
                parts = _split_head(bytes(self._buf))
                if parts is None:
                    if len(self._buf) > self.max_message:
                        raise SipError("header section too large")
                    break
                head, rest = parts
                start, headers = _parse_head(head)
                length = _content_length(headers)
                if length is None:
                    raise SipError("Content-Length is mandatory on stream transports")
                if len(head) + length > self.max_message:
                    raise SipError("message too large")
                if len(rest) < length:
                    break
                consumed = len(self._buf) - len(rest) + length
                del self._buf[:consumed]
                out.append(_build(start, headers, rest[:length]))  # type: ignore[arg-type]
        except SipError as exc:
            self._error = exc
            raise
        return out
