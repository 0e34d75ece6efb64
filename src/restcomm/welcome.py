"""What a new user sees first: the first-start banner and the index answered at ``GET /``.

Both say where things are (the API root, the OpenAPI description, error pages, health) so nobody has
to read the source to find the next URL; the banner also gives the administrator's credentials
once, the password only when it was generated (a chosen one is already known, and logs are kept).
"""

from __future__ import annotations

from typing import Any

from restcomm.config import Settings
from restcomm.util import API_VERSION


def base_url(settings: Settings) -> str:
    """The address users reach the server at: ``public_url``, else the listening host and port."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


def links(settings: Settings) -> dict[str, str]:
    root = base_url(settings)
    return {
        "api": f"{root}/restcomm/{API_VERSION}",
        "openapi": f"{root}/restcomm/openapi.json",
        "twilio_messages": f"{root}/2010-04-01/Accounts/{{AccountSid}}/Messages.json",
        "errors": f"{root}/restcomm/errors/{{code}}.html",
        "health": f"{root}/health",
        "ready": f"{root}/ready",
    }


def first_start_banner(settings: Settings, sid: str, token: str, email: str, generated_password: str | None) -> str:
    """The lines printed once, when the administrator account is created."""
    urls = links(settings)
    lines = [
        "Administrator account created" + (" (the password is shown once):" if generated_password else ":"),
        f"  Email:      {email}",
    ]
    if generated_password:
        lines.append(f"  Password:   {generated_password}")
    lines += [
        f"  AccountSid: {sid}",
        f"  AuthToken:  {token}",
        f"  API:        {urls['api']}",
        f"  OpenAPI:    {urls['openapi']}",
        f"  Try:        curl -s -u '{sid}:{token}' {urls['api']}/Accounts/{sid}.json",
    ]
    return "\n".join(lines)


def index(settings: Settings) -> dict[str, Any]:
    """The body of ``GET /``: the name and the links above (no authentication needed, no secrets)."""
    return {
        "name": "Restcomm-compatible communications platform",
        "api_version": API_VERSION,
        "links": links(settings),
        "authentication": "HTTP Basic: AccountSid (or email) and AuthToken (or password)",
    }
