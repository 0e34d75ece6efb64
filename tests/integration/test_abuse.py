"""Abuse resistance over real HTTP: authentication failure throttling (per client address and per
account), the per-account API rate limit, AuthToken rotation, and bad input that must never hurt
(hypothesis: paging parameters, form bodies with invalid UTF-8 or random bytes, random
Authorization headers).

Client addresses are real: requests are sent from different loopback source addresses
(127.0.0.0/8 is all ours), so the server sees distinct clients without trusting any header. No
test sleeps for timing; the one wait (the throttle draining) is a bounded wait for the state change.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Iterator
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hardened_server import Hardened, launch, new_account
from tests.support.postgres import require_postgres
from tests.support.server import API, Server, Tenant, make_tenant
from tests.support.waiting import wait_until

# ---------------------------------------------------------------------------------------------
# Servers: "guarded" with low limits, "draining" whose throttle drains in three seconds, "open"
# with throttling off (for the random-header property test, on both databases).

GUARDED = {
    "RESTCOMM_AUTH_FAILURES_PER_ADDRESS": "4",
    "RESTCOMM_AUTH_FAILURES_PER_ACCOUNT": "3",
    "RESTCOMM_AUTH_FAILURE_WINDOW": "600",  # nothing drains during a test
    "RESTCOMM_API_RATE_LIMIT": "10",
    "RESTCOMM_API_RATE_BURST": "20",
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    srv = launch(tmp_path_factory.mktemp("guarded"), env=GUARDED)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def draining(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    srv = launch(tmp_path_factory.mktemp("draining"), env={
        "RESTCOMM_AUTH_FAILURES_PER_ADDRESS": "3", "RESTCOMM_AUTH_FAILURES_PER_ACCOUNT": "0",
        # Long enough that three failed logins (each paying the password hash, even for unknown
        # users) fit in it on a loaded machine; short enough to wait for.
        "RESTCOMM_AUTH_FAILURE_WINDOW": "3",
    })
    yield srv
    srv.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def open_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    if request.param == "postgres":
        require_postgres()
    srv = launch(tmp_path_factory.mktemp(f"open-{request.param}"), backend=request.param, env={
        "RESTCOMM_AUTH_FAILURES_PER_ADDRESS": "0", "RESTCOMM_AUTH_FAILURES_PER_ACCOUNT": "0",
    })
    yield srv
    srv.close()


_next_address = iter(range(2, 250))


def fresh_address() -> str:
    """A loopback source address no other test of the module has used."""
    return f"127.0.{next(_next_address)}.1"


def get_as(srv: Hardened, address: str, user: str, password: str) -> httpx.Response:
    return srv.get(f"{API}/Accounts/{user}.json", auth=(user, password), local_address=address)


def assert_throttled(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["code"] == 20429 and body["status"] == 429 and body["more_info"].endswith("/20429.html")
    retry = int(r.headers["Retry-After"])
    assert retry >= 1
    return retry


# ---------------------------------------------------------------------------------------------
# Authentication failure throttling


def test_failures_from_one_address_are_throttled_others_are_not(guarded: Hardened) -> None:
    sid, token, email, password = new_account(guarded)
    attacker, bystander = fresh_address(), fresh_address()
    # Four wrong logins (each for a different made-up account, so only the address adds up): 401s.
    for i in range(4):
        r = get_as(guarded, attacker, f"nobody-{i}-{uuid.uuid4().hex[:6]}@example.com", "guess")
        assert r.status_code == 401 and r.json()["code"] == 20003
    retry = assert_throttled(get_as(guarded, attacker, f"nobody-x-{uuid.uuid4().hex[:6]}@example.com", "guess"))
    assert retry <= 600 // 4 * 2  # at most the time for the count to drain below the limit
    # From that address even the right password is refused (no oracle), and it is not even checked...
    assert_throttled(get_as(guarded, attacker, email, password))
    # ... but the account's AuthToken, which no one can guess, still works from there.
    assert get_as(guarded, attacker, sid, token).status_code == 200
    # Another address is not affected at all: wrong credentials are a plain 401, right ones work.
    assert get_as(guarded, bystander, email, "wrong-password").status_code == 401
    assert get_as(guarded, bystander, email, password).status_code == 200


def test_failures_for_one_account_are_throttled_from_any_address(guarded: Hardened) -> None:
    victim_sid, victim_token, victim_email, victim_password = new_account(guarded, "victim")
    other_sid, _, other_email, other_password = new_account(guarded, "other")
    # A distributed guesser: three addresses, one wrong password each (below the address limit).
    for _ in range(3):
        assert get_as(guarded, fresh_address(), victim_email, "Guess-123456!").status_code == 401
    # The fourth guess from yet another address is refused, and so is the right password now.
    assert_throttled(get_as(guarded, fresh_address(), victim_email, "Guess-123456!"))
    assert_throttled(get_as(guarded, fresh_address(), victim_email, victim_password))
    # The SID and the email are one account: switching the user name does not reset the count.
    assert_throttled(get_as(guarded, fresh_address(), victim_sid, victim_password))
    # The legitimate integration using the AuthToken is not slowed, from anywhere.
    assert get_as(guarded, fresh_address(), victim_sid, victim_token).status_code == 200
    # Other accounts are unaffected.
    assert get_as(guarded, fresh_address(), other_email, other_password).status_code == 200
    assert get_as(guarded, fresh_address(), other_sid, "wrong").status_code == 401


def test_malformed_credentials_count_missing_ones_do_not(guarded: Hardened) -> None:
    address = fresh_address()
    for _ in range(10):  # clients that wait for the challenge before sending credentials
        r = guarded.get(f"{API}/Accounts.json", local_address=address)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    for _ in range(4):
        r = guarded.get(f"{API}/Accounts.json", headers={"Authorization": "Basic !!!"}, local_address=address)
        assert r.status_code == 401
    assert_throttled(guarded.get(f"{API}/Accounts.json", headers={"Authorization": "Basic !!!"}, local_address=address))


def test_throttle_drains(draining: Hardened) -> None:
    address = fresh_address()

    def attempt() -> httpx.Response:
        return get_as(draining, address, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "guess")

    statuses = []
    for _ in range(40):  # the limit is reached within a few attempts
        statuses.append(attempt().status_code)
        if statuses[-1] == 429:
            break
    assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429, statuses
    # Bounded wait for the count to drain (3 s window): the same address gets plain 401s again.
    r = wait_until(attempt, lambda r: r.status_code != 429, 20, "the failure count to drain", interval=0.05)
    assert r.status_code == 401


def _metrics(srv: Hardened) -> dict[str, float]:
    text = httpx.get(srv.base_url + "/metrics", timeout=10).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] not in ("#", "")}


def test_throttling_is_counted_in_metrics(guarded: Hardened) -> None:
    before = _metrics(guarded)
    address = fresh_address()
    for i in range(5):
        get_as(guarded, address, f"nobody-{i}-{uuid.uuid4().hex[:6]}@example.com", "guess")
    _, _, email, _ = new_account(guarded, "counted")
    for _ in range(4):
        get_as(guarded, fresh_address(), email, "Guess-123456!")
    after = _metrics(guarded)

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert delta('restcomm_auth_throttled_total{scope="address"}') == 1
    assert delta('restcomm_auth_throttled_total{scope="account"}') == 1
    assert delta("restcomm_auth_failures_total") == 4 + 3


# ---------------------------------------------------------------------------------------------
# Per-account API rate limit


def test_api_rate_limit_per_account(guarded: Hardened) -> None:
    busy_sid, busy_token, _, _ = new_account(guarded, "busy")
    calm_sid, calm_token, _, _ = new_account(guarded, "calm")
    with guarded.client(busy_sid, busy_token) as busy, guarded.client(calm_sid, calm_token) as calm:
        statuses = []
        for _ in range(200):  # burst 20, 10/s: a tight loop runs out within a few dozen requests
            r = busy.get(f"/Accounts/{busy_sid}.json")
            statuses.append(r.status_code)
            if r.status_code == 429:
                break
        assert statuses[:20] == [200] * 20 and statuses[-1] == 429, statuses
        assert_throttled(r)
        assert r.json()["message"] == "Too many requests for this account; retry later"
        # Another tenant is not starved by the busy one.
        assert calm.get(f"/Accounts/{calm_sid}.json").status_code == 200


def test_rate_limit_is_off_by_default(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        assert all(c.get(f"/Accounts/{tenant.sid}.json").status_code == 200 for _ in range(60))


# ---------------------------------------------------------------------------------------------
# AuthToken rotation


def test_auth_token_rotation(server: Server, tenant: Tenant) -> None:
    old = tenant.token
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/AuthTokens/Secondary.json")
        assert r.status_code == 201, r.text
        body = r.json()
        secondary = body["secondary_auth_token"]
        assert body["account_sid"] == tenant.sid and len(secondary) == 32 and secondary != old
        assert body["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/AuthTokens/Secondary.json"
    # During the rotation both tokens work; the account never shows the secondary.
    for token in (old, secondary):
        with server.client(tenant.sid, token) as c:
            r = c.get(f"/Accounts/{tenant.sid}.json")
            assert r.status_code == 200 and r.json()["auth_token"] == old and secondary not in r.text
    with server.client(tenant.sid, secondary) as c:
        r = c.post(f"/Accounts/{tenant.sid}/AuthTokens/Promote.json")
        assert r.status_code == 200, r.text
        assert r.json()["auth_token"] == secondary and r.json()["account_sid"] == tenant.sid
    with server.client(tenant.sid, old) as c:
        assert c.get(f"/Accounts/{tenant.sid}.json").status_code == 401
    with server.client(tenant.sid, secondary) as c:
        assert c.get(f"/Accounts/{tenant.sid}.json").json()["auth_token"] == secondary
        # Nothing left to promote or delete.
        assert c.post(f"/Accounts/{tenant.sid}/AuthTokens/Promote.json").status_code == 404
        assert c.delete(f"/Accounts/{tenant.sid}/AuthTokens/Secondary.json").status_code == 404
        # An abandoned rotation: the secondary stops working when deleted.
        spare = c.post(f"/Accounts/{tenant.sid}/AuthTokens/Secondary.json").json()["secondary_auth_token"]
        assert server.client(tenant.sid, spare).get(f"/Accounts/{tenant.sid}.json").status_code == 200
        assert c.delete(f"/Accounts/{tenant.sid}/AuthTokens/Secondary.json").status_code == 204
        assert server.client(tenant.sid, spare).get(f"/Accounts/{tenant.sid}.json").status_code == 401
        # The audit trail names the changes, never the tokens.
        audit = c.get(f"/Accounts/{tenant.sid}/AuditLog.json?PageSize=50").text
        assert "SecondaryAuthToken" in audit and secondary not in audit and spare not in audit, audit


def test_rotation_rules(server: Server, tenant: Tenant) -> None:
    child = tenant.sub("child")
    # The parent may rotate its child's token; the child may not touch its parent's.
    with tenant.client() as c:
        r = c.post(f"/Accounts/{child.sid}/AuthTokens/Secondary.json")
        assert r.status_code == 201
        assert c.post(f"/Accounts/{child.sid}/AuthTokens/Promote.json").status_code == 200
    with child.client() as c:
        assert c.get(f"/Accounts/{child.sid}.json").status_code == 401  # its old token is gone
    with server.client(child.sid, r.json()["secondary_auth_token"]) as c:
        assert c.post(f"/Accounts/{tenant.sid}/AuthTokens/Secondary.json").status_code == 403
    # An API key cannot rotate the token of the account it belongs to.
    with tenant.client() as c:
        key = c.post(f"/Accounts/{tenant.sid}/Keys.json", data={"FriendlyName": "ci"}).json()
    with server.client(key["sid"], key["secret"]) as k:
        r = k.post(f"/Accounts/{tenant.sid}/AuthTokens/Secondary.json")
        assert r.status_code == 403 and r.json()["code"] == 20006
    # XML works like every other resource.
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/AuthTokens/Secondary")
        assert r.status_code == 201 and "<SecondaryAuthToken>" in r.text and "<SecondaryAuthToken><AccountSid>" in r.text


def test_twilio_sdk_rotates_with_only_the_base_url_changed(server: Server, tenant: Tenant) -> None:
    from twilio.rest import Client

    client = Client(tenant.sid, tenant.token)
    client.accounts.base_url = server.base_url
    secondary = client.accounts.v1.secondary_auth_token().create()
    assert secondary.account_sid == tenant.sid and len(secondary.secondary_auth_token) == 32
    assert secondary.date_created is not None
    promoted = Client(tenant.sid, secondary.secondary_auth_token)
    promoted.accounts.base_url = server.base_url
    result = promoted.accounts.v1.auth_token_promotion().update()
    assert result.auth_token == secondary.secondary_auth_token
    with tenant.client() as c:  # the old token
        assert c.get(f"/Accounts/{tenant.sid}.json").status_code == 401
    promoted.accounts.v1.secondary_auth_token().create()
    assert promoted.accounts.v1.secondary_auth_token().delete() is True


# ---------------------------------------------------------------------------------------------
# Bad input never hurts (hypothesis, over HTTP)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def paged(server: Server) -> tuple[Tenant, int]:
    owner = make_tenant(server, name="paging")
    with owner.client() as c:
        for i in range(7):
            r = c.post(f"/Accounts/{owner.sid}/Keys.json", data={"FriendlyName": f"key {i}"})
            assert r.status_code == 201
    return owner, 7


def _text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-5, max_value=20).map(str),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.sampled_from(["", " 1", "1 ", "+2", "0x10", "1e3", "1.0", "٣", "NaN", "\x00", "00001", "1" * 400]),
        st.text(max_size=12),
    )


def test_paging_parameters_never_break(paged: tuple[Tenant, int]) -> None:
    owner, total = paged

    @PROPERTY
    @given(page=st.one_of(st.none(), _text()), size=st.one_of(st.none(), _text()))
    def check(page: str | None, size: str | None) -> None:
        params = {k: v for k, v in (("Page", page), ("PageSize", size)) if v is not None}
        r = c.get(f"/Accounts/{owner.sid}/Keys.json", params=params)
        assert r.status_code in (200, 400), (params, r.status_code, r.text[:200])
        if r.status_code == 400:
            assert r.json()["code"] == 20007
            return
        body = r.json()
        n, size_, page_ = len(body["keys"]), body["page_size"], body["page"]
        assert body["total"] == total and 1 <= size_ <= 1000 and page_ >= 0
        assert body["num_pages"] == max(1, math.ceil(total / size_))
        start = page_ * size_
        assert n == max(0, min(size_, total - start))
        assert body["start"] == str(start) and body["end"] == str(start + max(n - 1, 0))
        assert (body["next_page_uri"] is None) == (start + n >= total)
        assert (body["previous_page_uri"] is None) == (page_ == 0)

    with owner.client() as c:
        check()


def test_form_bodies_of_random_bytes_or_invalid_utf8_are_400(server: Server, tenant: Tenant) -> None:
    invalid_utf8 = st.binary(min_size=1, max_size=200).filter(lambda b: _not_utf8(b))

    @PROPERTY
    @given(body=st.one_of(
        invalid_utf8,                                                 # raw bytes that are not UTF-8
        invalid_utf8.map(lambda b: b"FriendlyName=" + quote_from_bytes(b).encode()),  # percent-encoded
        st.binary(max_size=300),                                      # anything at all
    ))
    def check(body: bytes) -> None:
        r = c.post(f"/Accounts/{tenant.sid}/Applications.json", content=body,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code < 500, (body, r.status_code, r.text[:200])
        if _form_not_utf8(body):
            assert r.status_code == 400 and r.json()["code"] == 20001, (body, r.text[:200])

    with tenant.client() as c:
        check()


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _form_not_utf8(body: bytes) -> bool:
    from urllib.parse import unquote_to_bytes

    if _not_utf8(body) or any(b >= 0x80 for b in body):
        return True
    return any(_not_utf8(unquote_to_bytes(part.replace(b"+", b" "))) for pair in body.split(b"&") for part in pair.split(b"="))


_HEADER_BYTES = st.binary(max_size=80).map(lambda b: bytes(c for c in b if c in range(0x20, 0x7F) or c >= 0x80 or c == 9))


def test_random_authorization_headers_are_401(open_server: Hardened) -> None:
    creds = st.tuples(st.binary(max_size=60), st.binary(max_size=60)).map(lambda t: t[0] + b":" + t[1])

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(header=st.one_of(
        _HEADER_BYTES,
        _HEADER_BYTES.map(lambda b: b"Basic " + b),
        st.binary(max_size=80).map(lambda b: b"Basic " + base64.b64encode(b)),
        creds.map(lambda b: b"Basic " + base64.b64encode(b)),
        creds.map(lambda b: b"basic   " + base64.b64encode(b) + b"  "),
        st.sampled_from([b"Basic", b"Basic ", b"Bearer abc", b"Basic Og==", b"Basic QUM=", b"Basic AAAA",
                         b"Basic " + base64.b64encode(b"\x00:\x00"), b"Basic " + base64.b64encode(b"SK" + b"\x00" * 32 + b":x"),
                         b"Basic " + base64.b64encode(b"a@b.c\x00:x")]),
    ))
    def check(header: bytes) -> None:
        r = raw.get(f"{API}/Accounts.json", headers=[(b"Authorization", header.strip() or b"x")])
        assert r.status_code == 401, (header, r.status_code, r.text[:200])
        assert r.json()["code"] == 20003

    with httpx.Client(base_url=open_server.base_url, timeout=30) as raw:
        check()


def test_the_property_tests_can_fail(server: Server, tenant: Tenant) -> None:
    """The assertions above see what they claim to: a wrong answer would be caught."""
    with tenant.client() as c:
        r = c.get(f"/Accounts/{tenant.sid}/Keys.json", params={"PageSize": "0"})
        assert r.status_code == 400 and r.json()["code"] == 20007
    assert _form_not_utf8(b"a=%FF") and _form_not_utf8(b"\xc3") and not _form_not_utf8(b"a=%C3%A9")
