"""The background services that run for the lifetime of the server (dispatchers, carriers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restcomm.app import Services


def build_background_services(services: Services) -> list[Any]:
    from restcomm.messaging.email import build_email_sender

    background: list[Any] = []
    background.append(build_email_sender(services))  # the email outbox (messaging/email.py)
    from restcomm.messaging.service import Messaging

    # SMS: group-commit writer, dispatcher, application runner, status-callback outbox.
    messaging = Messaging(services)
    services.extras["messaging"] = messaging
    background.append(messaging)
    # SMPP carriers ([[carriers]]): started after the pipeline, stopped before it (smpp/carriers.py).
    from restcomm.smpp.carriers import build_carrier_service

    carriers = build_carrier_service(services, messaging)
    if carriers is not None:
        background.append(carriers)
    from restcomm.voice.recovery import CallRecovery  # calls a dead node left live (voice/recovery.py)

    background.append(CallRecovery(services))
    if services.settings.worker_index == 0:  # one SIP listener per port: the first worker takes calls
        from restcomm.voice.engine import VoiceEngine  # SIP + media + RCML for calls (voice/engine.py)

        background.append(VoiceEngine(services, messaging))
    return background
