"""Organizations (Restcomm's ``/Organizations``): the domains that scope Client logins, numbers and
SIP registrations. Every account belongs to one (``organization`` on the account).

Who may do what, as in Restcomm (restcomm-api.md §5.17): the SuperAdmin (an active account with no
parent) lists, reads and creates organizations and sees every organization's accounts. An account
whose role is ``Administrator`` may read its **own** organization and the accounts of it that it
may act on (itself and its descendants). Everyone else gets 403, before anything is looked up, so
a 404 tells nothing to someone who may not read organizations at all.

Creation follows Restcomm (``PUT /Organizations/{domainName}``) and the rest of this API alike
(``POST /Organizations`` with ``DomainName``); both answer 200 with the new organization.
"""

from __future__ import annotations

import re

from sqlalchemy import func, insert, or_, select
from starlette.responses import Response

from restcomm.api.accounts import ACCOUNT
from restcomm.api.errors import ApiError, forbidden, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.profiles import organization_profile, profile_link
from restcomm.api.shapes import Row, Shape, col, computed
from restcomm.store.schema import accounts, organizations
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Organizations"
ITEM_PATH = "/Organizations/{Organization}"

ORGANIZATION = Shape(
    name="Organization",
    list_name="Organizations",
    items_key="organizations",
    json_nulls=True,  # Restcomm serializes nulls here
    fields=(
        col("sid", "Sid"),
        col("domain_name", "DomainName"),
        col("status", "Status", description="active | closed"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Organizations/{r['sid']}", is_uri=True),
    ),
)

# Restcomm accepts a single label ([A-Za-z0-9-]{1,255}); a dotted host name of such labels is
# accepted too, since the domain is what SIP clients put in their URIs.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_BAD_DOMAIN = ("Total Length of domain_name can be upto 255 Characters. It can contain only letters, number and "
               "hyphen - sign.. Please, choose a valid name and try again.")

# An organization's accounts, listed without their AuthTokens (those are read one account at a time).
ACCOUNT_IN_ORGANIZATION = Shape(name=ACCOUNT.name, list_name=ACCOUNT.list_name, items_key=ACCOUNT.items_key,
                                fields=tuple(f for f in ACCOUNT.fields if f.json != "auth_token"))

DOMAIN = Param("DomainName", required=True, max_length=255, description="the organization's domain (host name)")
STATUS = Param("Status", "enum", enum=("active", "closed"), description="only organizations with this status")


def _super_admin(call: Call) -> None:
    if not call.me.is_super_admin:
        raise forbidden("Only the SuperAdmin account may do this")


async def _resolve(call: Call) -> Row:
    """The organization in the path (a SID or a domain name) that the principal may read."""
    me = call.me
    if not me.is_super_admin and not me.is_administrator:
        raise forbidden("Only an Administrator may read its organization")
    ident = call.path["Organization"]
    row = None
    if "\x00" not in ident and len(ident) <= 255:
        column = organizations.c.sid if ident.startswith("OR") and len(ident) == 34 else organizations.c.domain_name
        row = await call.fetch_one(select(organizations).where(column == (ident if column is organizations.c.sid
                                                                           else ident.lower())))
    if not me.is_super_admin and (row is None or row["sid"] != me.account["organization_sid"]):
        raise forbidden("An Administrator may read only its own organization")
    if row is None:
        raise not_found("The organization")
    return row


async def _create(call: Call, domain: str) -> Response:
    _super_admin(call)
    if len(domain) > 255 or not _DOMAIN.match(domain):
        raise ApiError(400, 20001, _BAD_DOMAIN)
    domain = domain.lower()
    now = call.services.clock()
    row = {"sid": new_sid("OR"), "domain_name": domain, "status": "active", "date_created": now, "date_updated": now}
    async with call.write() as conn:
        taken = (await conn.execute(select(organizations.c.sid).where(organizations.c.domain_name == domain))).first()
        if taken:
            raise ApiError(409, 20010, "This domain name is not available. Please, choose a different name and try again.")
        await conn.execute(insert(organizations).values(**row))
        await call.audit(conn, "create", "Organization", row["sid"], call.me.sid, ["DomainName"])
    return call.item(ORGANIZATION, row)


@operation("GET", "/Organizations", summary="List the organizations (SuperAdmin)", tag=TAG, shape=ORGANIZATION,
           kind="list", query=(STATUS,), responses={403: "not the SuperAdmin account"})
async def list_organizations(call: Call) -> Response:
    _super_admin(call)
    stmt = select(organizations).order_by(organizations.c.date_created, organizations.c.sid)
    if "Status" in call.query:
        stmt = stmt.where(organizations.c.status == call.query["Status"])
    return call.bare_list(ORGANIZATION, await call.fetch_all(stmt))


@operation("POST", "/Organizations", summary="Create an organization (SuperAdmin)", tag=TAG, shape=ORGANIZATION,
           form=(DOMAIN,), responses={403: "not the SuperAdmin account", 409: "the domain name is taken"})
async def create_organization(call: Call) -> Response:
    return await _create(call, call.form["DomainName"])


@operation("PUT", ITEM_PATH, summary="Create an organization named by its domain, as Restcomm does (SuperAdmin)",
           tag=TAG, shape=ORGANIZATION, responses={403: "not the SuperAdmin account", 409: "the domain name is taken"})
async def put_organization(call: Call) -> Response:
    return await _create(call, call.path["Organization"])


@operation("GET", ITEM_PATH, summary="Read an organization by SID or domain name (SuperAdmin, or an "
           "Administrator for its own)", tag=TAG, shape=ORGANIZATION, responses={403: "not allowed to read it"})
async def get_organization(call: Call) -> Response:
    org = await _resolve(call)
    return call.item(ORGANIZATION, org, headers=profile_link(call, await organization_profile(call, org["sid"])))


@operation("GET", ITEM_PATH + "/Accounts", summary="The accounts of an organization (the SuperAdmin sees all, an "
           "Administrator those of its own tree)", tag=TAG, shape=ACCOUNT_IN_ORGANIZATION, kind="page",
           responses={403: "not allowed to read the organization"})
async def list_organization_accounts(call: Call) -> Response:
    org = await _resolve(call)
    page, size = call.paging()
    cond = accounts.c.organization_sid == org["sid"]
    if not call.me.is_super_admin:
        me = call.me.sid
        cond = cond & or_(accounts.c.sid == me, accounts.c.lineage.contains(me + "/"))
    total = (await call.fetch_one(select(func.count().label("n")).select_from(accounts).where(cond)))["n"]
    rows = await call.fetch_all(
        select(accounts).where(cond).order_by(accounts.c.date_created, accounts.c.sid).offset(page * size).limit(size)
    )
    return call.page(ACCOUNT_IN_ORGANIZATION, rows, total, page, size)
