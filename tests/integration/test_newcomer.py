"""What a new user trips over first, each pinned by a test against real processes: links that must
resolve, the index at ``/``, configuration errors as one line with exit 2, the administrator's
password rule, ``admin rotate-token`` by email, the simulator's control port, the 21612 explanation,
and list filters given an unencoded ``+``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.server import Server, Tenant, wait_ready
from tests.support.waiting import wait_until


def _cli(args: list[str], data_dir: Path, timeout: float = 60, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(data_dir), **env_extra)
    return subprocess.run([sys.executable, "-m", "restcomm", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


# --- links ----------------------------------------------------------------------------------------


def test_every_advertised_account_link_resolves(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        account = c.get(f"/Accounts/{tenant.sid}.json").json()
    links = [account["uri"], *account["subresource_uris"].values()]
    assert "conferences" not in account["subresource_uris"]  # not served (yet): not advertised
    with httpx.Client(base_url=server.base_url, auth=(tenant.sid, tenant.token), timeout=10) as raw:
        for link in links:
            assert link.startswith("/2012-04-24/")
            # As Restcomm gives them (relative to /restcomm) and as a client joining them to the host would.
            for path in ("/restcomm" + link, link):
                r = raw.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:200])


def test_index_lists_where_things_are(server: Server) -> None:
    r = httpx.get(server.base_url + "/", timeout=10)
    assert r.status_code == 200
    links = r.json()["links"]
    port = server.base_url.rsplit(":", 1)[1]
    assert links["api"].endswith(f":{port}/restcomm/2012-04-24")
    for url in (links["openapi"], links["health"], links["api"] + "/Accounts.json"):
        assert httpx.get(url, timeout=10).status_code in (200, 401), url  # 401: needs credentials


def test_21612_explains_the_carriers_section(server: Server) -> None:
    page = httpx.get(f"{server.base_url}/restcomm/errors/21612.html", timeout=10).text
    assert "[[carriers]] prefixes" in page


def test_to_filter_accepts_an_unencoded_plus(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        number = "+1555" + str(free_port()).zfill(7)
        r = c.post(f"/Accounts/{tenant.sid}/IncomingPhoneNumbers.json", data={"PhoneNumber": number, "isSIP": "true"})
        assert r.status_code in (200, 201), r.text
        sent = c.post(f"/Accounts/{tenant.sid}/SMS/Messages.json",
                      data={"From": number, "To": number, "Body": "to myself"})
        assert sent.status_code in (200, 201), sent.text
        # Sent to a hosted number, the message also arrives as an inbound one (To = the number), a moment
        # later: both listings are compared once it is there.
        wait_until(lambda: c.get(f"/Accounts/{tenant.sid}/SMS/Messages.json", params={"To": number}).json(),
                   lambda page: len(page["messages"]) >= 2, what="the message and its internal arrival")
        # "?To=+1555..." as typed: the "+" decodes to a space.
        raw = httpx.get(f"{server.api}/Accounts/{tenant.sid}/SMS/Messages.json?To={number}",
                        auth=(tenant.sid, tenant.token), timeout=10).json()
        encoded = c.get(f"/Accounts/{tenant.sid}/SMS/Messages.json", params={"To": number}).json()
    assert [m["sid"] for m in raw["messages"]] == [m["sid"] for m in encoded["messages"]]
    assert sent.json()["sid"] in [m["sid"] for m in raw["messages"]]


# --- configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize(("toml", "expected"), [
    ('log_fromat = "json"\n', "unknown setting 'log_fromat' (did you mean 'log_format'?)"),
    ('[[carriers]]\nname = "sim"\nhost = "127.0.0.1"\nsystem_id = "x"\npassword = "y"\nwindw = 5\n',
     "[[carriers]] 'sim' has no setting 'windw' (did you mean 'window'?)"),
    ('[sms]\nqueue_timout = 5\n', "[sms] has no setting 'queue_timout' (did you mean 'queue_timeout'?)"),
    ('workers = 0\n', "workers must be between 1 and 64"),
])
def test_config_errors_are_one_line_with_exit_2(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "restcomm.toml"
    config.write_text(toml)
    out = _cli(["serve", "--port", str(free_port())], tmp_path / "data", RESTCOMM_CONFIG=str(config))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restcomm: configuration error: "), out.stderr
    assert lines[0].endswith(expected), out.stderr


def test_weak_admin_password_is_refused(tmp_path: Path) -> None:
    out = _cli(["serve", "--port", str(free_port())], tmp_path / "data", RESTCOMM_ADMIN_PASSWORD="abc")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "RESTCOMM_ADMIN_PASSWORD is too weak" in out.stderr
    assert not (tmp_path / "data" / "restcomm.db").exists()  # refused before anything was created


def test_rotate_token_accepts_the_email(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"RESTCOMM_ADMIN_EMAIL": "me@example.com", "RESTCOMM_ADMIN_PASSWORD": "Ch4nge-me-now!"}
    created = _cli(["admin", "create-account", "--email", "team@example.com", "--password", "Str0ng-Passw0rd!"],
                   data, **env)
    assert created.returncode == 0, created.stderr
    sid = created.stdout.split("Account created: ")[1].split()[0]
    out = _cli(["admin", "rotate-token", "Team@Example.com"], data, **env)
    assert out.returncode == 0, out.stderr
    assert f"New AuthToken for {sid}" in out.stdout
    missing = _cli(["admin", "rotate-token", "nobody@example.com"], data, **env)
    assert missing.returncode == 1 and "no account nobody@example.com" in missing.stderr


# --- the simulator's control port ------------------------------------------------------------------


def test_simulator_control_port_help_and_messages_without_record(tmp_path: Path) -> None:
    port, control = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "restcomm", "smsc-sim", "--port", str(port),
                             "--control-port", str(control)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert f"listening on 127.0.0.1:{port}" in line and f"control port 127.0.0.1:{control}" in line
        with socket.create_connection(("127.0.0.1", control), timeout=10) as s:
            f = s.makefile("rw")
            for command, expect in (("HELP", "commands: MO"), ("MESSAGES", "[]"), ("NOPE", "ERR unknown command")):
                f.write(command + "\n")
                f.flush()
                assert f.readline().startswith(expect), command
        # No server bound: the inject client says so and returns (it never hangs like `nc`).
        out = subprocess.run([sys.executable, "-m", "restcomm", "smsc-sim", "inject", "--control-port", str(control),
                              "+447700900001", "+15551234567", "hi"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "did not take the message" in out.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_workers_print_the_listening_url(tmp_path: Path) -> None:
    """uvicorn announces only a socket it binds itself; with --workers the server says where it listens."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "restcomm", "serve", "--workers", "2", "--port", str(port)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", log)
        assert f"2 workers listening on http://127.0.0.1:{port}" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_first_start_banner_on_a_terminal_shows_the_auth_token(tmp_path: Path) -> None:
    """A person starting the server sees everything needed for the first request, the AuthToken included."""
    import pty

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(tmp_path / "data"), RESTCOMM_ADMIN_EMAIL="me@example.com",
               RESTCOMM_ADMIN_PASSWORD="Ch4nge-me-now!")
    master, slave = pty.openpty()
    log = tmp_path / "stderr.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "restcomm", "serve", "--port", str(port)], env=env,
                                stdout=slave, stderr=sink)
    os.close(slave)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", log)
        banner = os.read(master, 65536).decode()
        account = httpx.get(f"http://127.0.0.1:{port}/restcomm/2012-04-24/Accounts/me@example.com.json",
                            auth=("me@example.com", "Ch4nge-me-now!"), timeout=10).json()
        assert f"AuthToken:  {account['auth_token']}" in banner
        assert f"API:        http://127.0.0.1:{port}/restcomm/2012-04-24" in banner
        assert "Ch4nge-me-now!" not in banner
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        os.close(master)
