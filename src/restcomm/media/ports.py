"""RTP port allocation: even ports from a range (RTCP on port + 1, RFC 3550 §11).

Allocation walks the range round-robin from where the last one stopped rather than taking the
lowest free port, so a port just released (whose late packets may still be in flight from the old
call's peer) is the last to be handed out again.
"""

from __future__ import annotations


class PortsExhausted(RuntimeError):
    """Every even port in the range is in use."""


class PortAllocator:
    def __init__(self, first: int = 20000, last: int = 29999) -> None:
        first += first % 2  # RTP uses even ports
        if last - first < 1 or first < 1024 or last > 65535:
            raise ValueError(f"bad RTP port range {first}-{last}")
        self.first = first
        self.last = last if last % 2 else last - 1  # last RTCP port
        self._count = (self.last - self.first + 1) // 2
        self._next = 0
        self._used: set[int] = set()

    @property
    def capacity(self) -> int:
        return self._count

    @property
    def in_use(self) -> int:
        return len(self._used)

    def allocate(self) -> int:
        """An even RTP port (the caller also owns port + 1 for RTCP)."""
        for _ in range(self._count):
            port = self.first + 2 * self._next
            self._next = (self._next + 1) % self._count
            if port not in self._used:
                self._used.add(port)
                return port
        raise PortsExhausted(f"no free RTP port in {self.first}-{self.last}")

    def release(self, port: int) -> None:
        """Give a port back; releasing one twice or one never allocated is harmless."""
        self._used.discard(port)

    @classmethod
    def parse(cls, text: str) -> PortAllocator:
        """From the configuration form '20000-29999'."""
        first, _, last = text.partition("-")
        return cls(int(first), int(last))
