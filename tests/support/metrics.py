"""Reading the server's /metrics exposition in tests."""

from __future__ import annotations

from typing import Any

import httpx


def metrics(base_url: str, **kw: Any) -> dict[str, float]:
    r = httpx.get(base_url + "/metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out
