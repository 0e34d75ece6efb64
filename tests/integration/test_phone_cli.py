"""``restcomm phone`` as a real process against real peers over loopback.

Peers: a second ``restcomm phone``, SIPp (built-in UAS with ``-rtp_echo``, a busy UAS, a UAC
scenario), baresip, and our own registrar (the real :class:`~restcomm.sip.registrar.Registrar` on a
:class:`~restcomm.sip.ua.SipStack`, since the server's registrar is wired elsewhere). Audio is proven
with the speech recognizer (tests/peers/asr.py), digits by what the far end printed or received.
Every wait is bounded and driven by the phone's own progress lines or a peer's exit.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.sdp import make_offer, parse_answer
from restcomm.media.tts import Synthesizer
from restcomm.media.wav import read_wav, write_wav
from restcomm.phone_cli import EXIT_CODES, build_parser, resolve_target, result_for_status
from restcomm.sip.registrar import MemoryBindingStore, MemoryCredentials, Registrar
from restcomm.sip.ua import IncomingCall, SipStack
from tests.peers.asr import recognize
from tests.support.ports import free_port

BENCH = Path(__file__).resolve().parents[2] / "bench" / "voice_calls.py"
SCENARIOS = Path(__file__).resolve().parent.parent / "peers" / "sipp"
SIPP = shutil.which("sipp")
BARESIP = shutil.which("baresip")
SPOKEN = "hello world please leave a message"
SAID = {"hello", "world", "leave"}
"""Content words of SPOKEN (what the phone says)."""
HEARD = {"one", "two", "three"}
"""What peers play to the phone."""
SPOKEN_WORDS = ["hello", "world", "please", "leave", "a", "message", "one", "two", "three", "goodbye", "sales"]


class Phone:
    """One ``restcomm phone`` process; its progress lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str, cwd: Path) -> Phone:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "restcomm", "phone", *args, cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return cls(proc)

    async def wait_line(self, text: str, timeout: float = 15) -> str:  # noqa: ASYNC109 - bounded wait
        for line in self.lines:
            if text in line:
                return line
        assert self.proc.stdout is not None

        async def read() -> str:
            assert self.proc.stdout is not None
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"phone exited before {text!r}: {self.lines}")
                line = raw.decode().rstrip()
                self.lines.append(line)
                if text in line:
                    return line

        return await asyncio.wait_for(read(), timeout)

    async def finish(self, timeout: float = 30) -> int:  # noqa: ASYNC109 - bounded wait
        assert self.proc.stdout is not None
        try:
            rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"phone did not finish: {self.lines}") from None
        self.lines += rest.decode().splitlines()
        return self.proc.returncode or 0

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def prompt_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WAV of espeak saying 'one two three' (what peers play to the phone)."""
    path = tmp_path_factory.mktemp("audio") / "one-two-three.wav"
    synth = Synthesizer(None)
    try:
        pcm = synth.synthesize_sync("one two three")
    finally:
        synth.close()
    path.write_bytes(write_wav(pcm + bytes(16000)))
    return path


def heard_words(path: Path) -> list[str]:
    return recognize(read_wav(path.read_bytes()), SPOKEN_WORDS)


def assert_heard(path: Path, expected: set[str], absent: set[str]) -> None:
    """The expected content words came back, and none of the distractors (the recognizer is loose
    on short function words of synthetic speech, reliable on content words)."""
    words = set(heard_words(path))
    assert expected <= words and not (absent & words), sorted(words)


# ------------------------------------------------------------------------------ pure helpers

def test_results_and_targets() -> None:
    assert [result_for_status(s) for s in (486, 600, 408, 487, 480, 603, 403, 404, 503)] == [
        "busy", "busy", "no-answer", "no-answer", "no-answer", "rejected", "rejected", "failed", "failed"]
    assert resolve_target("client:alice", "127.0.0.1:5080") == "sip:alice@127.0.0.1:5080"
    assert resolve_target("+15551234567", "10.0.0.1:5060") == "sip:+15551234567@10.0.0.1:5060"
    assert resolve_target("sip:bob@example.com", "127.0.0.1:5080") == "sip:bob@example.com"
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    args = build_parser().parse_args(["listen", "--register", "sip:alice@127.0.0.1:5080"])
    assert args.answer == "auto" and args.calls == 1


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTCOMM_PHONE_PASSWORD", "from-env")
    assert build_parser().parse_args(["dial", "client:bob"]).password == "from-env"
    assert build_parser().parse_args(["dial", "client:bob", "--password", "x"]).password == "x"


# ------------------------------------------------------------------------------ phone to phone

@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_phone_to_phone_audio_and_digits(tmp_path: Path, transport: str) -> None:
    port = free_port()
    listener = await Phone.start("listen", "--listen", f"127.0.0.1:{port}", "--record", "heard.wav", cwd=tmp_path)
    await listener.wait_line("waiting for calls")
    caller = await Phone.start("dial", f"sip:bob@127.0.0.1:{port}", "--say", SPOKEN, "--transport", transport,
                               "--digits", "12#", "--digits-delay", "0.2", cwd=tmp_path)
    assert await caller.finish() == 0, caller.text()
    assert await listener.finish() == 0, listener.text()
    out = caller.text()
    for event in ("trying sip:bob@", f"via {transport}:", "ringing", "answered (PCMU", "digits sent 12#", "hung up (local)",
                  "duration", "result completed"):
        assert event in out, out
    got = listener.text()
    assert [ln.split()[-1] for ln in listener.lines if "digit received" in ln] == ["1", "2", "#"], got
    assert "hung up (remote)" in got and "result completed" in got
    assert_heard(tmp_path / "heard.wav", SAID, HEARD)


async def test_busy_and_no_answer_exit_codes(tmp_path: Path) -> None:
    port = free_port()
    busy = await Phone.start("listen", "--listen", f"127.0.0.1:{port}", "--answer", "busy", cwd=tmp_path)
    await busy.wait_line("waiting for calls")
    caller = await Phone.start("dial", f"sip:bob@127.0.0.1:{port}", cwd=tmp_path)
    assert await caller.finish() == EXIT_CODES["busy"], caller.text()
    assert "result busy (SIP 486" in caller.text()
    assert await busy.finish() == EXIT_CODES["busy"]

    port = free_port()
    ringer = await Phone.start("listen", "--listen", f"127.0.0.1:{port}", "--answer", "never", cwd=tmp_path)
    await ringer.wait_line("waiting for calls")
    caller = await Phone.start("dial", f"sip:bob@127.0.0.1:{port}", "--timeout", "1", cwd=tmp_path)
    assert await caller.finish() == EXIT_CODES["no-answer"], caller.text()
    assert "ringing" in caller.text()
    assert await ringer.finish() == EXIT_CODES["no-answer"], ringer.text()
    assert "missed (cancel)" in ringer.text()


async def test_unreachable_is_failed(tmp_path: Path) -> None:
    caller = await Phone.start("dial", f"sip:bob@127.0.0.1:{free_port()}", "--transport", "tcp", cwd=tmp_path)
    assert await caller.finish() == EXIT_CODES["failed"], caller.text()
    assert "result failed (SIP 503" in caller.text()


# ------------------------------------------------------------------------------ registrar and digest

async def test_register_with_digest_then_take_a_call(tmp_path: Path) -> None:
    registrar = Registrar("restcomm", MemoryCredentials({"alice": "s3cret"}), MemoryBindingStore(), secret=b"k" * 16)
    invites: list[IncomingCall] = []

    async def on_invite(call: IncomingCall) -> None:  # callers must authenticate like clients do
        if await call.challenge(registrar) is None:
            return
        invites.append(call)
        await call.answer(make_offer("127.0.0.1", 30000))
        await call.ended

    server = SipStack("127.0.0.1", 0, on_invite=on_invite, on_register=registrar.handle)
    await server.start()
    ports = PortAllocator(42000, 42099)
    endpoint = await RtpEndpoint.create(ports, "127.0.0.1")
    try:
        aor = f"sip:alice@127.0.0.1:{server.local_port}"
        wrong = await Phone.start("listen", "--register", aor, "--password", "nope", cwd=tmp_path)
        assert await wrong.finish() == EXIT_CODES["error"], wrong.text()
        assert "registration refused: SIP 401" in wrong.text() or "registration refused: SIP 403" in wrong.text()

        phone = await Phone.start("--register", aor, "--password", "s3cret", "--say", SPOKEN,
                                  "--hangup-when-done", cwd=tmp_path)
        await phone.wait_line("registered (expires")
        bindings = await registrar.lookup("sip:alice@127.0.0.1")
        assert len(bindings) == 1
        call = await server.invite(bindings[0].contact, from_uri="sip:+15550001111@127.0.0.1",
                                   sdp=make_offer("127.0.0.1", endpoint.local_port))
        endpoint.set_remote(parse_answer(await call.wait_answer(10)))
        endpoint.start_recording(tmp_path / "from-phone.wav")
        assert await asyncio.wait_for(call.ended, 15) == "bye"
        await endpoint.stop_recording()
        assert await phone.finish() == 0, phone.text()
        assert "unregistered" in phone.text()
        assert await registrar.lookup("sip:alice@127.0.0.1") == []
        assert_heard(tmp_path / "from-phone.wav", SAID, HEARD)

        # dialling a number through the server, answering its digest challenge
        caller = await Phone.start("dial", "+15551234567", "--server", f"127.0.0.1:{server.local_port}",
                                   "--user", "alice", "--password", "s3cret", "--hangup-after", "0.3", cwd=tmp_path)
        assert await caller.finish() == 0, caller.text()
        assert invites and invites[-1].request.uri.user == "+15551234567"
        assert invites[-1].request.from_.uri.user == "alice"
        bad = await Phone.start("dial", "client:bob", "--server", f"127.0.0.1:{server.local_port}",
                                "--user", "alice", "--password", "nope", cwd=tmp_path)
        assert await bad.finish() in (EXIT_CODES["rejected"], EXIT_CODES["failed"]), bad.text()
        assert "SIP 40" in bad.lines[-1]
    finally:
        await endpoint.close()
        await server.stop()


# ------------------------------------------------------------------------------ SIPp

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp not installed (apt-get install sip-tester)")


async def start_sipp(*args: str, tmp: Path) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        SIPP or "sipp", "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port() // 2 * 2), "-m", "1",
        "-nostdin", "-timeout", "30s", "-timeout_error", *args, cwd=tmp,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    return proc, port


async def sipp_done(proc: asyncio.subprocess.Process) -> int:
    _, err = await asyncio.wait_for(proc.communicate(), 40)
    if proc.returncode:
        print(err.decode(errors="replace")[-2000:])
    return proc.returncode or 0


@needs_sipp
async def test_dial_sipp_uas_rtp_echo(tmp_path: Path) -> None:
    """SIPp's UAS echoes our RTP: what we recorded is what we said, through a real peer."""
    sipp, port = await start_sipp("-sn", "uas", "-rtp_echo", tmp=tmp_path)
    caller = await Phone.start("dial", f"sip:service@127.0.0.1:{port}", "--say", SPOKEN, "--record", "echo.wav",
                               "--stay", "--hangup-after", "3", cwd=tmp_path)
    assert await caller.finish() == 0, caller.text()
    assert await sipp_done(sipp) == 0
    assert_heard(tmp_path / "echo.wav", SAID, HEARD)


@needs_sipp
async def test_dial_sipp_busy(tmp_path: Path) -> None:
    sipp, port = await start_sipp("-sf", str(SCENARIOS / "uas_busy.xml"), tmp=tmp_path)
    caller = await Phone.start("dial", f"sip:service@127.0.0.1:{port}", cwd=tmp_path)
    assert await caller.finish() == EXIT_CODES["busy"], caller.text()
    assert await sipp_done(sipp) == 0


@needs_sipp
async def test_sipp_uac_calls_listening_phone(tmp_path: Path) -> None:
    port = free_port()
    phone = await Phone.start("listen", "--listen", f"127.0.0.1:{port}", cwd=tmp_path)
    await phone.wait_line("waiting for calls")
    proc = await asyncio.create_subprocess_exec(
        SIPP or "sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "uac_basic.xml"), "-s", "alice",
        "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error",
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    assert await sipp_done(proc) == 0
    assert await phone.finish() == 0, phone.text()
    assert "incoming call from sip:sipp@" in phone.text() and "hung up (remote)" in phone.text()


# ------------------------------------------------------------------------------ baresip

@pytest.mark.skipif(BARESIP is None, reason="baresip not installed (apt-get install baresip-core)")
async def test_phone_and_baresip_hear_each_other(tmp_path: Path, prompt_wav: Path) -> None:
    from tests.peers.baresip import Baresip

    with Baresip(tmp_path / "bob", "bob", prompt_wav) as bob:
        caller = await Phone.start("dial", f"sip:bob@127.0.0.1:{bob.port}", "--say", SPOKEN,
                                   "--record", "from-baresip.wav", "--stay", "--hangup-after", "3",
                                   "--digits", "5", "--digits-delay", "0.1", cwd=tmp_path)
        assert await caller.finish() == 0, caller.text()
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
        assert_heard(bob.heard(), SAID, HEARD)
    assert_heard(tmp_path / "from-baresip.wav", HEARD, SAID)


@pytest.mark.skipif(BARESIP is None, reason="baresip not installed (apt-get install baresip-core)")
async def test_baresip_calls_phone_with_digits(tmp_path: Path, prompt_wav: Path) -> None:
    from tests.peers.baresip import Baresip

    port = free_port()
    phone = await Phone.start("listen", "--listen", f"127.0.0.1:{port}", "--record", "heard.wav",
                              "--hangup-after", "3", cwd=tmp_path)
    await phone.wait_line("waiting for calls")
    with Baresip(tmp_path / "carol", "carol", prompt_wav) as carol:
        carol.dial(f"sip:alice@127.0.0.1:{port}")
        await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED")
        await phone.wait_line("answered")
        await asyncio.to_thread(carol.send_digits, "42")
        await phone.wait_line("digit received 2")
        assert await phone.finish() == 0, phone.text()
        await asyncio.to_thread(carol.wait_event, "CALL_CLOSED")
    assert [ln.split()[-1] for ln in phone.lines if "digit received" in ln] == ["4", "2"]
    assert_heard(tmp_path / "heard.wav", HEARD, SAID)


# ------------------------------------------------------------------------------ the voice bench's baseline

async def test_phone_against_the_bench_baseline_uas(tmp_path: Path) -> None:
    """bench/voice_calls.py's baseline responder answers, echoes RTP and hangs up at the end of
    the first RFC 4733 digit: checked with the phone, so the bench's ceiling is a real call."""
    port = free_port()
    uas = await asyncio.create_subprocess_exec(sys.executable, str(BENCH), "baseline-uas", "--port", str(port))
    try:
        caller = None
        for _ in range(50):  # bounded: until the responder's socket is bound
            caller = await Phone.start("dial", f"sip:+15550000100@127.0.0.1:{port}", "--say", SPOKEN,
                                       "--record", "echo.wav", "--digits", "1", "--digits-delay", "0",
                                       "--stay", "--hangup-after", "10", "--timeout", "2", cwd=tmp_path)
            if await caller.finish() != EXIT_CODES["no-answer"]:
                break
        assert caller is not None and caller.proc.returncode == 0, caller.text() if caller else ""
        assert "hung up (remote)" in caller.text()
        # the echoed digit ends the recording; the recognizer hears its tone as a stray word
        assert_heard(tmp_path / "echo.wav", SAID, set())
    finally:
        uas.terminate()
        await uas.wait()


async def test_listener_takes_several_calls_and_refuses_a_second_at_once(tmp_path: Path) -> None:
    port = free_port()
    listener = await Phone.start("listen", "--listen", f"127.0.0.1:{port}", "--calls", "2", "--record", "in.wav",
                                 cwd=tmp_path)
    await listener.wait_line("waiting for calls")
    first = await Phone.start("dial", f"sip:bob@127.0.0.1:{port}", "--hangup-after", "3", cwd=tmp_path)
    await listener.wait_line("answered")
    meanwhile = await Phone.start("dial", f"sip:bob@127.0.0.1:{port}", cwd=tmp_path)
    assert await meanwhile.finish() == EXIT_CODES["busy"], meanwhile.text()
    assert await first.finish() == 0, first.text()
    second = await Phone.start("dial", f"sip:bob@127.0.0.1:{port}", "--hangup-after", "0.5", cwd=tmp_path)
    assert await second.finish() == 0, second.text()
    assert await listener.finish() == 0, listener.text()
    assert listener.text().count("result completed") == 2
    assert (tmp_path / "in.wav").exists() and (tmp_path / "in-2.wav").exists()
