"""Email messages: ``POST /Accounts/{AccountSid}/Email/Messages`` (Restcomm), plus reading them back.

Restcomm sends the email in the background and only logs an SMTP failure. Here the email is committed
to the outbox (status ``queued``) before the answer, and its final status (``sent`` or ``failed``,
with the reason) can be read with ``GET …/Email/Messages/{EmailSid}``; a failure also writes a
Notification. Subjects longer than 160 characters are truncated, as Restcomm does.
"""

from __future__ import annotations

from sqlalchemy import func, select
from starlette.responses import Response

from restcomm.api.errors import ApiError, invalid, missing
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Row, Shape, col, computed
from restcomm.messaging.email import CONTENT_TYPES, InvalidEmail, queue_email, smtp_config, wake_sender
from restcomm.store.schema import emails
from restcomm.util import API_VERSION, iso8601, rfc2822

TAG = "Email"
STATUSES = ("queued", "sending", "sent", "failed")


def _uri(r: Row) -> str:
    return f"/{API_VERSION}/Accounts/{r['account_sid']}/Email/Messages/{r['sid']}"


EMAIL_MESSAGE = Shape(
    name="EmailMessage",
    list_name="EmailMessages",
    items_key="email_messages",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        computed("date_sent", "DateSent", lambda r: iso8601(r["date_sent"]), description="absent until sent"),
        col("account_sid", "AccountSid"),
        col("from", "From", column="from_addr", description="empty: the server's [smtp] from default"),
        col("to", "To", column="to_addr", description="comma-separated addresses"),
        col("cc", "CC"),
        col("bcc", "BCC"),
        col("subject", "Subject"),
        col("body", "Body"),
        col("type", "Type", column="content_type"),
        col("status", "Status", description="queued | sending | sent | failed"),
        col("error_message", "ErrorMessage", description="why the last attempt failed"),
        col("attempts", "Attempts", type="integer"),
        computed("api_version", "ApiVersion", lambda r: API_VERSION),
        computed("uri", "Uri", _uri, is_uri=True),
    ),
)

CREATE = (
    Param("From", required=True, max_length=320, description="sender address"),
    Param("To", required=True, max_length=8000, description="recipient address(es), comma-separated"),
    Param("Subject", required=True, max_length=4096, description="truncated to 160 characters"),
    Param("Body", required=True, max_length=1_000_000),
    Param("CC", max_length=8000, description="comma-separated addresses"),
    Param("BCC", max_length=8000, description="comma-separated addresses; not shown to the other recipients"),
    Param("Type", "enum", enum=CONTENT_TYPES, description="MIME type of the body (default text/plain)"),
)


@operation("POST", "/Accounts/{AccountSid}/Email/Messages", summary="Send an email (queued, then sent over SMTP)",
           tag=TAG, form=CREATE, shape=EMAIL_MESSAGE,
           responses={503: "no SMTP server is configured on this server"})
async def send_email(call: Call) -> Response:
    account = await call.account(write=True)
    f = call.form
    for name in ("From", "To", "Subject"):  # blank is as good as absent (a body may be blank)
        if not f[name].strip():
            raise missing(name)
    if smtp_config(call.settings) is None:
        raise ApiError(503, 20503, "Email is not available: no SMTP server is configured on this server")
    async with call.write() as conn:
        try:
            sid = await queue_email(
                conn,
                account_sid=account["sid"],
                from_addr=f["From"],
                to=f["To"],
                subject=f["Subject"],
                body=f["Body"],
                cc=f.get("CC"),
                bcc=f.get("BCC"),
                content_type=f.get("Type") or "text/plain",
                clock=call.services.clock,
            )
        except InvalidEmail as exc:
            raise invalid(exc.field_name, str(exc)) from None
        await call.audit(conn, "create", "EmailMessage", sid, account["sid"], f.keys())
        row = (await conn.execute(select(emails).where(emails.c.sid == sid))).mappings().one()
    wake_sender(call.services)
    return call.item(EMAIL_MESSAGE, row)


@operation("GET", "/Accounts/{AccountSid}/Email/Messages", summary="List the account's emails, newest first",
           tag=TAG, shape=EMAIL_MESSAGE, kind="page",
           query=(Param("Status", "enum", enum=STATUSES), Param("To", max_length=320, description="contains")))
async def list_emails(call: Call) -> Response:
    account = await call.account()
    page, size = call.paging()
    where = [emails.c.account_sid == account["sid"]]
    if call.query.get("Status"):
        where.append(emails.c.status == call.query["Status"])
    if call.query.get("To"):
        where.append(func.lower(emails.c.to_addr).contains(call.query["To"].lower(), autoescape=True))
    total = (await call.fetch_one(select(func.count().label("n")).select_from(emails).where(*where)))["n"]  # type: ignore[index]
    rows = await call.fetch_all(
        select(emails).where(*where).order_by(emails.c.date_created.desc(), emails.c.sid).offset(page * size).limit(size)
    )
    return call.page(EMAIL_MESSAGE, rows, total, page, size)


@operation("GET", "/Accounts/{AccountSid}/Email/Messages/{EmailSid}", summary="Read one email and its status",
           tag=TAG, shape=EMAIL_MESSAGE)
async def get_email(call: Call) -> Response:
    _, row = await call.owned(emails, "EmailSid", "The email message")
    return call.item(EMAIL_MESSAGE, row)
