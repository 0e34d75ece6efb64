"""The audit log of management changes, as the API lists it: who changed what, when. Readable by
the account it concerns (and its ancestors). Events are written by ``restcomm.audit.record``."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.store.schema import audit_log
from restcomm.util import API_VERSION, rfc2822

AUDIT = Shape(
    name="AuditEvent",
    list_name="AuditEvents",
    items_key="audit_events",
    fields=(
        col("sid", "Sid"),
        col("account_sid", "AccountSid"),
        col("actor_sid", "ActorSid", description="the account that made the change"),
        col("credential_sid", "CredentialSid", description="the account or API key used"),
        col("action", "Action"),
        col("resource_type", "ResourceType"),
        col("resource_sid", "ResourceSid"),
        computed("changed_parameters", "ChangedParameters", lambda r: ",".join(orjson.loads(r["changes"]))),
        col("remote_addr", "RemoteAddr"),
        col("request_id", "RequestId"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed(
            "uri",
            "Uri",
            lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/AuditLog/{r['sid']}",
            is_uri=True,
        ),
    ),
)


@operation(
    "GET",
    "/Accounts/{AccountSid}/AuditLog",
    summary="List the account's audit events, newest first",
    tag="AuditLog",
    shape=AUDIT,
    kind="page",
    query=(Param("ResourceType"), Param("Action"), Param("StartTime", "date"), Param("EndTime", "date")),
)
async def list_audit(call: Call) -> object:
    account = await call.account()
    page, size = call.paging()
    cond = [audit_log.c.account_sid == account["sid"]]
    q = call.query
    if "ResourceType" in q:
        cond.append(audit_log.c.resource_type == q["ResourceType"])
    if "Action" in q:
        cond.append(audit_log.c.action == q["Action"])
    if "StartTime" in q:
        cond.append(audit_log.c.date_created >= q["StartTime"])
    if "EndTime" in q:
        cond.append(audit_log.c.date_created < q["EndTime"])
    total = (await call.fetch_one(select(func.count().label("n")).select_from(audit_log).where(*cond)))["n"]
    rows = await call.fetch_all(
        select(audit_log)
        .where(*cond)
        .order_by(audit_log.c.date_created.desc(), audit_log.c.sid)
        .offset(page * size)
        .limit(size)
    )
    return call.page(AUDIT, rows, total, page, size)


@operation(
    "GET",
    "/Accounts/{AccountSid}/AuditLog/{AuditEventSid}",
    summary="Read one audit event",
    tag="AuditLog",
    shape=AUDIT,
)
async def get_audit(call: Call) -> object:
    _, row = await call.owned(audit_log, "AuditEventSid", "The audit event")
    return call.item(AUDIT, row)
