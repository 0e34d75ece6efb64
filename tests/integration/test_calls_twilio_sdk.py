"""Twilio's Python SDK drives the Calls and Recordings resources with only its base URL changed."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from restcomm.voice import store as vs
from tests.support.server import Server, Tenant
from tests.support.sms_app import add_number, unique_number
from tests.support.voice_db import run_in_db


def twilio_client(server: Server, tenant: Tenant) -> Client:
    client = Client(tenant.sid, tenant.token)
    client.api.base_url = server.base_url  # the only change
    return client


def test_calls_create_list_fetch_update(server: Server, tenant: Tenant) -> None:
    number = unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
    client = twilio_client(server, tenant)
    to = unique_number()
    call = client.calls.create(to=to, from_=number, url="http://127.0.0.1:9/rcml", timeout=20,
                               status_callback="http://127.0.0.1:9/status",
                               status_callback_event=["initiated", "ringing", "answered", "completed"])
    assert call.sid.startswith("CA") and call.status == "queued" and call.direction == "outbound-api"
    assert call.to == to and call._from == number and call.api_version == "2010-04-01"
    assert call.uri == f"/2010-04-01/Accounts/{tenant.sid}/Calls/{call.sid}.json"
    assert isinstance(call.date_created, datetime)
    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "failed" and fetched.duration == "0" and isinstance(fetched.end_time, datetime)
    others = [client.calls.create(to=unique_number(), from_=number, url="http://127.0.0.1:9/r") for _ in range(3)]
    listed = client.calls.list(from_=number, page_size=2)  # follows next_page_uri
    assert {x.sid for x in listed} == {call.sid, *(o.sid for o in others)}
    assert [x.sid for x in client.calls.list(to=to)] == [call.sid]  # Twilio: exact match
    assert client.calls.list(to=to[-6:]) == []
    assert len(client.calls.list(status="failed", limit=2)) == 2
    now = datetime.now(UTC)
    assert len(client.calls.list(from_=number, start_time_after=now - timedelta(hours=1))) == 4
    assert client.calls.list(from_=number, start_time_after=now + timedelta(hours=1)) == []
    assert len(client.calls.list(from_=number, start_time_before=now + timedelta(hours=1))) == 4
    assert len(client.calls.list(from_=number, end_time=now.date())) == 4
    with pytest.raises(TwilioRestException) as err:
        client.calls(call.sid).update(status="completed")
    assert err.value.status == 400 and err.value.code == 21220
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to=to, from_="+15550000000", url="http://127.0.0.1:9/r")
    assert err.value.code == 21210
    # A queued call nobody placed yet: update works on the record.
    t0 = datetime.now(UTC).replace(tzinfo=None)
    queued = run_in_db(server, lambda conn: vs.create_call(conn, t0, account_sid=tenant.sid, from_number=number,
                                                           to_number=to, direction="outbound-api"))
    updated = client.calls(queued["sid"]).update(url="http://127.0.0.1:9/next", method="GET")
    assert updated.status == "queued"
    assert client.calls(queued["sid"]).update(status="canceled").status == "canceled"


def _write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00\xf0\xff" * int(4000 * seconds))


def test_recordings(server: Server, tenant: Tenant) -> None:
    number = unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, number)
    now = datetime.now(UTC).replace(tzinfo=None)

    async def record(conn: AsyncConnection) -> tuple[str, list[str]]:
        call = await vs.create_call(conn, now, account_sid=tenant.sid, from_number=number, to_number="+15551230100",
                                    direction="inbound", status=vs.RINGING)
        sids = []
        for i in range(2):
            rel = f"recordings/{tenant.sid}-{i}.wav"
            rec = await vs.create_recording(conn, now + timedelta(seconds=i), account_sid=tenant.sid,
                                            call_sid=call["sid"], file_path=rel)
            await vs.finish_recording(conn, rec["sid"], now, duration=2.4)
            sids.append(rec["sid"])
        return call["sid"], sids

    for i in range(2):
        _write_wav(server.data_dir / "recordings" / f"{tenant.sid}-{i}.wav", 2.4)
    call_sid, (first, second) = run_in_db(server, record)
    with tenant.client() as c:
        page = c.get(f"/Accounts/{tenant.sid}/Recordings.json").json()
        assert page["total"] == 2 and [r["sid"] for r in page["recordings"]] == [second, first]
        rec = c.get(f"/Accounts/{tenant.sid}/Recordings/{first}.json").json()
        assert rec["call_sid"] == call_sid and rec["duration"] == "2.0" and rec["status"] == "completed"
        assert rec["file_uri"] == f"{server.base_url}/restcomm/2012-04-24/Accounts/{tenant.sid}/Recordings/{first}.wav"
        per_call = c.get(f"/Accounts/{tenant.sid}/Calls/{call_sid}/Recordings.json").json()
        assert {r["sid"] for r in per_call} == {first, second}
        assert c.get(f"/Accounts/{tenant.sid}/Recordings.json", params={"CallSid": call_sid}).json()["total"] == 2
    # The audio needs no credentials (as at Restcomm and Twilio); the metadata does.
    import httpx

    with httpx.Client(base_url=server.base_url, timeout=30) as anon:
        wav = anon.get(f"/restcomm/2012-04-24/Accounts/{tenant.sid}/Recordings/{first}.wav")
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/x-wav" and wav.content[:4] == b"RIFF"
        mp3 = anon.get(f"/2010-04-01/Accounts/{tenant.sid}/Recordings/{first}.mp3")
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        assert mp3.content[:3] == b"ID3" or mp3.content[0] == 0xFF
        assert anon.get(f"/restcomm/2012-04-24/Accounts/{tenant.sid}/Recordings/{first}.json").status_code == 401
        assert anon.get(f"/restcomm/2012-04-24/Accounts/{tenant.sid}/Recordings/RE{'0' * 32}.wav").status_code == 404
    client = twilio_client(server, tenant)
    recs = client.recordings.list()
    assert {r.sid for r in recs} == {first, second} and recs[0].call_sid == call_sid
    fetched = client.recordings(first).fetch()
    assert fetched.duration == "2" and fetched.status == "completed" and fetched.channels == 1
    assert {r.sid for r in client.calls(call_sid).recordings.list()} == {first, second}
    with tenant.client() as c:
        usage = c.get(f"/Accounts/{tenant.sid}/Usage/Records.json", params={"Category": "recordings"}).json()
        assert [(u["count"], u["usage"], u["usage_unit"]) for u in usage] == [("2", "2", "minutes")]
    assert client.recordings(first).delete() is True
    assert not (server.data_dir / "recordings" / f"{tenant.sid}-0.wav").exists()
    with tenant.client() as c:
        assert c.get(f"/Accounts/{tenant.sid}/Recordings/{first}.json").status_code == 404
        assert c.delete(f"/Accounts/{tenant.sid}/Recordings/{second}.json").status_code == 200
        assert c.get(f"/Accounts/{tenant.sid}/Recordings.json").json()["total"] == 0
