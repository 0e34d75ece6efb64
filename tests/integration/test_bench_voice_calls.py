"""A short run of bench/voice_calls.py: the bench stays runnable against both targets, and at a low
rate neither our server nor the baseline fails a call (correctness only; the numbers are not
asserted: benchmarks are not timed tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "voice_calls.py"


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed (apt-get install sip-tester)")
def test_voice_bench_smoke(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--steps", "4:8", "--hold", "1.5", "--json",
                          str(tmp_path / "out.json")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["targets"] == ["baseline", "ours"], out.stdout
    (step,) = report["steps"]
    for name in ("baseline", "ours"):
        (r,) = step["results"][name]
        assert (r["attempted"], r["ok"], r["failed"]) == (8, 8, 0), (name, out.stdout)
        assert r["probe"]["failed"] == 0 and r["probe"]["completed"] >= 1, (name, out.stdout)
        assert r["rtp"]["n"] > 0 and r["cpu_ms_per_call"] > 0
    assert "ratio ours/baseline" in out.stdout
