"""Servers with production settings for the abuse and observability tests: their own
``restcomm serve`` process (SQLite or PostgreSQL) with a given TOML/env, optional TLS with a
throwaway CA made here (``cryptography``), and the log file at hand to grep.

The shared ``server`` fixture keeps the defaults the rest of the suite relies on; these tests need
low limits, JSON logs, CORS or TLS, so each module starts what it needs once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.postgres import pg_create_database, pg_drop_database
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, Server, base_env, stop_server


@dataclass
class Hardened(Server):
    """A ``Server`` that may speak TLS (``verify`` is the context that trusts its CA)."""

    verify: Any = True
    db_name: str | None = None

    def client(self, user: str | None = None, password: str | None = None, **kw: Any) -> httpx.Client:
        return super().client(user, password, verify=self.verify, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """A request from a given local address (``local_address="127.0.0.5"``): all of 127/8 is ours."""
        local = kw.pop("local_address", None)
        transport = httpx.HTTPTransport(local_address=local, verify=self.verify) if local else None
        with httpx.Client(timeout=30, verify=self.verify, transport=transport) as c:
            return c.get(self.base_url + path, **kw)

    def log(self) -> str:
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        assert self.proc is not None
        stop_server(self.proc)
        if self.db_name:
            pg_drop_database(self.db_name)


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1/localhost signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "restcomm test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def launch(data_dir: Path, *, backend: str = "sqlite", config: str = "", env: dict[str, str] | None = None,
           args: tuple[str, ...] = (), tls: bool = False) -> Hardened:
    """Start ``restcomm serve`` and wait until /health answers (bounded)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "restcomm.toml"
    config_path.write_text(config)
    db_name = database_url = None
    if backend == "postgres":
        db_name, database_url = pg_create_database(migrated=True)
    full_env = base_env(data_dir, database_url, config_path)
    full_env.update(env or {})
    argv = list(args)
    verify: Any = True
    scheme = "http"
    if tls:
        ca, cert, key = make_tls(data_dir / "tls")
        argv += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
        verify, scheme = ssl.create_default_context(cafile=str(ca)), "https"
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "restcomm", "serve", "--port", str(port), "--drain-seconds", "5", *argv],
        env=full_env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=str(data_dir),  # noqa: SIM115
    )
    base = f"{scheme}://127.0.0.1:{port}"
    srv = Hardened(backend, base, full_env, data_dir, proc, log_path=log_path, verify=verify, db_name=db_name)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            srv.close()
            raise RuntimeError(f"server exited with {proc.returncode}:\n{srv.log()[-4000:]}")
        try:
            if httpx.get(base + "/health", timeout=1, verify=verify).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            srv.close()
            raise RuntimeError(f"server did not become ready:\n{srv.log()[-4000:]}")
        time.sleep(0.05)
    r = httpx.get(f"{srv.api}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=10,
                  verify=verify)
    r.raise_for_status()
    srv.admin_sid, srv.admin_token = r.json()["sid"], r.json()["auth_token"]
    return srv


def new_account(srv: Hardened, name: str = "t") -> tuple[str, str, str, str]:
    """A sub-account of the administrator: (sid, token, email, password)."""
    import uuid

    email, password = f"{name}-{uuid.uuid4().hex[:10]}@example.com", "Str0ng-Passw0rd!"
    with srv.client() as c:
        r = c.post("/Accounts.json", data={"EmailAddress": email, "Password": password})
        assert r.status_code == 200, r.text
    return r.json()["sid"], r.json()["auth_token"], email, password
