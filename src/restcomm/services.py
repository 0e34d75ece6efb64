"""The background services that run for the lifetime of the server (dispatchers, carriers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restcomm.app import Services


def build_background_services(services: Services) -> list[Any]:
    return []
