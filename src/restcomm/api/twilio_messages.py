"""Twilio's Messages resource (``/2010-04-01/Accounts/{AccountSid}/Messages``): create, fetch, list.

Twilio's own SDKs work against it with only their base URL changed (``client.api.base_url``): the
same path, Basic auth with AccountSid/AuthToken, form parameters, a 201 on create, Twilio's JSON
(explicit nulls, RFC 2822 dates, ``num_segments``/``num_media`` as strings, ``api_version``
2010-04-01) and its error body (``code``, ``message``, ``more_info``, ``status``). Sending goes
through exactly the same checks and pipeline as Restcomm's ``/SMS/Messages``; both surfaces show the
same messages.

Paging follows Twilio: ``Page``/``PageSize`` (default 50, at most 1000), ``next_page_uri`` and
``previous_page_uri`` (null at the ends) that the SDK follows as they are; ``PageToken`` is accepted
and ignored (pages are offsets here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, Param, operation
from restcomm.api.messages import SEND, list_page, send_message
from restcomm.api.shapes import Shape, col, computed
from restcomm.store.schema import messages

ROOT = "/2010-04-01"
TAG = "Twilio Messages"
LIST_PATH = "/Accounts/{AccountSid}/Messages"
ITEM_PATH = "/Accounts/{AccountSid}/Messages/{MessageSid}"


def twilio_date(dt: datetime | None) -> str | None:
    """Twilio's RFC 2822 dates: 'Thu, 04 Jan 2024 05:01:45 +0000' (zero-padded day)."""
    return None if dt is None else f"{dt:%a, %d %b %Y %H:%M:%S} +0000"


def _uri(r: Any) -> str:
    return f"{ROOT}/Accounts/{r['account_sid']}/Messages/{r['sid']}"


TWILIO_MESSAGE = Shape(
    name="Message",
    list_name="Messages",
    items_key="messages",
    json_nulls=True,
    fields=(
        col("account_sid", "AccountSid"),
        computed("api_version", "ApiVersion", lambda r: ROOT.strip("/")),
        col("body", "Body"),
        computed("date_created", "DateCreated", lambda r: twilio_date(r["date_created"])),
        computed("date_sent", "DateSent", lambda r: twilio_date(r["date_sent"])),
        computed("date_updated", "DateUpdated", lambda r: twilio_date(r["date_updated"])),
        col("direction", "Direction"),
        col("error_code", "ErrorCode", type="integer"),
        col("error_message", "ErrorMessage"),
        col("from", "From", column="from_number"),
        computed("messaging_service_sid", "MessagingServiceSid", lambda r: None),
        computed("num_media", "NumMedia", lambda r: str(r["num_media"])),
        computed("num_segments", "NumSegments", lambda r: str(r["num_segments"])),
        col("price", "Price"),
        computed("price_unit", "PriceUnit", lambda r: r["price_unit"] if r["price"] is not None else None),
        col("sid", "Sid"),
        col("status", "Status"),
        col("to", "To", column="to_number"),
        computed("uri", "Uri", _uri, is_uri=True),
    ),
)

CREATE = SEND + (
    Param("MediaUrl", max_length=2048, description="not supported: MMS is refused (21620)"),
    Param("MessagingServiceSid", max_length=34, description="not supported: give From (21603 without it)"),
)

LIST = (
    Param("To", max_length=64, description="exact destination number"),
    Param("From", max_length=64, description="exact sender"),
    Param("DateSent", "date", description="sent on this day (or at this instant)"),
    Param("DateSent<", "date", description="sent on or before this day (or instant)"),
    Param("DateSent>", "date", description="sent on or after this day (or instant)"),
    Param("PageToken", max_length=256, description="accepted and ignored: pages are Page/PageSize offsets"),
)


@operation("POST", LIST_PATH, summary="Send a message (Twilio 2010-04-01)", tag=TAG, shape=TWILIO_MESSAGE,
           form=CREATE, status=201, root=ROOT)
async def create_message(call: Call) -> Response:
    if call.form.get("MediaUrl"):
        raise ApiError(400, 21620, "MMS is not supported: this server sends SMS only (remove MediaUrl)")
    return call.item(TWILIO_MESSAGE, await send_message(call))


@operation("GET", ITEM_PATH, summary="Fetch a message (Twilio 2010-04-01)", tag=TAG, shape=TWILIO_MESSAGE,
           root=ROOT)
async def fetch_message(call: Call) -> Response:
    _, row = await call.owned(messages, "MessageSid", "The message")
    return call.item(TWILIO_MESSAGE, row)


@operation("GET", LIST_PATH, summary="List messages, newest first (Twilio 2010-04-01)", tag=TAG,
           shape=TWILIO_MESSAGE, kind="page", query=LIST, root=ROOT)
async def list_messages(call: Call) -> Response:
    account = await call.account()
    page, size = call.paging()
    rows, total = await list_page(call, account["sid"], page, size, ends_with=False)
    if call.fmt != "json":
        return call.page(TWILIO_MESSAGE, rows, total, page, size)
    return call.respond(call.twilio_page(TWILIO_MESSAGE, rows, total, page, size,
                                         f"{ROOT}/Accounts/{call.path['AccountSid']}/Messages.json"))
