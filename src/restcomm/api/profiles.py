"""Profiles (Restcomm's ``/Profiles``): JSON documents of feature enablement and session throttling,
linked to accounts and organizations. What a document means and how an account's effective profile
is found live in ``restcomm.profiles``; this module is the wire (restcomm-api.md §5.18).

* Documents go in and come out as ``application/instance+json`` (``application/json`` is accepted),
  stored as sent and validated against ``rc-profile-schema.json`` (400 with the schema report).
* The SuperAdmin (an active account without a parent, not signed in as a Developer) may do
  everything. Anyone else may read only its own effective profile (403 ``Profile not linked``).
* Linking: the methods ``LINK``/``UNLINK`` on ``/Profiles/{PR}``, or POST/PUT with
  ``X-HTTP-Method-Override: LINK|UNLINK``, with one ``Link: <…/Accounts/AC…>; rel="related"``
  header (or ``…/Organizations/OR…``). An account or organization has at most one profile: linking
  another replaces it.
* The default profile (``PRae6e…``) can be neither changed nor deleted (403).

Every change empties this node's profile cache, so the next send or request sees it.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import format_datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from starlette.responses import Response

from restcomm.api.errors import ApiError, forbidden
from restcomm.api.framework import API_ROOT, Call, Param, operation
from restcomm.api.roles import DEVELOPER, role_of
from restcomm.api.shapes import Row, Shape, col, computed
from restcomm.profiles import DEFAULT_PROFILE_SID, SCHEMA, SCHEMA_ID, InvalidDocument, parse_document
from restcomm.store.schema import accounts, organizations, profile_associations, profiles
from restcomm.util import API_VERSION, new_sid, rfc2822

TAG = "Profiles"
MEDIA = "application/instance+json"
SCHEMA_MEDIA = "application/schema+json"
LIST_PATH = "/Profiles"
ITEM_PATH = "/Profiles/{Profile}"

_SID = re.compile(r"^PR[0-9a-f]{32}$")
_LINK = re.compile(r'^\s*<([^<>]*)>\s*((?:;\s*[A-Za-z]+\s*=\s*(?:"[^"]*"|[^;,"\s]*)\s*)*)$')
_LINK_PARAM = re.compile(r';\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^;,"\s]*))')

PROFILE = Shape(
    name="Profile",
    list_name="Profiles",
    items_key="profiles",
    fields=(
        col("sid", "Sid"),
        computed("uri", "Uri", lambda r: f"/{API_VERSION}/Profiles/{r['sid']}"),
        computed("dateCreated", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("dateUpdated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed("profileDocument", "ProfileDocument", lambda r: r.get("parsed"), type="object",
                 description="the document, with IncludeDocument=true"),
    ),
)

ASSOCIATION = Shape(
    name="ProfileAssociation",
    list_name="ProfileAssociations",
    items_key="associations",
    fields=(
        col("profile_sid", "ProfileSid"),
        col("target_sid", "TargetSid", description="the account (AC…) or organization (OR…)"),
        computed("target_type", "TargetType", lambda r: "Account" if r["target_sid"].startswith("AC") else "Organization"),
        computed("uri", "Uri", lambda r: _target_path(r["target_sid"])),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
    ),
)

INCLUDE_DOCUMENT = Param("IncludeDocument", "boolean", description="each item carries its profileDocument")
LINKED_TO = Param("LinkedTo", max_length=34, description="only the profile linked to this account or organization SID")
OVERRIDE = Param("X-HTTP-Method-Override", "enum", enum=("LINK", "UNLINK"),
                 description="LINK or UNLINK (for clients that cannot send those methods)")
LINK = Param("Link", max_length=2048, description='<…/Accounts/AC…>; rel="related" (or …/Organizations/OR…)')

DOCUMENT_SCHEMA: dict[str, Any] = {k: v for k, v in SCHEMA.items() if k not in ("$schema", "id")}


def _target_path(sid: str) -> str:
    return f"/{API_VERSION}/{'Accounts' if sid.startswith('AC') else 'Organizations'}/{sid}"


def api_url(call: Call) -> str:
    """The absolute root of this API as the client reached it (Link headers carry absolute URIs).

    Built from the scope rather than ``request.base_url``: every GET /Accounts/{sid} names its
    profile, and parsing a URL object cost that hot read about a tenth of its time."""
    scope = call.request.scope
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{API_ROOT}"


def profile_link(call: Call, profile_sid: str) -> dict[str, str]:
    """The Link header naming an account's or organization's effective profile."""
    return {"Link": f'<{api_url(call)}/Profiles/{profile_sid}>; rel="related"; title="Profiles"'}


async def organization_profile(call: Call, organization_sid: str) -> str:
    row = await call.fetch_one(select(profile_associations.c.profile_sid)
                               .where(profile_associations.c.target_sid == organization_sid))
    return row["profile_sid"] if row is not None else DEFAULT_PROFILE_SID


def _super_admin(call: Call) -> bool:
    me = call.me
    return me.is_super_admin and role_of(me.role) != DEVELOPER


def _require_super_admin(call: Call) -> None:
    if not _super_admin(call):
        raise forbidden("Only the SuperAdmin account may manage profiles")


async def _profile(call: Call) -> Row:
    sid = call.path["Profile"]
    if not _SID.match(sid):
        raise ApiError(400, 20001, f"Invalid parameter Profile: {sid[:40]!r} is not a profile SID")
    row = await call.fetch_one(select(profiles).where(profiles.c.sid == sid))
    if row is None:
        raise ApiError(404, 20404, "Profile not found")
    return row


def _document(call: Call) -> str:
    """The request's profile document, checked, as sent (it is stored and answered byte for byte)."""
    ctype = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if call.body and ctype not in ("", "application/json", MEDIA):
        raise ApiError(415, 20009, f"Profile documents are {MEDIA} (or application/json)")
    try:
        parse_document(call.body)
    except InvalidDocument as exc:
        raise ApiError(400, 20001, str(exc)) from None
    return call.body.decode("utf-8")


async def _document_response(call: Call, row: Row, status: int = 200, extra: dict[str, str] | None = None) -> Response:
    base = api_url(call)
    links = [f'<{base}/Profiles/schemas/{SCHEMA_ID}>; rel="describedby"']
    for a in await call.fetch_all(select(profile_associations.c.target_sid)
                                  .where(profile_associations.c.profile_sid == row["sid"])
                                  .order_by(profile_associations.c.target_sid)):
        kind = "Accounts" if a["target_sid"].startswith("AC") else "Organizations"
        links.append(f'<{base}/{kind}/{a["target_sid"]}>; rel="related"; title="{kind}"')
    modified = format_datetime(row["date_updated"].replace(tzinfo=UTC), usegmt=True)
    headers = {"Link": ", ".join(links), "Last-Modified": modified}
    headers.update(extra or {})
    return Response(row["document"].encode("utf-8"), status, headers=headers, media_type=MEDIA)


@operation("GET", LIST_PATH, summary="List the profiles (SuperAdmin)", tag=TAG, shape=PROFILE, kind="page",
           query=(INCLUDE_DOCUMENT, LINKED_TO), media="application/json",
           responses={403: "not the SuperAdmin account"})
async def list_profiles(call: Call) -> Response:
    _require_super_admin(call)
    page, size = call.paging()
    cond = None
    if "LinkedTo" in call.query:
        cond = profiles.c.sid.in_(select(profile_associations.c.profile_sid)
                                  .where(profile_associations.c.target_sid == call.query["LinkedTo"]))
    count = select(func.count().label("n")).select_from(profiles)
    stmt = select(profiles).order_by(profiles.c.date_created, profiles.c.sid).offset(page * size).limit(size)
    if cond is not None:
        count, stmt = count.where(cond), stmt.where(cond)
    total = (await call.fetch_one(count))["n"]  # type: ignore[index]
    rows = await call.fetch_all(stmt)
    if call.query.get("IncludeDocument"):
        rows = [{**r, "parsed": orjson.loads(r["document"])} for r in rows]
    return call.page(PROFILE, rows, total, page, size)


@operation("POST", LIST_PATH, summary="Create a profile from a JSON document (SuperAdmin)", tag=TAG, status=201,
           media=MEDIA, body=DOCUMENT_SCHEMA, answer=DOCUMENT_SCHEMA,
           responses={403: "not the SuperAdmin account", 415: "not a JSON body"})
async def create_profile(call: Call) -> Response:
    _require_super_admin(call)
    text = _document(call)
    now = call.services.clock()
    row = {"sid": new_sid("PR"), "document": text, "date_created": now, "date_updated": now}
    async with call.write() as conn:
        await conn.execute(insert(profiles).values(**row))
        await call.audit(conn, "create", "Profile", row["sid"], call.me.sid, ["Document"])
    return await _document_response(call, row, 201, {"Location": f"{api_url(call)}/Profiles/{row['sid']}"})


@operation("GET", ITEM_PATH, summary="Read a profile document (the SuperAdmin any; others their effective "
           "profile)", tag=TAG, media=MEDIA, answer=DOCUMENT_SCHEMA,
           responses={403: "not the caller's effective profile"})
async def get_profile(call: Call) -> Response:
    if not _super_admin(call):
        mine = await call.services.profiles.policy(call.me.account)
        if call.path["Profile"] != mine.sid:
            raise forbidden("Profile not linked")
    return await _document_response(call, await _profile(call))


@operation("PUT", ITEM_PATH, summary="Replace a profile document (SuperAdmin); with X-HTTP-Method-Override, "
           "link or unlink it", tag=TAG, media=MEDIA, body=DOCUMENT_SCHEMA, answer=DOCUMENT_SCHEMA,
           headers=(OVERRIDE, LINK), responses={403: "not the SuperAdmin account, or the default profile"})
async def update_profile(call: Call) -> Response:
    if "X-HTTP-Method-Override" in call.headers:
        return await link_profile(call)
    _require_super_admin(call)
    row = await _profile(call)
    if row["sid"] == DEFAULT_PROFILE_SID:
        raise forbidden("Modifying the default profile is forbidden")
    text = _document(call)
    now = call.services.clock()
    async with call.write() as conn:
        await conn.execute(update(profiles).where(profiles.c.sid == row["sid"]).values(document=text, date_updated=now))
        await call.audit(conn, "update", "Profile", row["sid"], call.me.sid, ["Document"])
    call.services.profiles.invalidate()
    return await _document_response(call, {**row, "document": text, "date_updated": now})


@operation("DELETE", ITEM_PATH, summary="Delete a profile and its links (SuperAdmin)", tag=TAG, kind="empty",
           media=MEDIA, responses={403: "not the SuperAdmin account, or the default profile"})
async def delete_profile(call: Call) -> Response:
    _require_super_admin(call)
    row = await _profile(call)
    if row["sid"] == DEFAULT_PROFILE_SID:
        raise forbidden("Deleting the default profile is forbidden")
    async with call.write() as conn:
        await conn.execute(delete(profile_associations).where(profile_associations.c.profile_sid == row["sid"]))
        await conn.execute(delete(profiles).where(profiles.c.sid == row["sid"]))
        await call.audit(conn, "delete", "Profile", row["sid"], call.me.sid)
    call.services.profiles.invalidate()
    return Response(b"", 200)


def _link_target(call: Call) -> str:
    """The SID the request's one Link header names (rel="related")."""
    values = call.request.headers.getlist("link")
    if not values:
        raise ApiError(400, 20002, "A Link header is required")
    parts = [p for v in values for p in re.split(r",(?=\s*<)", v)]
    if len(parts) != 1:
        raise ApiError(400, 20001, "Only one Link supported")
    m = _LINK.match(parts[0])
    if m is None:
        raise ApiError(400, 20001, "The Link header is not <URI>; rel=\"related\"")
    params = {p.group(1).lower(): p.group(2) if p.group(2) is not None else p.group(3)
              for p in _LINK_PARAM.finditer(m.group(2))}
    if params.get("rel") != "related":
        raise ApiError(400, 20001, "Only related rel type supported")
    sid = m.group(1).split("?")[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    if not re.fullmatch(r"(AC|OR)[0-9a-f]{32}", sid):
        raise ApiError(404, 20404, "Link not supported")
    return sid


@operation("POST", ITEM_PATH, summary="Link a profile to (or unlink it from) an account or organization "
           "(SuperAdmin); the methods LINK and UNLINK do the same", tag=TAG, kind="empty", media=MEDIA,
           headers=(OVERRIDE, LINK), aliases=("LINK", "UNLINK"),
           responses={403: "not the SuperAdmin account", 404: "no such profile, account or organization"})
async def link_profile(call: Call) -> Response:
    _require_super_admin(call)
    action = call.request.method if call.request.method in ("LINK", "UNLINK") else call.headers.get(
        "X-HTTP-Method-Override")
    if action is None:
        raise ApiError(400, 20002, "Say LINK or UNLINK: the method or X-HTTP-Method-Override")
    row = await _profile(call)
    target = _link_target(call)
    table, what = (accounts, "Account") if target.startswith("AC") else (organizations, "Organization")
    if await call.fetch_one(select(table.c.sid).where(table.c.sid == target)) is None:
        raise ApiError(404, 20404, f"{what} not found")
    now = call.services.clock()
    async with call.write() as conn:
        if action == "LINK":
            existing = (await conn.execute(select(profile_associations.c.profile_sid)
                                           .where(profile_associations.c.target_sid == target))).first()
            if existing is None:
                await conn.execute(insert(profile_associations).values(
                    target_sid=target, profile_sid=row["sid"], date_created=now, date_updated=now))
            else:
                await conn.execute(update(profile_associations).where(profile_associations.c.target_sid == target)
                                   .values(profile_sid=row["sid"], date_updated=now))
        else:
            gone = await conn.execute(delete(profile_associations).where(
                profile_associations.c.target_sid == target, profile_associations.c.profile_sid == row["sid"]))
            if gone.rowcount == 0:
                raise ApiError(404, 20404, f"Profile {row['sid']} is not linked to {target}")
        await call.audit(conn, action.lower(), "Profile", row["sid"], call.me.sid, [target])
    call.services.profiles.invalidate()
    return Response(b"", 200)


@operation("GET", ITEM_PATH + "/Associations", summary="The accounts and organizations a profile is linked to "
           "(SuperAdmin)", tag=TAG, shape=ASSOCIATION, kind="list", media="application/json",
           responses={403: "not the SuperAdmin account"})
async def list_associations(call: Call) -> Response:
    _require_super_admin(call)
    row = await _profile(call)
    rows = await call.fetch_all(select(profile_associations).where(profile_associations.c.profile_sid == row["sid"])
                                .order_by(profile_associations.c.date_created, profile_associations.c.target_sid))
    return call.bare_list(ASSOCIATION, rows)


# Restcomm's /Profiles/schemas/{schemaId} has one schema; its path is a literal here (the .json
# suffix is the format's, taken off at the edge), so that no path could mean it and an association list.
@operation("GET", "/Profiles/schemas/" + SCHEMA_ID.removesuffix(".json"), summary="The JSON Schema of profile "
           "documents (every role)", tag=TAG, media=SCHEMA_MEDIA, answer={"type": "object"})
async def get_schema(call: Call) -> Response:
    return Response(orjson.dumps(SCHEMA), 200, media_type=SCHEMA_MEDIA)
