"""API conventions in one place: operations declared once (routes, parameters, wire shape) and
used for routing, validation, rendering and the OpenAPI description alike.

A resource module declares its operations with ``@operation(...)``; a handler receives a ``Call``
that carries the validated parameters, the authenticated principal, a database connection and
helpers to render items, bare lists and paged lists in the negotiated format.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from restcomm.api.errors import ApiError, invalid, missing, not_found
from restcomm.api.shapes import Row, Shape, dumps, to_json_obj, to_xml, xml_document, xml_list
from restcomm.codes import more_info_path
from restcomm.store.compiled import Query
from restcomm.store.schema import accounts
from restcomm.store.session import Session
from restcomm.util import API_VERSION, parse_date
from restcomm.weburl import InvalidUrl, check_http_url

if TYPE_CHECKING:
    from restcomm.container import Services

API_ROOT = f"/restcomm/{API_VERSION}"
JSON = "application/json"
XML = "application/xml"


# ---------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"  # string | integer | boolean | url | url_or_path | method | enum | email | date
    required: bool = False
    enum: tuple[str, ...] = ()
    description: str = ""
    code: int | None = None  # error code when the value is invalid
    missing_code: int | None = None  # error code when a required value is absent
    max_length: int = 4096
    secret: bool = False  # never written to the audit log or logs
    minimum: int | None = None
    maximum: int | None = None

    def openapi_schema(self) -> dict[str, Any]:
        kinds = {
            "integer": {"type": "integer"},
            "boolean": {"type": "string", "enum": ["true", "false", "True", "False"]},
            "method": {"type": "string", "enum": ["GET", "POST", "get", "post"]},
            "url": {"type": "string", "format": "uri"},
            "email": {"type": "string", "format": "email"},
            "date": {"type": "string", "format": "date"},
        }
        schema: dict[str, Any] = dict(kinds.get(self.type, {"type": "string"}))
        if self.type == "enum":
            schema["enum"] = list(self.enum)
        if self.type == "integer":
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        elif schema["type"] == "string" and "enum" not in schema:
            schema["maxLength"] = self.max_length
        return schema


_EMAIL = re.compile(r"^[^@\s?=]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def _check_url(p: Param, v: str, allow_path: bool) -> str | None:
    if v == "":
        return None  # an empty URL clears the field
    if allow_path and v.startswith("/") and not v.startswith("//"):
        return v
    try:
        check_http_url(v)  # the one URL check (restcomm.weburl); never a 500 for a malformed URL
    except InvalidUrl as exc:
        raise invalid(p.name, str(exc), p.code or 20001) from None
    return v


def coerce(p: Param, raw: str) -> Any:
    """Validate one raw value; raise ApiError(400) with a clear message when it is wrong."""
    if len(raw) > p.max_length:
        raise invalid(p.name, f"longer than {p.max_length} characters", p.code or 20001)
    if "\x00" in raw:
        raise invalid(p.name, "contains a NUL character", p.code or 20001)
    t = p.type
    if t == "string":
        return raw
    if t == "integer":
        try:
            n = int(raw.strip())
        except ValueError:
            raise invalid(p.name, "must be an integer", p.code or 20001) from None
        if (p.minimum is not None and n < p.minimum) or (p.maximum is not None and n > p.maximum):
            raise invalid(p.name, f"must be between {p.minimum} and {p.maximum}", p.code or 20001)
        return n
    if t == "boolean":
        low = raw.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise invalid(p.name, "must be true or false", p.code or 20001)
    if t == "method":
        up = raw.strip().upper()
        if up in ("GET", "POST"):
            return up
        raise invalid(p.name, "must be GET or POST", p.code or 20001)
    if t == "enum":
        for choice in p.enum:
            if raw.strip().lower() == choice.lower():
                return choice
        raise invalid(p.name, "must be one of " + ", ".join(p.enum), p.code or 20001)
    if t == "url":
        return _check_url(p, raw.strip(), allow_path=False)
    if t == "url_or_path":
        return _check_url(p, raw.strip(), allow_path=True)
    if t == "email":
        value = raw.strip().lower()
        if not _EMAIL.match(value) or len(value) > 320:
            raise invalid(p.name, f"{raw!r} is not a valid email address", p.code or 20001)
        return value
    if t == "date":
        try:
            return parse_date(raw)
        except ValueError:
            raise invalid(p.name, "must be a date (YYYY-MM-DD)", p.code or 20001) from None
    raise AssertionError(f"unknown parameter type {t}")


def validate(spec: Sequence[Param], raw: Mapping[str, str]) -> dict[str, Any]:
    """Only declared parameters are kept (unknown ones are ignored, as Restcomm does)."""
    out: dict[str, Any] = {}
    for p in spec:
        if p.name in raw:
            out[p.name] = coerce(p, raw[p.name])
        if p.required and (out.get(p.name) in (None, "")):
            raise missing(p.name, p.missing_code or 20002)
    return out


def parse_form(data: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded; the first of repeated names wins; invalid UTF-8 is a 400."""
    try:
        text = data.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, 20001, "The request is not valid UTF-8 form data") from None
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in MULTI_VALUED and k in out:
            out[k] += " " + v
            continue
        out.setdefault(k, v)
    return out


# Names whose repeated values are all kept, space-separated (Twilio's SDKs repeat StatusCallbackEvent).
MULTI_VALUED = frozenset({"StatusCallbackEvent"})


# ---------------------------------------------------------------------------------------------
# Operations


@dataclass
class Operation:
    method: str
    path: str  # relative to API_ROOT, e.g. "/Accounts/{AccountSid}/Clients"
    handler: Callable[[Call], Awaitable[Response]]
    summary: str
    tag: str
    form: tuple[Param, ...] = ()
    query: tuple[Param, ...] = ()
    shape: Shape | None = None
    kind: str = "item"  # item | list | page | empty
    status: int = 200
    auth: bool = True
    root: str = API_ROOT
    responses: dict[int, str] = field(default_factory=dict)
    # JSON-only resources (Profiles): the media type of their JSON answers (errors are JSON too,
    # whatever the Accept header), the JSON Schema of a JSON request body (read raw into
    # ``Call.body``), request headers the operation reads (validated into ``Call.headers``), and
    # further HTTP methods routed to it (LINK, UNLINK; not expressible in OpenAPI); ``answer`` is the
    # JSON Schema of a JSON document answered instead of a shape.
    media: str | None = None
    body: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None
    headers: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def full_path(self) -> str:
        return self.root + self.path


REGISTRY: list[Operation] = []

PAGING_PARAMS = (
    Param("Page", "integer", minimum=0, maximum=10**9, code=20007, description="0-based page index"),
    Param("PageSize", "integer", minimum=1, maximum=1000, code=20007, description="items per page"),
)


def operation(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    form: Iterable[Param] = (),
    query: Iterable[Param] = (),
    shape: Shape | None = None,
    kind: str = "item",
    status: int = 200,
    auth: bool = True,
    root: str = API_ROOT,
    responses: dict[int, str] | None = None,
    media: str | None = None,
    body: dict[str, Any] | None = None,
    answer: dict[str, Any] | None = None,
    headers: Iterable[Param] = (),
    aliases: Iterable[str] = (),
) -> Callable[[Callable[[Call], Awaitable[Response]]], Callable[[Call], Awaitable[Response]]]:
    def register(fn: Callable[[Call], Awaitable[Response]]) -> Callable[[Call], Awaitable[Response]]:
        q = tuple(query) + (PAGING_PARAMS if kind == "page" else ())
        REGISTRY.append(
            Operation(method, path, fn, summary, tag, tuple(form), q, shape, kind, status, auth, root, responses or {},
                      media, body, answer, tuple(headers), tuple(aliases))
        )
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# The principal and tenancy


@dataclass
class Principal:
    account: Row  # the authenticated account
    credential_sid: str  # the account SID, the API key SID or the IAM user SID used
    user_role: str | None = None  # an IAM user's own role, which replaces the account's

    @property
    def sid(self) -> str:
        return self.account["sid"]

    @property
    def role(self) -> str:
        return self.user_role if self.user_role is not None else self.account["role"]

    @property
    def is_administrator(self) -> bool:
        return self.role == "Administrator"

    @property
    def is_super_admin(self) -> bool:
        return self.account["parent_sid"] is None and self.account["status"] == "active"


def can_act_on(principal_sid: str, target: Row) -> bool:
    """An account acts on itself and its descendants."""
    return target["sid"] == principal_sid or principal_sid in target["lineage"].split("/")


# ---------------------------------------------------------------------------------------------
# Constant statements of every request's tenancy checks (store/compiled.py)

ACCOUNT_BY_SID = Query(select(accounts).where(accounts.c.sid == bindparam("sid")))
ACCOUNT_BY_EMAIL = Query(select(accounts).where(accounts.c.email == bindparam("email")))
_BY_SID: dict[Any, Query] = {}


def by_sid(table: Any) -> Query:
    """``SELECT * FROM table WHERE sid = :sid``, built once per table."""
    query = _BY_SID.get(table)
    if query is None:
        query = _BY_SID[table] = Query(select(table).where(table.c.sid == bindparam("sid")))
    return query


# ---------------------------------------------------------------------------------------------
# The per-request context

# What a resource SID in a path can look like (anything else cannot exist: 404 without a query).
_SID = re.compile(r"^[A-Za-z0-9-]{2,80}$")


class Call:
    def __init__(self, request: Request, op: Operation, services: Services, fmt: str):
        self.request = request
        self.op = op
        self.services = services
        self.settings = services.settings
        self.fmt = fmt
        self.path = request.path_params
        self.principal: Principal | None = None
        self.form: dict[str, Any] = {}
        self.query: dict[str, Any] = {}
        self.raw_query: dict[str, str] = {}
        self.body: bytes = b""  # the raw JSON body of an operation with a body schema
        self.headers: dict[str, Any] = {}  # the operation's declared request headers, validated
        self._session: Session | None = None
        self._account: Row | None = None  # the {AccountSid} account, once resolved

    # -- database ----------------------------------------------------------------------------

    async def conn(self) -> Any:
        """This request's database session (store/session.py): AsyncConnection's execute and begin."""
        if self._session is None:
            self._session = self.services.db.session()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        """A write transaction (on SQLite: this process's one write connection, taken in turn); committed on success."""
        session = await self.conn()
        async with session.begin():
            yield session

    async def fetch_one(self, stmt: Any, params: dict[str, Any] | None = None) -> Row | None:
        """The first row of a statement: a constant ``Query`` (store/compiled.py) or any Core statement."""
        conn = await self.conn()
        if isinstance(stmt, Query):
            return await conn.first(stmt, params)
        row = (await conn.execute(stmt, params)).mappings().first()
        return row

    async def fetch_all(self, stmt: Any, params: dict[str, Any] | None = None) -> list[Row]:
        conn = await self.conn()
        if isinstance(stmt, Query):
            return await conn.rows(stmt, params)
        return list((await conn.execute(stmt, params)).mappings().all())

    # -- tenancy -----------------------------------------------------------------------------

    @property
    def me(self) -> Principal:
        assert self.principal is not None
        return self.principal

    async def account(self, *, write: bool = False) -> Row:
        """The account named by {AccountSid} (a SID or an email), if the principal may act on it.

        Missing: 404. Someone else's: 403 when addressed by SID, 404 when addressed by email (so
        emails cannot be probed). A closed account can be read but not changed.
        """
        if self._account is not None:
            target = self._account
            if write and target["status"] == "closed":
                raise ApiError(400, 22003, "Account is closed")
            return target
        ident = self.path["AccountSid"]
        me = self.me
        if ident == me.sid:
            target: Row | None = me.account
        elif "\x00" in ident:  # no such account, and PostgreSQL cannot even compare text holding NUL
            target = None
        else:
            if "@" in ident:
                target = await self.fetch_one(ACCOUNT_BY_EMAIL, {"email": ident.lower()})
            else:
                target = await self.fetch_one(ACCOUNT_BY_SID, {"sid": ident})
        if target is None:
            raise not_found("The account")
        if not can_act_on(me.sid, target):
            if "@" in ident:
                raise not_found("The account")
            raise ApiError(403, 20006, "This account may not act on the requested account")
        self._account = target
        if write and target["status"] == "closed":
            raise ApiError(400, 22003, "Account is closed")
        return target

    async def owned(self, table: Any, sid_param: str, what: str, *, write: bool = False) -> tuple[Row, Row]:
        """The operated account and one of its resources, addressed by a path SID."""
        account = await self.account(write=write)
        sid = self.path[sid_param]
        if not _SID.match(sid):
            raise not_found(what)
        row = await self.fetch_one(by_sid(table), {"sid": sid})
        if row is None:
            raise not_found(what)
        if row["account_sid"] != account["sid"]:
            # The resource exists but belongs elsewhere: say so only if the principal could see it.
            owner = await self.fetch_one(ACCOUNT_BY_SID, {"sid": row["account_sid"]})
            if owner is not None and can_act_on(self.me.sid, owner):
                raise ApiError(403, 20006, f"{what} does not belong to account {account['sid']}")
            raise not_found(what)
        return account, row

    # -- audit -------------------------------------------------------------------------------

    async def audit(
        self,
        conn: AsyncConnection,
        action: str,
        resource_type: str,
        resource_sid: str | None,
        account_sid: str,
        changed: Iterable[str] = (),
    ) -> None:
        from restcomm.audit import record

        client = self.request.client
        await record(
            conn,
            services=self.services,
            account_sid=account_sid,
            actor_sid=self.me.sid,
            credential_sid=self.me.credential_sid,
            action=action,
            resource_type=resource_type,
            resource_sid=resource_sid,
            changed=sorted(changed),
            remote_addr=client.host if client else None,
            request_id=self.request.headers.get("x-request-id"),
        )

    # -- paging ------------------------------------------------------------------------------

    def paging(self) -> tuple[int, int]:
        page = self.query.get("Page", 0)
        size = self.query.get("PageSize", self.settings.default_page_size)
        if size > self.settings.max_page_size:
            raise ApiError(400, 20007, f"PageSize must not exceed {self.settings.max_page_size}")
        return page, size

    # -- responses ---------------------------------------------------------------------------

    def respond(self, body: bytes, status: int | None = None, headers: dict[str, str] | None = None) -> Response:
        return Response(body, status or self.op.status, headers=headers, media_type=JSON if self.fmt == "json" else XML)

    def item(self, shape: Shape, row: Row, status: int | None = None, headers: dict[str, str] | None = None) -> Response:
        if self.fmt == "json":
            return self.respond(dumps(to_json_obj(shape, row)), status, headers)
        return self.respond(xml_document(to_xml(shape, row)), status, headers)

    def bare_list(self, shape: Shape, rows: Sequence[Row]) -> Response:
        if self.fmt == "json":
            return self.respond(dumps([to_json_obj(shape, r) for r in rows]))
        return self.respond(xml_document(xml_list(shape, rows)))

    def empty(self, status: int = 200) -> Response:
        if status == 204:
            return Response(status_code=204)
        return Response(b"", status, media_type=JSON if self.fmt == "json" else XML)

    def page(self, shape: Shape, rows: Sequence[Row], total: int, page: int, size: int) -> Response:
        """Restcomm's paging envelope; the page URIs keep the filters so they lead where they say."""
        num_pages = max(1, math.ceil(total / size))
        start = page * size
        end = start + max(len(rows) - 1, 0)
        # The path as the client sent it (with any .json/.xml suffix), so the links keep the format.
        base = self.request.scope.get("state", {}).get("client_path") or self.request.url.path
        if len(base) > 1:
            base = base.rstrip("/")
        filters = {k: v for k, v in self.raw_query.items() if k not in ("Page", "PageSize", "AfterSid", "PageToken")}

        def uri(p: int) -> str:
            return base + "?" + urlencode({**filters, "Page": p, "PageSize": size})

        envelope: dict[str, Any] = {
            "page": page,
            "num_pages": num_pages,
            "page_size": size,
            "total": total,
            "start": str(start),
            "end": str(end),
            "uri": base,
            "first_page_uri": uri(0),
            "previous_page_uri": uri(min(page - 1, num_pages - 1)) if page > 0 else None,
            "next_page_uri": uri(page + 1) if start + len(rows) < total else None,
            "last_page_uri": uri(num_pages - 1),
        }
        if self.fmt == "json":
            envelope[shape.items_key] = [to_json_obj(shape, r) for r in rows]
            return self.respond(dumps(envelope))
        attrs = {k.replace("_", ""): v for k, v in envelope.items()}
        return self.respond(xml_document(xml_list(shape, rows, attrs)))

    def twilio_page(self, shape: Shape, rows: list[Row], total: int, page: int, size: int, path: str) -> bytes:
        """Twilio's list envelope (JSON; plus Restcomm's counters, which Twilio clients ignore), for
        the ``/2010-04-01`` surfaces: every page URI keeps the filters and is ``path`` + query."""
        filters = {k: v for k, v in self.raw_query.items() if k not in ("Page", "PageSize", "PageToken", "AfterSid")}
        num_pages = max(1, -(-total // size))

        def uri(p: int) -> str:
            return path + "?" + urlencode({**filters, "PageSize": size, "Page": p})

        start = page * size
        return dumps({
            "first_page_uri": uri(0),
            "end": str(start + max(len(rows) - 1, 0)),
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            shape.items_key: [to_json_obj(shape, r) for r in rows],
            "uri": uri(page),
            "page_size": size,
            "start": str(start),
            "next_page_uri": uri(page + 1) if start + len(rows) < total else None,
            "page": page,
            "num_pages": num_pages,
            "total": total,
            "last_page_uri": uri(num_pages - 1),
        })


def error_response(fmt: str, err: ApiError) -> Response:
    more_info = more_info_path(err.code)
    if fmt == "json":
        body = orjson.dumps({"code": err.code, "message": err.message, "more_info": more_info, "status": err.status})
        media = JSON
    else:
        from xml.sax.saxutils import escape

        body = xml_document(
            f"<RestException><Code>{err.code}</Code><Message>{escape(err.message)}</Message>"
            f"<MoreInfo>{more_info}</MoreInfo><Status>{err.status}</Status></RestException>"
        )
        media = XML
    return Response(body, err.status, headers=err.headers, media_type=media)
