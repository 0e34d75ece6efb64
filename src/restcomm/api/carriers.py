"""Carriers: the state of this node's SMPP carriers ([[carriers]]), for the administrator.

``GET /Accounts/{AccountSid}/Carriers`` answers only for the top-level administrator account
(the one created at first start); any other account gets 403, since carriers are shared by the
whole platform and their addresses and counters are the operator's business. The list is what
*this* server sees: with ``restcomm serve --workers N`` every worker's share of the binds and its
counters are merged (web/peers.py), whichever worker answers; with several servers (nodes) on one
database each has its own binds.

Per carrier: whether it is ``up`` (every bind bound), ``degraded`` (some) or ``down`` (none), the
binds, window use, the TPS limit and the rate of the last second, queued segments, counters of
messages and segments, reconnects, and the error counters (refusals, throttling answers,
response timeouts, connect and bind failures, disconnects, deliveries we failed to take).
"""

from __future__ import annotations

from starlette.responses import Response

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, operation
from restcomm.api.shapes import Shape, col, computed

TAG = "Carriers"

_ERRORS = Shape(
    name="ErrorCounts",
    list_name="ErrorCounts",
    items_key="error_counts",
    fields=(
        col("rejected", "Rejected", "integer", description="submit_sm refused for good"),
        col("throttled", "Throttled", "integer", description="ESME_RTHROTTLED/ESME_RMSGQFUL answers (retried)"),
        col("timeouts", "Timeouts", "integer", description="requests without a response in time"),
        col("connect_failures", "ConnectFailures", "integer"),
        col("bind_failures", "BindFailures", "integer"),
        col("disconnects", "Disconnects", "integer", description="bound binds that dropped"),
        col("deliver_errors", "DeliverErrors", "integer", description="deliver_sm we could not take"),
        col("late_responses", "LateResponses", "integer", description="responses after their timeout"),
    ),
)

_ROUTE = Shape(name="Route", list_name="Routes", items_key="routes",
               fields=(col("prefix", "Prefix", description='destination prefix; "" is the default route'),))

CARRIER = Shape(
    name="Carrier",
    list_name="Carriers",
    items_key="carriers",
    fields=(
        col("name", "Name"),
        col("status", "Status", description="up | degraded | down"),
        col("host", "Host"),
        col("port", "Port", "integer"),
        col("system_id", "SystemId"),
        computed("routes", "Routes", lambda r: [{"prefix": p} for p in r["prefixes"]], type="array", item=_ROUTE),
        col("binds", "Binds", "integer", description="binds configured"),
        col("bound", "Bound", "integer", description="binds bound now"),
        col("window", "Window", "integer", description="outstanding submit_sm allowed per bind"),
        col("window_in_use", "WindowInUse", "integer", description="submit_sm awaiting a response, all binds"),
        col("queued", "Queued", "integer", description="segments waiting for a window slot or a TPS token"),
        col("max_tps", "MaxTps", "number", description="0 = unlimited"),
        col("tps", "Tps", "number", description="submit_sm sent in the last second"),
        col("reconnects", "Reconnects", "integer"),
        col("submitted", "Submitted", "integer", description="submit_sm sent, retries included"),
        col("accepted", "Accepted", "integer", description="segments the carrier accepted"),
        col("retries", "Retries", "integer"),
        col("receipts", "Receipts", "integer"),
        col("receipts_parked", "ReceiptsParked", "integer",
            description="receipts that arrived before their submit_sm_resp was recorded (applied later)"),
        col("mo", "Mo", "integer", description="mobile-originated messages received"),
        col("mo_not_hosted", "MoNotHosted", "integer", description="MO for numbers nobody hosts (notification 11005)"),
        col("mo_incomplete", "MoIncomplete", "integer", description="MO missing parts (notification 30009)"),
        col("messages_sent", "MessagesSent", "integer"),
        col("messages_refused", "MessagesRefused", "integer"),
        col("messages_unavailable", "MessagesUnavailable", "integer", description="sends put back in the queue"),
        col("errors", "Errors", "integer", description="sum of error_counts"),
        computed("error_counts", "ErrorCounts", lambda r: r["error_counts"], type="object", nested=_ERRORS),
    ),
)


@operation("GET", "/Accounts/{AccountSid}/Carriers", summary="State of this server's SMPP carriers (administrator only)",
           tag=TAG, shape=CARRIER, kind="list", responses={403: "not the top-level administrator account"})
async def list_carriers(call: Call) -> Response:
    await call.account()  # the tenancy check on the path
    # Carriers belong to the platform, not to a tenant: only the top-level administrator sees them,
    # under its own account or any account it may act on.
    me = call.me.account
    if me["parent_sid"] is not None or me["role"] != "Administrator":
        raise ApiError(403, 20006, "Only the administrator account can see the carriers")
    rows = await call.services.server_carrier_states() or []
    return call.bare_list(CARRIER, rows)
