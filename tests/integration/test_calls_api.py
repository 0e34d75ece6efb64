"""The Calls API (Restcomm's and Twilio's shapes) and call status callbacks through the outbox.

No voice engine runs in the test server, so a created call fails right after it is accepted (as a
Twilio call that cannot be placed does): that path is tested end to end. The progress of a call
that an engine places is written the way the engine writes it (``voice.store`` on the server's
database, tests/integration/voice_db.py); the server's outbox delivers the callbacks to a real
HTTP receiver on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from restcomm.store.schema import calls
from restcomm.voice import store as vs
from tests.support.server import Server, Tenant, make_tenant
from tests.support.sms_app import (
    Answer,
    AppServer,
    add_number,
    unique_number,
    wait_notification,
    wait_until,
)
from tests.support.voice_db import run_in_db


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    server = AppServer().start()
    yield server
    server.stop()


def create(c: httpx.Client, account: str, **data: str) -> httpx.Response:
    return c.post(f"/Accounts/{account}/Calls.json", data=data)


def get_call(c: httpx.Client, account: str, sid: str) -> dict[str, Any]:
    r = c.get(f"/Accounts/{account}/Calls/{sid}.json")
    assert r.status_code == 200, r.text
    return r.json()


def test_create_without_a_voice_engine_fails_cleanly(tenant: Tenant, apps: AppServer) -> None:
    number, to = unique_number(), unique_number()
    callback = apps.route(apps.new_path("status"), Answer("", 200, "text/plain"), token=tenant.token)
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
        r = create(c, tenant.sid, From=number, To=to, Url="http://127.0.0.1:9/rcml", StatusCallback=callback,
                   StatusCallbackEvent="initiated ringing answered completed")
        assert r.status_code == 200, r.text
        body = r.json()
        sid = body["sid"]
        assert sid.startswith("CA") and len(sid) == 34
        assert body["status"] == "queued" and body["direction"] == "outbound-api"
        assert body["from"] == number and body["to"] == to and body["account_sid"] == tenant.sid
        assert body["uri"] == f"/2012-04-24/Accounts/{tenant.sid}/Calls/{sid}.json"
        assert body["subresource_uris"]["recordings"] == f"/2012-04-24/Accounts/{tenant.sid}/Calls/{sid}/Recordings.json"
        # Failed at once: no engine runs here. Its record says so, with a notification.
        failed = get_call(c, tenant.sid, sid)
        assert failed["status"] == "failed" and failed["duration"] == 0 and "end_time" in failed
        note = wait_notification(c, tenant.sid, vs.NO_VOICE_ENGINE)
        assert note["call_sid"] == sid and note["more_info"].endswith("/19101.html")
        listed = c.get(body["subresource_uris"]["notifications"].removeprefix("/2012-04-24")).json()
        assert [n["sid"] for n in listed["notifications"]] == [note["sid"]]
        assert c.get(f"/Accounts/{tenant.sid}/Calls.json", params={"Status": "failed"}).json()["total"] == 1
        xml = c.get(f"/Accounts/{tenant.sid}/Calls/{sid}", headers={"Accept": "application/xml"})
        assert xml.status_code == 200 and xml.text.startswith("<RestcommResponse><Call><Sid>" + sid)
    # The completed callback is always sent, also for a failed call; it is the only one here.
    (seen,) = apps.wait(callback.removeprefix(apps.base))
    p = seen.params
    assert seen.signature_valid is True
    assert p["CallSid"] == sid and p["CallStatus"] == "failed" and p["SequenceNumber"] == "0"
    assert p["CallbackSource"] == "call-progress-events" and p["CallDuration"] == "0"
    assert p["AccountSid"] == tenant.sid and p["From"] == number and p["To"] == to
    assert p["Direction"] == "outbound-api" and p["ApiVersion"] == "2012-04-24" and p["Timestamp"]


def test_create_checks(tenant: Tenant) -> None:
    number = unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
        url = "http://127.0.0.1:9/rcml"

        def code(**data: str) -> tuple[int, int]:
            r = create(c, tenant.sid, **data)
            return r.status_code, r.json().get("code", 0) if r.status_code >= 400 else 0

        assert code(To="+15551230000", Url=url) == (400, 21213)
        assert code(From=number, Url=url) == (400, 21201)
        assert code(From=number, To="+15551230000") == (400, 21205)
        assert code(From=number, To="+15551230000", Url="ftp://x/y") == (400, 21205)
        assert code(From=number, To="not a number", Url=url) == (400, 21211)
        assert code(From="+15550009999", To="+15551230000", Url=url) == (400, 21210)
        assert code(From="client:nobody", To="+15551230000", Url=url) == (400, 21210)
        assert code(From=number, To="+15551230000", Url=url, StatusCallbackEvent="hungup") == (400, 20001)
        assert code(From=number, To="+15551230000", ApplicationSid="AP" + "0" * 32) == (400, 21218)
        assert code(From=number, To="+15551230000", Url=url, Timeout="0") == (400, 20001)
        # Allowed: the account's numbers, its OutgoingCallerIds, client:name of its Clients, any To form.
        r = c.post(f"/Accounts/{tenant.sid}/OutgoingCallerIds.json", data={"PhoneNumber": "+14155550177"})
        assert r.status_code == 200, r.text
        login = "alice" + tenant.sid[-6:]
        r = c.post(f"/Accounts/{tenant.sid}/Clients.json", data={"Login": login, "Password": "Cl1ent-Passw0rd!"})
        assert r.status_code == 200, r.text
        app = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "a", "RcmlUrl": url}).json()
        for frm, to in (("+14155550177", "client:bob"), (f"client:{login}", "sip:bob@127.0.0.1:5099"),
                        (f"sip:{number}@example.com", "+15551230000?X-Custom=1")):
            assert code(From=frm, To=to, Url=url) == (200, 0), (frm, to)
        assert code(From=number, To="+15551230000", ApplicationSid=app["sid"]) == (200, 0)


def test_list_filters_and_paging(tenant: Tenant) -> None:
    number = unique_number()
    tos = [unique_number() for _ in range(3)]
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
        sids = [create(c, tenant.sid, From=number, To=to, Url="http://127.0.0.1:9/r").json()["sid"] for to in tos]
        page = c.get(f"/Accounts/{tenant.sid}/Calls.json", params={"PageSize": 2}).json()
        assert page["total"] == 3 and page["num_pages"] == 2 and len(page["calls"]) == 2
        assert page["next_page_uri"] and page["previous_page_uri"] is None
        second = c.get(page["next_page_uri"].removeprefix("/restcomm/2012-04-24")).json()
        assert {x["sid"] for x in page["calls"] + second["calls"]} == set(sids)

        def listed(**q: str) -> set[str]:
            r = c.get(f"/Accounts/{tenant.sid}/Calls.json", params=q)
            assert r.status_code == 200, r.text
            return {x["sid"] for x in r.json()["calls"]}

        assert listed(To=tos[1][-6:]) == {sids[1]}  # Restcomm: ends with
        assert listed(From=number) == set(sids)
        assert listed(Status="failed") == set(sids) and listed(Status="in-progress") == set()
        today = datetime.now(UTC).date()
        tomorrow = (today + timedelta(days=1)).isoformat()
        assert listed(StartTime=today.isoformat()) == set(sids)
        assert listed(StartTime=tomorrow) == set()
        assert listed(**{"StartTime>": tomorrow}) == set() and listed(**{"StartTime<": today.isoformat()}) == set(sids)
        assert listed(EndTime=today.isoformat()) == set(sids)
        assert listed(**{"EndTime<": (today - timedelta(days=1)).isoformat()}) == set()
        assert listed(ParentCallSid=sids[0]) == set()
        assert c.get(f"/Accounts/{tenant.sid}/Calls.json", params={"StartTime": "yesterday"}).status_code == 400


def test_modify(server: Server, tenant: Tenant) -> None:
    number = unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
        sid = create(c, tenant.sid, From=number, To="+15551230001", Url="http://127.0.0.1:9/r").json()["sid"]
        r = c.post(f"/Accounts/{tenant.sid}/Calls/{sid}.json", data={"Status": "completed"})
        assert r.status_code == 400 and r.json()["code"] == 21220
        assert c.post(f"/Accounts/{tenant.sid}/Calls/CA{'0' * 32}.json", data={"Status": "completed"}).status_code == 404
        assert c.post(f"/Accounts/{tenant.sid}/Calls/{sid}.json", data={"Status": "hold"}).status_code == 400
    # A queued call no engine has taken yet: the record alone changes.
    queued = run_in_db(server, lambda conn: vs.create_call(conn, datetime.now(UTC).replace(tzinfo=None),
                                                           account_sid=tenant.sid, from_number=number,
                                                           to_number="+15551230002", direction="outbound-api"))
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Calls/{queued['sid']}.json", data={"Url": "http://127.0.0.1:9/other"})
        assert r.status_code == 200 and r.json()["status"] == "queued", r.text
        r = c.post(f"/Accounts/{tenant.sid}/Calls/{queued['sid']}.json", data={"Status": "canceled"})
        assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
    # A live call held by an engine: without one on this server the change cannot be made.
    now = datetime.now(UTC).replace(tzinfo=None)

    async def live(conn: AsyncConnection) -> str:
        row = await vs.create_call(conn, now, account_sid=tenant.sid, from_number=number, to_number="+15551230003",
                                   direction="outbound-api")
        await vs.call_initiated(conn, row["sid"], now, node="elsewhere", lease_seconds=60)
        await vs.set_call_status(conn, row["sid"], vs.IN_PROGRESS, now)
        return row["sid"]

    live_sid = run_in_db(server, live)
    with tenant.client() as c:
        r = c.post(f"/Accounts/{tenant.sid}/Calls/{live_sid}.json", data={"Status": "canceled"})
        assert r.status_code == 400 and r.json()["code"] == 21220
        r = c.post(f"/Accounts/{tenant.sid}/Calls/{live_sid}.json", data={"Status": "completed"})
        assert r.status_code == 503
    # Someone else's call does not exist for them.
    other = make_tenant(server, name="other")
    with other.client() as c:
        assert c.get(f"/Accounts/{other.sid}/Calls/{sid}.json").status_code == 404
        assert c.post(f"/Accounts/{other.sid}/Calls/{sid}.json", data={"Status": "completed"}).status_code == 404
        assert c.get(f"/Accounts/{tenant.sid}/Calls/{sid}.json").status_code == 403


def test_progress_callbacks_in_order_through_the_outbox(server: Server, tenant: Tenant, apps: AppServer) -> None:
    """An engine's transitions, written through voice.store, reach the application in order."""
    number = unique_number()
    every = apps.route(apps.new_path("every"), Answer("", 200, "text/plain"), token=tenant.token)
    flaky_path = apps.new_path("flaky")
    tries = {"n": 0}

    def flaky(seen: Any) -> Answer:  # the first answered callback fails once: retried, still in order
        if seen.params.get("CallStatus") == "in-progress" and tries["n"] == 0:
            tries["n"] += 1
            return Answer("busy", 503, "text/plain")
        return Answer("", 200, "text/plain")

    flaky_url = apps.route(flaky_path, flaky)
    default = apps.route(apps.new_path("default"), Answer("", 204, "text/plain"))
    t0 = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=60)  # every transition is in the past

    async def engine(conn: AsyncConnection) -> list[str]:
        sids = []
        for url, events in ((every, "initiated,ringing,answered,completed"), (flaky_url, "answered completed"),
                            (default, None)):
            row = await vs.create_call(conn, t0, account_sid=tenant.sid, from_number=number, to_number="+15551230009",
                                       direction="outbound-api", status_callback=url,
                                       status_callback_events=vs.parse_events(events) if events else None)
            await vs.call_initiated(conn, row["sid"], t0, node="n1", lease_seconds=60)
            await vs.set_call_status(conn, row["sid"], vs.RINGING, t0 + timedelta(seconds=1))
            await vs.set_call_status(conn, row["sid"], vs.IN_PROGRESS, t0 + timedelta(seconds=3))
            await vs.set_call_status(conn, row["sid"], vs.COMPLETED, t0 + timedelta(seconds=45))
            sids.append(row["sid"])
        return sids

    sids = run_in_db(server, engine)
    seen = apps.wait(every.removeprefix(apps.base), 4)
    assert [s.params["CallStatus"] for s in seen] == ["initiated", "ringing", "in-progress", "completed"]
    assert [s.params["SequenceNumber"] for s in seen] == ["0", "1", "2", "3"]
    assert all(s.params["CallSid"] == sids[0] and s.signature_valid for s in seen)
    assert seen[-1].params["CallDuration"] == "42" and "CallDuration" not in seen[0].params
    got = apps.wait(flaky_path, 3)
    assert [s.params["CallStatus"] for s in got] == ["in-progress", "in-progress", "completed"]
    assert [s.params["SequenceNumber"] for s in got] == ["0", "0", "1"]
    (only,) = apps.wait(default.removeprefix(apps.base), 1)  # default: completed only
    assert only.params["CallStatus"] == "completed" and only.params["SequenceNumber"] == "0"
    with tenant.client() as c:
        call = get_call(c, tenant.sid, sids[0])
        assert call["status"] == "completed" and call["duration"] == 42 and call["ring_duration"] == 3
        assert call["start_time"].startswith(t0.strftime("%Y-%m-%dT%H:%M:%S"))
        wait_until(lambda: apps.requests(default.removeprefix(apps.base)), lambda s: len(s) == 1)
        # Usage: three answered calls of 42 s, a minute each (rounded up per call).
        usage = c.get(f"/Accounts/{tenant.sid}/Usage/Records/AllTime.json").json()
        by = {u["category"]: (u["count"], u["usage"], u["usage_unit"], u["count_unit"]) for u in usage}
        assert by["calls"] == by["calls-outbound"] == ("3", "3", "minutes", "calls")
        assert by["calls-inbound"][:2] == ("0", "0")


def test_a_node_that_dies_mid_call_does_not_leave_it_in_progress(server: Server, tenant: Tenant,
                                                                  apps: AppServer) -> None:
    """What a killed node leaves behind (a live call whose lease it no longer renews) is closed by
    the server's recovery sweep: completed, with a reason, a notification and the callback."""
    callback = apps.route(apps.new_path("orphan"), Answer("", 200, "text/plain"))
    t0 = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=120)

    async def dead_node(conn: AsyncConnection) -> str:
        row = await vs.create_call(conn, t0, account_sid=tenant.sid, from_number="+15550101010",
                                   to_number="+15550202020", direction="inbound", status=vs.RINGING,
                                   status_callback=callback)
        await vs.set_call_status(conn, row["sid"], vs.IN_PROGRESS, t0 + timedelta(seconds=2))
        await conn.execute(calls.update().where(calls.c.sid == row["sid"])
                           .values(node="killed-node", lease_until=t0 + timedelta(seconds=30)))
        return row["sid"]

    sid = run_in_db(server, dead_node)
    with tenant.client() as c:
        call = wait_until(lambda: get_call(c, tenant.sid, sid), lambda x: x["status"] != "in-progress",
                          what="the recovery sweep")
        assert call["status"] == "completed" and call["duration"] >= 100
        note = wait_notification(c, tenant.sid, vs.NODE_STOPPED)
        assert note["call_sid"] == sid and "killed-node" in note["message_text"]
    (seen,) = apps.wait(callback.removeprefix(apps.base))
    assert seen.params["CallStatus"] == "completed" and seen.params["CallSid"] == sid


def test_the_path_forms_restcomm_clients_use(tenant: Tenant) -> None:
    """The Restcomm SDK puts .json on any segment (``/Calls.json/{CallSid}``); XML without it."""
    number = unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
        sid = create(c, tenant.sid, From=number, To="+15551230100", Url="http://127.0.0.1:9/r").json()["sid"]
        r = c.get(f"/Accounts.json/{tenant.sid}/Calls.json/{sid}")
        assert r.status_code == 200 and r.json()["sid"] == sid
        r = c.post(f"/Accounts/{tenant.sid}/Calls.json/{sid}", data={"Url": "http://127.0.0.1:9/s"})
        assert r.status_code == 400 and r.json()["code"] == 21220  # it failed already (no engine)
        r = c.get(f"/Accounts/{tenant.sid}/Recordings.json", params={"CallSid": sid, "PageSize": 5})
        assert r.status_code == 200 and r.json()["recordings"] == [] and r.json()["page_size"] == 5
        xml = c.get(f"/Accounts/{tenant.sid}/Calls", headers={"Accept": "*/*"})
        assert xml.headers["content-type"] == "application/xml" and '<Calls page="0"' in xml.text
        assert f"<Sid>{sid}</Sid>" in xml.text


def test_a_callback_the_application_refuses_is_given_up_with_a_notification(tenant: Tenant,
                                                                             apps: AppServer) -> None:
    number = unique_number()
    refused = apps.route(apps.new_path("gone"), Answer("no such page", 404, "text/plain"))
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
        sid = create(c, tenant.sid, From=number, To="+15551230200", Url="http://127.0.0.1:9/r",
                     StatusCallback=refused).json()["sid"]
        apps.wait(refused.removeprefix(apps.base))
        note = wait_notification(c, tenant.sid, 11200)
        assert note["call_sid"] == sid and f"call {sid}" in note["message_text"]
        assert note["response_body"] == "no such page" and "CallStatus=failed" in note["request_variables"]
