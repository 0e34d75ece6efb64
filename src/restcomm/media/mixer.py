"""A small real-time mixer for recordings: several inbound tracks -> one 20 ms frame per tick.

Each track (the far end's audio, and when bridged the other leg's audio) arrives at its own pace
and with its own jitter. A track is only played out once it has `prefill` frames buffered (absorbs
arrival jitter), an empty track contributes silence (the recording keeps wall-clock time even when
a peer suppresses silence), and a track that runs more than `max_frames` ahead — a faster clock
on the far side — loses its oldest audio so latency stays bounded.
"""

from __future__ import annotations

from . import g711

FRAME_BYTES = 320  # 20 ms of linear PCM 8 kHz 16-bit
SILENCE = bytes(FRAME_BYTES)


class _Track:
    __slots__ = ("buffer", "primed")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.primed = False


class Mixer:
    def __init__(self, tracks: int = 2, *, prefill: int = 2, max_frames: int = 10) -> None:
        self._tracks = [_Track() for _ in range(tracks)]
        self.prefill = prefill
        self.max_frames = max_frames

    def push(self, track: int, pcm: bytes) -> None:
        t = self._tracks[track]
        t.buffer += pcm
        excess = len(t.buffer) - self.max_frames * FRAME_BYTES
        if excess > 0:
            del t.buffer[: excess + (excess & 1)]
        if len(t.buffer) >= self.prefill * FRAME_BYTES:
            t.primed = True

    def pull(self) -> bytes:
        """The next 20 ms frame (silence where a track has nothing ready)."""
        out: bytes | None = None
        for t in self._tracks:
            if not t.primed:
                continue
            frame = bytes(t.buffer[:FRAME_BYTES])
            del t.buffer[:FRAME_BYTES]
            if len(frame) < FRAME_BYTES:
                t.primed = False  # ran dry: wait for a new prefill before playing it out again
                frame += bytes(FRAME_BYTES - len(frame))
            out = frame if out is None else g711.add(out, frame)
        return SILENCE if out is None else out

    def drain(self) -> bytes:
        """Everything still buffered, mixed (used when a recording stops)."""
        frames = []
        while any(t.buffer for t in self._tracks):
            for t in self._tracks:
                if t.buffer:
                    t.primed = True
            frames.append(self.pull())
        return b"".join(frames)
