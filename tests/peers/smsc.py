"""SMSC peers for the carrier tests, each a real subprocess reached over TCP, and one way to drive
them both (the control line protocol of ``restcomm smsc-sim --control-port``, which
``tests/peers/smpp34_carrier.py`` also speaks):

* ``Smsc.simulator(...)``: our own simulator, started exactly as a user would, ``restcomm smsc-sim``;
* ``Smsc.smpp34(...)``: smpp34's Rust ``Server`` (an independent SMPP implementation).

Every wait is a ``WAIT <counter> <n>`` answered by the peer when its counter gets there (an event,
not a poll), bounded by a timeout.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

PEERS = Path(__file__).resolve().parent


@dataclass
class Smsc:
    kind: str  # "sim" | "smpp34"
    port: int
    control_port: int
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    _sock: socket.socket | None = None
    _file: Any = None

    @classmethod
    def simulator(cls, *extra: str, port: int | None = None) -> Smsc:
        return cls("sim", port or free_port(), free_port(), list(extra))

    @classmethod
    def smpp34(cls, *extra: str, port: int | None = None) -> Smsc:
        return cls("smpp34", port or free_port(), free_port(), list(extra))

    @property
    def system_id(self) -> str:
        return "restcomm"

    # -- process ------------------------------------------------------------------------------

    def start(self) -> Smsc:
        if self.kind == "sim":
            cmd = [sys.executable, "-m", "restcomm", "smsc-sim", "--port", str(self.port),
                   "--control-port", str(self.control_port), "--record", "--receipt-delay", "0", *self.args]
            ready = "listening"
        else:
            cmd = [sys.executable, str(PEERS / "smpp34_carrier.py"), "--port", str(self.port),
                   "--control-port", str(self.control_port), *self.args]
            ready = "ready"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if ready not in line:
            self.proc.kill()
            raise RuntimeError(f"{self.kind} SMSC did not start: {line!r} {self.proc.stdout.read()[-2000:]}")
        self._sock = socket.create_connection(("127.0.0.1", self.control_port), timeout=60)
        self._file = self._sock.makefile("rw", encoding="utf-8")
        return self

    def kill(self) -> None:
        """Gone at once, like a crashed SMSC (smpp34 may also crash at a normal exit)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = self._file = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    # -- control ------------------------------------------------------------------------------

    def cmd(self, line: str) -> str:
        assert self._file is not None, "SMSC not running"
        self._file.write(line + "\n")
        self._file.flush()
        reply = self._file.readline()
        if not reply:
            raise RuntimeError(f"{self.kind} SMSC closed the control connection")
        return reply.strip()

    def stats(self) -> dict[str, int]:
        return json.loads(self.cmd("STATS"))

    def messages(self) -> list[dict[str, Any]]:
        """What the SMSC received, reassembled as a handset shows it."""
        return json.loads(self.cmd("MESSAGES"))

    def texts(self, prefix: str) -> dict[str, int]:
        """How many times each message text starting with ``prefix`` reached the SMSC."""
        counts: dict[str, int] = {}
        for m in self.messages():
            if m["text"].startswith(prefix):
                counts[m["text"]] = counts.get(m["text"], 0) + 1
        return counts

    def set(self, name: str, value: Any) -> None:
        reply = self.cmd(f"SET {name} {json.dumps(value)}")
        assert reply == "OK", reply

    def wait(self, counter: str, n: int, timeout: float = 20.0) -> dict[str, int]:
        reply = self.cmd(f"WAIT {counter} {n} {timeout}")
        assert reply.startswith("OK "), f"{self.kind}: {counter} did not reach {n}: {reply}"
        return json.loads(reply[3:])

    def mo(self, source: str, destination: str, text: str, **options: Any) -> list[int]:
        reply = self.cmd("MOX " + json.dumps({"source": source, "destination": destination, "text": text, **options}))
        assert reply.startswith("OK "), reply
        return [int(s) for s in reply[3:].split(",")]

    def disconnect(self) -> None:
        assert self.cmd("DISCONNECT") == "OK"
