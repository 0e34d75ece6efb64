"""`restcomm admin ...`: operator commands, run on a machine with the server's configuration.

Commands that change accounts go through the API itself, in process (the ASGI application without
its background services), authenticated as the account that would make the change over HTTP: the
administrator, or the parent of a new account. So the CLI applies exactly the API's rules
(password strength, sub-account depth, unique emails, the linked SIP client, the audit trail,
which records the request id ``cli-...``) and needs no running server. Carriers belong to a
running server process, so ``carriers`` asks one over HTTP; ``queue`` reads the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select

from restcomm.config import ConfigError, Settings, load_settings
from restcomm.util import API_VERSION, utcnow

API = f"/restcomm/{API_VERSION}"


class AdminError(Exception):
    """A command failed; the message is printed as it is."""


def add_parser(sub: Any) -> None:
    admin = sub.add_parser("admin", help="operator commands: accounts, tokens, carriers, queue")
    cmds = admin.add_subparsers(dest="admin_command", required=True)

    create = cmds.add_parser("create-account", help="create an account (a sub-account of --parent)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--parent", default=None, help="parent AccountSid (default: the administrator)")
    create.add_argument("--friendly-name", default=None)
    create.add_argument("--role", default=None, help="role of the new account (the parent must be an Administrator)")
    create.add_argument("--json", action="store_true", help="print the account as the API shows it")

    rotate = cmds.add_parser("rotate-token", help="replace an account's AuthToken (the old one stops working)")
    rotate.add_argument("sid", metavar="ACCOUNT", help="the account's SID or email address")
    stage = rotate.add_mutually_exclusive_group()
    stage.add_argument("--secondary", action="store_true",
                       help="only create a secondary token; both work until --promote")
    stage.add_argument("--promote", action="store_true", help="promote the existing secondary token")
    rotate.add_argument("--json", action="store_true")

    carriers = cmds.add_parser("carriers", help="state of a running server's SMPP carriers")
    carriers.add_argument("--url", default=None, help="the server (default: public_url, else http://host:port)")
    carriers.add_argument("--cafile", default=None, help="CA bundle for a server with a private certificate")
    carriers.add_argument("--json", action="store_true")

    queue = cmds.add_parser("queue", help="messages waiting to be sent, and the oldest one's age")
    queue.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    command = {
        "create-account": _create_account,
        "rotate-token": _rotate_token,
        "carriers": _carriers,
        "queue": _queue,
    }[args.admin_command]
    try:
        asyncio.run(command(settings, args))
    except AdminError as exc:
        print(f"restcomm admin {args.admin_command}: {exc}", file=sys.stderr)
        return 1
    except ConfigError:
        raise
    return 0


# ---------------------------------------------------------------------------------------------
# In-process API


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[Any]:
    from restcomm.container import Services
    from restcomm.store import db
    from restcomm.store.reader import make_reader
    from restcomm.web.bootstrap import bootstrap, prepare_database

    engine = db.create_engine(settings)
    services = Services(settings=settings, engine=engine)
    try:
        await prepare_database(services)
        services.reader = make_reader(engine)
        await bootstrap(services, out=sys.stderr)  # a fresh database gets its administrator first
        yield services
    finally:
        if hasattr(services, "reader"):
            services.reader.close()
        await engine.dispose()


async def _credentials(services: Any, sid: str | None) -> tuple[str, str]:
    """The SID and AuthToken of ``sid`` (a SID or, as the API accepts, an email address), or of the
    administrator (the oldest top-level account)."""
    from restcomm.store.schema import accounts

    stmt = select(accounts.c.sid, accounts.c.auth_token)
    if sid is None:
        stmt = stmt.where(accounts.c.parent_sid.is_(None)).order_by(accounts.c.date_created).limit(1)
    elif "@" in sid:
        stmt = stmt.where(accounts.c.email == sid.lower())
    else:
        stmt = stmt.where(accounts.c.sid == sid)
    async with services.engine.connect() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise AdminError(f"no account {sid}" if sid else "the database has no administrator account")
    return row[0], row[1]


@asynccontextmanager
async def _api(services: Any, sid: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    from restcomm.app import build_app

    app = build_app(services.settings, services)
    transport = httpx.ASGITransport(app=app, client=("cli", 0))
    headers = {"X-Request-Id": "cli-" + secrets.token_hex(8), "Accept": "application/json"}
    async with httpx.AsyncClient(transport=transport, base_url="http://cli" + API, auth=(sid, token),
                                 headers=headers) as client:
        yield client


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
            detail = f"{body.get('message')} (code {body.get('code')})"
        except ValueError:
            detail = response.text[:200]
        raise AdminError(f"HTTP {response.status_code}: {detail}")
    return response.json() if response.content else None


# ---------------------------------------------------------------------------------------------
# Commands


async def _create_account(settings: Settings, args: argparse.Namespace) -> None:
    async with _services(settings) as services:
        sid, token = await _credentials(services, args.parent)
        form = {"EmailAddress": args.email, "Password": args.password}
        if args.friendly_name:
            form["FriendlyName"] = args.friendly_name
        if args.role:
            form["Role"] = args.role
        async with _api(services, sid, token) as api:
            account = _check(await api.post("/Accounts.json", data=form))
    if args.json:
        print(json.dumps(account, indent=2))
        return
    print(f"Account created: {account['sid']}\n  Email:     {account['email_address']}\n"
          f"  Parent:    {account['parent_sid']}\n  AuthToken: {account['auth_token']}")


async def _rotate_token(settings: Settings, args: argparse.Namespace) -> None:
    async with _services(settings) as services:
        admin_sid, admin_token = await _credentials(services, None)
        sid, _ = await _credentials(services, args.sid)  # a clear "no account" before any request
        async with _api(services, admin_sid, admin_token) as api:
            base = f"/Accounts/{sid}/AuthTokens"
            result: dict[str, Any] = {"account_sid": sid}
            if not args.promote:
                created = _check(await api.post(f"{base}/Secondary.json"))
                result["secondary_auth_token"] = created["secondary_auth_token"]
            if not args.secondary:
                promoted = _check(await api.post(f"{base}/Promote.json"))
                result = {"account_sid": sid, "auth_token": promoted["auth_token"]}
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.secondary:
        print(f"Secondary AuthToken for {sid} (both tokens work until it is promoted):\n"
              f"  {result['secondary_auth_token']}")
    else:
        print(f"New AuthToken for {sid} (the previous one no longer works):\n  {result['auth_token']}")


def _server_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


async def _carriers(settings: Settings, args: argparse.Namespace) -> None:
    async with _services(settings) as services:
        sid, token = await _credentials(services, None)
    url = (args.url or _server_url(settings)).rstrip("/")
    verify: Any = args.cafile or True
    try:
        async with httpx.AsyncClient(auth=(sid, token), timeout=10, verify=verify) as client:
            response = await client.get(f"{url}{API}/Accounts/{sid}/Carriers.json")
    except httpx.HTTPError as exc:
        raise AdminError(f"no server answered at {url} ({type(exc).__name__}: {exc})") from None
    carriers = _check(response)
    if args.json:
        print(json.dumps(carriers, indent=2))
        return
    if not carriers:
        print(f"none configured (server {url})")
        return
    print(f"{'carrier':16} {'status':9} {'bound':>7} {'window':>9} {'queued':>7} {'tps':>7} {'reconnects':>10} {'errors':>7}")
    for c in carriers:
        print(f"{c['name'][:16]:16} {c['status']:9} {c['bound']:>3}/{c['binds']:<3} "
              f"{c['window_in_use']:>4}/{c['window'] * c['binds']:<4} {c['queued']:>7} {c['tps']:>7} "
              f"{c['reconnects']:>10} {c['errors']:>7}")


async def _queue(settings: Settings, args: argparse.Namespace) -> None:
    from restcomm.ops import QUEUE_STATUSES, queue_snapshot

    async with _services(settings) as services, services.engine.connect() as conn:
        snap = await queue_snapshot(conn)
    now = utcnow()
    report = {
        "messages": {
            status: {"count": snap.depth.get(status, 0), "oldest_age_seconds": _round(snap.age(status, now))}
            for status in QUEUE_STATUSES
        },
        "status_callbacks_pending": snap.callbacks_pending,
        "emails_queued": snap.emails_queued,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for status, entry in report["messages"].items():
        age = entry["oldest_age_seconds"]
        print(f"{status:8} {entry['count']:>8}" + (f"   oldest {age:.0f}s" if age is not None else ""))
    print(f"status callbacks pending: {snap.callbacks_pending}")
    print(f"emails queued: {snap.emails_queued}")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
