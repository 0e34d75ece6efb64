"""Gateways (Restcomm ``/Accounts/{AccountSid}/Management/Gateways``): SIP trunks, administrator only.

A gateway is the same thing as a ``[[sip_trunks]]`` entry of the configuration file (see
``restcomm.config.SipTrunk``), managed at run time and stored in the database so every node sees
it; ``voice.store.sip_trunks`` merges both (the file wins on a name both use). Restcomm's fields
map as: ``FriendlyName`` = the trunk's name, ``Proxy`` = ``host[:port]``, ``UserName``/``Password``
= the digest credentials, ``Register``, ``TTL`` = the registration's expiry. ``Transport``,
``Prefixes`` and ``InboundAddresses`` (comma-separated) carry the rest of a trunk.

Differences from Restcomm: the password is never returned (``password`` reads ``********`` when
one is set); ``UserName``, ``Password`` and ``TTL`` are optional (a carrier that authenticates by
address needs none); ``Register`` on update is applied (Restcomm always set it false); an unknown
SID on DELETE is 404 (Restcomm: 200).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, insert, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, invalid, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.store.schema import gateways
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Gateways"
LIST_PATH = "/Accounts/{AccountSid}/Management/Gateways"
ITEM_PATH = LIST_PATH + "/{GatewaySid}"
MASK = "********"

GATEWAY = Shape(
    name="Gateway",
    list_name="Gateways",
    items_key="gateways",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("friendly_name", "FriendlyName", column="name"),
        computed("password", "Password", lambda r: MASK if r["password"] else None,
                 description="never returned: ******** when one is set"),
        computed("proxy", "Proxy", lambda r: f"{r['host']}:{r['port']}"),
        col("register", "Register", type="boolean"),
        col("user_name", "UserName", column="username"),
        col("time_to_live", "TimeToLive", type="integer", column="ttl"),
        col("transport", "Transport"),
        computed("prefixes", "Prefixes", lambda r: r["prefixes"], description="comma-separated; \"\" is the default"),
        col("inbound_addresses", "InboundAddresses", description="comma-separated addresses or networks"),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Management/Gateways/{r['sid']}", is_uri=True),
    ),
)

_FIELDS = (
    Param("FriendlyName", max_length=255, description="the trunk's name (unique; default: UserName or the host)"),
    Param("UserName", max_length=255),
    Param("Password", max_length=255, secret=True),
    Param("Proxy", max_length=300, description="host[:port] of the carrier (port 5060 by default)"),
    Param("Register", "boolean", description="register UserName to the carrier"),
    Param("TTL", "integer", minimum=60, maximum=86400, description="registration expiry, seconds (default 3600)"),
    Param("Transport", "enum", enum=("udp", "tcp")),
    Param("Prefixes", max_length=2048, description="comma-separated outbound prefixes routed here"),
    Param("InboundAddresses", max_length=4096, description="comma-separated IP addresses or networks that may "
                                                           "send calls in"),
)
CREATE = tuple(Param(p.name, p.type, required=True, enum=p.enum, max_length=p.max_length, description=p.description)
               if p.name == "Proxy" else p for p in _FIELDS)


async def _admin(call: Call) -> None:
    """Trunks belong to the platform: only the top-level administrator manages them."""
    await call.account()
    me = call.me.account
    if me["parent_sid"] is not None or me["role"] != "Administrator":
        raise ApiError(403, 20006, "Only the administrator account can manage gateways")


def _proxy(value: str) -> tuple[str, int]:
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, "5060"
    host = host.removeprefix("sip:").strip("[]")
    if not host or any(c in host for c in " /@;?") or not port.isdigit() or not 0 < int(port) < 65536:
        raise invalid("Proxy", f"{value!r} is not host[:port]")
    return host, int(port)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _values(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "Proxy" in f:
        out["host"], out["port"] = _proxy(f["Proxy"])
    for param, column in (("FriendlyName", "name"), ("UserName", "username"), ("Password", "password"),
                          ("Register", "register"), ("TTL", "ttl"), ("Transport", "transport")):
        if param in f:
            out[column] = f[param] if f[param] != "" else None
    if "Prefixes" in f:
        out["prefixes"] = ",".join(_csv(f["Prefixes"]))
    if "InboundAddresses" in f:
        addresses = _csv(f["InboundAddresses"])
        for a in addresses:
            try:
                ipaddress.ip_network(a, strict=False)
            except ValueError:
                raise invalid("InboundAddresses", f"{a!r} is not an IP address or network") from None
        out["inbound_addresses"] = ",".join(addresses)
    if out.get("register") and "username" in out and not out["username"]:
        raise invalid("Register", "registering needs a UserName")
    return out


@operation("GET", LIST_PATH, summary="List the SIP trunks (administrator only)", tag=TAG, shape=GATEWAY,
           kind="list", responses={403: "not the top-level administrator account"})
async def list_gateways(call: Call) -> Response:
    await _admin(call)
    return call.bare_list(GATEWAY, await call.fetch_all(select(gateways).order_by(gateways.c.name)))


@operation("POST", LIST_PATH, summary="Add a SIP trunk (administrator only)", tag=TAG, shape=GATEWAY, form=CREATE,
           responses={403: "not the top-level administrator account"})
async def create_gateway(call: Call) -> Response:
    await _admin(call)
    values = _values(call.form)
    if values.get("register") and not values.get("username"):
        raise invalid("Register", "registering needs a UserName")
    now = call.services.clock()
    row = {"sid": new_sid("GW"), "name": values.get("name") or values.get("username") or values["host"],
           "host": values["host"], "port": values["port"], "transport": values.get("transport") or "udp",
           "username": values.get("username"), "password": values.get("password"),
           "register": bool(values.get("register")), "ttl": values.get("ttl") or 3600,
           "prefixes": values.get("prefixes", ""), "inbound_addresses": values.get("inbound_addresses", ""),
           "date_created": now, "date_updated": now}
    async with call.write() as conn:
        await conn.execute(insert(gateways).values(**row))
        await call.audit(conn, "create", "Gateway", row["sid"], call.me.sid, call.form.keys())
    return call.item(GATEWAY, row)


async def _gateway(call: Call) -> Any:
    await _admin(call)
    row = await call.fetch_one(select(gateways).where(gateways.c.sid == call.path["GatewaySid"]))
    if row is None:
        raise not_found("The gateway")
    return row


@operation("GET", ITEM_PATH, summary="Read a SIP trunk (administrator only)", tag=TAG, shape=GATEWAY)
async def get_gateway(call: Call) -> Response:
    return call.item(GATEWAY, await _gateway(call))


@operation("POST", ITEM_PATH, summary="Change a SIP trunk (administrator only)", tag=TAG, shape=GATEWAY,
           form=_FIELDS)
async def update_gateway(call: Call) -> Response:
    row = await _gateway(call)
    values = _values(call.form)
    merged = {**row, **values}
    if merged["register"] and not merged["username"]:
        raise invalid("Register", "registering needs a UserName")
    if not merged["name"]:
        raise invalid("FriendlyName", "must not be empty")
    async with call.write() as conn:
        if values:
            await conn.execute(update(gateways).where(gateways.c.sid == row["sid"])
                               .values(**values, date_updated=call.services.clock()))
            await call.audit(conn, "update", "Gateway", row["sid"], call.me.sid, call.form.keys())
        current = (await conn.execute(select(gateways).where(gateways.c.sid == row["sid"]))).mappings().first()
    return call.item(GATEWAY, current)


@operation("DELETE", ITEM_PATH, summary="Remove a SIP trunk (administrator only)", tag=TAG, kind="empty")
async def delete_gateway(call: Call) -> Response:
    row = await _gateway(call)
    async with call.write() as conn:
        await conn.execute(delete(gateways).where(gateways.c.sid == row["sid"]))
        await call.audit(conn, "delete", "Gateway", row["sid"], call.me.sid)
    return call.empty(200)
