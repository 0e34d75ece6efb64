"""One call leg's media: an asyncio UDP socket pair (RTP on an even port, RTCP on the next).

Everything protocol-shaped is delegated to the pure modules (rtp, rtcp, dtmf, jitter, mixer, g711,
pacer); this class only moves datagrams and keeps the per-leg state:

- sending: one sender at a time (a prompt, digits, or bridged audio), 20 ms frames paced by a
  drift-free deadline schedule; sequence numbers and timestamps continue across prompts, and after
  an idle gap the timestamp jumps by the wall-clock time that passed (RFC 3550 §5.1), with the
  marker bit on the first packet of each talkspurt;
- symmetric RTP: until the first packet arrives we send where the SDP says; then we latch to the
  packet's source (NAT) and ignore other sources (RTP injection);
- receiving: G.711 decoded once, then fanned out to the voice-activity level, the recording mixer
  and the bridged leg; RFC 4733 events become digits (each once);
- bridging: audio a leg receives is sent out by the other leg (payload passed through when both
  use the same codec, table-transcoded PCMU<->PCMA otherwise); each leg's recorder then hears its
  far end plus the other leg's far end, mixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from . import dtmf, g711, rtcp, rtp
from .clock import MediaClock
from .jitter import InboundStream
from .mixer import Mixer
from .pacer import Pacer
from .ports import PortAllocator, PortsExhausted
from .sdp import PCMU, Answer, Codec
from .wav import WavWriter

log = logging.getLogger("restcomm.media")

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = 0.020
VOICE_RMS = 400  # linear RMS above which a frame counts as voice (about -38 dBFS)
RTCP_INTERVAL = 5.0
LISTEN_MAX_BYTES = 16000 * 120  # two minutes of 8 kHz linear PCM for one speech <Gather>
RECORDING_BUFFER_FRAMES = 250  # 5 s of audio waiting to be written into a recording
_BIND_ATTEMPTS = 16

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {"PCMU": g711.ulaw_encode, "PCMA": g711.alaw_encode}
_DECODERS: dict[str, Callable[[bytes], bytes]] = {"PCMU": g711.ulaw_decode, "PCMA": g711.alaw_decode}
_SILENCE_BYTE = {"PCMU": g711.ULAW_SILENCE_BYTE, "PCMA": g711.ALAW_SILENCE_BYTE}


_HEADER_PACK = rtp.HEADER.pack


def _bound_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Socket(asyncio.DatagramProtocol):
    """Hands datagrams to the endpoint; resolves `closed` when the socket is really gone."""

    def __init__(self, owner: RtpEndpoint, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.owner = owner
        self.on_datagram = on_datagram
        self.closed = owner._loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: nothing to do, RTP is best effort
        self.owner.stats["send_errors"] += 1


def _finish(done: asyncio.Future[bool], played: bool) -> None:
    if not done.done():
        done.set_result(played)


class _Playback:
    """One prompt being sent: the media clock's thread calls `step` once per tick.

    While it plays, the leg's sender state (sequence number, timestamp, the socket it sends with)
    belongs to the clock thread; the result goes back to the leg's event loop, thread-safely."""

    __slots__ = ("endpoint", "encoded", "offset", "cancel", "done", "stopped", "_loop")

    def __init__(self, endpoint: RtpEndpoint, encoded: bytes, cancel: asyncio.Event | None,
                 done: asyncio.Future[bool]) -> None:
        self.endpoint = endpoint
        self.encoded = encoded
        self.offset = 0
        self.cancel = cancel
        self.done = done
        self.stopped = False
        self._loop = endpoint._loop

    def _end(self, played: bool) -> bool:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(_finish, self.done, played)
        return False

    def step(self, now: float) -> bool:
        """Send the next frame; False when this playback is over (and `done` is being resolved)."""
        if self.stopped:
            return False
        ep = self.endpoint
        if ep.closed or (self.cancel is not None and self.cancel.is_set()):
            return self._end(False)
        if self.offset >= len(self.encoded):
            return self._end(True)  # one tick after the last frame: it has been played out
        ep._send_frame(self.encoded[self.offset : self.offset + FRAME_SAMPLES], FRAME_SAMPLES, now,
                       marker=self.offset == 0)
        self.offset += FRAME_SAMPLES
        return True

    def abort(self) -> None:
        self._end(False)


class RtpEndpoint:
    """RTP/RTCP for one call leg. Create with `await RtpEndpoint.create(ports, address)`."""

    def __init__(self, ports: PortAllocator | None, address: str, port: int) -> None:
        self._ports = ports
        self.local_address = address
        self.local_port = port
        self.codec: Codec = PCMU
        self.dtmf_pt: int | None = 101
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.send_enabled = True  # False while the peer holds us (it does not want our audio)
        self.latched = False
        self.ssrc = secrets.randbits(32)
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.last_voice_activity: float = time.monotonic()
        self._listening: bytearray | None = None  # what the far end says, kept for speech recognition
        self.last_packet_at: float | None = None
        self.stats = {"sent": 0, "received": 0, "dropped": 0, "foreign": 0, "send_errors": 0, "octets_sent": 0}
        self.last_report: rtcp.ReportBlock | None = None  # what the peer last told us about our stream
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None  # the RTP socket (the transport's), for sending
        self._clocked = False  # a playback ran on the media clock's thread
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        # sender state (RFC 3550 §5.1: random initial values)
        self._seq = secrets.randbits(16)
        self._next_ts = secrets.randbits(32)
        self._last_sent_at: float | None = None
        self._send_lock = asyncio.Lock()
        self._playing = 0
        # receiver state
        self._inbound = InboundStream()
        self._dtmf = dtmf.DtmfReceiver()
        self._decode = g711.ulaw_decode
        # bridge and recording
        self._peer: RtpEndpoint | None = None
        self._relay_offset: int | None = None  # our timestamp minus the bridged source's
        self._relay_ssrc: int | None = None
        self._mixer: Mixer | None = None
        self._writer: WavWriter | None = None
        self._recorder_task: asyncio.Task[None] | None = None
        self._rtcp_task: asyncio.Task[None] | None = None
        self._rtcp_interval = RTCP_INTERVAL
        self._closed_futures: list[asyncio.Future[None]] = []

    # ---- life cycle --------------------------------------------------------------------------

    @classmethod
    async def create(cls, ports: PortAllocator, address: str, *, bind_address: str | None = None,
                     rtcp_interval: float = RTCP_INTERVAL) -> RtpEndpoint:
        """Bind RTP on an allocated even port and RTCP on the next one.

        `address` is what goes into SDP; `bind_address` (default: the same) is the interface to
        bind, e.g. 0.0.0.0 behind a 1:1 NAT. A port taken by another process is skipped."""
        loop = asyncio.get_running_loop()
        host = bind_address or address
        last_error: OSError | None = None
        for _ in range(_BIND_ATTEMPTS):
            port = ports.allocate()
            self = cls(ports, address, port)
            try:
                # our own socket object: the media clock's thread sends with it directly
                self._sock = _bound_udp(host, port)
                self._transport, proto = await loop.create_datagram_endpoint(
                    lambda s=self: _Socket(s, s._on_rtp), sock=self._sock)
                self._closed_futures.append(proto.closed)
                self._rtcp_transport, proto = await loop.create_datagram_endpoint(
                    lambda s=self: _Socket(s, s._on_rtcp), local_addr=(host, port + 1))
                self._closed_futures.append(proto.closed)
            except OSError as exc:
                last_error = exc
                if self._transport is not None:
                    self._transport.close()
                elif self._sock is not None:
                    self._sock.close()
                continue  # the port stays marked used: someone else has it
            self._rtcp_interval = rtcp_interval
            self._rtcp_task = loop.create_task(self._rtcp_loop())
            return self
        raise PortsExhausted(f"could not bind an RTP port pair: {last_error}")

    async def close(self) -> None:
        """Stop everything, send RTCP BYE, close the sockets and release the port pair."""
        if self.closed:
            return
        self.closed = True
        self.unbridge()
        if self._writer is not None:
            await self.stop_recording()
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rtcp_task
        if self._rtcp_transport is not None and self.remote_rtcp is not None and self.stats["sent"]:
            with contextlib.suppress(OSError):
                self._rtcp_transport.sendto(self._report() + rtcp.encode_bye(rtcp.Bye((self.ssrc,))), self.remote_rtcp)
        if self._clocked:
            # the clock thread may be sending a frame of ours right now: let that tick finish (it
            # sees `closed` on the next one) before the socket goes
            await MediaClock.shared().barrier()
        for tr in (self._transport, self._rtcp_transport):
            if tr is not None:
                tr.close()
        # the sockets close on the next loop iteration: wait, so the port is really free on return
        await asyncio.gather(*self._closed_futures)
        if self._ports is not None:
            self._ports.release(self.local_port)

    # ---- negotiation -------------------------------------------------------------------------

    def set_remote(self, answer: Answer) -> None:
        """Apply an offer/answer result: codec, telephone-event type, the peer's address, hold."""
        self.codec = answer.codec
        self.dtmf_pt = answer.dtmf_pt
        self._decode = _DECODERS[answer.codec.name.upper()]
        self.send_enabled = answer.remote_receives
        host, port = answer.remote_addr
        if host not in ("0.0.0.0", "::") and port:
            self.set_remote_address(host, port)

    def set_remote_address(self, host: str, port: int) -> None:
        """Where to send until the peer's first packet shows its real source (and after a re-INVITE)."""
        self.remote = (host, port)
        self.remote_rtcp = (host, port + 1)
        self.latched = False

    # ---- sending -----------------------------------------------------------------------------

    def _timestamp_for(self, now: float, samples: int) -> tuple[int, bool]:
        """Timestamp and marker for a frame sent at `now` (a new talkspurt after an idle gap)."""
        if self._last_sent_at is None:
            return self._next_ts, True
        idle = now - self._last_sent_at
        if idle > 2.5 * FRAME_SECONDS:
            # the media clock kept running while we were silent
            return (self._next_ts + int((idle - FRAME_SECONDS) * 8000)) & 0xFFFFFFFF, True
        return self._next_ts, False

    def _send_frame(self, payload: bytes, samples: int, now: float, *, pt: int | None = None,
                    marker: bool = False, timestamp: int | None = None) -> None:
        ts, talkspurt = (timestamp, False) if timestamp is not None else self._timestamp_for(now, samples)
        remote, sock = self.remote, self._sock
        if remote is not None and self.send_enabled and sock is not None:
            packet = _HEADER_PACK(0x80, (0x80 if (marker or talkspurt) else 0) | (self.codec.payload_type if pt is None else pt),
                                  self._seq, ts, self.ssrc) + payload
            try:
                sock.sendto(packet, remote)
            except OSError:  # a full socket buffer, an ICMP error pending: RTP is best effort
                self.stats["send_errors"] += 1
            else:
                stats = self.stats
                stats["sent"] += 1
                stats["octets_sent"] += len(payload)
        self._seq = (self._seq + 1) & 0xFFFF
        if timestamp is None:
            self._next_ts = (ts + samples) & 0xFFFFFFFF
        self._last_sent_at = now

    def _encode(self, pcm: bytes) -> bytes:
        return _ENCODERS[self.codec.name](pcm)

    async def play(self, pcm: bytes, *, cancel: asyncio.Event | None = None) -> bool:
        """Send linear PCM as paced 20 ms frames; False if `cancel` was set (or the leg closed) first.

        Frames go out on the process-wide media clock's thread (see `media/clock.py`), so a busy
        event loop does not delay them; the call returns one frame time after the last frame, when
        the far end has heard it."""
        if self.closed:
            return False
        async with self._send_lock:
            encoded = self._encode(pcm)
            if len(encoded) % FRAME_SAMPLES:
                encoded += bytes([_SILENCE_BYTE[self.codec.name]]) * (FRAME_SAMPLES - len(encoded) % FRAME_SAMPLES)
            playback = _Playback(self, encoded, cancel, self._loop.create_future())
            self._playing += 1
            self._relay_offset = None
            try:
                self._clocked = True
                MediaClock.shared().add(playback)
                return await playback.done
            finally:
                playback.stopped = True
                self._playing -= 1

    async def send_digits(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """RFC 4733 events (in-band tones if the peer did not negotiate telephone-event); 'w' waits 0.5 s."""
        for d in digits:
            if d in "wW":
                await asyncio.sleep(0.5)
                continue
            if self.dtmf_pt is None:
                await self.play(dtmf.tone_pcm(d, duration_ms) + bytes(16 * gap_ms))
                continue
            async with self._send_lock:
                self._relay_offset = None
                packets = dtmf.event_packets(d, duration_ms=duration_ms)
                pacer = Pacer(FRAME_SECONDS, clock=self._loop.time)
                pacer.start()
                ts, _ = self._timestamp_for(pacer.deadline(), FRAME_SAMPLES)
                for p in packets:
                    await pacer.wait()
                    self._send_frame(p.payload, 0, pacer.deadline(), pt=self.dtmf_pt, marker=p.marker, timestamp=ts)
                    pacer.advance()
                # the event occupied its duration on the media clock
                self._next_ts = (ts + 8 * duration_ms) & 0xFFFFFFFF
            await asyncio.sleep(gap_ms / 1000)

    def feed_digit(self, digit: str) -> None:
        """A digit that arrived out of band (SIP INFO application/dtmf-relay)."""
        if digit and digit.upper() in dtmf.EVENTS:
            self.digits.put_nowait(digit.upper())

    # ---- receiving ---------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.latched:
            if addr != self.remote:
                self.stats["foreign"] += 1
                return
        else:
            self.remote = addr  # symmetric RTP: answer where the peer really sends from
            if self.remote_rtcp is None or self.remote_rtcp[0] != addr[0]:
                self.remote_rtcp = (addr[0], addr[1] + 1)
            self.latched = True
        if len(data) > 1 and 192 <= data[1] <= 223:  # RTCP multiplexed on the RTP port
            self._on_rtcp(data, addr)
            return
        if len(data) >= 12 and data[0] == 0x80:  # the common case: no CSRC, extension or padding
            _b0, b1, seq, ts, ssrc = rtp.HEADER.unpack_from(data)
            pt = b1 & 0x7F
            payload = data[12:]
        else:
            try:
                p = rtp.decode(data)
            except rtp.RtpError:
                self.stats["dropped"] += 1
                return
            pt, seq, ts, ssrc, payload = p.payload_type, p.sequence, p.timestamp, p.ssrc, p.payload
        now = self._loop.time()
        self.stats["received"] += 1
        self.last_packet_at = now
        if pt == self.dtmf_pt and pt is not None:
            for digit in self._dtmf.feed(ts, payload, now):
                self.digits.put_nowait(digit)
            return
        if pt == self.codec.payload_type:
            decode, name = self._decode, self.codec.name
        elif pt == 0:
            decode, name = g711.ulaw_decode, "PCMU"
        elif pt == 8:
            decode, name = g711.alaw_decode, "PCMA"
        else:
            return  # comfort noise and anything we did not negotiate
        gap = self._inbound.accept(seq, ts, ssrc, len(payload), now)
        if gap is None:
            self.stats["dropped"] += 1
            return
        pcm = decode(payload)
        if g711.rms(pcm) >= VOICE_RMS:
            self.last_voice_activity = now
        if self._mixer is not None:
            if gap:
                self._mixer.push(0, bytes(2 * gap))
            self._mixer.push(0, pcm)
        heard = self._listening
        if heard is not None and len(heard) < LISTEN_MAX_BYTES:
            if gap:
                heard += bytes(2 * gap)
            heard += pcm
        peer = self._peer
        if peer is not None:
            peer._relay(payload, name, pcm, now, ts, ssrc)

    def _relay(self, payload: bytes, codec_name: str, pcm: bytes, now: float, src_ts: int, src_ssrc: int) -> None:
        """Audio from the bridged leg's far end, to be sent to ours (and heard by our recording).

        Relayed packets keep the source's timing: our timestamp is the source's plus a fixed
        offset, so the far end's jitter buffer sees the original spacing (arrival jitter of the
        first hop must not turn into timestamp jumps on the second)."""
        if self._mixer is not None:
            self._mixer.push(1, pcm)
        if self._playing or self.closed:
            self._relay_offset = None
            return  # a prompt on this leg (a beep, a whisper) has the floor
        mine = self.codec.name
        if codec_name != mine:
            payload = g711.ulaw_to_alaw(payload) if mine == "PCMA" else g711.alaw_to_ulaw(payload)
        marker = False
        if self._relay_offset is None or src_ssrc != self._relay_ssrc:
            ts, _ = self._timestamp_for(now, len(payload))
            self._relay_offset = (ts - src_ts) & 0xFFFFFFFF
            self._relay_ssrc = src_ssrc
            marker = True
        ts = (src_ts + self._relay_offset) & 0xFFFFFFFF
        self._send_frame(payload, len(payload), now, marker=marker, timestamp=ts)
        self._next_ts = (ts + len(payload)) & 0xFFFFFFFF

    # ---- listening (speech recognition) ----------------------------------------------------

    def start_listening(self) -> None:
        """Keep what the far end says (linear PCM, up to ``LISTEN_MAX_BYTES``) until ``stop_listening``."""
        self._listening = bytearray()

    def stop_listening(self) -> bytes:
        heard, self._listening = self._listening, None
        return bytes(heard or b"")

    async def wait_silence(self, seconds: float, cancel: asyncio.Event | None = None) -> bool:
        """Wait until no voice has arrived for `seconds`; False if `cancel` was set first."""
        start = self._loop.time()
        while True:
            if cancel is not None and cancel.is_set():
                return False
            reference = max(self.last_voice_activity, start)
            remaining = reference + seconds - self._loop.time()
            if remaining <= 0:
                return True
            if cancel is None:
                await asyncio.sleep(min(remaining, 0.1))
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cancel.wait(), min(remaining, 0.1))

    # ---- bridging ----------------------------------------------------------------------------

    def bridge(self, other: RtpEndpoint) -> None:
        """Relay audio both ways between this leg and `other` until `unbridge()`."""
        if other is self:
            raise ValueError("cannot bridge a leg with itself")
        self.unbridge()
        other.unbridge()
        self._peer, other._peer = other, self

    def unbridge(self) -> None:
        peer = self._peer
        if peer is not None:
            peer._peer = None
            self._peer = None

    @property
    def bridged_to(self) -> RtpEndpoint | None:
        return self._peer

    # ---- recording ---------------------------------------------------------------------------

    def start_recording(self, path: str | os.PathLike[str]) -> None:
        """Record (8 kHz 16-bit WAV, flushed as written) what this leg hears; with a bridge, both sides."""
        if self._writer is not None:
            raise RuntimeError("already recording")
        self._writer = WavWriter(Path(path))
        # 100 ms of prefill against arrival jitter; room for 5 s so that a burst read after a stalled loop (the
        # packets waited in the socket buffer) is recorded, not trimmed: latency is free here.
        self._mixer = Mixer(2, prefill=5, max_frames=RECORDING_BUFFER_FRAMES)
        self._recorder_task = self._loop.create_task(self._record_loop(self._writer, self._mixer))

    async def stop_recording(self) -> float:
        """Stop and close the file; returns the recorded duration in seconds."""
        writer, mixer, task = self._writer, self._mixer, self._recorder_task
        self._writer = self._mixer = self._recorder_task = None
        if writer is None or mixer is None:
            return 0.0
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer.write(mixer.drain())
        return writer.close()

    @property
    def recording(self) -> bool:
        return self._writer is not None

    async def _record_loop(self, writer: WavWriter, mixer: Mixer) -> None:
        pacer = Pacer(FRAME_SECONDS, clock=self._loop.time)
        pacer.start(self._loop.time() + FRAME_SECONDS)
        while True:
            await pacer.wait()
            writer.write(mixer.pull())
            pacer.advance()

    # ---- RTCP --------------------------------------------------------------------------------

    def _report(self) -> bytes:
        blocks: tuple[rtcp.ReportBlock, ...] = ()
        if self._inbound.ssrc is not None:
            fraction, lost, highest, jitter = self._inbound.report()
            blocks = (rtcp.ReportBlock(self._inbound.ssrc, fraction, lost, highest, jitter),)
        if self.stats["sent"]:
            packet = rtcp.encode_sr(rtcp.SenderReport(self.ssrc, rtcp.ntp_now(), self._next_ts, self.stats["sent"],
                                                      self.stats["octets_sent"], blocks))
        else:
            packet = rtcp.encode_rr(rtcp.ReceiverReport(self.ssrc, blocks))
        return packet + rtcp.encode_sdes_cname(self.ssrc, f"restcomm@{self.local_address}")

    async def _rtcp_loop(self) -> None:
        while True:
            # RFC 3550 §6.3.5: randomise the interval (0.5-1.5x) so legs do not synchronise
            await asyncio.sleep(self._rtcp_interval * (0.5 + secrets.randbelow(1000) / 1000))
            if self.remote_rtcp is not None and self._rtcp_transport is not None:
                with contextlib.suppress(OSError):
                    self._rtcp_transport.sendto(self._report(), self.remote_rtcp)

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = rtcp.decode(data)
        except rtcp.RtcpError:
            return
        if self.remote is not None and addr[0] == self.remote[0]:
            self.remote_rtcp = addr  # symmetric RTCP
        for p in packets:
            if isinstance(p, rtcp.SenderReport | rtcp.ReceiverReport):
                for block in p.reports:
                    if block.ssrc == self.ssrc:
                        self.last_report = block
