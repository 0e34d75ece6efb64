"""Several server processes on one database behave as one service: nothing per-process goes stale."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import API, Server, Tenant, start_server, stop_server


@pytest.fixture(scope="module")
def second_node(server: Server) -> Iterator[str]:
    """Another `restcomm serve` on the same database (PostgreSQL, or the same SQLite file)."""
    proc, base, _ = start_server(dict(server.env), server.data_dir / "node2")
    yield base
    stop_server(proc)


def test_password_change_on_one_node_is_honoured_by_the_other(server: Server, tenant: Tenant, second_node: str) -> None:
    url2 = f"{second_node}{API}/Accounts/{tenant.sid}.json"
    assert httpx.get(url2, auth=(tenant.email, tenant.password)).status_code == 200
    with tenant.client() as c:  # node 1
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Password": "N3w-Passw0rd-2!"}).status_code == 200
    assert httpx.get(url2, auth=(tenant.email, tenant.password)).status_code == 401
    assert httpx.get(url2, auth=(tenant.email, "N3w-Passw0rd-2!")).status_code == 200


def test_suspension_on_one_node_locks_the_other(server: Server, tenant: Tenant, second_node: str) -> None:
    url2 = f"{second_node}{API}/Accounts/{tenant.sid}.json"
    assert httpx.get(url2, auth=(tenant.sid, tenant.token)).status_code == 200
    with server.admin() as c:
        assert c.post(f"/Accounts/{tenant.sid}.json", data={"Status": "suspended"}).status_code == 200
    assert httpx.get(url2, auth=(tenant.sid, tenant.token)).status_code == 403
    # And a write on node 2 is visible on node 1.
    with server.admin() as c:
        r = httpx.post(f"{second_node}{API}/Accounts/{tenant.sid}.json", data={"FriendlyName": "from node 2"},
                       auth=(server.admin_sid, server.admin_token))
        assert r.status_code == 200
        assert c.get(f"/Accounts/{tenant.sid}.json").json()["friendly_name"] == "from node 2"
