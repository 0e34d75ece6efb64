"""A short run of bench/mixed_load.py: the mixed load (several tenants, a separate load-generator
process) gets no 5xx, exercises every route, and /metrics counts what the client sent."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.postgres import PG_ADMIN_URL, require_postgres

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "mixed_load.py"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_mixed_load_smoke(backend: str, tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH), "--duration", "2", "--accounts", "2", "--subaccounts", "1",
           "--workers-per-tenant", "2", "--drain-timeout", "20", "--json", str(tmp_path / "out.json")]
    if backend == "postgres":
        require_postgres()
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        cmd += ["--database-url", f"{base}/restcomm_bench_{uuid.uuid4().hex[:12]}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (r,) = json.loads((tmp_path / "out.json").read_text())["rounds"]
    for route, v in r["routes"].items():
        assert v["count"] > 0, f"{route} not exercised"
        assert all(s.startswith("2") for s in v["statuses"]), (route, v["statuses"], r["samples"])
    client = {k: v["count"] for k, v in r["routes"].items()}
    server = {k: v["count"] for k, v in r["server"].items()}
    assert client == server, (client, server)
    assert not any(s.startswith("5") for v in r["server"].values() for s in v["statuses"])
    sms = r["sms"]
    assert sms["accepted"] > 0
    assert sms["messages_with_callback"] == sms["accepted"] == sms["app_requests"], sms
    assert r["server_log_errors"] == []
