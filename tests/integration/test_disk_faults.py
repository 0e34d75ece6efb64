"""The SQLite data directory runs out of space mid-burst, or cannot be written at start.

Two ways to fill the disk, both as root and without privileges beyond the test's own:

* ``enospc``: the data directory is on a small tmpfs mounted for the test (skipped where mounting
  is not permitted); a filler file takes the rest of the space, so the server's writes fail with
  ENOSPC, SQLite's "database or disk is full". Space comes back when the filler is deleted.
* ``efbig``: the server's file-size limit (``RLIMIT_FSIZE``, set on the running process with
  ``prlimit``) is lowered to the size of its largest file, so any growth fails with EFBIG (Python
  ignores SIGXFSZ), SQLite's "disk I/O error". Space comes back when the limit is raised.

What must hold: every send during the fault gets an answer in the API's format (503, code 20503),
none hangs, the server stays up; every message that was accepted (200) is in the database and
reaches its final status once space is back; ``PRAGMA integrity_check`` is ok.
"""

from __future__ import annotations

import contextlib
import resource
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.disk import small_disk
from tests.support.ports import free_port
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, API, base_env, stop_server, wait_ready
from tests.support.sms_app import Answer, AppServer, add_number, wait_statuses

CONFIG = """
[sms]
poll_interval = 0.2
app_timeout = 5.0
"""
SENDERS = 6
FAULT_AFTER = 60  # accepted answers before the disk fills
ERRORS_EACH = 3  # each sender stops after this many refusals during the fault
MAX_SENDS = 3000  # a bound, should the fault never show




def fill(directory: Path) -> Path:
    """Take every free byte of the file system under ``directory``."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError:
                break
        for size in (65536, 4096, 512, 1):  # the last partial chunks
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    return filler


def largest_file(directory: Path) -> int:
    return max(p.stat().st_size for p in directory.iterdir() if p.is_file())


@pytest.mark.parametrize("fault", ["enospc", "efbig"])
def test_disk_full_mid_burst_loses_no_accepted_message(fault: str, tmp_path: Path) -> None:
    stack = contextlib.ExitStack()
    with stack:
        data = (stack.enter_context(small_disk(tmp_path / "disk")) if fault == "enospc" else tmp_path) / "data"
        data.mkdir()
        config = tmp_path / "restcomm.toml"
        config.write_text(CONFIG)
        env = base_env(data, None, config)
        apps = AppServer().start()
        stack.callback(apps.stop)
        log_dir = tmp_path / "logs"  # the server's log off the full disk, to read what it said
        log_dir.mkdir()
        proc, base, log_path = _start(env, data, log_dir)
        stack.callback(stop_server, proc)
        me = httpx.get(f"{base}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD)).json()
        account, token = me["sid"], me["auth_token"]
        with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as c:
            add_number(c, account, "+15557770001", SmsUrl=apps.route("/a", Answer("<Response/>"), token=token))
            add_number(c, account, "+15557770002")

        accepted: list[str] = []
        refused: list[httpx.Response] = []
        lock = threading.Lock()
        full = threading.Event()
        filler: list[Path] = []

        def inject() -> None:
            if fault == "enospc":
                filler.append(fill(data.parent))
            else:
                limit = largest_file(data)
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            full.set()

        def sender(worker: int) -> None:
            errors = 0
            with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as s:
                for i in range(worker, MAX_SENDS, SENDERS):
                    r = s.post(f"/Accounts/{account}/SMS/Messages.json",
                               data={"From": "+15557770002", "To": "+15557770001", "Body": f"burst {i}"})
                    with lock:
                        if r.status_code == 200:
                            accepted.append(r.json()["sid"])
                            if len(accepted) == FAULT_AFTER:
                                inject()
                        else:
                            refused.append(r)
                            errors += 1
                    if errors >= ERRORS_EACH:
                        return

        threads = [threading.Thread(target=sender, args=(w,)) for w in range(SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a send hung"
        assert full.is_set(), [r.text for r in refused[:3]]
        assert proc.poll() is None, "the server died"
        assert httpx.get(base + "/health", timeout=10).status_code == 200
        # Every refusal is a clean API error.
        assert len(refused) >= SENDERS * ERRORS_EACH
        for r in refused:
            assert r.status_code == 503, (r.status_code, r.text)
            assert r.json()["code"] == 20503 and "storage" in r.json()["message"], r.text
        held_during = len(accepted)

        # Space comes back.
        if fault == "enospc":
            filler[0].unlink()
        else:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as c:
            r = c.post(f"/Accounts/{account}/SMS/Messages.json",
                       data={"From": "+15557770002", "To": "+15557770001", "Body": "after"})
            assert r.status_code == 200, r.text
            accepted.append(r.json()["sid"])

            final = wait_statuses(c, account, accepted, lambda st: set(st.values()) <= {"received", "delivered", "failed"},
                                  timeout=60, what="every accepted message to reach a final status")
        stop_server(proc)
        print(f"\n[{fault}] {held_during} accepted, {len(refused)} refused during the fault; "
              f"final statuses {sorted(set(final.values()))}")
        db = sqlite3.connect(data / "restcomm.db")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {row[0] for row in db.execute("SELECT sid FROM messages")}
        finally:
            db.close()
        assert set(accepted) <= stored


def _start(env: dict[str, str], data: Path, log_dir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """start_server with the log in ``log_dir`` and the working directory in the data directory."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    proc = subprocess.Popen([sys.executable, "-m", "restcomm", "serve", "--port", str(port), "--drain-seconds", "5"],
                            env=env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=str(data))  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    wait_ready(proc, base, log_path)
    return proc, base, log_path



def _serve_once(data: Path, preexec: object = None) -> subprocess.CompletedProcess[str]:
    env = base_env(data)
    env["RESTCOMM_LOG_LEVEL"] = "INFO"
    return subprocess.run([sys.executable, "-m", "restcomm", "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60, preexec_fn=preexec)  # type: ignore[arg-type]


def _assert_clear_start_error(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode != 0, out.stderr[-2000:]
    assert "data directory" in out.stderr and "Traceback" not in out.stderr, out.stderr[-3000:]


@pytest.mark.parametrize("state", ["full", "nearly-full", "full-with-database"])
def test_start_on_a_full_disk_is_a_clear_error(state: str, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size_mb=4) as disk:
        data = disk / "data"
        if state == "full-with-database":  # a server stopped after its disk filled, restarted still full
            proc, _base, _log = _start(base_env(data), data.parent, tmp_path)
            stop_server(proc)
        data.mkdir(exist_ok=True)
        filler = fill(disk)
        if state == "nearly-full":  # room for the write probe, not for a database
            with open(filler, "r+b") as f:
                f.truncate(filler.stat().st_size - 16384)
        _assert_clear_start_error(_serve_once(data))


def test_start_with_a_file_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    """No mount needed: the server may not write a byte (RLIMIT_FSIZE 0, EFBIG), as on a full disk."""
    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    _assert_clear_start_error(_serve_once(tmp_path / "data", preexec=no_room))
