"""A message that cannot be sent within ``[sms] queue_timeout`` fails with 30001 (Queue overflow).

The carrier's SMSC is down (nothing listens on its port), so every attempt finds no bind and the
message goes back to the queue with a backoff; once it has waited longer than the timeout it is
failed instead of retried, with its status callback and a notification. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.carrier_server import (
    SMS,
    CarrierServer,
    app_server,
    carriers_toml,
    send,
    wait_final,
)
from tests.support.ports import free_port
from tests.support.postgres import require_postgres
from tests.support.sms_app import Answer, AppServer


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    yield from app_server()


@pytest.fixture(params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CarrierServer]:
    if request.param == "postgres":
        require_postgres()
    config = SMS + "queue_timeout = 1.0\n" + carriers_toml(
        [{"name": "down", "port": free_port(), "prefixes": [""], "bind_wait": 0.2}]
    )
    server = CarrierServer(request.param, tmp_path_factory.mktemp(f"queue-timeout-{request.param}"), config).start()
    yield server
    server.close()


def test_a_message_that_waits_too_long_fails_with_30001(srv: CarrierServer, apps: AppServer) -> None:
    path = apps.new_path("qt")
    url = apps.route(path, Answer("", 204, "text/plain"))
    with srv.client() as c:
        sent = send(c, srv.admin_sid, "WAITING", "+15557000009", "never leaves", url)
        (outcome,) = wait_final(apps, path, [sent["sid"]], timeout=20).values()
        assert outcome.statuses == ["sending", "failed"] and outcome.error_code == "30001", outcome
        msg = c.get(f"/Accounts/{srv.admin_sid}/SMS/Messages/{sent['sid']}.json").json()
        assert msg["status"] == "failed" and msg["error_code"] == 30001
        notes = c.get(f"/Accounts/{srv.admin_sid}/Notifications.json").json()["notifications"]
        assert any(str(n["error_code"]) == "30001" and sent["sid"] in n["message_text"] for n in notes), notes
