"""A node whose application slots are all busy still finds the sessions a dead node left running.

Regression: with every slot busy and nothing waiting as 'pending', the application runner stopped
polling and waited for a wake that only a backlog sends, so a dead node's 'running' sessions were
never reported as interrupted (seen as an intermittent failure of the two-node kill test).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from restcomm.config import load_settings
from restcomm.store.db import create_engine
from restcomm.store.schema import messages
from tests.support.sdk.store import read_rows
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, API, database_env, start_server, stop_server
from tests.support.sms_app import Answer, AppServer, add_number, wait_statuses, wait_until

SLOW = 6.0  # seconds the busy application takes to answer (below app_timeout)
CONFIG = f"""
[sms]
poll_interval = 0.1
lease_seconds = 2.0
app_concurrency = 1
app_timeout = {SLOW + 10}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    config = tmp_path / "restcomm.toml"
    config.write_text(CONFIG)
    with database_env(request.param, tmp_path, config) as env:
        yield env, tmp_path


def _leave_running(env: dict[str, str], sid: str, owner: str = "gone:1:00000000") -> None:
    """Make ``sid`` look like a session ``owner`` held: 'running', its lease long expired."""

    async def run() -> None:
        engine = create_engine(load_settings(env=dict(env)))
        try:
            async with engine.begin() as conn:
                await conn.execute(update(messages).where(messages.c.sid == sid).values(
                    app_state="running", lease_owner=owner,
                    lease_until=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)))
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_busy_node_reports_a_dead_nodes_session(env: tuple[dict[str, str], Path]) -> None:
    environment, data_dir = env
    apps = AppServer().start()
    node, base, _ = start_server(environment, data_dir / "node")
    try:
        me = httpx.get(f"{base}{API}/Accounts/{ADMIN_EMAIL}.json", auth=(ADMIN_EMAIL, ADMIN_PASSWORD), timeout=10)
        account, token = me.json()["sid"], me.json()["auth_token"]
        with httpx.Client(base_url=base + API, auth=(account, token), timeout=10) as c:
            add_number(c, account, "+15558890001", SmsUrl=apps.route("/quick", Answer("<Response/>"), token=token))
            add_number(c, account, "+15558890002",
                       SmsUrl=apps.route("/slow", Answer("<Response/>", delay=SLOW), token=token))
            add_number(c, account, "+15558890003", SmsUrl=apps.route("/none", Answer("<Response/>"), token=token))
            # A message whose session ends normally; it is then made to look like a dead node's.
            quick = c.post(f"/Accounts/{account}/SMS/Messages.json",
                           data={"From": "+15558890003", "To": "+15558890001", "Body": "orphan"})
            assert quick.status_code == 200, quick.text
            wait_until(lambda: apps.requests("/quick"), timeout=15, what="the quick application's request")
            wait_statuses(c, account, {quick.json()["sid"]: "orphan"}, lambda st: set(st.values()) == {"delivered"},
                          timeout=15, what="the first message delivered")
            orphan = _inbound(c, account, "+15558890001")
            wait_until(lambda: _app_state(environment, orphan), lambda s: s == "done", timeout=15,
                       what="the first session to finish")
            # The only slot is now held by a slow session; nothing waits as 'pending'.
            slow = c.post(f"/Accounts/{account}/SMS/Messages.json",
                          data={"From": "+15558890003", "To": "+15558890002", "Body": "hold"})
            assert slow.status_code == 200, slow.text
            wait_until(lambda: apps.requests("/slow"), timeout=15, what="the slow application's request")
            held_since = time.monotonic()
            # The node's own session, its lease run out (as when renewing falls behind on a loaded
            # machine): it is alive here and must not be taken for a dead node's.
            own = _inbound(c, account, "+15558890002")
            owner = str(read_rows(environment, select(messages.c.lease_owner).where(messages.c.sid == own))[0]
                        ["lease_owner"])
            _leave_running(environment, own, owner)
            _leave_running(environment, orphan)

            def interrupted() -> set[str]:
                notes = c.get(f"/Accounts/{account}/Notifications.json", params={"PageSize": 100}).json()
                return {str(n["message_sid"]) for n in notes["notifications"]
                        if "server stopped" in str(n["message_text"])}

            wait_until(interrupted, lambda got: orphan in got, timeout=SLOW - 2,
                       what="the dead node's session reported while every slot is busy")
            assert time.monotonic() - held_since < SLOW, "reported only after the busy session ended"
            assert _app_state(environment, orphan) == "interrupted"
            assert len(apps.requests("/quick")) == 1, "an interrupted session must never run again"
            wait_until(lambda: _app_state(environment, own), lambda st: st != "running", timeout=SLOW + 10,
                       what="the node's own slow session to end")
            assert _app_state(environment, own) == "done"
            assert own not in interrupted()
    finally:
        stop_server(node)
        apps.stop()


def _app_state(env: dict[str, str], sid: str) -> str:
    return str(read_rows(env, select(messages.c.app_state).where(messages.c.sid == sid))[0]["app_state"])


def _inbound(c: httpx.Client, account: str, to: str) -> str:
    page = c.get(f"/Accounts/{account}/SMS/Messages.json", params={"To": to, "PageSize": 50}).json()
    return next(str(m["sid"]) for m in page["messages"] if m["direction"] == "inbound")
