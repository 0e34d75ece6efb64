"""Independent RTP test peers: a raw-socket endpoint, a pcap reader, and a bounded wait.

Nothing here uses restcomm.media on the wire side, so a bug shared by our encoder and decoder
cannot hide behind a round trip.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Bounded wait for a condition driven by packets arriving (polls the loop, never a fixed sleep)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class RawPeer:
    """A hand-written RTP peer: plain UDP sockets and struct, nothing from restcomm.media."""

    def __init__(self) -> None:
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.setblocking(False)
        self.port = self.rtp.getsockname()[1]
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.rtcp.bind(("127.0.0.1", self.port + 1))
        except OSError:
            self.rtcp.bind(("127.0.0.1", 0))
        self.rtcp.setblocking(False)
        self.packets: list[tuple[float, bytes]] = []
        self.rtcp_packets: list[bytes] = []

    def listen(self) -> None:
        """Read RTP as it arrives (arrival times matter for the pacing check)."""
        asyncio.get_running_loop().add_reader(self.rtp.fileno(), self.drain)

    def drain(self) -> None:
        for sock, sink in ((self.rtp, None), (self.rtcp, self.rtcp_packets)):
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                if sink is None:
                    self.packets.append((time.monotonic(), data))
                else:
                    sink.append(data)

    def headers(self) -> list[tuple[int, int, int, int, int]]:
        """(marker, payload type, seq, timestamp, ssrc) of each RTP packet received."""
        out = []
        for _, p in self.packets:
            b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", p[:12])
            assert b0 == 0x80
            out.append((b1 >> 7, b1 & 0x7F, seq, ts, ssrc))
        return out

    def send(self, to: tuple[str, int], pt: int, seq: int, ts: int, payload: bytes, marker: bool = False,
             ssrc: int = 0x5EED) -> None:
        self.rtp.sendto(struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, ts, ssrc) + payload, to)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.rtp.fileno())
        self.rtp.close()
        self.rtcp.close()


def rtp_payloads(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4 and struct.unpack_from("<I", data, 20)[0] == 1
    out, offset = [], 24
    while offset + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        ihl = (frame[14] & 0x0F) * 4
        out.append(frame[14 + ihl + 8 :])
    return out
