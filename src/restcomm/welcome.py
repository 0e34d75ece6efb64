"""What a new user sees first: the first-start banner and the index answered at ``GET /``.

Both say where things are (the API root, the OpenAPI description, error pages, health) so nobody has
to read the source to find the next URL; the banner also gives the administrator's credentials
once. The password is shown only when it was generated (a chosen one is already known). The
AuthToken is shown when it must be (with a generated password, whose only record is this banner) or
when the banner goes to a terminal: a person is reading it. Otherwise standard output is likely a
log file that is kept and shipped, where secrets never go (docs/operations.md), and the banner says
how to read the token over the API instead.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

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


def _is_terminal(out: TextIO | None) -> bool:
    isatty = getattr(out or sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def first_start_banner(settings: Settings, sid: str, token: str, email: str, generated_password: str | None,
                       out: TextIO | None = None) -> str:
    """The lines printed once, when the administrator account is created (``out``: where they go)."""
    urls = links(settings)
    if not (generated_password or _is_terminal(out)):
        return "\n".join([
            "Administrator account created:",
            f"  Email:      {email}",
            f"  AccountSid: {sid}",
            "  AuthToken:  not written to a log; read it with the password:",
            f"              curl -s -u '{email}:<password>' {urls['api']}/Accounts/{email}.json",
            f"  API:        {urls['api']}",
            f"  OpenAPI:    {urls['openapi']}",
        ])
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
