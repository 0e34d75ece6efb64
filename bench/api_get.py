"""Authenticated GET /Accounts/{sid}.json: our server vs a bare Starlette app, side by side.

The baseline returns the same JSON after an in-memory credential check (hmac.compare_digest), with
the same uvicorn settings (1 worker, uvloop, httptools, no access log). Load comes from wrk in a
separate process (`apt-get install wrk`). Prints requests/s, latency percentiles and the ratio.

    .venv/bin/python bench/api_get.py [--duration 10] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, wait_up, wrk  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EMAIL, PASSWORD = "bench@example.com", "Bench-Passw0rd!"

BARE_APP = textwrap.dedent(
    '''
    import base64, hmac, json, sys
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    SID, TOKEN, BODY = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
    CREDS = {SID: TOKEN}

    async def account(request):
        header = request.headers.get("authorization", "")
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return Response(status_code=401)
        if not hmac.compare_digest(CREDS.get(user, "").encode(), pw.encode()):
            return Response(status_code=401)
        return Response(BODY, media_type="application/json")

    app = Starlette(routes=[Route("/restcomm/2012-04-24/Accounts/{sid}.json", account)])
    '''
)








def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_DATA_DIR=str(tmp / "data"), RESTCOMM_ADMIN_EMAIL=EMAIL, RESTCOMM_ADMIN_PASSWORD=PASSWORD,
               RESTCOMM_LOG_LEVEL="WARNING", RESTCOMM_SIP_LISTEN="127.0.0.1:0")
    port = free_port()
    ours = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "restcomm.app:create_app", "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        env=env, cwd=tmp,
    )
    procs = [ours]
    try:
        wait_up(f"http://127.0.0.1:{port}/health", ours)
        acct = httpx.get(f"http://127.0.0.1:{port}/restcomm/2012-04-24/Accounts/{EMAIL}.json", auth=(EMAIL, PASSWORD)).json()
        sid, token = acct["sid"], acct["auth_token"]
        ours_url = f"http://127.0.0.1:{port}/restcomm/2012-04-24/Accounts/{sid}.json"
        body = httpx.get(ours_url, auth=(sid, token)).content
        (tmp / "body.json").write_bytes(body)
        (tmp / "bare.py").write_text(BARE_APP)
        bport = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c",
             "import sys,uvicorn; sys.argv=['bare', sys.argv[1], sys.argv[2], sys.argv[3]]; "
             f"sys.path.insert(0, {str(tmp)!r}); import bare; "
             f"uvicorn.run(bare.app, port={bport}, loop='uvloop', http='httptools', access_log=False, log_level='warning')",
             sid, token, str(tmp / "body.json")],
            cwd=tmp,
        )
        procs.append(bare)
        bare_url = f"http://127.0.0.1:{bport}/restcomm/2012-04-24/Accounts/{sid}.json"
        wait_up(bare_url, bare)
        assert httpx.get(bare_url, auth=(sid, token)).content == body
        auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
        results: dict[str, list[dict[str, float]]] = {"ours": [], "bare": []}
        for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits both alike
            results["ours"].append(wrk(ours_url, auth, args.duration, args.connections))
            results["bare"].append(wrk(bare_url, auth, args.duration, args.connections))
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50", "p99", "errors")}
               for k, v in results.items()}
        print(f"{'':6} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}   (median of {args.rounds} rounds "
              f"x {args.duration}s, {args.connections} connections)")
        for k in ("ours", "bare"):
            m = med[k]
            print(f"{k:6} {m['rps']:>10.0f} {m['p50']:>8.2f} {m['p99']:>8.2f} {m['errors']:>8.0f}")
        print(f"ratio ours/bare: {med['ours']['rps'] / med['bare']['rps']:.2f}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
