"""Carriers from the configuration file: ``[[carriers]]`` tables become running SMPP carriers that
the messaging pipeline sends through and that deliver receipts and MO into it.

Configuration (the TOML file named by ``RESTCOMM_CONFIG``)::

    [[carriers]]
    name = "acme"            # required, unique; stored on each message the carrier takes
    host = "127.0.0.1"       # required
    port = 2775
    system_id = "user"
    password = "secret"
    system_type = ""         # optional
    binds = 2                # transceiver binds to open
    window = 10              # outstanding submit_sm per bind
    max_tps = 0              # 0 = unlimited; otherwise messages per second across the binds
    prefixes = ["+44", ""]   # destination prefixes routed here; "" is the default route

Every other :class:`~restcomm.smpp.esme.CarrierConfig` field may be set too (``response_timeout``,
``enquire_link_interval``, ``reconnect_initial``/``reconnect_max``, ``throttle_initial``/
``throttle_max``, ``max_attempts``, ``submit_timeout``, ``drain_timeout``, ``unbind_timeout``,
``mo_reassembly_timeout``, ...), plus ``bind_wait`` (seconds a send waits for a bind before the
message goes back to the queue, default 5). Unknown keys are a configuration error, so a typo
does not silently fall back to a default.

Routing: the longest matching prefix wins; ``+44`` also matches ``44…``. Carriers with a prefix
of the same length are tried in the order they are configured. A carrier with no bind up is
skipped for the next matching one that has a bind (failover); when none is up the first match
is used and the message waits for it (then backs off in the pipeline's queue).

:class:`CarrierService` is a background service of the server: ``start`` registers the
transports with the pipeline and starts every bind without waiting for them (a carrier that is
down at boot must not keep the API down); ``stop`` comes after the lifespan drained the
messaging pipeline (its dispatcher stopped claiming and the sends in hand finished), then drains and unbinds every carrier gracefully, then stops the
receipt sweeper, all before the pipeline's writer stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from restcomm.config import ConfigError, Settings, did_you_mean
from restcomm.smpp.esme import Carrier, CarrierConfig
from restcomm.smpp.mo import InboundHandler, ParkedReceipts
from restcomm.smpp.transport import DEFAULT_BIND_WAIT, SmppTransport

if TYPE_CHECKING:
    from restcomm.container import Services
    from restcomm.messaging.engine import Messaging

log = logging.getLogger("restcomm.smpp.carriers")

REQUIRED = ("name", "host")
# Keys read here rather than by CarrierConfig.
SERVICE_KEYS = ("bind_wait",)
DELIVER_CONCURRENCY = 512


@dataclass(frozen=True)
class CarrierSettings:
    config: CarrierConfig
    bind_wait: float = DEFAULT_BIND_WAIT


def load_carriers(settings: Settings) -> list[CarrierSettings]:
    """Parse and check ``[[carriers]]``; raises ConfigError with the carrier and key at fault."""
    raw = settings.section("carriers")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("carriers must be an array of tables ([[carriers]])")
    known = {f.name for f in fields(CarrierConfig)} | set(SERVICE_KEYS)
    out: list[CarrierSettings] = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"[[carriers]] #{i + 1}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a table")
        for key in REQUIRED:
            if not entry.get(key) or not isinstance(entry[key], str):
                raise ConfigError(f"{where} needs {key} (a non-empty string)")
        name = entry["name"]
        where = f"[[carriers]] {name!r}"
        if name in names:
            raise ConfigError(f"{where} is configured twice (names must be unique)")
        names.add(name)
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ConfigError(f"{where} has no setting {unknown[0]!r}{did_you_mean(unknown[0], known)}")
        prefixes = entry.get("prefixes", [""])
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            raise ConfigError(f"{where} prefixes must be a list of strings")
        values: dict[str, Any] = {k: v for k, v in entry.items() if k not in SERVICE_KEYS}
        values["prefixes"] = tuple(p.strip() for p in prefixes)
        # Receipts are applied in batches (messaging.receipts.ReceiptRecorder), so many may wait for one commit:
        # 64 at a time capped receipts at 64 per commit latency (~300/s under load on SQLite).
        values.setdefault("deliver_concurrency", DELIVER_CONCURRENCY)
        try:
            for key in ("port", "binds", "window"):
                if key in values:
                    values[key] = _int(values[key], key)
            if not 0 < values.get("port", 2775) < 65536:
                raise ValueError("port must be between 1 and 65535")
            config = CarrierConfig.from_mapping(values)
            bind_wait = float(entry.get("bind_wait", DEFAULT_BIND_WAIT))
            if bind_wait < 0:
                raise ValueError("bind_wait must be >= 0")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        out.append(CarrierSettings(config, bind_wait))
    return out


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value


class CarrierService:
    """The configured carriers of this node, as one background service."""

    def __init__(self, messaging: Messaging, carriers: list[CarrierSettings]) -> None:
        self.messaging = messaging
        self.settings = carriers
        self.parking = ParkedReceipts(messaging)
        self.handler = InboundHandler(messaging, self.parking)
        self.carriers: dict[str, Carrier] = {}
        self.transports: dict[str, SmppTransport] = {}
        for cs in carriers:
            carrier = Carrier(cs.config, self.handler, mo_parts=True)  # parts stored: self.handler.parts
            self.carriers[cs.config.name] = carrier
            self.transports[cs.config.name] = SmppTransport(carrier, bind_wait=cs.bind_wait)

    async def start(self) -> None:
        await self.parking.start()
        await self.handler.parts.start()
        for cs in self.settings:
            name = cs.config.name
            await self.carriers[name].start()
            self.messaging.register_carrier(self.transports[name], cs.config.prefixes)
            log.info("carrier %s: %d bind(s) to %s:%d, prefixes %s", name, cs.config.binds, cs.config.host,
                     cs.config.port, list(cs.config.prefixes))

    async def stop(self) -> None:
        # The lifespan drained the pipeline first (Messaging.drain: nothing new is claimed, the sends
        # in hand finished through the carriers, still up); now the carriers drain and unbind.
        await asyncio.gather(*(c.close() for c in self.carriers.values()), return_exceptions=True)
        for name in self.carriers:
            self.messaging.router.unregister(name)
        await self.parking.stop()
        await self.handler.parts.stop()

    def state(self) -> list[dict[str, Any]]:
        """Carrier state for the administrator (api/carriers.py)."""
        out = []
        for cs in self.settings:
            name = cs.config.name
            st = self.carriers[name].state()
            t = self.transports[name]
            counters = st.counters
            inbound = self.handler.counters(name)
            errors = {k: counters.get(k, 0) for k in (
                "rejected", "throttled", "timeouts", "connect_failures", "bind_failures", "disconnects",
                "deliver_errors", "late_responses")}
            out.append({
                "name": name,
                "host": cs.config.host,
                "port": cs.config.port,
                "system_id": cs.config.system_id,
                "prefixes": list(cs.config.prefixes),
                "status": "up" if st.bound == st.binds else ("degraded" if st.bound else "down"),
                "binds": st.binds,
                "bound": st.bound,
                "window": st.window,
                "window_in_use": st.window_in_use,
                "window_size": st.window * st.binds,
                "queued": st.queued,
                "max_tps": st.max_tps,
                "tps": st.tps,
                "reconnects": max(0, counters.get("connects", 0) - st.binds),
                "submitted": counters.get("submitted", 0),
                "accepted": counters.get("accepted", 0),
                "retries": counters.get("retries", 0),
                "receipts": counters.get("receipts", 0),
                "receipts_parked": inbound["receipts_parked"],
                "mo": counters.get("mo", 0) + inbound["mo_assembled"],
                "mo_not_hosted": inbound["mo_not_hosted"],
                "mo_incomplete": inbound["mo_incomplete"],
                "messages_sent": t.sent,
                "messages_refused": t.refused,
                "messages_unavailable": t.unavailable,
                "errors": sum(errors.values()),
                "error_counts": errors,
            })
        return out


def worker_share(carriers: list[CarrierSettings], index: int, workers: int) -> list[CarrierSettings]:
    """This server process's share of each carrier: ``binds`` and ``max_tps`` are for the whole
    server, so with ``--workers N`` each process opens its part of the binds (and of the TPS)."""
    if workers <= 1:
        return carriers
    out = []
    for cs in carriers:
        total = cs.config.binds
        if total < workers:
            raise ConfigError(
                f"[[carriers]] {cs.config.name!r} has binds = {total}, fewer than the {workers} server processes "
                "(each process needs at least one bind of every carrier)"
            )
        mine = total // workers + (1 if index < total % workers else 0)
        tps = cs.config.max_tps * mine / total if cs.config.max_tps else 0.0
        out.append(replace(cs, config=replace(cs.config, binds=mine, max_tps=tps)))
    return out


def build_carrier_service(services: Services, messaging: Messaging) -> CarrierService | None:
    """The service for ``[[carriers]]``, or None when none is configured."""
    settings = services.settings
    carriers = worker_share(load_carriers(settings), settings.worker_index, settings.workers)
    if not carriers:
        return None
    return CarrierService(messaging, carriers)
