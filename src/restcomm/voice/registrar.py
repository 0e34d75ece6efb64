"""The registrar's storage in the database: Clients' credentials and their bindings.

``sip/registrar.py`` does the protocol (digest, Expires, ordering) against two Protocols; these are
their database implementations, so every node sees every registration:

* ``DbCredentials``: a Client of the organization by login. Its stored secrets are the digest
  HA1s ``md5(login:realm:password)`` (``password``, Restcomm's) and ``sha256(login:realm:password)``
  (``password_sha256``, migration 0009; null for passwords set before it), realm =
  ``settings.domain`` (``api/clients.py``). Which algorithms are offered is ``[sip]
  digest_algorithms``. A disabled Client (status 0) has no credential.
* ``DbBindings``: ``voice.store`` save/remove/current bindings; the AOR is stored as the Client's
  login (the user part), wall-clock expiries as naive UTC datetimes like every timestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from restcomm.sip.auth import Credential
from restcomm.sip.registrar import Binding, ClientCredential
from restcomm.store.schema import clients
from restcomm.voice import store

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine


def login_of(aor: str) -> str:
    """``sip:alice@host`` -> ``alice``."""
    rest = aor.split(":", 1)[1] if ":" in aor else aor
    return rest.split("@", 1)[0]


def _dt(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, UTC).replace(tzinfo=None)


def _wall(dt: datetime) -> float:
    return dt.replace(tzinfo=UTC).timestamp()


class DbCredentials:
    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine

    async def credential(self, login: str, realm: str) -> ClientCredential | None:
        org = self.engine.services.organization_sid
        async with self.engine.read() as conn:
            row = (await conn.execute(select(clients).where(clients.c.organization_sid == org,
                                                            clients.c.login == login))).mappings().first()
        if row is None or not row["status"] or realm != self.engine.settings.domain:
            return None
        if (row["password_algorithm"] or "MD5").upper() != "MD5":
            return None
        return ClientCredential(row["login"], Credential(ha1_md5=row["password"], ha1_sha256=row["password_sha256"]),
                                row["account_sid"])


class DbBindings:
    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine

    @property
    def _org(self) -> str:
        return self.engine.services.organization_sid

    async def bindings(self, aor: str, now: float) -> list[Binding]:
        async with self.engine.read() as conn:
            rows = await store.current_bindings(conn, self._org, login_of(aor), _dt(now))
        out = []
        for r in rows:
            host, _, port = (r["source_address"] or ":0").rpartition(":")
            out.append(Binding(aor, r["contact"], _wall(r["expires_at"]), r["call_id"], r["cseq"],
                               (r["transport"], host, int(port) if port.isdigit() else 0)))
        return out

    async def put(self, binding: Binding) -> None:
        transport, host, port = binding.source
        now = self.engine.clock()

        async def job(conn: object) -> None:
            await store.save_binding(conn, now, organization_sid=self._org, aor=login_of(binding.aor),  # type: ignore[arg-type]
                                     contact=binding.contact, expires_at=_dt(binding.expires_at),
                                     call_id=binding.call_id, cseq=binding.cseq, transport=transport,
                                     source_address=f"{host}:{port}", node=self.engine.node)

        await self.engine.write(job)

    async def remove(self, aor: str, contact: str) -> None:
        await self.engine.write(lambda conn: store.remove_bindings(conn, organization_sid=self._org,
                                                                   aor=login_of(aor), contact=contact))

    async def remove_all(self, aor: str) -> None:
        await self.engine.write(lambda conn: store.remove_bindings(conn, organization_sid=self._org,
                                                                   aor=login_of(aor)))
