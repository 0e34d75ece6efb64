"""The asyncio SipStack against SIPp (Debian ``sip-tester``) over real loopback sockets.

Our side is the real stack with in-memory stores; the peer is a SIPp process running the scenarios
in tests/peers/sipp/ (or its built-in ``uas``). Timers are shortened with ``Timers(t1=...)`` where
a test waits for 64*T1, so no test sleeps for timing: each waits on a call's futures or on SIPp's
exit, with a bound.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from restcomm.sip.message import Request
from restcomm.sip.registrar import MemoryBindingStore, MemoryCredentials, Registrar
from restcomm.sip.transaction import Timers
from restcomm.sip.ua import CallFailed, IncomingCall, SipStack
from tests.conftest import IN_CI, free_port

SCENARIOS = Path(__file__).resolve().parent.parent / "peers" / "sipp"
SIPP = shutil.which("sipp")

if SIPP is None:
    if IN_CI:
        raise RuntimeError("sipp (Debian package sip-tester) is required in CI")
    pytest.skip("sipp not installed (apt-get install sip-tester)", allow_module_level=True)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"


async def run_sipp(*args: str, tmp: Path, target: str | None = None, limit: float = 30) -> tuple[int, str]:
    """Run one SIPp call; returns (exit code, message trace)."""
    trace = tmp / f"sipp-{free_port()}.log"
    cmd = [SIPP or "sipp"]
    if target:
        cmd.append(target)
    cmd += ["-i", "127.0.0.1", "-m", "1", "-nostdin", "-mp", str(free_port()),
            "-timeout", f"{int(limit)}s", "-timeout_error", "-trace_msg", "-message_file", str(trace), *args]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, cwd=tmp)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), limit + 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = trace.read_text(errors="replace") if trace.exists() else ""
    if proc.returncode != 0:
        print(err.decode(errors="replace")[-2000:])
        print(text[-4000:])
    return proc.returncode or 0, text


async def start_stack(on_invite, **kw) -> SipStack:  # type: ignore[no-untyped-def]
    stack = SipStack("127.0.0.1", 0, on_invite=on_invite, **kw)
    await stack.start()
    return stack


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_uac_call_answer_and_bye(tmp_path: Path, transport: str) -> None:
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    calls: list[IncomingCall] = []

    async def on_invite(call: IncomingCall) -> None:
        calls.append(call)
        await call.ringing()
        await call.answer(SDP)
        ended.set_result(await call.ended)

    stack = await start_stack(on_invite)
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_basic.xml"), "-s", "alice", "-t", transport,
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert await asyncio.wait_for(ended, 5) == "bye"
        assert len(calls) == 1 and "m=audio" in calls[0].sdp
        assert "SIP/2.0 180 Ringing" in trace
    finally:
        await stack.stop()


async def test_retransmitted_invite_reaches_on_invite_once(tmp_path: Path) -> None:
    """No automatic 100 Trying, and the app rings only after SIPp retransmitted the INVITE."""
    calls: list[IncomingCall] = []
    seen = asyncio.Event()
    invites = 0

    async def on_invite(call: IncomingCall) -> None:
        calls.append(call)
        await asyncio.wait_for(seen.wait(), 10)  # the second copy of the INVITE reached the socket
        await call.ringing()
        await call.answer(SDP)
        await call.ended

    stack = await start_stack(on_invite, send_trying=False)
    inner = stack.transport.on_message

    def counting(msg, peer):  # type: ignore[no-untyped-def]
        nonlocal invites
        if isinstance(msg, Request) and msg.method == "INVITE":
            invites += 1
            if invites >= 2:
                seen.set()
        inner(msg, peer)

    stack.transport.on_message = counting
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_basic.xml"), "-s", "bob",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert invites >= 2 and len(calls) == 1
    finally:
        await stack.stop()


async def test_200_is_retransmitted_until_the_late_ack(tmp_path: Path) -> None:
    answered = asyncio.Event()

    async def on_invite(call: IncomingCall) -> None:
        await call.answer(SDP)  # returns only when the (late) ACK arrives
        answered.set()
        await call.ended

    stack = await start_stack(on_invite)
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_late_ack.xml"), "-s", "carol",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert answered.is_set()
        # SIPp logs every 200 it received: the first plus retransmissions at T1 and 3*T1 (< 1.6 s pause)
        assert trace.count("SIP/2.0 200 OK") >= 3, trace
    finally:
        await stack.stop()


async def test_never_acked_200_gives_up_and_sends_bye(tmp_path: Path) -> None:
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def on_invite(call: IncomingCall) -> None:
        try:
            await call.answer(SDP)
            outcome.set_result("answered")
        except CallFailed as exc:
            outcome.set_result(exc.status)

    stack = await start_stack(on_invite, timers=Timers(t1=0.05, t2=0.4))
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_no_ack.xml"), "-s", "dave",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert await asyncio.wait_for(outcome, 5) == 408
        assert "BYE sip:" in trace
    finally:
        await stack.stop()


async def test_cancel_before_answer_ends_the_call_with_cancel(tmp_path: Path) -> None:
    reason: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_invite(call: IncomingCall) -> None:
        await call.ringing()
        reason.set_result(await call.ended)

    stack = await start_stack(on_invite)
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_cancel.xml"), "-s", "erin",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert await asyncio.wait_for(reason, 5) == "cancel"
        assert "SIP/2.0 487" in trace
    finally:
        await stack.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_outgoing_call_to_sipp_uas(tmp_path: Path, transport: str) -> None:
    async def no_calls(call: IncomingCall) -> None:
        await call.reject(403)

    stack = await start_stack(no_calls)
    port = free_port()
    try:
        sipp = asyncio.create_task(run_sipp("-sn", "uas", "-p", str(port), "-t", transport[0] + "1",
                                            tmp=tmp_path))
        if transport == "tcp":  # a refused TCP connect fails the call at once (503): wait until SIPp listens
            for _ in range(100):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        # over UDP no readiness probe is needed: Timer A retransmits the INVITE until SIPp listens
        call = await stack.invite(f"sip:uas@127.0.0.1:{port};transport={transport}",
                                  from_uri="sip:restcomm@127.0.0.1", sdp=SDP)
        answer = await call.wait_answer(15)
        assert "m=audio" in answer and call.ringing.is_set()
        await call.bye()
        rc, trace = await asyncio.wait_for(sipp, 30)
        assert rc == 0, trace[-3000:]
        assert "ACK sip:" in trace and "BYE sip:" in trace
        assert call.ended.result() == "local"
    finally:
        await stack.stop()


async def test_register_with_digest_from_sipp(tmp_path: Path) -> None:
    store = MemoryBindingStore()
    # default challenge order (MD5 first): SIPp 3.6.1 only answers MD5
    registrar = Registrar("127.0.0.1", MemoryCredentials({"alice": "s3cret"}, account="AC1"), store,
                          secret=b"k" * 32)

    async def no_calls(call: IncomingCall) -> None:
        await call.reject(403)

    stack = await start_stack(no_calls, on_register=registrar.handle)
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_register.xml"), "-s", "alice",
                                   "-au", "alice", "-ap", "s3cret",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        bindings = await registrar.lookup("sip:alice@127.0.0.1")
        assert len(bindings) == 1 and bindings[0].account == "AC1"
    finally:
        await stack.stop()


async def test_register_with_wrong_password_is_refused(tmp_path: Path) -> None:
    registrar = Registrar("127.0.0.1", MemoryCredentials({"alice": "s3cret"}), MemoryBindingStore(),
                          secret=b"k" * 32, algorithms=("MD5",))

    async def no_calls(call: IncomingCall) -> None:
        await call.reject(403)

    stack = await start_stack(no_calls, on_register=registrar.handle)
    try:
        rc, _ = await run_sipp("-sf", str(SCENARIOS / "uac_register.xml"), "-s", "alice",
                               "-au", "alice", "-ap", "wrong", target=f"127.0.0.1:{stack.local_port}",
                               tmp=tmp_path, limit=5)
        assert rc != 0
        assert await registrar.lookup("sip:alice@127.0.0.1") == []
    finally:
        await stack.stop()


async def test_info_dtmf_from_sipp_reaches_the_callback(tmp_path: Path) -> None:
    digits: list[str] = []
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_invite(call: IncomingCall) -> None:
        call.on_info(digits.append)
        await call.answer(SDP)
        ended.set_result(await call.ended)

    stack = await start_stack(on_invite)
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "uac_info.xml"), "-s", "frank",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert await asyncio.wait_for(ended, 5) == "bye"
        assert digits == ["4", "#"]
    finally:
        await stack.stop()


async def test_options_from_sipp_answered_200(tmp_path: Path) -> None:
    async def no_calls(call: IncomingCall) -> None:
        await call.reject(403)

    stack = await start_stack(no_calls)
    try:
        rc, trace = await run_sipp("-sf", str(SCENARIOS / "options.xml"), "-s", "x",
                                   target=f"127.0.0.1:{stack.local_port}", tmp=tmp_path)
        assert rc == 0, trace[-3000:]
        assert "Allow: INVITE" in trace
    finally:
        await stack.stop()
