"""Bring your own carrier, end to end: a real `restcomm serve` with two `[[carriers]]`, each a real
SMSC subprocess reached over TCP: our simulator (`restcomm smsc-sim`, prefix +1555) and smpp34's
independent server (prefix +1666). Every test runs against both.

MT with receipts and status callbacks to a loopback app, long GSM-7 and UCS-2 messages checked as
the SMSC reassembles them, MO into an application whose reply goes back out through the carrier,
concatenated MO in every form, incomplete and unhosted MO, and the administrator's carrier view.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from restcomm.encoding import segment
from tests.peers.carrier_server import (
    SMS,
    CarrierServer,
    app_server,
    carriers_toml,
    send,
    send_many,
    wait_final,
)
from tests.peers.smsc import Smsc
from tests.support.postgres import require_postgres
from tests.support.server import API
from tests.support.sms_app import Answer, AppServer, Seen, add_number, wait_until

PEERS = ["sim", "smpp34"]
PREFIX = {"sim": "+1555", "smpp34": "+1666"}


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, Smsc]]:
    started = {"sim": Smsc.simulator().start(), "smpp34": Smsc.smpp34().start()}
    yield started
    for p in started.values():
        p.kill()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, peers: dict[str, Smsc],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[CarrierServer]:
    if request.param == "postgres":
        require_postgres()
    config = SMS + carriers_toml([
        {"name": "sim", "port": peers["sim"].port, "prefixes": [PREFIX["sim"]]},
        {"name": "smpp34", "port": peers["smpp34"].port, "prefixes": [PREFIX["smpp34"]]},
    ])
    binds = {k: p.stats()["binds"] for k, p in peers.items()}
    server = CarrierServer(request.param, tmp_path_factory.mktemp(f"carriers-mt-{request.param}"), config).start()
    for k, p in peers.items():
        p.wait("binds", binds[k] + 2)  # both binds of both carriers are up
    yield server
    server.close()


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    yield from app_server()


def handset(peer: str) -> str:
    return PREFIX[peer] + str(random.randrange(10**6, 10**7))


def hosted_number() -> str:
    return "+1999" + str(random.randrange(10**6, 10**7))


def carrier_state(srv: CarrierServer) -> dict[str, dict[str, Any]]:
    with srv.client() as c:
        r = c.get(f"/Accounts/{srv.admin_sid}/Carriers.json")
        assert r.status_code == 200, r.text
        return {x["name"]: x for x in r.json()}


def wait_note(c: httpx.Client, account: str, code: int, needle: str) -> dict[str, Any]:
    """The notification with ``code`` whose text mentions ``needle``, once it exists (bounded)."""
    def find() -> list[dict[str, Any]]:
        r = c.get(f"/Accounts/{account}/Notifications.json", params={"ErrorCode": str(code), "PageSize": "1000"})
        full = [c.get(f"/Accounts/{account}/Notifications/{n['sid']}.json").json() for n in r.json()["notifications"]]
        return [n for n in full if needle in n["message_text"]]

    return wait_until(find, bool, 15, f"notification {code} about {needle}")[0]


def echo(seen: Seen) -> Answer:
    return Answer(f"<Response><Message>Echo: {seen.params['Body'][:60]}</Message></Response>")


# --- MT --------------------------------------------------------------------------------------


@pytest.mark.parametrize("peer", PEERS)
def test_mt_with_receipts_and_status_callbacks(srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer,
                                               peer: str) -> None:
    smsc = peers[peer]
    path = apps.new_path("mt")
    url = apps.route(path, Answer("", 204, "text/plain"))
    tag = uuid.uuid4().hex[:8]
    bodies = [f"mt-{tag}-{i}" for i in range(16)]
    to = [handset(peer) for _ in bodies]
    if peer == "sim":
        smsc.set("undelivered_ratio", 0.5)
    else:
        smsc.set("undelivered_every", 2)
    try:
        sent = send_many(srv, "ACME", to, bodies, url)
        outcomes = wait_final(apps, path, [m["sid"] for m in sent])
    finally:
        smsc.set("undelivered_ratio" if peer == "sim" else "undelivered_every", 0)
    finals = {o.final for o in outcomes.values()}
    assert finals == {"delivered", "undelivered"}
    for o in outcomes.values():
        assert o.statuses == ["sending", "sent", o.final], o  # in order, once each
        if o.final == "undelivered":
            # UNDELIV: 30003 by default (TLV form); err:001 in the text form maps to 30005.
            assert o.error_code in ("30003", "30005"), o
        else:
            assert o.error_code is None
    with srv.client() as c:
        for m in sent:
            api = c.get(f"/Accounts/{srv.admin_sid}/SMS/Messages/{m['sid']}.json").json()
            assert api["status"] == outcomes[m["sid"]].final
            assert (api.get("error_code") is not None) == (api["status"] == "undelivered")
    # At the SMSC: each message exactly once, from the alphanumeric sender, to the number without "+".
    assert smsc.texts(f"mt-{tag}-") == {b: 1 for b in bodies}
    by_text = {m["text"]: m for m in smsc.messages() if m["text"].startswith(f"mt-{tag}-")}
    for body, number in zip(bodies, to, strict=True):
        got = by_text[body]
        assert (got["source"], got["destination"], got["data_coding"]) == ("ACME", number[1:], 0)
        if peer == "smpp34":  # this peer records the TON it saw: alphanumeric 5, international 1
            assert (got["source_ton"], got["destination_ton"]) == (5, 1)


@pytest.mark.parametrize("peer", PEERS)
def test_long_gsm7_and_ucs2_messages_arrive_whole(srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer,
                                                 peer: str) -> None:
    smsc = peers[peer]
    path = apps.new_path("long")
    url = apps.route(path, Answer("", 204, "text/plain"))
    tag = uuid.uuid4().hex[:8]
    gsm = f"long-{tag} GSM-7 with the extension table: €[]{{}}~^|\\ costs two septets each. " * 4
    ucs = f"long-{tag} Grüße aus Köln 😀 — ça va? Ünïcödé needs UCS-2. " * 4
    assert segment(gsm).num_segments >= 3 and segment(ucs).num_segments >= 3
    with srv.client() as c:
        sent = [send(c, srv.admin_sid, "ACME", handset(peer), body, url) for body in (gsm, ucs)]
    outcomes = wait_final(apps, path, [m["sid"] for m in sent])
    assert {o.final for o in outcomes.values()} == {"delivered"}  # every segment's receipt came in
    received = {m["text"]: m for m in smsc.messages() if m["text"].startswith(f"long-{tag}")}
    assert set(received) == {gsm, ucs}  # reassembled by the SMSC from UDH parts, character for character
    with srv.client() as c:
        for m, body, coding in zip(sent, (gsm, ucs), (0, 8), strict=True):
            api = c.get(f"/Accounts/{srv.admin_sid}/SMS/Messages/{m['sid']}.json").json()
            assert received[body]["segments"] == api["num_segments"] == segment(body).num_segments
            assert received[body]["data_coding"] == coding
            assert api["encoding"] == ("GSM-7" if coding == 0 else "UCS-2")


def test_a_receipt_that_arrives_before_its_submit_sm_resp_is_not_lost(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer
) -> None:
    """The simulator answers each submit_sm 0.3 s late but sends the receipt at once: every receipt
    names an id the server has not seen yet. They are parked and applied once the id is stored."""
    smsc = peers["sim"]
    path = apps.new_path("early")
    url = apps.route(path, Answer("", 204, "text/plain"))
    parked_before = carrier_state(srv)["sim"]["receipts_parked"]
    smsc.set("delay", 0.3)
    smsc.set("delay_every", 1)
    try:
        sent = send_many(srv, "ACME", [handset("sim")], [f"early-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)], url)
        outcomes = wait_final(apps, path, [m["sid"] for m in sent])
    finally:
        smsc.set("delay_every", 0)
    assert all(o.statuses == ["sending", "sent", "delivered"] for o in outcomes.values()), outcomes
    assert carrier_state(srv)["sim"]["receipts_parked"] >= parked_before + 6


# --- MO --------------------------------------------------------------------------------------


@pytest.mark.parametrize("peer", PEERS)
def test_mo_reaches_the_app_and_its_reply_goes_out_through_the_carrier(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, peer: str
) -> None:
    smsc = peers[peer]
    path = apps.new_path("echo")
    url = apps.route(path, echo)
    number, phone = hosted_number(), handset(peer)
    tag = uuid.uuid4().hex[:8]
    with srv.client() as c:
        add_number(c, srv.admin_sid, number, SmsUrl=url)
    accepted = smsc.stats()["accepted"]
    assert smsc.mo(phone, number, f"hello-{tag}") == [0]
    seen = apps.wait(path, 1)[0]
    # E.164 on both sides: the "+" the SMPP addresses (TON 1) leave out is put back.
    assert (seen.params["From"], seen.params["To"], seen.params["Body"]) == (phone, number, f"hello-{tag}")
    smsc.wait("accepted", accepted + 1)
    replies = [m for m in smsc.messages() if m["text"] == f"Echo: hello-{tag}"]
    assert len(replies) == 1
    assert (replies[0]["source"], replies[0]["destination"]) == (number[1:], phone[1:])


@pytest.mark.parametrize("peer", PEERS)
def test_concatenated_mo_is_reassembled_before_the_app_sees_it(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, peer: str
) -> None:
    smsc = peers[peer]
    path = apps.new_path("concat")
    url = apps.route(path, Answer("<Response/>"))
    number = hosted_number()
    with srv.client() as c:
        add_number(c, srv.admin_sid, number, SmsUrl=url)
    tag = uuid.uuid4().hex[:8]
    texts = {
        "udh": (f"udh-{tag} " + "an 8-bit reference, parts out of order. " * 8, None),
        "udh16": (f"udh16-{tag} " + "a 16-bit reference in UCS-2: ½ ☃ 😀. " * 5, "UCS-2"),
        "sar": (f"sar-{tag} " + "SAR TLVs instead of a UDH, with € and [brackets]. " * 7, None),
    }
    for concat, (text, encoding) in texts.items():
        parts = segment(text, encoding).num_segments  # type: ignore[arg-type]
        assert parts >= 3
        order = {"udh": list(range(parts, 0, -1)), "sar": [2, 1, *range(3, parts + 1)]}.get(concat)
        statuses = smsc.mo(handset(peer), number, text, concat=concat, encoding=encoding, order=order,
                           ref=random.randrange(256, 60000) if concat == "udh16" else random.randrange(256))
        assert statuses == [0] * len(statuses)
    seen = apps.wait(path, 3)
    assert sorted(s.params["Body"] for s in seen) == sorted(t for t, _ in texts.values())
    by_body = {s.params["Body"]: s.params["NumSegments"] for s in seen}
    assert by_body == {t: str(segment(t, e).num_segments) for t, e in texts.values()}  # type: ignore[arg-type]


@pytest.mark.parametrize("peer", PEERS)
def test_mo_missing_a_part_times_out_into_a_notification(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer, peer: str
) -> None:
    smsc = peers[peer]
    path = apps.new_path("partial")
    url = apps.route(path, Answer("<Response/>"))
    number = hosted_number()
    with srv.client() as c:
        add_number(c, srv.admin_sid, number, SmsUrl=url)
        tag = uuid.uuid4().hex[:8]
        text = f"partial-{tag} " + "this message loses its middle part on the way. " * 8
        assert smsc.mo(handset(peer), number, text, order=[1, 3]) == [0, 0]  # part 2 never comes
        detail = wait_note(c, srv.admin_sid, 30009, f"partial-{tag}")
    assert "missing part(s) 2" in detail["message_text"] and detail["log"] == 0
    assert not apps.requests(path)  # the application never saw the truncated text


@pytest.mark.parametrize("peer", PEERS)
def test_mo_to_a_number_nobody_hosts_is_acknowledged_and_recorded(
    srv: CarrierServer, peers: dict[str, Smsc], peer: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    nobody = "+1888" + str(random.randrange(10**6, 10**7))
    assert peers[peer].mo(handset(peer), nobody, f"lost-{tag}") == [0]  # acknowledged, not refused
    with srv.client() as c:
        note = wait_note(c, srv.admin_sid, 11005, f"lost-{tag}")
    assert nobody in note["message_text"] and note["log"] == 1


# --- the administrator's view ----------------------------------------------------------------


def test_carrier_state_is_visible_to_the_administrator_only(srv: CarrierServer) -> None:
    with srv.client() as c:
        r = c.get(f"/Accounts/{srv.admin_sid}/Carriers.json")
        assert r.status_code == 200, r.text
        carriers = {x["name"]: x for x in r.json()}
        assert set(carriers) == {"sim", "smpp34"}
        for name, x in carriers.items():
            assert (x["status"], x["binds"], x["bound"], x["window"]) == ("up", 2, 2, 10)
            assert x["routes"] == [{"prefix": PREFIX[name]}]
            assert x["window_in_use"] >= 0 and x["max_tps"] == 0
            assert set(x["error_counts"]) >= {"rejected", "throttled", "timeouts", "disconnects"}
        xml = c.get(f"/Accounts/{srv.admin_sid}/Carriers", headers={"Accept": "application/xml"})
        assert xml.status_code == 200 and "<Carriers><Carrier><Name>" in xml.text
        sub = c.post("/Accounts.json", data={"EmailAddress": f"sub-{uuid.uuid4().hex[:8]}@example.com",
                                             "Password": "Str0ng-Passw0rd!"}).json()
    with httpx.Client(base_url=srv.base_url + API, auth=(sub["sid"], sub["auth_token"])) as s:
        assert s.get(f"/Accounts/{sub['sid']}/Carriers.json").status_code == 403
        assert s.get(f"/Accounts/{srv.admin_sid}/Carriers.json").status_code in (403, 404)


def test_another_tenants_pattern_does_not_divert_mt_from_the_carrier(
    srv: CarrierServer, peers: dict[str, Smsc], apps: AppServer
) -> None:
    """A tenant holding a pattern over the carrier's prefix gets no one else's outbound message: it
    goes to the carrier. The pattern still receives MO from the carrier to an unhosted number."""
    smsc = peers["sim"]
    spy_path = apps.new_path("spy")
    spy_url = apps.route(spy_path, Answer("<Response/>"))
    with srv.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": f"spy-{uuid.uuid4().hex[:8]}@example.com",
                                           "Password": "Str0ng-Passw0rd!"})
        assert r.status_code == 200, r.text
        spy, spy_token = r.json()["sid"], r.json()["auth_token"]
    with httpx.Client(base_url=srv.base_url + API, auth=(spy, spy_token), timeout=30) as sc:
        pattern = add_number(sc, spy, PREFIX["sim"] + ".*", SmsUrl=spy_url)
    try:
        tag = uuid.uuid4().hex[:8]
        accepted = smsc.stats()["accepted"]
        send_many(srv, "ACME", [handset("sim")], [f"otp-{tag}"], threads=1)
        smsc.wait("accepted", accepted + 1)
        assert smsc.texts(f"otp-{tag}") == {f"otp-{tag}": 1}
        assert apps.requests(spy_path) == []
        assert smsc.mo(handset("sim"), handset("sim"), f"mo-{tag}") == [0]
        assert apps.wait(spy_path)[0].params["Body"] == f"mo-{tag}"
    finally:
        with httpx.Client(base_url=srv.base_url + API, auth=(spy, spy_token), timeout=30) as sc:
            sc.delete(f"/Accounts/{spy}/IncomingPhoneNumbers/{pattern['sid']}.json")
