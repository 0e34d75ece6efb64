"""baresip (Debian ``baresip-core``) as a real softphone for the voice tests, driven over its
``ctrl_tcp`` module (netstring-framed JSON commands and events).

One ``Baresip`` is one softphone process with its own configuration folder:

* it listens for SIP on loopback only (``net_interface 127.0.0.1``; without it baresip advertises the
  machine's external address in SDP);
* its audio source is a WAV file (``aufile``): what it says into the call. When the file ends,
  baresip hangs up, so a callee that must stay on the line is given a long file of silence;
* ``sndfile`` records both directions into its own folder: ``heard()`` is the WAV of what it
  received (decoded), which a recognizer can listen to;
* the account either registers with digest to our registrar (``register=...``) or stands alone
  (``regint=0``) and auto-answers (``answermode=auto``).

Every wait is bounded and driven by baresip's events, never by sleeping.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

MODULES = Path("/usr/lib/baresip/modules")


def sip_port() -> int:
    """A port free for SIP over UDP and TCP, with the next one free too (baresip binds SIP/TLS on
    ``port + 1``)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        ok = True
        for p, kind in ((port, socket.SOCK_STREAM), (port + 1, socket.SOCK_STREAM), (port + 1, socket.SOCK_DGRAM)):
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free SIP port pair")


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


@dataclass
class Baresip:
    """A baresip softphone. ``user`` is its SIP user; ``source`` the WAV it plays into calls."""

    folder: Path
    user: str
    source: Path
    register: str | None = None  # e.g. "sip:alice@127.0.0.1:5080"; None: stand-alone, auto-answer
    password: str | None = None
    answer: str = "auto"  # "auto" or "manual"
    port: int = 0
    ctrl_port: int = 0
    rtp_first: int = 0
    proc: subprocess.Popen[bytes] | None = None
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    _sock: socket.socket | None = None
    _pending: dict[str, queue.Queue[dict[str, Any]]] = field(default_factory=dict)
    _token: int = 0

    def start(self, timeout: float = 10.0) -> Baresip:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "rec").mkdir(exist_ok=True)
        self.port = self.port or sip_port()
        self.ctrl_port = self.ctrl_port or free_port()
        self.rtp_first = self.rtp_first or (free_port(socket.SOCK_DGRAM) // 2) * 2
        config = f"""
sip_listen 127.0.0.1:{self.port}
net_interface 127.0.0.1
audio_source aufile,{self.source}
audio_player aufile,{self.folder / "player.wav"}
audio_alert aufile,{self.source}
audio_srate 8000
audio_channels 1
rtp_ports {self.rtp_first}-{self.rtp_first + 40}
module_path {MODULES}
module g711.so
module aufile.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
snd_path {self.folder / "rec"}
"""
        (self.folder / "config").write_text(config)
        if self.register:
            aor = self.register
            params = f";auth_pass={self.password};regint=60" if self.password else ";regint=60"
        else:
            aor = f"sip:{self.user}@127.0.0.1:{self.port}"
            params = ";regint=0"
        (self.folder / "accounts").write_text(f"<{aor}>{params};audio_codecs=PCMU,PCMA;answermode={self.answer}\n")
        log = open(self.folder / "baresip.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(["baresip", "-f", str(self.folder)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"baresip did not start: {self.log()[-2000:]}") from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        buf = b""
        assert self._sock is not None
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                head, _, rest = buf.partition(b":")
                n = int(head)
                if len(rest) < n + 1:
                    break
                body, buf = rest[:n], rest[n + 1:]
                try:
                    message = json.loads(body)
                except ValueError:
                    continue
                if message.get("response") and message.get("token") in self._pending:
                    self._pending.pop(message["token"]).put(message)
                elif message.get("event"):
                    self.events.put(message)

    def command(self, command: str, params: str = "", timeout: float = 20.0) -> dict[str, Any]:
        """Send one command (``dial``, ``hangup``, ``accept``, ``sndcode`` …) and wait for its answer."""
        assert self._sock is not None
        self._token += 1
        token = str(self._token)
        box: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pending[token] = box
        payload = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._sock.sendall(_netstring(payload))
        try:
            return box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"baresip did not answer {command!r}") from None

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def hangup(self) -> None:
        self.command("hangup")

    def accept(self) -> None:
        self.command("accept")

    def send_digits(self, digits: str, gap: float = 0.25) -> None:
        """Send RFC 4733 digits one by one (``sndcode``); each key is pressed and released."""
        for digit in digits:
            self.command("sndcode", digit)
            time.sleep(gap)  # the length of a key press, not a wait for the peer

    def wait_event(self, *types: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next event of one of ``types`` (e.g. CALL_ESTABLISHED, CALL_CLOSED,
        REGISTER_OK, REGISTER_FAIL, CALL_INCOMING), others skipped; bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} from baresip; log: {self.log()[-1500:]}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("type") in types:
                return event

    def heard(self) -> Path:
        """The WAV of what this phone received (decoded) in its last call."""
        files = sorted((self.folder / "rec").glob("dump-*-dec.wav"))
        if not files:
            raise FileNotFoundError(f"baresip recorded nothing in {self.folder / 'rec'}")
        return files[-1]

    def log(self) -> str:
        try:
            return (self.folder / "baresip.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
