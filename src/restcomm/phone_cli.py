"""``restcomm phone``: a command-line softphone, a way to try voice without a phone.

What ``restcomm smsc-sim`` is for SMS, this is for voice: it speaks SIP and RTP with the project's
own :mod:`restcomm.sip` and :mod:`restcomm.media` packages, so trying a voice application (or
debugging a trunk) needs nothing but the pip install. Two modes:

* ``restcomm phone dial TARGET`` places one call: to a SIP URI, to ``client:alice`` or to a number
  (both through ``--server``, default the server's SIP address ``127.0.0.1:5080``), answering a
  digest challenge with ``--user``/``--password``;
* ``restcomm phone listen`` waits for calls, on its own address or after registering as a client
  (``--register sip:alice@127.0.0.1:5080 --password ...``), and answers them (or not: ``--answer``).

In a call it can play a WAV/MP3 (``--play``) or speak text (``--say``, offline espeak-ng through
:mod:`restcomm.media.tts`), send RFC 4733 digits (``--digits``), record what it hears
(``--record``) and print the digits it receives. It prints the call's progress one line per event,
prefixed with the seconds since start, and exits with a status that says how the call ended
(:data:`EXIT_CODES`), so scripts and tests can rely on it.

Only loopback/LAN use is intended: no NAT traversal, no SRTP, no TLS, G.711 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from restcomm.media.audiofile import AudioFormatError, decode_audio
from restcomm.media.endpoint import RtpEndpoint
from restcomm.media.ports import PortAllocator
from restcomm.media.sdp import SdpError, make_offer, negotiate, parse_answer
from restcomm.sip.message import SipError, parse_address, parse_uri
from restcomm.sip.ua import CallFailed, IncomingCall, OutgoingCall, Registration, SipStack

__all__ = ["EXIT_CODES", "main", "result_for_status"]

EXIT_CODES: dict[str, int] = {
    "completed": 0,  # answered, then ended by either side
    "error": 1,  # the phone itself could not work (bad file, port in use, registration refused)
    # 2 is argparse's usage error
    "busy": 3,  # 486 Busy Here, 600 Busy Everywhere
    "no-answer": 4,  # 408/480/487, our --timeout, or an incoming call cancelled before we answered
    "rejected": 5,  # 403, 603 Decline
    "failed": 6,  # any other final status, or unreachable
    "canceled": 7,  # we gave up (Ctrl-C) before the call ended on its own
}
"""Exit status per result; the last line printed is ``result <name>``."""

DEFAULT_SERVER = "127.0.0.1:5080"
PCM_BYTES_PER_SECOND = 8000 * 2  # linear PCM, 8 kHz, 16-bit


def result_for_status(status: int) -> str:
    """A SIP final status of a call that was never answered, as a Twilio-like call result."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):
        return "no-answer"
    if status in (403, 603):
        return "rejected"
    return "failed"


class Progress:
    """Prints ``[  1.234] event`` lines (seconds since start), flushed at once so a pipe sees them live."""

    def __init__(self, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stdout
        self.clock = clock
        self.t0 = clock()

    def __call__(self, message: str) -> None:
        print(f"[{self.clock() - self.t0:7.3f}] {message}", file=self.out, flush=True)


@dataclass
class CallPlan:
    """What to do once a call is up (shared by both modes)."""

    audio: bytes = b""
    audio_label: str = ""
    digits: str = ""
    digits_delay: float = 1.0
    record: Path | None = None
    hangup_after: float | None = None
    hangup_when_done: bool = False


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return text.strip("[]"), default_port
    return host.strip("[]"), int(port)


def resolve_target(target: str, server: str) -> str:
    """``sip:``/``sips:`` URIs as given; ``client:alice`` and numbers become URIs at ``server``."""
    if target.lower().startswith(("sip:", "sips:")):
        return target
    user = target[len("client:"):] if target.lower().startswith("client:") else target
    return f"sip:{user}@{server}"


async def _load_audio(args: argparse.Namespace, progress: Progress) -> tuple[bytes, str]:
    """The PCM to send into the call: the ``--play`` file, then the ``--say`` text."""
    pcm = b""
    labels = []
    if args.play:
        pcm += decode_audio(await asyncio.to_thread(Path(args.play).read_bytes))
        labels.append(args.play)
    if args.say:
        from restcomm.media.tts import Synthesizer

        synth = Synthesizer(None)
        try:
            pcm += await synth.synthesize(args.say, args.voice, args.language)
        finally:
            synth.close()
        labels.append(repr(args.say))
    if labels:
        progress(f"audio ready: {' + '.join(labels)} ({len(pcm) / PCM_BYTES_PER_SECOND:.1f} s)")
    return pcm, " + ".join(labels)


class CallRunner:
    """Drives the media side of one established call and decides when it ends."""

    def __init__(self, call: IncomingCall | OutgoingCall, endpoint: RtpEndpoint, plan: CallPlan,
                 progress: Progress, stop: asyncio.Event) -> None:
        self.call = call
        self.endpoint = endpoint
        self.plan = plan
        self.progress = progress
        self.stop = stop
        self.digits_received = ""

    async def _receive_digits(self) -> None:
        while True:
            digit = await self.endpoint.digits.get()
            self.digits_received += digit
            self.progress(f"digit received {digit}")

    async def _send(self) -> None:
        plan = self.plan
        digits_task = None
        if plan.digits:
            digits_task = asyncio.create_task(self._send_digits())
        if plan.audio:
            self.progress(f"playing {plan.audio_label}")
            if await self.endpoint.play(plan.audio):
                self.progress("played")
        if digits_task is not None:
            await digits_task

    async def _send_digits(self) -> None:
        await asyncio.sleep(self.plan.digits_delay)
        # the endpoint serialises sending: digits follow any audio still playing
        await self.endpoint.send_digits(self.plan.digits)
        self.progress(f"digits sent {self.plan.digits}")

    async def run(self) -> str:
        """Run until the far end hangs up, --hangup-after, the media is done (if asked), or Ctrl-C.
        Returns who hung up: "remote" or "local"."""
        plan = self.plan
        self.call.on_info(self.endpoint.feed_digit)
        if plan.record is not None:
            self.endpoint.start_recording(plan.record)
        receiver = asyncio.create_task(self._receive_digits())
        sender = asyncio.create_task(self._send())
        stopper = asyncio.create_task(self.stop.wait())
        waits: set[asyncio.Future[object]] = {self.call.ended, stopper}  # type: ignore[arg-type]
        timer = None
        if plan.hangup_after is not None:
            timer = asyncio.create_task(asyncio.sleep(plan.hangup_after))
            waits.add(timer)
        if plan.hangup_when_done:
            waits.add(sender)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, sender, stopper, timer):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if self.call.ended.done() and self.call.ended.result() != "local":
            return "remote"
        await self.call.bye()
        return "local"

    async def finish(self) -> None:
        stats = self.endpoint.stats
        if self.plan.record is not None and self.endpoint.recording:
            seconds = await self.endpoint.stop_recording()
            self.progress(f"recorded {seconds:.1f} s to {self.plan.record}")
        self.progress(f"rtp sent {stats['sent']} received {stats['received']} packets")
        await self.endpoint.close()


def _plan(args: argparse.Namespace, audio: bytes, label: str, *, when_done: bool, record: Path | None) -> CallPlan:
    return CallPlan(audio=audio, audio_label=label, digits=args.digits or "", digits_delay=args.digits_delay,
                    record=record, hangup_after=args.hangup_after, hangup_when_done=when_done)


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _start_stack(args: argparse.Namespace, on_invite: Callable[[IncomingCall], object]) -> SipStack:
    host, port = _hostport(args.listen, 0)
    stack = SipStack(host, port, on_invite=on_invite, user_agent="restcomm-phone")  # type: ignore[arg-type]
    await stack.start()
    return stack


async def _endpoint(args: argparse.Namespace, stack: SipStack) -> RtpEndpoint:
    return await RtpEndpoint.create(PortAllocator.parse(args.rtp_ports), args.media_address or stack.local_host)


def _end(progress: Progress, result: str, detail: str = "") -> int:
    progress(f"result {result}{' (' + detail + ')' if detail else ''}")
    return EXIT_CODES[result]


# --------------------------------------------------------------------------------------- dial

async def dial(args: argparse.Namespace, progress: Progress | None = None) -> int:
    progress = progress or Progress()
    stop = asyncio.Event()
    _install_stop(stop)
    try:
        audio, label = await _load_audio(args, progress)
    except (OSError, AudioFormatError) as exc:
        return _end(progress, "error", str(exc))

    async def busy(call: IncomingCall) -> None:  # a dialling phone takes no calls
        await call.reject(486)

    stack = await _start_stack(args, busy)
    endpoint = None
    try:
        endpoint = await _endpoint(args, stack)
        target = resolve_target(args.target, args.server)
        ruri = parse_uri(target)
        transport = args.transport.upper()
        if args.server_given or not args.target.lower().startswith(("sip:", "sips:")):
            dest = (transport, *_hostport(args.server, 5060))
        else:
            dest = (transport, ruri.host.strip("[]"), ruri.port or 5060)
        user = args.user or "phone"
        from_uri = args.from_uri or f"sip:{user}@{dest[1]}:{dest[2]}"
        credentials = (args.auth_user or user, args.password) if args.password is not None else None
        offer = make_offer(endpoint.local_address, endpoint.local_port)
        progress(f"trying {target} from {from_uri} via {dest[0].lower()}:{dest[1]}:{dest[2]}")
        call = await stack.invite(target, from_uri=from_uri, sdp=offer, destination=dest,  # type: ignore[arg-type]
                                  credentials=credentials)

        async def ringing() -> None:
            await call.ringing.wait()
            progress("ringing")

        ring_task = asyncio.create_task(ringing())
        answer_task = asyncio.create_task(call.wait_answer(args.timeout))
        stop_task = asyncio.create_task(stop.wait())
        await asyncio.wait({answer_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        ring_task.cancel()
        if not answer_task.done():
            progress("cancelling")
            await call.cancel()
            with contextlib.suppress(CallFailed, asyncio.TimeoutError):
                await asyncio.wait_for(answer_task, 5)
            return _end(progress, "canceled")
        stop_task.cancel()
        try:
            remote_sdp = answer_task.result()
        except CallFailed as exc:
            return _end(progress, result_for_status(exc.status), f"SIP {exc.status} {exc.reason}".strip())
        try:
            answer = parse_answer(remote_sdp)
        except SdpError as exc:
            await call.bye()
            return _end(progress, "failed", f"unusable answer SDP: {exc}")
        endpoint.set_remote(answer)
        answered_at = time.monotonic()
        progress(f"answered ({answer.codec.name}, media {answer.remote_addr[0]}:{answer.remote_addr[1]})")
        record = Path(args.record) if args.record else None
        runner = CallRunner(call, endpoint, _plan(args, audio, label, when_done=bool(audio or args.digits) and not args.stay,
                                                  record=record), progress, stop)
        who = await runner.run()
        progress(f"hung up ({who})")
        progress(f"duration {time.monotonic() - answered_at:.1f} s")
        await runner.finish()
        endpoint = None
        return _end(progress, "canceled" if stop.is_set() else "completed")
    except (OSError, SipError, SdpError) as exc:
        return _end(progress, "error", str(exc))
    finally:
        if endpoint is not None:
            await endpoint.close()
        await stack.stop()


# --------------------------------------------------------------------------------------- listen

class Listener:
    """Takes calls one at a time (a second caller meanwhile gets 486) and counts them."""

    def __init__(self, args: argparse.Namespace, progress: Progress, stop: asyncio.Event,
                 audio: bytes, label: str) -> None:
        self.args = args
        self.progress = progress
        self.stop = stop
        self.audio = audio
        self.label = label
        self.stack: SipStack | None = None
        self.busy = False
        self.taken = 0
        self.last_result = "no-answer"
        self.call_done = asyncio.Event()

    def _record_path(self) -> Path | None:
        if not self.args.record:
            return None
        path = Path(self.args.record)
        return path if self.taken == 1 else path.with_name(f"{path.stem}-{self.taken}{path.suffix}")

    async def on_invite(self, call: IncomingCall) -> None:
        if self.busy:
            await call.reject(486)
            return
        self.busy = True
        self.taken += 1
        try:
            self.last_result = await self._take(call)
        finally:
            self.busy = False
            self.progress(f"result {self.last_result}")
            self.call_done.set()

    async def _take(self, call: IncomingCall) -> str:
        args, progress = self.args, self.progress
        assert self.stack is not None
        req = call.request
        progress(f"incoming call from {req.from_.uri} to {req.to.uri}")
        try:
            endpoint = await _endpoint(args, self.stack)
        except OSError as exc:
            await call.reject(503)
            progress(f"no media port: {exc}")
            return "error"
        try:
            try:
                answer = negotiate(call.sdp, endpoint.local_address, endpoint.local_port)
            except SdpError as exc:
                await call.reject(488)
                progress(f"rejected: {exc}")
                return "failed"
            mode = args.answer
            if mode == "busy":
                await call.reject(486)
                progress("rejected busy (486)")
                return "busy"
            if mode == "decline":
                await call.reject(603)
                progress("declined (603)")
                return "rejected"
            await call.ringing()
            progress("ringing")
            if not await self._wait_to_answer(call, mode):
                if not call.ended.done():  # we gave up (Ctrl-C while ringing): Temporarily Unavailable
                    await call.reject(480)
                progress(f"missed ({call.ended.result() if call.ended.done() else 'not answered'})")
                return "no-answer"
            try:
                await call.answer(answer.sdp, timeout=32)
            except CallFailed as exc:
                progress(f"answer failed: {exc}")
                return "failed"
            endpoint.set_remote(answer)
            answered_at = time.monotonic()
            progress(f"answered ({answer.codec.name}, media {answer.remote_addr[0]}:{answer.remote_addr[1]})")
            runner = CallRunner(call, endpoint, _plan(args, self.audio, self.label, when_done=args.hangup_when_done,
                                                      record=self._record_path()), progress, self.stop)
            who = await runner.run()
            progress(f"hung up ({who})")
            progress(f"duration {time.monotonic() - answered_at:.1f} s")
            await runner.finish()
            return "completed"
        finally:
            await endpoint.close()

    async def _wait_to_answer(self, call: IncomingCall, mode: str) -> bool:
        """True to answer now; False if the caller gave up (or we never answer)."""
        if mode == "never":
            waiter: asyncio.Future[object] = asyncio.ensure_future(self.stop.wait())
        elif mode == "manual":
            self.progress("press Enter to answer")
            loop = asyncio.get_running_loop()
            waiter = loop.run_in_executor(None, sys.stdin.readline)
        else:
            waiter = asyncio.ensure_future(asyncio.sleep(self.args.answer_after))
        stopper = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({waiter, call.ended, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for f in (waiter, stopper):
            if not f.done():
                f.cancel()
        return waiter.done() and not waiter.cancelled() and not call.ended.done() and not self.stop.is_set()


async def listen(args: argparse.Namespace, progress: Progress | None = None) -> int:
    progress = progress or Progress()
    stop = asyncio.Event()
    _install_stop(stop)
    try:
        audio, label = await _load_audio(args, progress)
    except (OSError, AudioFormatError) as exc:
        return _end(progress, "error", str(exc))
    listener = Listener(args, progress, stop, audio, label)
    try:
        stack = await _start_stack(args, listener.on_invite)
    except OSError as exc:
        return _end(progress, "error", str(exc))
    listener.stack = stack
    registration: Registration | None = None
    try:
        user = args.user or "phone"
        if args.register:
            aor_uri = parse_address(args.register).uri if "<" in args.register else parse_uri(args.register)
            user = aor_uri.user or user
            registrar = args.registrar or f"sip:{aor_uri.host}:{aor_uri.port or 5060}"
            if args.transport.lower() == "tcp" and "transport=" not in registrar:
                registrar += ";transport=tcp"
            credentials = (args.auth_user or user, args.password) if args.password is not None else None
            progress(f"registering {args.register} at {registrar}")
            try:
                registration = await stack.register(registrar, str(aor_uri), credentials, args.expires)
            except CallFailed as exc:
                return _end(progress, "error", f"registration refused: SIP {exc.status} {exc.reason}".strip())
            progress(f"registered (expires {registration.granted} s)")
        progress(f"waiting for calls at sip:{user}@{stack.local_host}:{stack.local_port}")
        while not stop.is_set() and (args.calls == 0 or listener.taken < args.calls or listener.busy):
            listener.call_done.clear()
            done_task = asyncio.create_task(listener.call_done.wait())
            stop_task = asyncio.create_task(stop.wait())
            await asyncio.wait({done_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            done_task.cancel()
            stop_task.cancel()
        if listener.taken == 0:
            return _end(progress, "canceled", "no call")
        return EXIT_CODES[listener.last_result]
    finally:
        if registration is not None:
            with contextlib.suppress(CallFailed, OSError):
                await asyncio.wait_for(registration.stop(), 5)
            progress("unregistered")
        await stack.stop()


# --------------------------------------------------------------------------------------- command line

def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="local SIP address, UDP and TCP (default 127.0.0.1 on a free port)")
    p.add_argument("--transport", choices=("udp", "tcp"), default="udp", help="SIP transport towards the server")
    p.add_argument("--media-address", default=None, help="address written into SDP (default: the SIP host)")
    p.add_argument("--rtp-ports", default="40000-40999", help="RTP port range (default 40000-40999)")
    p.add_argument("--user", default=None, help="our SIP user (From); also the digest login unless --auth-user")
    p.add_argument("--auth-user", default=None, help="digest login when it differs from --user")
    p.add_argument("--password", default=os.environ.get("RESTCOMM_PHONE_PASSWORD"),
                   help="digest password (answer 401/407 challenges); default $RESTCOMM_PHONE_PASSWORD, which "
                        "keeps it out of the process list")
    p.add_argument("--play", default=None, metavar="FILE", help="WAV or MP3 to play into the call")
    p.add_argument("--say", default=None, metavar="TEXT", help="text to speak into the call (offline TTS)")
    p.add_argument("--voice", default=None, help="TTS voice (man, woman, ...)")
    p.add_argument("--language", default=None, help="TTS language (default en-US)")
    p.add_argument("--digits", default=None, help="DTMF digits to send after answer (RFC 4733), e.g. 1234#")
    p.add_argument("--digits-delay", type=float, default=1.0, metavar="SECONDS",
                   help="wait this long after answer before sending digits (default 1)")
    p.add_argument("--record", default=None, metavar="FILE", help="record what we hear to this WAV (8 kHz)")
    p.add_argument("--hangup-after", type=float, default=None, metavar="SECONDS",
                   help="hang up this long after answer (default: when the far end does)")
    p.add_argument("-v", "--verbose", action="store_true", help="log SIP details to stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restcomm phone",
        description="A command-line softphone to try voice applications without a phone.",
        epilog="Exit status: " + ", ".join(f"{v} {k}" for k, v in EXIT_CODES.items()) + " (2: usage).")
    sub = parser.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("dial", help="place a call",
                       description="Call a SIP URI, client:NAME or a number (via --server).")
    d.add_argument("target", help="sip:user@host[:port], client:alice, or a number such as +15551234567")
    d.add_argument("--server", default=None, metavar="HOST:PORT",
                   help=f"where to send the INVITE (default: the URI's host, or {DEFAULT_SERVER} for "
                        "numbers and clients)")
    d.add_argument("--from", dest="from_uri", default=None, help="From URI (default sip:USER@server)")
    d.add_argument("--timeout", type=float, default=30, help="ring this long before giving up (default 30)")
    d.add_argument("--stay", action="store_true",
                   help="after playing/sending digits, stay on the line until the far end hangs up")
    _common(d)
    w = sub.add_parser("listen", help="wait for calls (optionally registered as a client)",
                       description="Wait for calls on --listen, or register as a client and wait.")
    w.add_argument("--register", default=None, metavar="AOR", help="register this address, e.g. sip:alice@127.0.0.1:5080")
    w.add_argument("--registrar", default=None, help="registrar URI (default: the AOR's host and port)")
    w.add_argument("--expires", type=int, default=600, help="registration lifetime asked for (default 600)")
    w.add_argument("--answer", choices=("auto", "manual", "never", "busy", "decline"), default="auto",
                   help="auto-answer (default), press Enter, let it ring, or reject with 486/603")
    w.add_argument("--answer-after", type=float, default=0.0, metavar="SECONDS", help="ring this long before auto-answer")
    w.add_argument("--hangup-when-done", action="store_true", help="hang up once --play/--say/--digits are done")
    w.add_argument("--calls", type=int, default=1, help="take this many calls, then exit (0: until Ctrl-C)")
    _common(w)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "listen")  # `restcomm phone --register ...` waits for calls
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.mode == "dial":
        args.server_given = args.server is not None
        args.server = args.server or DEFAULT_SERVER
        return asyncio.run(dial(args))
    return asyncio.run(listen(args))


if __name__ == "__main__":
    sys.exit(main())
