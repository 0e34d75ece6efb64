"""The one place that says which background services a server process runs, in which order.

Each entry of :data:`PROVIDERS` is a function that takes the container, may fill its typed slots
(``services.messaging``, ``services.carriers``...), and returns the services it adds (none when
its capability is not configured). Services start in the order they are returned here and stop in
reverse, after a drain phase (see ``restcomm.container.Draining``), so a provider listed later may
rely on those before it: the SMPP carriers start after the messaging pipeline and stop before it.

A new capability (voice: the SIP listener, the media engine, call workers) plugs in by appending a
provider to this list; the messaging and SMPP packages do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from restcomm.container import BackgroundService, Services

Provider = Callable[[Services], Sequence[BackgroundService]]


def node_wakes(services: Services) -> list[BackgroundService]:
    """Wake-ups between nodes (store/wakeups.py): PostgreSQL LISTEN/NOTIFY on one connection, first
    to start and last to stop; the workers below subscribe to it. Inert on SQLite."""
    from restcomm.store.wakeups import NodeWakes, asyncpg_dsn

    settings = services.settings
    dsn = None if settings.is_sqlite or not settings.db_notify else asyncpg_dsn(settings.effective_database_url)
    wakes = NodeWakes(dsn)
    services.wakes = wakes
    return [wakes]


def email_outbox(services: Services) -> list[BackgroundService]:
    """The email outbox (messaging/email.py); writers wake it through ``services.email_sender``."""
    from restcomm.messaging.email import build_email_sender

    sender = build_email_sender(services)
    services.email_sender = sender
    return [sender]


def sms_pipeline(services: Services) -> list[BackgroundService]:
    """SMS: group-commit writer, dispatcher, application runner, status-callback outbox."""
    from restcomm.messaging.engine import Messaging

    messaging = Messaging(services)
    services.messaging = messaging
    return [messaging]


def smpp_carriers(services: Services) -> list[BackgroundService]:
    """SMPP carriers ([[carriers]]): started after the pipeline, stopped before it (smpp/carriers.py)."""
    from restcomm.messaging.engine import Messaging
    from restcomm.smpp.carriers import build_carrier_service

    messaging = services.messaging
    if not isinstance(messaging, Messaging):
        return []
    carriers = build_carrier_service(services, messaging)
    if carriers is None:
        return []
    services.carriers = carriers
    return [carriers]


def call_recovery(services: Services) -> list[BackgroundService]:
    """Calls a dead node left live are closed (voice/recovery.py); every node sweeps."""
    from restcomm.voice.recovery import CallRecovery

    return [CallRecovery(services)]


def voice_engine(services: Services) -> list[BackgroundService]:
    """Calls: the SIP listener, media and RCML for calls (voice/engine.py). One SIP listener per
    port, so with ``--workers`` only the first worker takes calls; it needs the messaging pipeline
    (the writer, the HTTP client and the URL guard it shares)."""
    from restcomm.messaging.engine import Messaging
    from restcomm.voice.engine import VoiceEngine
    from restcomm.voice.outbound import OutboundService

    messaging = services.messaging
    if services.settings.worker_index != 0 or not isinstance(messaging, Messaging):
        return []
    engine = VoiceEngine(services, messaging)
    # After the engine: the Calls API's placer and control (the container's call slots), <Dial>,
    # and the trunks that register to their carrier (voice/outbound.py).
    return [engine, OutboundService(services, engine)]


PROVIDERS: list[Provider] = [node_wakes, email_outbox, sms_pipeline, smpp_carriers, call_recovery, voice_engine]


def build_background_services(services: Services, providers: Sequence[Provider] | None = None) -> list[BackgroundService]:
    """Every background service of this process, in start order."""
    background: list[BackgroundService] = []
    for provide in PROVIDERS if providers is None else providers:
        background.extend(provide(services))
    return background
