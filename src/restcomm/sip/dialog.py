"""Dialog state (RFC 3261 §12) and in-dialog request construction; pure, no I/O.

A dialog is only what §12 says it is: Call-ID, the two tags, the two CSeq counters, the remote
target (from Contact, refreshed by target-refresh requests) and the route set (from Record-Route,
reversed on the UAC side). Call behaviour (answering, media, hang-up reasons) lives in the UA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .message import URI, Address, CSeq, Headers, Request, Response, SipError, parse_address

__all__ = ["Dialog", "make_cancel"]


@dataclass(eq=False)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_address: str
    """Our From (as UAC) / To (as UAS) header value, with our tag."""
    remote_address: str
    remote_target: URI
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """Dialog created by our 2xx/1xx-with-tag to ``request`` (§12.1.1)."""
        contacts = request.contacts
        if not contacts:
            raise SipError("INVITE without Contact")
        to = request.to.with_param("tag", local_tag)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_address=str(to),
            remote_address=request.headers.get("From") or "",
            remote_target=contacts[0].uri,
            route_set=request.headers.get_all("Record-Route"),
            local_seq=0,
            remote_seq=request.cseq.seq,
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """Dialog created by a 2xx to our INVITE (§12.1.2): route set reversed."""
        contacts = response.contacts
        target = contacts[0].uri if contacts else request.uri
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_address=request.headers.get("From") or "",
            remote_address=response.headers.get("To") or "",
            remote_target=target,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq.seq,
            remote_seq=None,
        )

    def accept_remote(self, request: Request) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (answer 500). ACK and CANCEL
        carry the INVITE's number and are not checked."""
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        if request.method == "INVITE":  # target refresh
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        return True

    def next_hop(self) -> URI:
        """Where the next in-dialog request goes: the first route, else the remote target."""
        if self.route_set:
            return parse_address(self.route_set[0]).uri
        return self.remote_target

    def create_request(self, method: str, via: str, *, contact: str | None = None, body: bytes = b"",
                       content_type: str | None = None, cseq: int | None = None,
                       extra: list[tuple[str, str]] | None = None) -> Request:
        """A request within the dialog (§12.2.1.1). ACK passes the INVITE's ``cseq``."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        h = Headers()
        h.add("Via", via)
        h.add("Max-Forwards", "70")
        h.add("From", self.local_address)
        h.add("To", self.remote_address)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", str(CSeq(cseq, method)))
        uri = self.remote_target
        routes = list(self.route_set)
        if routes and parse_address(routes[0]).uri.param("lr") is None:
            # strict router (§12.2.1.1): its URI becomes the Request-URI, the target the last route
            uri = parse_address(routes[0]).uri
            routes = routes[1:] + [f"<{self.remote_target}>"]
        for r in routes:
            h.add("Route", r)
        if contact:
            h.add("Contact", contact)
        for k, v in extra or []:
            h.add(k, v)
        if body and content_type:
            h.add("Content-Type", content_type)
        return Request(headers=h, body=body, method=method, uri=uri)


def make_cancel(invite: Request) -> Request:
    """CANCEL for a pending INVITE (§9.1): same top Via (branch), Request-URI, Call-ID, From, To,
    Route and CSeq number."""
    h = Headers()
    h.add("Via", invite.headers.get_all("Via")[0])
    h.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        h.add(name, invite.headers.get(name) or "")
    h.add("CSeq", str(CSeq(invite.cseq.seq, "CANCEL")))
    for r in invite.headers.get_all("Route"):
        h.add("Route", r)
    return Request(headers=h, method="CANCEL", uri=invite.uri)


def address_with_tag(address: str, tag: str) -> str:
    return str(parse_address(address).with_param("tag", tag))


__all__ += ["address_with_tag", "Address"]
