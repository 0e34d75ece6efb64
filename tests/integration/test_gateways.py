"""Gateways (SIP trunks) API: administrator only; the password is never returned."""

from __future__ import annotations

import uuid

from tests.support.server import Server, Tenant


def test_gateways_crud_for_the_administrator(server: Server) -> None:
    name = "carrier-" + uuid.uuid4().hex[:6]
    base = f"/Accounts/{server.admin_sid}/Management/Gateways"
    with server.admin() as c:
        r = c.post(base + ".json", data={"FriendlyName": name, "UserName": "trunkuser", "Password": "s3cret-pw",
                                         "Proxy": "192.0.2.10:5070", "Register": "true", "TTL": "600",
                                         "Transport": "tcp", "Prefixes": "+44, +33", "InboundAddresses": "192.0.2.0/24"})
        assert r.status_code == 200, r.text
        gw = r.json()
        assert gw["sid"].startswith("GW") and gw["friendly_name"] == name and gw["proxy"] == "192.0.2.10:5070"
        assert gw["register"] is True and gw["time_to_live"] == 600 and gw["transport"] == "tcp"
        assert gw["prefixes"] == "+44,+33" and gw["inbound_addresses"] == "192.0.2.0/24"
        assert gw["uri"] == f"/2012-04-24/Management/Gateways/{gw['sid']}.json"
        assert gw["password"] == "********" and "s3cret-pw" not in r.text
        listed = c.get(base + ".json").json()
        assert any(g["sid"] == gw["sid"] for g in listed) and "s3cret-pw" not in c.get(base + ".json").text
        xml = c.get(f"{base}/{gw['sid']}", headers={"Accept": "application/xml"}).text
        assert "<Gateway><Sid>" in xml and "s3cret-pw" not in xml
        r = c.post(f"{base}/{gw['sid']}.json", data={"Proxy": "trunk.example.net", "Register": "false"})
        assert r.status_code == 200 and r.json()["proxy"] == "trunk.example.net:5060" and r.json()["register"] is False
        assert c.post(base + ".json", data={"Proxy": "192.0.2.11", "FriendlyName": name}).status_code == 409
        assert c.post(base + ".json", data={"Proxy": "bad host:x"}).status_code == 400
        assert c.post(base + ".json", data={"Proxy": "192.0.2.12", "InboundAddresses": "nowhere"}).status_code == 400
        assert c.post(base + ".json", data={"Proxy": "192.0.2.12", "Register": "true"}).status_code == 400
        assert c.post(base + ".json", data={"UserName": "x"}).status_code == 400  # Proxy is required
        assert c.delete(f"{base}/{gw['sid']}.json").status_code == 200
        assert c.get(f"{base}/{gw['sid']}.json").status_code == 404
        assert c.delete(f"{base}/{gw['sid']}.json").status_code == 404


def test_gateways_are_for_the_administrator_only(server: Server, tenant: Tenant) -> None:
    with tenant.client() as c:
        base = f"/Accounts/{tenant.sid}/Management/Gateways.json"
        assert c.get(base).status_code == 403
        assert c.post(base, data={"Proxy": "192.0.2.10"}).status_code == 403
    with server.admin() as c:  # the administrator acting under a sub-account's path is still itself
        assert c.get(f"/Accounts/{tenant.sid}/Management/Gateways.json").status_code == 200
