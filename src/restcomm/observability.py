"""Observability: a small metrics registry with Prometheus exposition, log context (request id,
message SID) carried in a contextvar, structured logs with secrets redacted.

Metrics
-------
One process-wide registry, ``metrics``. A family is declared once by name (declaring it again with
the same type and labels returns the same family, so a module may declare it where it uses it)::

    from restcomm.observability import metrics

    SENT = metrics.counter("restcomm_messages_total", "Messages by direction and status", ("direction", "status"))
    SENT.labels("outbound-api", "sent").inc()
    metrics.histogram("restcomm_webhook_duration_seconds", "...", ("kind",)).labels("app").observe(0.12)

Values that live elsewhere (a table, a carrier's counters) are read at scrape time by a collector:
``metrics.collector(fn)`` registers a function (plain or async) called before every exposition; it
sets the families' values. The names the platform uses are declared at the bottom of this module
and listed in docs/operations.md, so every producer uses the same ones.

Log context
-----------
``log_context(message_sid=...)`` binds fields for the duration of a block (and for every task
started inside it, since asyncio copies contextvars into new tasks); every log record then carries
them. The HTTP edge binds ``request_id`` for each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import re
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

import orjson

# ---------------------------------------------------------------------------------------------
# Log context

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("restcomm_log_context", default=_EMPTY)


def context() -> Mapping[str, str]:
    """The fields bound to the current task (request_id, message_sid, ...)."""
    return _context.get()


def request_id() -> str | None:
    return _context.get().get("request_id")


def bind(**fields: str | None) -> Token[Mapping[str, str]]:
    """Bind fields until ``unbind(token)``; ``None`` removes a field."""
    merged = dict(_context.get())
    for key, value in fields.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return _context.set(merged)


def enter_request(request_id: str) -> Token[Mapping[str, str]]:
    """The HTTP edge: a request starts with only its id bound (cheaper than ``bind``)."""
    return _context.set({"request_id": request_id})


def unbind(token: Token[Mapping[str, str]]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """``with log_context(message_sid=sid): ...`` — every log record inside carries the fields."""
    token = bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


# ---------------------------------------------------------------------------------------------
# Redaction: secrets never reach a log line, whatever logged them.

_SECRET_KEYS = r"(?:password|passwd|auth_?token|secondary_?auth_?token|secret|api_?secret|token|metrics_?token)"
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Basic xxx / Bearer xxx, as a header line, a dict entry or a JSON member.
    (re.compile(r"""(?i)(authorization['"]?\s*[:=,]\s*(?:b?['"])?\s*(?:(?:basic|bearer|digest)\s+)?)[^\s'",})\]]+"""),
     r"\1[REDACTED]"),
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{8,}"), r"\1 [REDACTED]"),
    # key=value (form bodies, query strings) and "key": "value" / 'key': 'value' (reprs, JSON).
    (re.compile(rf"""(?i)(\b\w*{_SECRET_KEYS}\w*['"]?\s*[=:]\s*['"]?)(?!\[REDACTED\])[^&\s'",}})\]]+"""),
     r"\1[REDACTED]"),
    # Credentials in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1[REDACTED]@"),
)


def redact(text: str) -> str:
    """Mask credentials in a log line: Authorization values, secret-named parameters, URL passwords."""
    low = text.lower()
    if not any(k in low for k in ("auth", "pass", "secret", "token", "basic", "bearer", "@")):
        return text  # the common case: nothing that could hold a secret
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Redacts the message (and any traceback) and attaches the bound log context to the record.

    Installed on the handler, so it sees records of every logger (uvicorn's access log included).
    """

    def __init__(self) -> None:
        super().__init__()
        self._fmt = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._fmt.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.ctx = _context.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        ctx: Mapping[str, str] = getattr(record, "ctx", None) or {}
        if ctx:
            line += " [" + " ".join(f"{k}={v}" for k, v in ctx.items()) + "]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx: Mapping[str, str] = getattr(record, "ctx", None) or {}
        for key, value in ctx.items():
            out.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return orjson.dumps(out).decode()


def configure_logging(log_format: str = "text", level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route every logger through one handler: redacted, with context, text or JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Libraries whose DEBUG/INFO output is the wire itself: SQL parameters (tokens, password hashes,
    # message bodies), SMTP AUTH exchanges. Nothing can tell a secret among positional values, so
    # they stay quiet even when the server runs at DEBUG.
    for name, floor in (("sqlalchemy", logging.WARNING), ("aiosqlite", logging.INFO), ("asyncpg", logging.INFO),
                        ("aiosmtplib", logging.INFO), ("httpcore", logging.INFO), ("httpx", logging.WARNING),
                        ("hpack", logging.INFO)):
        logging.getLogger(name).setLevel(max(floor, root.level))
    # uvicorn's loggers propagate to the root handler (we pass log_config=None to uvicorn).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    return handler


# ---------------------------------------------------------------------------------------------
# Metrics

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount

    def set_total(self, total: float) -> None:
        """For collectors mirroring a cumulative count kept elsewhere (e.g. a carrier's counters)."""
        self.value = float(total)


class Gauge:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class Family:
    """A metric name with its label names; ``labels(...)`` gives the child for one label set."""

    def __init__(self, name: str, help: str, kind: str, labelnames: Sequence[str], buckets: tuple[float, ...] = ()):
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labelnames:
            if not _LABEL.match(label) or label == "le":
                raise ValueError(f"invalid label name {label!r}")
        self.name, self.help, self.kind = name, help, kind
        self.labelnames = tuple(labelnames)
        self.buckets = buckets
        self.children: dict[tuple[str, ...], Any] = {}
        # How the server's view (``--workers N``, web/peers.py) combines the workers' values: "sum"
        # (per-process counts), "local" (read from the database: every worker sees the same number,
        # the answering worker's is taken), "min" (e.g. the earliest process start).
        self.merge = "sum"

    def _new(self) -> Any:
        if self.kind == "counter":
            return Counter()
        if self.kind == "gauge":
            return Gauge()
        return Histogram(self.buckets)

    def labels(self, *values: Any, **named: Any) -> Any:
        """The child for these label values (created the first time). Hot paths should still bind
        the children they use once and keep them (``child = FAMILY.labels(...)``; ``child.inc()``)."""
        if not named:
            child = self.children.get(values)  # the common case: string values seen before
            if child is not None:
                return child
        else:
            if values:
                raise ValueError("give label values by position or by name, not both")
            try:
                values = tuple(named[n] for n in self.labelnames)
            except KeyError as exc:
                raise ValueError(f"{self.name}: missing label {exc}") from None
            if len(named) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels are {self.labelnames}")
        key = tuple(str(v) for v in values)
        child = self.children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels are {self.labelnames}")
            child = self.children[key] = self._new()
        return child

    def clear(self) -> None:
        self.children.clear()

    # Families without labels act as their only child.
    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def set(self, value: float) -> None:
        self.labels().set(value)

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {_escape_help(self.help)}")
        out.append(f"# TYPE {self.name} {self.kind}")
        for key, child in list(self.children.items()):
            pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(self.labelnames, key, strict=True)]
            if self.kind == "histogram":
                cumulative = 0
                for bound, n in zip((*child.bounds, math.inf), child.counts, strict=True):
                    cumulative += n
                    le = 'le="' + _number(bound) + '"'
                    out.append(f"{self.name}_bucket{{{','.join([*pairs, le])}}} {cumulative}")
                labels = "{" + ",".join(pairs) + "}" if pairs else ""
                out.append(f"{self.name}_sum{labels} {_number(child.sum)}")
                out.append(f"{self.name}_count{labels} {child.count}")
            else:
                labels = "{" + ",".join(pairs) + "}" if pairs else ""
                out.append(f"{self.name}{labels} {_number(child.value)}")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


Collector = Callable[[], Any]


class Registry:
    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        self.collectors: list[Collector] = []

    def _family(self, name: str, help: str, kind: str, labels: Sequence[str], buckets: tuple[float, ...] = ()) -> Family:
        existing = self.families.get(name)
        if existing is not None:
            if existing.kind != kind or existing.labelnames != tuple(labels):
                raise ValueError(f"metric {name} is already a {existing.kind} with labels {existing.labelnames}")
            return existing
        family = self.families[name] = Family(name, help, kind, labels, buckets)
        return family

    def counter(self, name: str, help: str = "", labels: Sequence[str] = ()) -> Family:
        return self._family(name, help, "counter", labels)

    def gauge(self, name: str, help: str = "", labels: Sequence[str] = ()) -> Family:
        return self._family(name, help, "gauge", labels)

    def histogram(self, name: str, help: str = "", labels: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Family:
        return self._family(name, help, "histogram", labels, tuple(sorted(float(b) for b in buckets)))

    def collector(self, fn: Collector) -> Collector:
        """Register a function (plain or async) that refreshes values just before each exposition."""
        if fn not in self.collectors:
            self.collectors.append(fn)
        return fn

    def remove_collector(self, fn: Collector) -> None:
        if fn in self.collectors:
            self.collectors.remove(fn)

    async def collect(self) -> None:
        for fn in list(self.collectors):
            try:
                result = fn()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, timeout=5)
            except Exception:
                logging.getLogger("restcomm.metrics").exception("metrics collector %r failed", fn)

    def snapshot(self) -> dict[str, list[Any]]:
        """Every value, as plain data another process can merge (see ``exposition``)."""
        out: dict[str, list[Any]] = {}
        for name, family in list(self.families.items()):
            out[name] = [
                [list(key), [child.counts, child.sum, child.count] if family.kind == "histogram" else child.value]
                for key, child in list(family.children.items())
            ]
        return out

    def exposition(self, others: Sequence[Mapping[str, list[Any]]] = ()) -> str:
        """The Prometheus text format (version 0.0.4); with ``others`` (other processes' snapshots),
        their values merged into these, family by family (``Family.merge``)."""
        out: list[str] = []
        for family in list(self.families.values()):
            (_merged(family, others) if others else family).render(out)
        return "\n".join(out) + "\n"


def _merged(family: Family, others: Sequence[Mapping[str, list[Any]]]) -> Family:
    merged = Family(family.name, family.help, family.kind, family.labelnames, family.buckets)
    for key, child in list(family.children.items()):
        copy = merged.labels(*key)
        if family.kind == "histogram":
            copy.counts, copy.sum, copy.count = list(child.counts), child.sum, child.count
        else:
            copy.value = child.value
    if family.merge == "local":
        return merged
    for snap in others:
        for key, value in snap.get(family.name, ()):
            fresh = tuple(key) not in merged.children
            child = merged.labels(*key)
            if family.kind == "histogram":
                counts, total, count = value
                if len(counts) == len(child.counts):
                    child.counts = [a + b for a, b in zip(child.counts, counts, strict=True)]
                    child.sum += total
                    child.count += count
            elif family.merge == "min":
                child.value = float(value) if fresh else min(child.value, float(value))
            else:
                child.value += float(value)
    return merged


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

metrics = Registry()

# ---------------------------------------------------------------------------------------------
# The platform's metric names. Producers use these families (or declare the same name again).

# Fed by the HTTP edge (restcomm.app).
HTTP_REQUESTS = metrics.histogram(
    "restcomm_http_request_duration_seconds",
    "HTTP requests by method, route template and status: latency histogram; _count is the request count",
    ("method", "route", "status"),
)
# Fed by the API endpoints (restcomm.web.endpoints) and the store (restcomm.store.trips).
DB_ROUND_TRIPS = metrics.counter(
    "restcomm_http_request_db_round_trips_total",
    "Statements, transaction boundaries and pings sent to the database by API requests, by method and route",
    ("method", "route"),
)
DB_ROUND_TRIPS_ALL = metrics.counter(
    "restcomm_db_round_trips_total", "Statements, transaction boundaries and pings sent to the database by this process"
)
# Fed by authentication (restcomm.api.auth).
AUTH_THROTTLED = metrics.counter(
    "restcomm_auth_throttled_total", "Requests refused (429) because of repeated authentication failures",
    ("scope",),  # address | account
)
AUTH_FAILURES = metrics.counter("restcomm_auth_failures_total", "Requests with wrong or malformed credentials (401)")
HTTP_CLOSED = metrics.counter(
    "restcomm_http_closed_total",
    "Client connections closed by the server's HTTP guard (docs/operations.md, slow clients)",
    ("reason",),  # head | body | send (deadlines) | address | capacity (refused) | evicted
)
RATE_LIMITED = metrics.counter("restcomm_api_rate_limited_total", "Requests refused (429) by the per-account API rate limit")
# Fed by the SMS pipeline (restcomm.messaging): every status a message reaches.
MESSAGES = metrics.counter(
    "restcomm_messages_total", "Messages by direction and the status they reached", ("direction", "status"),
)
# Read from the messages table at scrape time (restcomm.app): the send queue.
QUEUE_DEPTH = metrics.gauge(
    "restcomm_message_queue_depth", "Messages waiting to be sent (queued) or in a carrier's hands (sending)", ("status",),
)
QUEUE_OLDEST_AGE = metrics.gauge(
    "restcomm_message_queue_oldest_age_seconds", "Age of the oldest queued or sending message", ("status",),
)
CALLBACKS_PENDING = metrics.gauge("restcomm_status_callbacks_pending", "Status callbacks waiting to be delivered")
EMAIL_QUEUE_DEPTH = metrics.gauge("restcomm_email_queue_depth", "Emails waiting to be sent")
# Fed by the webhook client (restcomm.webhooks): kind = app | fallback | status_callback.
WEBHOOK_DURATION = metrics.histogram(
    "restcomm_webhook_duration_seconds", "Requests to applications and status callbacks, by kind and outcome",
    ("kind", "outcome"),
)
WEBHOOK_FAILURES = metrics.counter(
    "restcomm_webhook_failures_total", "Webhook requests that failed, by kind and reason", ("kind", "reason"),
)
# Read from the carriers' state at scrape time (Services.carrier_states(), restcomm.container).
SMPP_BINDS = metrics.gauge("restcomm_smpp_binds", "SMPP binds per carrier: configured and bound", ("carrier", "state"))
SMPP_WINDOW_IN_USE = metrics.gauge("restcomm_smpp_window_in_use", "submit_sm awaiting a response", ("carrier",))
SMPP_WINDOW_SIZE = metrics.gauge("restcomm_smpp_window_size", "Outstanding submit_sm allowed, all binds", ("carrier",))
SMPP_QUEUED = metrics.gauge("restcomm_smpp_queued_segments", "Segments waiting for a window slot or TPS token", ("carrier",))
SMPP_THROTTLED = metrics.counter("restcomm_smpp_throttled_total", "Throttling answers from the carrier", ("carrier",))
SMPP_RECONNECTS = metrics.counter("restcomm_smpp_reconnects_total", "Reconnections of binds", ("carrier",))
SMPP_SUBMITTED = metrics.counter("restcomm_smpp_submitted_total", "submit_sm sent, retries included", ("carrier",))
SMPP_ERRORS = metrics.counter("restcomm_smpp_errors_total", "Errors per carrier, by kind", ("carrier", "kind"))
PROCESS_START = metrics.gauge("restcomm_process_start_time_seconds", "Start of this server process (Unix time)")
for _family in (QUEUE_DEPTH, QUEUE_OLDEST_AGE, CALLBACKS_PENDING, EMAIL_QUEUE_DEPTH):
    _family.merge = "local"  # read from the database at scrape time: the same in every worker
PROCESS_START.merge = "min"
WORKERS_REPORTING = metrics.gauge(
    "restcomm_workers_reporting", "Server processes (restcomm serve --workers) whose values this scrape merges")
WORKERS_REPORTING.merge = "local"
