"""Digest: RFC 7616 §3.9.1's example values, stateless expiring nonces, nc replay, client side."""

from __future__ import annotations

from restcomm.sip.auth import (
    Credential,
    DigestServer,
    answer_challenge,
    digest_response,
    ha1,
    parse_auth,
    pick_challenge,
)

# RFC 7616 §3.9.1
USER, REALM, PASSWORD = "Mufasa", "http-auth@example.org", "Circle of Life"
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
URI = "/dir/index.html"


def test_rfc7616_example_md5_and_sha256() -> None:
    md5 = digest_response("MD5", ha1("MD5", USER, REALM, PASSWORD), "GET", URI, NONCE, "00000001", CNONCE, "auth")
    assert md5 == "8ca523f5e9506fed4657c9700eebdbec"
    sha = digest_response("SHA-256", ha1("SHA-256", USER, REALM, PASSWORD), "GET", URI, NONCE,
                          "00000001", CNONCE, "auth")
    assert sha == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_client_answer_matches_rfc_example() -> None:
    challenge = (f'Digest realm="{REALM}", qop="auth, auth-int", algorithm=SHA-256, nonce="{NONCE}", '
                 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    value = answer_challenge(challenge, "GET", URI, USER, PASSWORD, cnonce=CNONCE)
    _, p = parse_auth(value)
    assert p["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert p["nc"] == "00000001" and p["opaque"].startswith("FQhe")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def lookup(user: str, realm: str) -> Credential | None:
    return Credential(password="secret") if user == "alice" else None


def server(clock: Clock, **kw) -> DigestServer:
    return DigestServer("example.com", b"k" * 32, clock=clock, nonce_ttl=60, **kw)


def test_server_round_trip_both_algorithms_and_preference() -> None:
    clock = Clock()
    srv = server(clock)
    chals = srv.challenge()
    assert "SHA-256" in pick_challenge(chals)  # type: ignore[operator]
    for i in range(2):  # one nonce per challenge: a fresh challenge for each algorithm
        chal = srv.challenge()[i]
        auth = answer_challenge(chal, "REGISTER", "sip:example.com", "alice", "secret")
        assert srv.verify("REGISTER", auth, lookup).ok


def test_server_rejects_wrong_password_unknown_user_forged_nonce() -> None:
    clock = Clock()
    srv = server(clock)
    chal = srv.challenge()[0]
    assert not srv.verify("REGISTER", answer_challenge(chal, "REGISTER", "sip:x", "alice", "nope"), lookup).ok
    assert not srv.verify("REGISTER", answer_challenge(chal, "REGISTER", "sip:x", "bob", "secret"), lookup).ok
    forged = chal.replace('nonce="', 'nonce="0')
    r = srv.verify("REGISTER", answer_challenge(forged, "REGISTER", "sip:x", "alice", "secret"), lookup)
    assert not r.ok and not r.stale
    other = DigestServer("example.com", b"x" * 32, clock=clock).challenge()[0]
    assert not srv.verify("REGISTER", answer_challenge(other, "REGISTER", "sip:x", "alice", "secret"), lookup).ok
    # wrong method (response computed for INVITE, presented on REGISTER)
    assert not srv.verify("REGISTER", answer_challenge(chal, "INVITE", "sip:x", "alice", "secret"), lookup).ok
    assert not srv.verify("REGISTER", None, lookup).ok
    assert not srv.verify("REGISTER", "Basic abc", lookup).ok
    assert not srv.verify("REGISTER", 'Digest username="alice", junk', lookup).ok


def test_expired_nonce_is_stale() -> None:
    clock = Clock()
    srv = server(clock)
    chal = srv.challenge()[0]
    clock.now += 61
    r = srv.verify("REGISTER", answer_challenge(chal, "REGISTER", "sip:x", "alice", "secret"), lookup)
    assert not r.ok and r.stale
    assert "stale=true" in srv.challenge(stale=True)[0]


def test_nonce_count_replay_is_refused_and_increasing_nc_accepted() -> None:
    clock = Clock()
    srv = server(clock)
    chal = srv.challenge()[0]
    a1 = answer_challenge(chal, "REGISTER", "sip:x", "alice", "secret", nc=1, cnonce="c")
    assert srv.verify("REGISTER", a1, lookup).ok
    assert srv.verify("REGISTER", a1, lookup).reason == "replayed nonce count"
    a2 = answer_challenge(chal, "REGISTER", "sip:x", "alice", "secret", nc=2, cnonce="c")
    assert srv.verify("REGISTER", a2, lookup).ok
    assert not srv.verify("REGISTER", a2, lookup).ok


def test_replay_table_is_bounded_and_evicted_nonces_become_stale() -> None:
    clock = Clock()
    srv = server(clock, max_tracked_nonces=2)
    chals = [srv.challenge()[0] for _ in range(3)]
    for c in chals:
        assert srv.verify("REGISTER", answer_challenge(c, "REGISTER", "sip:x", "alice", "secret", nc=1), lookup).ok
    assert len(srv._nc) == 2
    r = srv.verify("REGISTER", answer_challenge(chals[0], "REGISTER", "sip:x", "alice", "secret", nc=2), lookup)
    assert not r.ok and r.stale


def test_precomputed_ha1() -> None:
    clock = Clock()
    srv = server(clock)
    cred = Credential(ha1_md5=ha1("MD5", "alice", "example.com", "pw"), ha1_sha256=ha1("SHA-256", "alice", "example.com", "pw"))
    for i in range(2):
        chal = srv.challenge()[i]
        auth = answer_challenge(chal, "INVITE", "sip:x", "alice", "pw")
        assert srv.verify("INVITE", auth, lambda u, r: cred).ok
