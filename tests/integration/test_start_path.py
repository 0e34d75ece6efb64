"""The path a new user takes, on an installation that has nothing the suite installs.

The suite's own venv has the ``test`` extra, so a module the server imports but the project does not
declare (httpx once) goes unnoticed there. These tests build a separate venv from the project with
no extras (pip's cache keeps it quick), then, in it: import every module, run the CLI commands a
user runs first, start ``restcomm serve``, and follow README.md's shell blocks literally (ports
changed to free ones, ``scripts/serve`` replaced by the venv's ``restcomm serve``), with the
simulator and the sample app the README starts, checking that what the text promises happens.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.server import ROOT

pytestmark = pytest.mark.timeout(600)

ADMIN = ("me@example.com", "Ch4nge-me-now!")
BOUND = 120.0  # seconds any single step may take on a loaded machine


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the project installed as a user would (no extras, not editable)."""
    where = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=BOUND)
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(ROOT)], check=True, timeout=4 * BOUND, capture_output=True)
    return where


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.pop("PYTHONPATH", None)
    env.update(RESTCOMM_DATA_DIR=str(data_dir), RESTCOMM_ADMIN_EMAIL=ADMIN[0], RESTCOMM_ADMIN_PASSWORD=ADMIN[1],
               RESTCOMM_SIP_LISTEN=f"127.0.0.1:{free_port()}")  # not the default port other servers may hold
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=BOUND)


def _wait_health(url: str, proc: subprocess.Popen[str], log: Path) -> None:
    """Bounded wait for the server to answer (it exits on a start failure: then say why)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # the server is starting: nothing to wait on but its port
    pytest.fail(f"server did not answer within {BOUND}s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_every_module_imports_without_extras(venv: Path, tmp_path: Path) -> None:
    code = (
        "import importlib, pkgutil, restcomm\n"
        "names = [m.name for m in pkgutil.walk_packages(restcomm.__path__, 'restcomm.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code], _env(tmp_path), tmp_path)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 50


def test_first_commands_and_server_without_extras(venv: Path, tmp_path: Path) -> None:
    restcomm = str(venv / "bin" / "restcomm")
    env = _env(tmp_path / "data")
    for args in (["--help"], ["admin", "--help"], ["smsc-sim", "--help"], ["sample-app", "--help"],
                 ["smsc-sim", "inject", "--help"]):
        out = _run([restcomm, *args], env, tmp_path)
        assert out.returncode == 0, (args, out.stderr)
        assert "usage:" in out.stdout
    out = _run([restcomm, "db", "upgrade"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("database at revision ")

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([restcomm, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                                stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_health(base, proc, log)
        account = httpx.get(f"{base}/restcomm/2012-04-24/Accounts/{ADMIN[0]}.json", auth=ADMIN, timeout=10)
        assert account.status_code == 200, account.text
        assert account.json()["email_address"] == ADMIN[0]
        banner = log.read_text()
        # The first-start banner: credentials and where the API is; a chosen password is not echoed, and
        # the AuthToken goes to a terminal only (test_newcomer.py), never into a captured log.
        assert account.json()["sid"] in banner and account.json()["auth_token"] not in banner
        assert f"{base}/restcomm/2012-04-24" in banner and f"{base}/restcomm/openapi.json" in banner
        assert ADMIN[1] not in banner
    finally:
        _stop(proc)


# --- README.md, followed literally ----------------------------------------------------------------

LONG_RUNNING = ("scripts/serve", "smsc-sim --port", "sample-app")


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quickstart")
    return re.findall(r"```sh\n(.*?)```", text[start:], flags=re.S)


def test_readme_has_the_steps_this_test_follows() -> None:
    blocks = readme_blocks()
    assert sum("scripts/serve" in b for b in blocks) == 2
    assert any("smsc-sim inject" in b for b in blocks)
    assert not any(re.search(r"\bnc\b", b) for b in blocks)  # no tool the README does not ask for


def test_readme_walkthrough(venv: Path, tmp_path: Path) -> None:
    ports = {"8080": free_port(), "2775": free_port(), "2776": free_port(), "9000": free_port(), "5080": free_port()}
    bindir = str(venv / "bin")

    def localise(block: str) -> str:
        for literal, port in ports.items():
            block = re.sub(rf"\b{literal}\b", str(port), block)
        block = block.replace("scripts/serve", f"{bindir}/restcomm serve --port {ports['8080']}")
        return block.replace(".venv/bin/", bindir + "/")

    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env["RESTCOMM_SIP_LISTEN"] = f"127.0.0.1:{ports['5080']}"  # the README's ports are free ones, SIP's too
    state = tmp_path / "shell-state"
    state.write_text("")
    procs: dict[str, subprocess.Popen[str]] = {}
    logs: dict[str, Path] = {}
    outputs: list[str] = []
    names: set[str] = set()
    base = f"http://127.0.0.1:{ports['8080']}"
    try:
        for i, raw in enumerate(readme_blocks()):
            block = localise(raw)
            kind = next((k for k in LONG_RUNNING if k in raw), None)
            if kind is not None:
                name = {"scripts/serve": "server", "smsc-sim --port": "sim", "sample-app": "app"}[kind]
                if name in procs:
                    _stop(procs.pop(name))  # "Stop the server (Ctrl-C) and start it again"
                logs[name] = tmp_path / f"{name}-{i}.log"
                command = " ".join(line for line in block.splitlines() if line.strip() and not line.startswith("#"))
                with open(logs[name], "w") as sink:  # exec: the signal that stops it reaches the program
                    procs[name] = subprocess.Popen(["bash", "-c", f"exec env {command}"], env=env, cwd=tmp_path,
                                                   stdout=sink, stderr=subprocess.STDOUT, text=True,
                                                   start_new_session=True)
                if name == "server":
                    _wait_health(base, procs[name], logs[name])
                else:
                    _wait_line(logs[name], "listening on" if name == "sim" else "answering at", procs[name])
                continue
            names.update(re.findall(r"^([A-Z_]+)=", block, flags=re.M))  # the shell's state, block to block
            script = ("set -euo pipefail\n"
                      "curl() { command curl --fail-with-body --max-time 30 \"$@\"; }\n"
                      f"source {state}\n{block}\n"
                      f"declare -p {' '.join(sorted(names))} 2>/dev/null > {state} || true\n")
            out = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                                 timeout=BOUND)
            assert out.returncode == 0, f"README block {i} failed:\n{raw}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
            outputs.append(out.stdout)
        shell = dict(re.findall(r'declare -- ([A-Z_]+)="(.*)"', state.read_text()))
        api, auth = shell["BASE"], (shell["ACCOUNT_SID"], shell["AUTH_TOKEN"])
        assert api == f"{base}/restcomm/2012-04-24"

        # The handset's message reached the Echo application and its reply reached the handset.
        assert any("reply 15551234567 -> 447700900001: Echo: Hello from a handset" in out for out in outputs)
        # The first call: answered, the key sent, the app's hang-up, what it said recorded.
        call = outputs[-1]
        assert "digits sent 1" in call and "result completed" in call, call
        assert (tmp_path / "heard.wav").stat().st_size > 8000
        with httpx.Client(base_url=api, auth=auth, timeout=10) as client:
            numbers = client.get(f"/Accounts/{auth[0]}/IncomingPhoneNumbers.json").json()["incomingPhoneNumbers"]
            number = next(n for n in numbers if n["phone_number"] == "+15551234567")
            assert number["sms_application_sid"] == shell["APP_SID"]
            # The quickstart's send, before any carrier: failed 21612, as the text warns.
            first = client.get(f"/Accounts/{auth[0]}/SMS/Messages.json",
                               params={"To": "+15557654321"}).json()["messages"]
            assert [(m["status"], m["error_code"]) for m in first] == [("failed", 21612)]
            # The message over SMPP: delivered once its receipt comes back (a second).
            deadline = time.monotonic() + BOUND
            while (status := client.get(f"/Accounts/{auth[0]}/SMS/Messages/{shell['SMS_SID']}.json")
                   .json()["status"]) != "delivered" and time.monotonic() < deadline:
                time.sleep(0.1)  # the simulator's receipt delay is wall-clock time, set in the README
            assert status == "delivered"
        server_log = logs["server"].read_text()
        for event in ("accepted", "submitted to carrier sim", "receipt from sim", "received:", "queued (outbound-reply)"):
            assert event in server_log, (event, server_log)
        assert "sample-app: POST /sms" in logs["app"].read_text()
        assert "Digits='1'" in logs["app"].read_text()  # the key reached the voice page's Gather action
    finally:
        for proc in procs.values():
            _stop(proc)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def _wait_line(log: Path, text: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.05)  # a process starting; its log line is the only signal
    pytest.fail(f"no {text!r} within {BOUND}s:\n{log.read_text()}")
