"""First start, and every start: the schema is current, the organization and the administrator exist."""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from restcomm.config import ConfigError, Settings
from restcomm.container import Services
from restcomm.security import generate_password, hash_password, new_auth_token
from restcomm.store import db
from restcomm.store.schema import accounts, instance, organizations
from restcomm.util import API_VERSION, new_sid


async def bootstrap(services: Services, out: Any = None) -> None:
    """First start: the organization and the administrator account. Safe when several nodes race."""
    settings, engine = services.settings, services.engine
    out = out or sys.stdout
    async with engine.begin() as conn:
        org = (await conn.execute(select(instance.c.value).where(instance.c.key == "organization_sid"))).scalar()
    if org is None:
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(instance).values(key="organization_sid", value=new_sid("OR")))
        except IntegrityError:
            pass
        async with engine.begin() as conn:
            org = (await conn.execute(select(instance.c.value).where(instance.c.key == "organization_sid"))).scalar()
    services.organization_sid = org
    await _own_organization(services, org)
    async with engine.begin() as conn:
        n = (await conn.execute(select(func.count()).select_from(accounts))).scalar()
    if n:
        return
    email = (settings.admin_email or "administrator@company.com").lower()
    password = settings.admin_password
    generated = not password
    if generated:
        password = generate_password()
    now = services.clock()
    sid, token = new_sid("AC"), new_auth_token()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(accounts).values(
                    sid=sid,
                    parent_sid=None,
                    lineage="",
                    organization_sid=org,
                    email=email,
                    friendly_name="Default Administrator Account",
                    status="active",
                    role="Administrator",
                    type="Full",
                    auth_token=token,
                    secondary_auth_token=None,
                    password_hash=hash_password(password),
                    api_version=API_VERSION,
                    date_created=now,
                    date_updated=now,
                )
            )
    except IntegrityError:
        return  # another node bootstrapped first
    from restcomm.welcome import first_start_banner

    print(first_start_banner(settings, sid, token, email, password if generated else None, out), file=out,
          flush=True)


async def _own_organization(services: Services, org: str) -> None:
    """The instance's organization exists in ``organizations`` with the configured domain, as
    Restcomm overwrites the default organization's domain with its hostname at every boot."""
    engine, domain, now = services.engine, services.settings.domain, services.clock()
    async with engine.begin() as conn:
        row = (await conn.execute(select(organizations).where(organizations.c.sid == org))).mappings().first()
    try:
        async with engine.begin() as conn:
            if row is None:
                await conn.execute(insert(organizations).values(
                    sid=org, domain_name=domain, status="active", date_created=now, date_updated=now))
            elif row["domain_name"] != domain:
                await conn.execute(update(organizations).where(organizations.c.sid == org)
                                   .values(domain_name=domain, date_updated=now))
    except IntegrityError:
        # Another node did it first, or an organization created through the API holds the domain:
        # the instance's organization keeps its previous domain.
        pass


def startup_error(settings: Settings, exc: Exception) -> ConfigError | None:
    """A plain statement of why the database could not be prepared, when we know it."""
    if isinstance(exc, ConfigError):
        return exc
    if db.storage_failure(exc):
        where = f"data directory {settings.data_dir}" if settings.is_sqlite else "the database's storage"
        reason = getattr(exc, "orig", None) or exc
        return ConfigError(f"{where} cannot store the database: {reason} (full, read-only or failing)")
    return None


async def prepare_database(services: Services) -> None:
    if services.settings.should_auto_migrate:
        await db.upgrade(services.engine)
    else:
        current = await db.current_revision(services.engine)
        if current != db.head_revision():
            raise ConfigError(
                f"database schema is at {current or 'nothing'}, this version needs {db.head_revision()}: "
                "run `restcomm db upgrade` first (or set RESTCOMM_AUTO_MIGRATE=true)"
            )
