"""A node killed mid-call: its call does not stay ``in-progress`` for ever.

The node that runs a call holds a lease on the call's row and renews it; killed (SIGKILL, nothing
runs on the way out), it stops renewing, and another node (here: the restarted one, on the same
database) closes the call with a reason, a 19102 notification and its ``completed`` callback.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from restcomm.voice import store
from tests.conftest import free_port
from tests.integration.hardened_server import launch
from tests.integration.sms_app import Answer, notifications, wait_until
from tests.integration.voice_peers import (
    SCENARIOS,
    SIPP,
    TRUNK_HOST,
    VOICE_CONFIG,
    VoiceServer,
    in_db,
    require,
    run_sipp,
    sip_port,
    start_voice_server,
)

FAST_RECOVERY = VOICE_CONFIG.replace("[voice]\ncall_lease = 6", "[voice]\ncall_lease = 2\nrecovery_interval = 0.5")


@pytest.fixture(params=["sqlite", "postgres"])
def vs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path, request.param, config=FAST_RECOVERY)
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def test_call_of_a_killed_node_is_closed_by_the_next(vs: VoiceServer, tmp_path: Path) -> None:
    require(SIPP, "sipp (Debian sip-tester)")
    status = vs.app.new_path("status")
    vs.app.route(status, Answer("", 204, "text/plain"))
    path = vs.app.new_path("long")
    vs.app.route(path, Answer('<Response><Say>hold on</Say><Pause length="60"/></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path), StatusCallback=vs.app.url(status))
    sipp = subprocess.Popen(
        [SIPP or "sipp", f"127.0.0.1:{vs.sip_port}", "-sf", str(SCENARIOS / "uac_wait_bye.xml"), "-s", number,
         "-i", TRUNK_HOST, "-p", str(free_port()), "-m", "1", "-nostdin", "-timeout", "40s"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        call = vs.wait_call(number, {"in-progress"})
        assert vs.srv.proc is not None
        vs.srv.proc.kill()  # SIGKILL: no hang-up, no final status written
        vs.srv.proc.wait(10)
        env = {"RESTCOMM_SIP_LISTEN": f"127.0.0.1:{sip_port()}"}
        if "RESTCOMM_DATABASE_URL" in vs.srv.env:
            env["RESTCOMM_DATABASE_URL"] = vs.srv.env["RESTCOMM_DATABASE_URL"]
        # the same data directory and database, as a restarted node (or any other node) has
        second = launch(Path(vs.srv.env["RESTCOMM_DATA_DIR"]), config=FAST_RECOVERY, env=env)
        second.db_name, vs.srv = vs.srv.db_name, second  # closing it drops the database
        closed = vs.wait_call(number, {"completed", "failed"}, timeout=20)
        assert closed["sid"] == call["sid"] and closed["status"] == "completed"
        with vs.client() as c:
            found = wait_until(lambda: [n for n in notifications(c, vs.account_sid, ErrorCode="19102")
                                        if n.get("call_sid") == call["sid"]], bool, 10, "notification 19102")
        assert found
        (cb,) = vs.app.wait(status, 1)
        assert cb.params["CallStatus"] == "completed"
    finally:
        sipp.kill()
        sipp.wait(10)


def test_a_stopping_node_hangs_up_and_records_the_end(vs: VoiceServer, tmp_path: Path) -> None:
    """SIGTERM mid-call: the caller gets a BYE and the call is recorded completed before exit,
    so nothing is left for recovery."""
    require(SIPP, "sipp (Debian sip-tester)")
    path = vs.app.new_path("long")
    vs.app.route(path, Answer('<Response><Say>hold on</Say><Pause length="60"/></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path))
    sipp = subprocess.Popen(
        [SIPP or "sipp", f"127.0.0.1:{vs.sip_port}", "-sf", str(SCENARIOS / "uac_wait_bye.xml"), "-s", number,
         "-i", TRUNK_HOST, "-p", str(free_port()), "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        call = vs.wait_call(number, {"in-progress"})
        assert vs.srv.proc is not None
        vs.srv.proc.send_signal(signal.SIGTERM)
        vs.srv.proc.wait(30)
        assert sipp.wait(20) == 0  # it received our BYE and answered it
        row = in_db(vs, lambda conn: store.get_call(conn, call["sid"]))
        assert row["status"] == "completed" and row["node"] is None
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait(10)


def test_a_live_call_outlasts_its_lease(vs: VoiceServer) -> None:
    """The node renews its calls' leases: a call three times longer than the lease is not closed
    by recovery (which sweeps every half second here) and ends normally."""
    path = vs.app.new_path("long")
    vs.app.route(path, Answer('<Response><Say>hold on</Say><Pause length="6"/><Hangup/></Response>'))
    number = vs.number(VoiceUrl=vs.app.url(path))
    rc, trace = run_sipp(vs, "uac_wait_bye.xml", number)
    assert rc == 0, trace[-3000:]
    call = vs.wait_call(number, {"completed", "failed"})
    assert call["status"] == "completed" and int(call["duration"]) >= 6
    with vs.client() as c:
        assert [n for n in notifications(c, vs.account_sid, ErrorCode="19102") if n.get("call_sid") == call["sid"]] == []
