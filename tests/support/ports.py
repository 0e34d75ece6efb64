"""Loopback ports for servers and peers the tests start."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now for ``kind`` (TCP by default, SOCK_DGRAM for UDP): the
    OS picks it; bind and release."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
