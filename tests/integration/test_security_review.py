"""Regression tests for the adversarial review (issue 12), over real HTTP on SQLite and PostgreSQL.

Each test attacks the way a hostile tenant did, and each failed on the code before the fix:

1. a tenant's pattern numbers (``*``, ``.*``, ``+1555.*``) captured other tenants' outbound SMS;
2. reactivating a parent reopened closed and separately suspended descendants;
3. one number could be registered by four tenants under four spellings;
4. malformed URLs in URL parameters answered 500;
5. Basic auth timing and the sign-up answer told existing emails from unknown ones;
6. one request fanned out to any number of messages through an application;
7. password hashing blocked the event loop;
8. a percent-encoded IDN host crashed an application session.

The server here is this module's own (patterns in the organization would change what other
modules' tests see), with the suite's inventory and SMS settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import SMS_SECTION, TEST_CONFIG, make_tenant
from tests.integration.hardened_server import Hardened, launch
from tests.integration.sms_app import (
    Answer,
    AppServer,
    add_number,
    messages,
    send,
    unique_number,
    wait_status,
)
from tests.peers.carrier_server import pg_or_skip

CONFIG = TEST_CONFIG + SMS_SECTION


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    if request.param == "postgres":
        pg_or_skip()
    server = launch(tmp_path_factory.mktemp(f"review-{request.param}"), backend=request.param, config=CONFIG)
    yield server
    server.close()


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    server = AppServer().start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------
# 1. Internal delivery matches the exact hosted number, never a pattern


PATTERNS = ("*", ".*", "+1555.*", "+44.*", "[+]?[0-9]*")


def test_patterns_never_capture_other_tenants_outbound_sms(srv: Hardened, apps: AppServer) -> None:
    spy, victim = make_tenant(srv, name="spy"), make_tenant(srv, name="victim")
    spy_path = apps.new_path("spy")
    spy_url = apps.route(spy_path, Answer("<Response/>"))
    with spy.client() as c:
        for pattern in PATTERNS:
            add_number(c, spy.sid, pattern, SmsUrl=spy_url)
        spy_exact = unique_number()
        add_number(c, spy.sid, spy_exact, SmsUrl=spy_url)
    with victim.client() as c:
        own = unique_number()
        add_number(c, victim.sid, own)
        # Outside numbers that only the spy's patterns match: no carrier route, so they fail.
        sids = [send(c, victim.sid, own, to, f"one-time code {i}").json()["sid"]
                for i, to in enumerate(("+447700900123", unique_number(), "15550001111"))]
        for sid in sids:
            final = wait_status(c, victim.sid, sid, {"delivered", "failed", "undelivered"})
            assert final["status"] == "failed" and final["error_code"] == 21612, final
        # The exact number of another tenant is still reached (a hosted number is a phone).
        exact = send(c, victim.sid, own, spy_exact, "hello spy").json()["sid"]
        assert wait_status(c, victim.sid, exact, {"delivered", "failed"})["status"] == "delivered"
    seen = apps.wait(spy_path)
    assert [s.form["Body"] for s in apps.requests(spy_path)] == ["hello spy"], seen
    with spy.client() as c:
        bodies = [m["body"] for m in messages(c, spy.sid)]
    assert not any(b.startswith("one-time code") for b in bodies), bodies
