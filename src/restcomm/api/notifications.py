"""Notifications: the errors (Log 0) and warnings (Log 1) the platform recorded for an account.

They are written by the platform itself (``restcomm.notify.write_notification``), never through
the API; the API reads, filters, pages and deletes them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from starlette.responses import Response

from restcomm.api.errors import ApiError, not_found
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.store.schema import accounts, notifications
from restcomm.util import API_VERSION, iso8601, rfc2822

TAG = "Notifications"
LIST_PATH = "/Accounts/{AccountSid}/Notifications"
ITEM_PATH = "/Accounts/{AccountSid}/Notifications/{NotificationSid}"

NOTIFICATION = Shape(
    name="Notification",
    list_name="Notifications",
    items_key="notifications",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("account_sid", "AccountSid"),
        col("call_sid", "CallSid"),
        col("message_sid", "MessageSid", description="the SMS message the notification is about"),
        col("api_version", "ApiVersion"),
        col("log", "Log", type="integer", description="0 = error, 1 = warning"),
        col("error_code", "ErrorCode", type="integer"),
        col("more_info", "MoreInfo"),
        col("message_text", "MessageText"),
        computed("message_date", "MessageDate", lambda r: iso8601(r["message_date"])),
        col("request_url", "RequestUrl"),
        col("request_method", "RequestMethod"),
        col("request_variables", "RequestVariables"),
        col("response_headers", "ResponseHeaders"),
        col("response_body", "ResponseBody", description="an excerpt (at most 4 KiB) of the answer"),
        computed(
            "uri",
            "Uri",
            lambda r: f"/{API_VERSION}/Accounts/{r['account_sid']}/Notifications/{r['sid']}",
            is_uri=True,
        ),
    ),
)

# SortBy=<Field>[:asc|desc], as Restcomm: unknown fields are ignored, a bad direction is a 400.
SORTABLE = {
    "DateCreated": notifications.c.date_created,
    "Log": notifications.c.log,
    "ErrorCode": notifications.c.error_code,
    "CallSid": notifications.c.call_sid,
    "MessageText": notifications.c.message_text,
}

FILTERS = (
    Param("StartTime", "date", description="message_date on or after this date (yyyy-MM-dd)"),
    Param("EndTime", "date", description="message_date on or before this date (yyyy-MM-dd: the whole day)"),
    Param("ErrorCode", "integer", minimum=0, maximum=999_999),
    Param("Log", "integer", minimum=0, maximum=1, description="0 = errors, 1 = warnings"),
    Param("RequestUrl", max_length=2048, description="substring of the request URL"),
    Param("MessageText", max_length=2048, description="substring of the message text"),
    Param("CallSid", max_length=80),
    Param("MessageSid", max_length=34),
    Param("SubAccounts", "boolean", description="include the notifications of descendant accounts"),
    Param("SortBy", max_length=64, description="DateCreated, Log, ErrorCode, CallSid or MessageText, "
                                               "optionally followed by :asc or :desc"),
)


def _end_bound(call: Call, end: datetime) -> Any:
    """A bare date covers that whole day (Restcomm: <= date + 1 day); a timestamp is inclusive."""
    if len(call.raw_query["EndTime"].strip()) == 10:
        try:
            return notifications.c.message_date < end + timedelta(days=1)
        except OverflowError:  # 9999-12-31: everything is before the end of time
            return None
    return notifications.c.message_date <= end


def _order(sort_by: str | None) -> list[Any]:
    default = [notifications.c.date_created.desc(), notifications.c.sid]
    if sort_by is None:
        return default
    field, _, direction = sort_by.partition(":")
    field, direction = field.strip(), direction.strip().lower() or "asc"
    if not field or direction not in ("asc", "desc"):
        raise ApiError(400, 20001, "Error parsing the SortBy parameter: expected Field[:asc|desc]")
    column = SORTABLE.get(field)
    if column is None:
        return default
    return [column.asc() if direction == "asc" else column.desc(), notifications.c.sid]


@operation("GET", LIST_PATH, summary="List the account's notifications, newest first", tag=TAG,
           shape=NOTIFICATION, kind="page", query=FILTERS)
async def list_notifications(call: Call) -> Response:
    account = await call.account()
    page, size = call.paging()
    q = call.query
    if q.get("SubAccounts"):
        subtree = select(accounts.c.sid).where(accounts.c.lineage.contains(account["sid"] + "/", autoescape=True))
        cond = [or_(notifications.c.account_sid == account["sid"], notifications.c.account_sid.in_(subtree))]
    else:
        cond = [notifications.c.account_sid == account["sid"]]
    if "StartTime" in q:
        cond.append(notifications.c.message_date >= q["StartTime"])
    if "EndTime" in q:
        bound = _end_bound(call, q["EndTime"])
        if bound is not None:
            cond.append(bound)
    if "ErrorCode" in q:
        cond.append(notifications.c.error_code == q["ErrorCode"])
    if "Log" in q:
        cond.append(notifications.c.log == q["Log"])
    if q.get("RequestUrl"):
        cond.append(notifications.c.request_url.contains(q["RequestUrl"], autoescape=True))
    if q.get("MessageText"):
        cond.append(notifications.c.message_text.contains(q["MessageText"], autoescape=True))
    if q.get("CallSid"):
        cond.append(notifications.c.call_sid == q["CallSid"])
    if q.get("MessageSid"):
        cond.append(notifications.c.message_sid == q["MessageSid"])
    order = _order(q.get("SortBy"))
    total = (await call.fetch_one(select(func.count().label("n")).select_from(notifications).where(*cond)))["n"]
    rows = await call.fetch_all(
        select(notifications).where(*cond).order_by(*order).offset(page * size).limit(size)
    )
    return call.page(NOTIFICATION, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read one notification", tag=TAG, shape=NOTIFICATION)
async def get_notification(call: Call) -> Response:
    _, row = await call.owned(notifications, "NotificationSid", "The notification")
    return call.item(NOTIFICATION, row)


@operation("DELETE", ITEM_PATH, summary="Delete one notification", tag=TAG, kind="empty")
async def delete_notification(call: Call) -> Response:
    account, row = await call.owned(notifications, "NotificationSid", "The notification", write=True)
    async with call.write() as conn:
        done = await conn.execute(delete(notifications).where(notifications.c.sid == row["sid"]))
        if done.rowcount == 0:  # deleted by a concurrent request since we read it
            raise not_found("The notification")
        await call.audit(conn, "delete", "Notification", row["sid"], account["sid"])
    return call.empty(200)
