"""The registrar over real SIP with SHA-256 digest (``[sip] digest_algorithms``), our own UA as the
phone: the Client's stored SHA-256 HA1 (migration 0009) verifies it, the binding is in the
database, un-registering removes it, a wrong password is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from restcomm.sip.ua import CallFailed, SipStack
from restcomm.util import utcnow
from restcomm.voice import store
from tests.integration.voice_peers import VOICE_CONFIG, VoiceServer, in_db, start_voice_server

PASSWORD = "Str0ng-Passw0rd!"
SHA256_ONLY = VOICE_CONFIG + '\n[sip]\ndigest_algorithms = ["SHA-256"]\n'


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def vs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(tmp_path_factory.mktemp(f"registrar-{request.param}"), request.param,
                                config=SHA256_ONLY)
    try:
        yield server
    finally:
        server.app.stop()
        server.srv.close()


def _new_client(vs: VoiceServer, login: str) -> None:
    with vs.client() as c:
        r = c.post(f"/Accounts/{vs.account_sid}/Clients.json", data={"Login": login, "Password": PASSWORD})
    assert r.status_code == 200, r.text


def _bindings(vs: VoiceServer, login: str) -> list[Any]:
    async def job(conn: Any) -> list[Any]:
        from sqlalchemy import select

        from restcomm.store.schema import clients

        org = (await conn.execute(select(clients.c.organization_sid).where(clients.c.login == login))).scalar_one()
        return await store.current_bindings(conn, org, login, utcnow())

    return list(in_db(vs, job))


def test_sha256_register_binding_and_unregister(vs: VoiceServer) -> None:
    login = f"sha{vs.sip_port}"
    _new_client(vs, login)

    async def scenario() -> tuple[str, int, int]:
        phone = SipStack("127.0.0.1", 0, on_invite=lambda call: None)
        await phone.start()
        try:
            reg = await phone.register(f"sip:127.0.0.1:{vs.sip_port}", f"sip:{login}@127.0.0.1",
                                       (login, PASSWORD), expires=120)
            assert reg.challenge is not None
            registered = len(await asyncio.to_thread(_bindings, vs, login))
            await reg.stop()
            left = len(await asyncio.to_thread(_bindings, vs, login))
            return reg.challenge[1], registered, left
        finally:
            await phone.stop()

    challenge, registered, left = asyncio.run(scenario())
    assert "algorithm=SHA-256" in challenge and "MD5" not in challenge
    assert (registered, left) == (1, 0)


def test_wrong_password_is_refused(vs: VoiceServer, tmp_path: Path) -> None:
    login = f"shx{vs.sip_port}"
    _new_client(vs, login)

    async def scenario() -> int:
        phone = SipStack("127.0.0.1", 0, on_invite=lambda call: None)
        await phone.start()
        try:
            with pytest.raises(CallFailed) as failed:
                await phone.register(f"sip:127.0.0.1:{vs.sip_port}", f"sip:{login}@127.0.0.1",
                                     (login, "Wr0ng-Passw0rd!"), expires=120)
            return failed.value.status
        finally:
            await phone.stop()

    assert asyncio.run(scenario()) in (401, 403)
    assert _bindings(vs, login) == []
