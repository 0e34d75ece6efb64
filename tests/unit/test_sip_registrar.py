"""Registrar (RFC 3261 §10.3): digest, several contacts, Expires header/param, '*', 423, ordering,
the failure throttle, all with injected clocks and in-memory stores."""

from __future__ import annotations

import asyncio

from restcomm.sip.auth import answer_challenge
from restcomm.sip.message import Headers, Request, Response, parse_message, parse_uri
from restcomm.sip.registrar import FailureThrottle, MemoryBindingStore, MemoryCredentials, Registrar

SRC = ("UDP", "192.0.2.7", 5062)


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000.0

    def __call__(self) -> float:
        return self.now


def register(contacts: list[str], *, expires: int | None = None, seq: int = 1, user: str = "alice",
             auth: str | None = None, call_id: str = "reg1") -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{seq}x;rport")
    h.add("From", f"<sip:{user}@example.com>;tag=a")
    h.add("To", f"<sip:{user}@example.com>")
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{seq} REGISTER")
    for c in contacts:
        h.add("Contact", c)
    if expires is not None:
        h.add("Expires", str(expires))
    if auth:
        h.add("Authorization", auth)
    return parse_message(Request(headers=h, method="REGISTER", uri=parse_uri("sip:example.com")).encode())  # type: ignore[return-value]


def make(clock: Clock, **kw) -> Registrar:
    return Registrar("example.com", MemoryCredentials({"alice": "pw"}, account="AC1"), MemoryBindingStore(),
                     secret=b"s" * 32, wall_clock=clock, **kw)


async def authed(reg: Registrar, contacts: list[str], *, password: str = "pw", **kw) -> Response:
    first = await reg.handle(register(contacts, **kw), SRC)
    assert first.status == 401
    chal = first.headers.get_all("WWW-Authenticate")[0]
    auth = answer_challenge(chal, "REGISTER", "sip:example.com", kw.get("user", "alice"), password)
    return await reg.handle(register(contacts, auth=auth, **kw), SRC)


def expires_of(resp: Response) -> dict[str, int]:
    return {c.uri.user or "": int(c.param("expires") or -1) for c in resp.contacts}


def test_register_several_contacts_and_expiry() -> None:
    async def go() -> None:
        clock = Clock()
        reg = make(clock)
        r = await authed(reg, ["<sip:alice@192.0.2.7:5062>;expires=120", "<sip:alice2@192.0.2.8>"], expires=600)
        assert r.status == 200
        assert expires_of(r) == {"alice": 120, "alice2": 600}
        bindings = await reg.lookup("sip:alice@example.com")
        assert {b.account for b in bindings} == {"AC1"} and bindings[0].source == SRC
        clock.now += 121
        assert [b.contact for b in await reg.lookup("sip:alice@example.com")] == ["sip:alice2@192.0.2.8"]
    asyncio.run(go())


def test_max_expires_cap_and_423() -> None:
    async def go() -> None:
        reg = make(Clock(), min_expires=60, max_expires=1800)
        r = await authed(reg, ["<sip:alice@h>"], expires=30)
        assert r.status == 423 and r.headers.get("Min-Expires") == "60"
        r = await authed(reg, ["<sip:alice@h>"], expires=7200, seq=2)
        assert expires_of(r) == {"alice": 1800}
    asyncio.run(go())


def test_unregister_one_and_star() -> None:
    async def go() -> None:
        reg = make(Clock())
        await authed(reg, ["<sip:a1@h>", "<sip:a2@h>"], seq=1)
        r = await authed(reg, ["<sip:a1@h>;expires=0"], seq=2)
        assert list(expires_of(r)) == ["a2"]
        r = await authed(reg, ["*"], expires=0, seq=3)
        assert r.status == 200 and r.contacts == []
        r = await authed(reg, ["*"], expires=5, seq=4)
        assert r.status == 400
    asyncio.run(go())


def test_out_of_order_cseq_same_call_id() -> None:
    async def go() -> None:
        reg = make(Clock())
        assert (await authed(reg, ["<sip:a1@h>"], seq=5)).status == 200
        assert (await authed(reg, ["<sip:a1@h>"], seq=4)).status == 500
    asyncio.run(go())


def test_wrong_password_and_foreign_aor() -> None:
    async def go() -> None:
        reg = make(Clock())
        assert (await authed(reg, ["<sip:a@h>"], password="bad")).status == 401
        r = await reg.handle(register(["<sip:x@h>"], user="bob"), SRC)
        chal = r.headers.get_all("WWW-Authenticate")[0]
        # alice's valid credentials for bob's AOR
        auth = answer_challenge(chal, "REGISTER", "sip:example.com", "alice", "pw")
        req = register(["<sip:x@h>"], user="bob", auth=auth.replace('username="alice"', 'username="alice"'))
        assert (await reg.handle(req, SRC)).status == 403
    asyncio.run(go())


def test_throttle_blocks_a_source_after_failures_then_releases() -> None:
    async def go() -> None:
        clock = Clock()
        mono = Clock()
        throttle = FailureThrottle(max_failures=3, window=60, block_for=300, clock=mono)
        reg = make(clock, throttle=throttle)
        for _ in range(2):
            assert (await authed(reg, ["<sip:a@h>"], password="bad")).status == 401
        assert (await authed(reg, ["<sip:a@h>"], password="bad")).status == 403
        # even the right password is refused while blocked, without a challenge
        r = await reg.handle(register(["<sip:a@h>"]), SRC)
        assert r.status == 403
        mono.now += 301
        assert (await authed(reg, ["<sip:a@h>"])).status == 200
    asyncio.run(go())


def test_stale_nonce_gets_stale_challenge() -> None:
    async def go() -> None:
        clock = Clock()
        reg = make(clock, nonce_ttl=30)
        first = await reg.handle(register(["<sip:a@h>"]), SRC)
        chal = first.headers.get_all("WWW-Authenticate")[0]
        clock.now += 31
        auth = answer_challenge(chal, "REGISTER", "sip:example.com", "alice", "pw")
        r = await reg.handle(register(["<sip:a@h>"], auth=auth), SRC)
        assert r.status == 401 and "stale=true" in r.headers.get_all("WWW-Authenticate")[0]
    asyncio.run(go())
