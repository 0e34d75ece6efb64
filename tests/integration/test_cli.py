"""The command line: first-start bootstrap, `db upgrade`, clean shutdown, a clear error on a bad data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import API, free_port, wait_ready


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(data_dir), RESTCOMM_LOG_LEVEL="INFO", RESTCOMM_SIP_LISTEN="127.0.0.1:0",
               PYTHONUNBUFFERED="1", **extra)
    return env


def _serve(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = data_dir.parent / f"serve-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "restcomm", "serve", "--port", str(port)],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(proc, base, log)
    return proc, base, log


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM shuts down gracefully: the lifespan (background services, database) is closed.
    uvicorn re-raises the signal once it is done, so the exit status is the signal's."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()


def test_generated_admin_credentials_are_printed_once_and_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    proc, base, log = _serve(data, env)
    try:
        text = log.read_text()
        sid = re.search(r"AccountSid: (AC[0-9a-f]{32})", text).group(1)
        token = re.search(r"AuthToken:\s+([0-9a-f]{32})", text).group(1)
        password = re.search(r"Password:\s+(\S+)", text).group(1)
        assert httpx.get(f"{base}{API}/Accounts/{sid}.json", auth=(sid, token)).status_code == 200
        assert httpx.get(f"{base}{API}/Accounts/{sid}.json", auth=(sid, password)).status_code == 200
        # Restcomm's well-known bootstrap password never works.
        assert httpx.get(f"{base}{API}/Accounts/{sid}.json", auth=("administrator@company.com", "RestComm")).status_code == 401
    finally:
        _stop(proc, log)
    proc, base, log2 = _serve(data, env)
    try:
        assert "Password:" not in log2.read_text()
        assert httpx.get(f"{base}{API}/Accounts/{sid}.json", auth=(sid, token)).status_code == 200
    finally:
        _stop(proc, log2)


def test_db_upgrade_then_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, RESTCOMM_ADMIN_EMAIL="ops@example.com", RESTCOMM_ADMIN_PASSWORD="0ps-Passw0rd!")
    out = subprocess.run([sys.executable, "-m", "restcomm", "db", "upgrade"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "database at revision" in out.stdout
    proc, base, log = _serve(data, env)
    try:
        r = httpx.get(f"{base}{API}/Accounts/ops@example.com.json", auth=("ops@example.com", "0ps-Passw0rd!"))
        assert r.status_code == 200
    finally:
        _stop(proc, log)


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "ro"
    data.mkdir()
    data.chmod(0o500)
    if os.geteuid() != 0:
        _check_bad_data_dir(data)
        return
    # Root ignores permissions: a read-only file system stops it (EROFS), with or without the directory.
    from tests.integration.test_disk_faults import small_disk

    with small_disk(data, size_mb=1, read_only=True):
        _check_bad_data_dir(data)
        _check_bad_data_dir(data / "data")


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "afile"
    data.write_text("not a directory")
    _check_bad_data_dir(data)


def _check_bad_data_dir(data: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "restcomm", "serve", "--port", str(free_port())], env=_env(data),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "data directory" in out.stderr and "Traceback" not in out.stderr
