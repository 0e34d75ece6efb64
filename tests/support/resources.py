"""Helpers for the API resource tests: shapes, direct SQL on the server's database, tenancy roles."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from restcomm.config import load_settings
from restcomm.store.db import create_engine
from tests.support.server import Server, Tenant, make_tenant

STRONG = "Tr0ub4dor&3"


DATE = re.compile(r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def in_order(keys: list[str], reference: list[str]) -> bool:
    """Every key is known and they come in the reference order (absent ones are null)."""
    return all(k in reference for k in keys) and keys == sorted(keys, key=reference.index)


def sql(server: Server, stmt: Any) -> list[Any]:
    """Run one statement against the server's own database (setup and checks the API cannot do)."""

    async def run() -> list[Any]:
        engine = create_engine(load_settings(server.env))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(stmt)
                return list(result.mappings().all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def xml(r: httpx.Response) -> ET.Element:
    assert r.headers["content-type"] == "application/xml", r.headers
    root = ET.fromstring(r.content)
    assert root.tag == "RestcommResponse"
    return root


def family(server: Server, tenant: Tenant) -> dict[str, tuple[str, str]]:
    """Credentials of the owner (tenant), its parent (the admin), a sibling and a child."""
    sibling, child = make_tenant(server), tenant.sub("child")
    return {
        "owner": (tenant.sid, tenant.token),
        "parent": (server.admin_sid, server.admin_token),
        "sibling": (sibling.sid, sibling.token),
        "child": (child.sid, child.token),
    }
