"""Accounts: the authenticated account, its sub-accounts, status changes that cascade."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, forbidden
from restcomm.api.framework import Call, Param, operation
from restcomm.api.passwords import is_strong
from restcomm.api.profiles import profile_link
from restcomm.api.shapes import Shape, col, computed
from restcomm.api.tagging import TAG_FILTER, tag_condition
from restcomm.security import hash_password_async, new_auth_token
from restcomm.store import schema as t
from restcomm.store.compiled import Query
from restcomm.util import API_VERSION, new_sid, rfc2822

STATUSES = ("active", "suspended", "inactive", "closed", "uninitialized")
MAX_DEPTH = 3  # top-level, child, grandchild


# An account's `subresource_uris`: (JSON key, XML element, path under the account). This is the one
# place a resource is advertised; add a line here when a resource's routes exist, never before (every
# advertised link must resolve). Restcomm also lists conferences, sandbox and transcriptions; they
# appear once those resources are served. available_phone_numbers is left out
# because only its per-country searches exist (…/AvailablePhoneNumbers/{Country}/Local), not the link.
SUBRESOURCES: tuple[tuple[str, str, str], ...] = (
    ("calls", "Calls", "Calls"),
    ("incoming_phone_numbers", "IncomingPhoneNumbers", "IncomingPhoneNumbers"),
    ("notifications", "Notifications", "Notifications"),
    ("outgoing_caller_ids", "OutgoingCallerIds", "OutgoingCallerIds"),
    ("recordings", "Recordings", "Recordings"),
    ("sms_messages", "SMSMessages", "SMS/Messages"),
    ("audit_log", "AuditLog", "AuditLog"),
    ("keys", "Keys", "Keys"),
    ("tags", "Tags", "Tags"),
)


def _subresource_field(json: str, xml: str, path: str) -> object:
    return computed(json, xml, lambda r: f"/{API_VERSION}/Accounts/{r['sid']}/{path}", is_uri=True)


SUBRESOURCE_URIS = Shape(
    name="SubresourceUris",
    list_name="",
    items_key="",
    fields=tuple(_subresource_field(j, x, p) for j, x, p in SUBRESOURCES),  # type: ignore[misc]
)

ACCOUNT = Shape(
    name="Account",
    list_name="Accounts",
    items_key="accounts",
    fields=(
        col("sid", "Sid"),
        col("organization", "organization", column="organization_sid"),
        col("friendly_name", "FriendlyName"),
        col("email_address", "EmailAddress", column="email"),
        col("type", "Type"),
        col("status", "Status"),
        col("role", "Role"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("auth_token", "AuthToken"),
        col("parent_sid", "ParentSid", description="the owning account (null for a top-level account)"),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Accounts/{r['sid']}", is_uri=True),
        computed("subresource_uris", "SubresourceUris", lambda r: r, type="object", nested=SUBRESOURCE_URIS),
    ),
)

# What an IAM user sees (api/users.py): accounts without their AuthTokens, so signing in as a person
# never hands out the account's own credential.
ACCOUNT_WITHOUT_TOKEN = Shape(name=ACCOUNT.name, list_name=ACCOUNT.list_name, items_key=ACCOUNT.items_key,
                              fields=tuple(f for f in ACCOUNT.fields if f.json != "auth_token"))


def _shape(call: Call) -> Shape:
    return ACCOUNT_WITHOUT_TOKEN if call.me.user_role is not None else ACCOUNT


CREATE = (
    Param("EmailAddress", "email", required=True, description="login email; unique"),
    Param("Password", required=True, secret=True, max_length=256),
    Param("FriendlyName", max_length=255),
    Param("Status", "enum", enum=("active", "suspended", "inactive", "uninitialized")),
    Param("Role", max_length=64),
    Param("OrganizationSid", max_length=34, description="the organization of the new account (default: the "
          "creator's); another one only for the SuperAdmin"),
)

UPDATE = (
    Param("FriendlyName", max_length=255),
    Param("Password", secret=True, max_length=256),
    Param("Status", "enum", enum=STATUSES),
    Param("Role", max_length=64),
)


def _check_password(password: str) -> None:
    if not is_strong(password):
        raise ApiError(400, 22001, "Password too weak")


def ha1(login: str, realm: str, password: str) -> str:
    import hashlib

    return hashlib.md5(f"{login}:{realm}:{password}".encode()).hexdigest()


ORGANIZATION_FILTER = (
    Param("OrganizationSid", max_length=34, description="SuperAdmin: every account of this organization"),
    Param("DomainName", max_length=255, description="SuperAdmin: every account of the organization with this domain"),
)


@operation("GET", "/Accounts", summary="List the sub-accounts of the authenticated account (the SuperAdmin: an "
           "organization's accounts)", tag="Accounts", shape=ACCOUNT, kind="list",
           query=(TAG_FILTER, *ORGANIZATION_FILTER))
async def list_accounts(call: Call) -> Response:
    cond = [t.accounts.c.parent_sid == call.me.sid]
    q = call.query
    if q.get("OrganizationSid") or q.get("DomainName"):
        # Restcomm's organization listing: the SuperAdmin only; an unknown domain is 404.
        if not call.me.is_super_admin:
            raise forbidden("Only the SuperAdmin may list an organization's accounts")
        o = t.organizations
        column, value = ((o.c.sid, q["OrganizationSid"]) if q.get("OrganizationSid")
                         else (o.c.domain_name, q["DomainName"].lower()))
        org = await call.fetch_one(select(o.c.sid).where(column == value))
        if org is None:
            raise ApiError(404, 20404, "The organization was not found")
        cond = [t.accounts.c.organization_sid == org["sid"]]
    tagged = tag_condition(call, t.accounts.c.sid, "Accounts", None)
    if tagged is None and len(cond) == 1 and not (q.get("OrganizationSid") or q.get("DomainName")):
        rows = await call.fetch_all(_SUBACCOUNTS, {"parent_sid": call.me.sid})  # the common case: a constant
        return call.bare_list(_shape(call), rows)
    if tagged is not None:
        cond.append(tagged)
    rows = await call.fetch_all(select(t.accounts).where(*cond).order_by(t.accounts.c.date_created))
    return call.bare_list(_shape(call), rows)


_SUBACCOUNTS = Query(select(t.accounts).where(t.accounts.c.parent_sid == bindparam("parent_sid"))
                     .order_by(t.accounts.c.date_created))


@operation("POST", "/Accounts", summary="Create a sub-account of the authenticated account", tag="Accounts",
           shape=ACCOUNT, form=CREATE)
async def create_account(call: Call) -> Response:
    me = call.me.account
    f = call.form
    depth = len([s for s in me["lineage"].split("/") if s]) + 1
    if depth >= MAX_DEPTH:
        raise ApiError(400, 22002, "This account is not allowed to have sub-accounts")
    _check_password(f["Password"])
    if me["status"] != "active":
        raise ApiError(403, 20005, "Only an active account can create sub-accounts")
    role = call.me.role  # an IAM user's sub-accounts get the user's role, not the account's
    if "Role" in f:
        if not call.me.is_administrator:
            raise forbidden("Only Administrator allowed")
        role = f["Role"]
    org = me["organization_sid"]
    if f.get("OrganizationSid") and f["OrganizationSid"] != org:
        if not call.me.is_super_admin:
            raise forbidden("Only the SuperAdmin may create an account in another organization")
        found = await call.fetch_one(select(t.organizations.c.sid).where(t.organizations.c.sid == f["OrganizationSid"]))
        if found is None:
            raise ApiError(400, 20001, "provided OrganizationSid does not exist")
        org = f["OrganizationSid"]
    email = f["EmailAddress"]
    now = call.services.clock()
    sid = new_sid("AC")
    row = {
        "sid": sid,
        "parent_sid": me["sid"],
        "lineage": me["lineage"] + me["sid"] + "/",
        "organization_sid": org,
        "email": email,
        "friendly_name": f.get("FriendlyName") or email,
        "status": f.get("Status", "active"),
        "role": role,
        "type": "Full",
        "auth_token": new_auth_token(),
        "secondary_auth_token": None,
        "password_hash": await hash_password_async(f["Password"]),
        "api_version": API_VERSION,
        "date_created": now,
        "date_updated": now,
    }
    async with call.write() as conn:
        taken = (await conn.execute(select(t.accounts.c.sid).where(t.accounts.c.email == email))).first() or (
            await conn.execute(select(t.users.c.sid).where(t.users.c.email == email))).first()  # an IAM user's
        if taken:
            raise ApiError(409, 20010, "The email address used for the new account is already in use.")
        await conn.execute(insert(t.accounts).values(**row))
        # Restcomm also creates a SIP client named after the email's local part.
        login = email.split("@", 1)[0]
        exists = (
            await conn.execute(
                select(t.clients.c.sid).where(
                    t.clients.c.organization_sid == org, t.clients.c.login == login
                )
            )
        ).first()
        if not exists:
            await conn.execute(
                insert(t.clients).values(
                    sid=new_sid("CL"),
                    account_sid=sid,
                    organization_sid=org,
                    login=login,
                    friendly_name=row["friendly_name"],
                    password=ha1(login, call.settings.domain, f["Password"]),
                    password_algorithm="MD5",
                    status=1,
                    voice_method="POST",
                    voice_fallback_method="POST",
                    api_version=API_VERSION,
                    date_created=now,
                    date_updated=now,
                )
            )
        await call.audit(conn, "create", "Account", sid, sid, f.keys() - {"Password"})
    return call.item(_shape(call), row)


@operation("GET", "/Accounts/{AccountSid}", summary="Read an account (itself or a descendant)", tag="Accounts",
           shape=ACCOUNT)
async def get_account(call: Call) -> Response:
    account = await call.account()
    policy = await call.services.profiles.policy(account)  # as Restcomm: the effective profile in a Link header
    return call.item(_shape(call), account, headers=profile_link(call, policy.sid))


async def _purge(conn: object, sids: list[str]) -> None:
    """Closing an account deletes what it provisioned; message and call records are kept."""
    for table in (t.clients, t.applications, t.incoming_phone_numbers, t.outgoing_caller_ids, t.api_keys, t.tags, t.users):
        await conn.execute(delete(table).where(table.c.account_sid.in_(sids)))  # type: ignore[attr-defined]


async def _cascade(conn: Any, sid: str, status: str, now: object) -> None:
    """Carry a status change of account ``sid`` to its descendants without overwriting what they
    decided on their own.

    * ``closed``: every descendant is closed too (closed is final) and its resources are purged.
    * ``suspended``/``inactive``: active descendants, and those this account's earlier change had
      set, take the status and remember that it came from ``sid`` (``status_cascaded_from``). A
      descendant already suspended, inactive or closed on its own (or by a closer ancestor) keeps
      its status.
    * ``active``: only the descendants whose status came from ``sid`` are reactivated. A closed
      account is never reopened, and a separately suspended one stays suspended.
    """
    a = t.accounts
    subtree = a.c.lineage.contains(sid + "/", autoescape=True)
    if status == "closed":
        await conn.execute(update(a).where(subtree, a.c.status != "closed")
                           .values(status="closed", status_cascaded_from=sid, date_updated=now))
        sids = [sid] + list((await conn.execute(select(a.c.sid).where(subtree))).scalars())
        await _purge(conn, sids)
    elif status in ("suspended", "inactive"):
        ours = or_(a.c.status == "active", a.c.status_cascaded_from == sid)
        await conn.execute(update(a).where(subtree, a.c.status != "closed", ours)
                           .values(status=status, status_cascaded_from=sid, date_updated=now))
    elif status == "active":
        await conn.execute(update(a).where(subtree, a.c.status != "closed", a.c.status_cascaded_from == sid)
                           .values(status="active", status_cascaded_from=None, date_updated=now))


@operation("POST", "/Accounts/{AccountSid}", summary="Update an account (POST and PUT alike)", tag="Accounts",
           shape=ACCOUNT, form=UPDATE)
async def update_account(call: Call) -> Response:
    target = await call.account(write=True)
    f = call.form
    values: dict[str, object] = {}
    if "FriendlyName" in f:
        values["friendly_name"] = f["FriendlyName"]
    if "Password" in f and f["Password"] is not None:
        if call.me.credential_sid != call.me.sid:
            raise forbidden("An API key cannot change account passwords; use the AuthToken")
        _check_password(f["Password"])
        values["password_hash"] = await hash_password_async(f["Password"])
        if target["status"] == "uninitialized":
            values["status"] = "active"
    if "Role" in f:
        if not call.me.is_administrator:
            raise forbidden("Only Administrator allowed")
        values["role"] = f["Role"]
    new_status = f.get("Status")
    if new_status is not None and (new_status != target["status"] or target.get("status_cascaded_from")):
        if target["sid"] == call.me.sid:
            raise forbidden("An account cannot change its own status; its parent can")
        # Set explicitly (even to the status a cascade gave it), the status is now the account's
        # own: reactivating the ancestor will not undo it.
        values["status"] = new_status
        values["status_cascaded_from"] = None
    if not values:
        return call.item(_shape(call), target)
    values["date_updated"] = call.services.clock()
    async with call.write() as conn:
        await conn.execute(update(t.accounts).where(t.accounts.c.sid == target["sid"]).values(**values))
        if new_status is not None and "status" in values:
            await _cascade(conn, target["sid"], new_status, values["date_updated"])
        # The SIP client created with the account follows its name and password, as in Restcomm.
        linked: dict[str, object] = {}
        login = target["email"].split("@", 1)[0]
        if "FriendlyName" in f:
            linked["friendly_name"] = f["FriendlyName"]
        if "password_hash" in values:
            linked["password"] = ha1(login, call.settings.domain, f["Password"])
        if linked:
            await conn.execute(
                update(t.clients)
                .where(t.clients.c.account_sid == target["sid"], t.clients.c.login == login)
                .values(**linked)
            )
        await call.audit(conn, "update", "Account", target["sid"], target["sid"], f.keys())
        row = (await conn.execute(select(t.accounts).where(t.accounts.c.sid == target["sid"]))).mappings().one()
    return call.item(_shape(call), row)


@operation("DELETE", "/Accounts/{AccountSid}", summary="Not supported: close the account instead", tag="Accounts",
           kind="empty")
async def delete_account(call: Call) -> Response:
    raise ApiError(405, 20004, "Accounts cannot be deleted; set Status=closed instead")

