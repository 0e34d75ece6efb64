"""A mixed API load against one server node: provisioning reads and writes, message sends, list pages,
from several tenants at once, with a load generator in a separate process.

    .venv/bin/python bench/mixed_load.py [--duration 60] [--accounts 4] [--subaccounts 1]
                                         [--workers-per-tenant 4] [--repeat 1] [--json out.json]
                                         [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/NAME]

One round:

1. ``restcomm serve`` (one process) on a fresh SQLite file in a temporary directory, or, with
   ``--database-url``, on a PostgreSQL database of that name, which the bench creates (it must not
   exist), migrates with ``restcomm db upgrade`` and drops at the end. The TOML configuration holds an
   ``[[available_phone_numbers]]`` inventory: a slice of numbers for every load worker.
2. Provisioning (administrator credentials): ``--accounts`` accounts, each with ``--subaccounts``
   sub-accounts; every one of them is a tenant with its own SID and AuthToken, and gets two hosted
   (``isSIP``) numbers: a sender, and a receiver whose SMS application is a loopback HTTP app here.
3. Load: a separate process (``--loadgen``, uvloop and the platform's keep-alive HTTP client) runs
   ``--workers-per-tenant`` closed-loop workers per tenant for ``--duration`` seconds. Each worker
   picks the next operation by weight (``OPERATIONS`` below, ``--weights name=w,...`` to change):
   read the account, list sub-accounts, list Clients / Applications, page through
   IncomingPhoneNumbers and SMS/Messages (``PageSize``, following ``next_page_uri``), search
   AvailablePhoneNumbers, create / update / delete Clients and Applications, buy / update / release
   inventory numbers, send SMS (sender -> receiver, with a ``StatusCallback`` to a loopback receiver
   here) and read sent messages by SID. A worker starts with one of each operation (so every route is
   exercised even in a short run), then picks at random. A worker only touches what it created, so
   every request is expected to succeed: any non-2xx is reported.
4. Afterwards: per route template the request count, non-2xx counts by status, latency p50/p90/p99/max
   as the client saw it, overall requests/s; the server's own ``/metrics``
   (``restcomm_http_request_duration_seconds``, the difference over the load) compared with the
   client's counts per route; the SMS side (application requests and status callbacks received
   here, after the queue drained); and ERROR lines in the server log.

``--repeat N`` runs N independent rounds (fresh server and database each) and prints the median of
each figure over the rounds. The exit status is 1 if any request got a 5xx (or no answer).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SELF = str(Path(__file__).resolve())
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NO_CONTENT, LoopbackApp, free_port, wait_up  # noqa: E402

API = "/restcomm/2012-04-24"
EMAIL, PASSWORD = "bench@example.com", "Bench-Passw0rd!"
TENANT_PASSWORD = "Tenant-Passw0rd!7"
CLIENT_PASSWORD = "Client-Passw0rd!3"
NUMBERS_PER_WORKER = 4
PAGE_SIZE = 10
MAX_PAGES = 3  # pages followed per list operation (first page included)

# name: (weight, [(method, route template), ...] the operation may request)
OPERATIONS: dict[str, tuple[int, list[tuple[str, str]]]] = {
    "get_account": (10, [("GET", "/Accounts/{AccountSid}")]),
    "list_accounts": (2, [("GET", "/Accounts")]),
    "list_clients": (5, [("GET", "/Accounts/{AccountSid}/Clients")]),
    "list_applications": (5, [("GET", "/Accounts/{AccountSid}/Applications")]),
    "list_numbers": (6, [("GET", "/Accounts/{AccountSid}/IncomingPhoneNumbers")]),
    "list_messages": (8, [("GET", "/Accounts/{AccountSid}/SMS/Messages")]),
    "available_numbers": (3, [("GET", "/Accounts/{AccountSid}/AvailablePhoneNumbers/{IsoCountryCode}/Local")]),
    "create_client": (5, [("POST", "/Accounts/{AccountSid}/Clients")]),
    "update_client": (4, [("POST", "/Accounts/{AccountSid}/Clients/{ClientSid}")]),
    "delete_client": (3, [("DELETE", "/Accounts/{AccountSid}/Clients/{ClientSid}")]),
    "create_application": (4, [("POST", "/Accounts/{AccountSid}/Applications")]),
    "update_application": (4, [("POST", "/Accounts/{AccountSid}/Applications/{ApplicationSid}")]),
    "delete_application": (2, [("DELETE", "/Accounts/{AccountSid}/Applications/{ApplicationSid}")]),
    "buy_number": (4, [("POST", "/Accounts/{AccountSid}/IncomingPhoneNumbers")]),
    "update_number": (2, [("POST", "/Accounts/{AccountSid}/IncomingPhoneNumbers/{IncomingPhoneNumberSid}")]),
    "release_number": (3, [("DELETE", "/Accounts/{AccountSid}/IncomingPhoneNumbers/{IncomingPhoneNumberSid}")]),
    "send_sms": (18, [("POST", "/Accounts/{AccountSid}/SMS/Messages")]),
    "get_message": (10, [("GET", "/Accounts/{AccountSid}/SMS/Messages/{SmsMessageSid}")]),
}
ROUTES = sorted({route for _, routes in OPERATIONS.values() for route in routes}, key=lambda r: (r[1], r[0]))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inventory_number(worker: int, k: int) -> str:
    return f"+1510{200 + worker // 10:03d}{1000 + (worker % 10) * 100 + k:04d}"


# --- the load generator (a separate process) ------------------------------------------------------------


def loadgen(config_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    import orjson
    import uvloop
    import yarl

    from restcomm.webhooks import lean

    lean.MAX_BODY_KEPT = 8 << 20  # the bench reads whole list pages, not callback excerpts
    base: str = cfg["base"]
    deadline_s: float = cfg["duration"]
    weights: dict[str, int] = cfg["weights"]
    names = [n for n in OPERATIONS if weights.get(n, 0) > 0]
    cum = [weights[n] for n in names]

    latencies: dict[str, list[float]] = {f"{m} {t}": [] for m, t in ROUTES}
    statuses: dict[str, Counter[str]] = {f"{m} {t}": Counter() for m, t in ROUTES}
    op_counts: Counter[str] = Counter()
    samples: dict[str, str] = {}  # first unexpected answer per route and status, for the report

    async def run() -> dict[str, Any]:
        client = lean.LeanClient()
        stop_at = 0.0

        async def req(method: str, template: str, path: str, form: dict[str, str] | None, auth: str) -> Any:
            key = f"{method} {template}"
            headers = {"Authorization": auth}
            data = None
            if form is not None:
                data = urlencode(form).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            t = time.perf_counter()
            try:
                async with asyncio.timeout(30):
                    async with client.request(method, yarl.URL(base + path, encoded=True), data=data,
                                              headers=headers) as r:
                        status, body = r.status, r.body
            except Exception as exc:
                latencies[key].append((time.perf_counter() - t) * 1e3)
                statuses[key][f"no answer ({type(exc).__name__})"] += 1
                return None
            latencies[key].append((time.perf_counter() - t) * 1e3)
            statuses[key][str(status)] += 1
            if not 200 <= status < 300:
                samples.setdefault(f"{key} {status}", body[:300].decode("utf-8", "replace"))
                return None
            return orjson.loads(body) if body else {}

        class Worker:
            def __init__(self, index: int, tenant: dict[str, Any]) -> None:
                self.index = index
                self.t = tenant
                self.auth = "Basic " + base64.b64encode(f"{tenant['sid']}:{tenant['token']}".encode()).decode()
                self.acct = f"{API}/Accounts/{tenant['sid']}"
                self.clients: list[str] = []
                self.apps: list[str] = []
                self.owned: dict[str, str] = {}  # number SID -> number
                self.free = [inventory_number(index, k) for k in range(NUMBERS_PER_WORKER)]
                self.sent: deque[str] = deque(maxlen=200)
                self.rng = random.Random(index)
                self.seq = 0

            def tag(self) -> str:
                self.seq += 1
                return f"w{self.index}x{self.seq}"

            async def paged(self, template: str, path: str, key: str) -> None:
                url: str | None = f"{path}?PageSize={PAGE_SIZE}"
                for _ in range(MAX_PAGES):
                    page = await req("GET", template, url, None, self.auth)  # type: ignore[arg-type]
                    if not page:
                        return
                    assert key in page, page
                    url = page.get("next_page_uri")
                    if not url:
                        return

            async def do(self, name: str) -> None:
                a = self.acct
                if name == "get_account":
                    await req("GET", "/Accounts/{AccountSid}", f"{a}.json", None, self.auth)
                elif name == "list_accounts":
                    await req("GET", "/Accounts", f"{API}/Accounts.json", None, self.auth)
                elif name == "list_clients":
                    await req("GET", "/Accounts/{AccountSid}/Clients", f"{a}/Clients.json", None, self.auth)
                elif name == "list_applications":
                    await req("GET", "/Accounts/{AccountSid}/Applications", f"{a}/Applications.json", None, self.auth)
                elif name == "list_numbers":
                    await self.paged("/Accounts/{AccountSid}/IncomingPhoneNumbers", f"{a}/IncomingPhoneNumbers.json",
                                     "incomingPhoneNumbers")
                elif name == "list_messages":
                    await self.paged("/Accounts/{AccountSid}/SMS/Messages", f"{a}/SMS/Messages.json", "messages")
                elif name == "available_numbers":
                    await req("GET", "/Accounts/{AccountSid}/AvailablePhoneNumbers/{IsoCountryCode}/Local",
                              f"{a}/AvailablePhoneNumbers/US/Local.json?AreaCode=510", None, self.auth)
                elif name == "create_client" or (name in ("update_client", "delete_client") and not self.clients):
                    c = await req("POST", "/Accounts/{AccountSid}/Clients", f"{a}/Clients.json",
                                  {"Login": f"bench-{self.tag()}", "Password": CLIENT_PASSWORD}, self.auth)
                    if c:
                        self.clients.append(c["sid"])
                elif name == "update_client":
                    sid = self.rng.choice(self.clients)
                    await req("POST", "/Accounts/{AccountSid}/Clients/{ClientSid}", f"{a}/Clients/{sid}.json",
                              {"FriendlyName": f"client {self.tag()}", "VoiceUrl": "http://127.0.0.1:9/voice"},
                              self.auth)
                elif name == "delete_client":
                    sid = self.clients.pop(self.rng.randrange(len(self.clients)))
                    await req("DELETE", "/Accounts/{AccountSid}/Clients/{ClientSid}", f"{a}/Clients/{sid}.json",
                              None, self.auth)
                elif name == "create_application" or (name in ("update_application", "delete_application")
                                                      and not self.apps):
                    app = await req("POST", "/Accounts/{AccountSid}/Applications", f"{a}/Applications.json",
                                    {"FriendlyName": f"app {self.tag()}", "RcmlUrl": cfg["app_url"], "Kind": "sms"},
                                    self.auth)
                    if app:
                        self.apps.append(app["sid"])
                elif name == "update_application":
                    sid = self.rng.choice(self.apps)
                    await req("POST", "/Accounts/{AccountSid}/Applications/{ApplicationSid}",
                              f"{a}/Applications/{sid}.json", {"FriendlyName": f"app {self.tag()}"}, self.auth)
                elif name == "delete_application":
                    sid = self.apps.pop(self.rng.randrange(len(self.apps)))
                    await req("DELETE", "/Accounts/{AccountSid}/Applications/{ApplicationSid}",
                              f"{a}/Applications/{sid}.json", None, self.auth)
                elif name == "buy_number" or (name in ("update_number", "release_number") and not self.owned):
                    if not self.free:
                        return await self.do("release_number")
                    number = self.free.pop(self.rng.randrange(len(self.free)))
                    n = await req("POST", "/Accounts/{AccountSid}/IncomingPhoneNumbers",
                                  f"{a}/IncomingPhoneNumbers.json", {"PhoneNumber": number}, self.auth)
                    if n:
                        self.owned[n["sid"]] = number
                    else:
                        self.free.append(number)
                elif name == "update_number":
                    sid = self.rng.choice(list(self.owned))
                    form = {"FriendlyName": f"number {self.tag()}", "SmsUrl": cfg["app_url"]}
                    if self.apps:
                        form["SmsApplicationSid"] = self.rng.choice(self.apps)
                    await req("POST", "/Accounts/{AccountSid}/IncomingPhoneNumbers/{IncomingPhoneNumberSid}",
                              f"{a}/IncomingPhoneNumbers/{sid}.json", form, self.auth)
                elif name == "release_number":
                    sid = self.rng.choice(list(self.owned))
                    number = self.owned.pop(sid)
                    ok = await req("DELETE", "/Accounts/{AccountSid}/IncomingPhoneNumbers/{IncomingPhoneNumberSid}",
                                   f"{a}/IncomingPhoneNumbers/{sid}.json", None, self.auth)
                    if ok is not None:
                        self.free.append(number)
                elif name == "send_sms" or (name == "get_message" and not self.sent):
                    m = await req("POST", "/Accounts/{AccountSid}/SMS/Messages", f"{a}/SMS/Messages.json",
                                  {"From": self.t["sender"], "To": self.t["receiver"], "Body": f"mixed {self.tag()}",
                                   "StatusCallback": cfg["status_url"]}, self.auth)
                    if m:
                        self.sent.append(m["sid"])
                elif name == "get_message":
                    sid = self.rng.choice(self.sent)
                    await req("GET", "/Accounts/{AccountSid}/SMS/Messages/{SmsMessageSid}",
                              f"{a}/SMS/Messages/{sid}.json", None, self.auth)
                else:
                    raise ValueError(name)
                return None

            async def loop(self) -> None:
                for name in names:  # every operation once first (creates before updates), so each route is seen
                    op_counts[name] += 1
                    await self.do(name)
                while time.perf_counter() < stop_at:
                    name = self.rng.choices(names, cum)[0]
                    op_counts[name] += 1
                    await self.do(name)

        workers = [Worker(i, cfg["tenants"][i % len(cfg["tenants"])]) for i in range(cfg["workers"])]
        t0 = time.perf_counter()
        stop_at = t0 + deadline_s
        await asyncio.gather(*(w.loop() for w in workers))
        elapsed = time.perf_counter() - t0
        await client.close()
        return {"elapsed": elapsed}

    result = uvloop.run(run())
    routes = {}
    for key, lat in latencies.items():
        routes[key] = {"count": len(lat), "statuses": dict(statuses[key]), "p50": pct(lat, 50), "p90": pct(lat, 90),
                       "p99": pct(lat, 99), "max": max(lat) if lat else float("nan")}
    result.update(routes=routes, operations=dict(op_counts), samples=samples)
    Path(cfg["out"]).write_text(json.dumps(result))


# --- the loopback applications: the receivers' SMS app and the status callbacks ----------------------------


class Loopback(LoopbackApp):
    """``/sms`` answers an empty RCML document (the receiving number's application), ``/status``
    records a status callback and answers 204."""

    def __init__(self, stats: dict[str, Any]) -> None:
        super().__init__()
        self.stats = stats

    def answer(self, path: str, form: dict[str, str]) -> bytes:
        if path.startswith("/status"):
            status = form.get("MessageStatus", form.get("SmsStatus", "?"))
            self.stats["callbacks"][status] += 1
            if status in ("delivered", "undelivered", "failed"):
                self.stats["final"].add(form.get("MessageSid") or form.get("SmsSid") or "")
            return NO_CONTENT
        self.stats["app_requests"] += 1
        xml = b"<Response/>"
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s" % (len(xml), xml)


# --- one round: server, provisioning, load, checks ----------------------------------------------------------


def pg_admin_url(database_url: str) -> tuple[str, str]:
    """(an asyncpg URL of the server's maintenance database, the database name) from a SQLAlchemy URL."""
    parts = urlsplit(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"--database-url needs a plain database name, got {name!r}")
    return parts._replace(path="/postgres").geturl(), name


def pg_execute(admin_url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def parse_metrics(text: str) -> dict[tuple[str, str, str], dict[str, float]]:
    """(method, route, status) -> {"count": n, "le=<bound>": cumulative count} for the HTTP histogram."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    pattern = re.compile(r'^restcomm_http_request_duration_seconds_(count|bucket)\{(.*)\} (\S+)$')
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = (labels["method"], labels["route"], labels["status"])
        slot = "count" if m.group(1) == "count" else f"le={labels['le']}"
        out.setdefault(key, {})[slot] = float(m.group(3))
    return out


def metrics_diff(before: dict[tuple[str, str, str], dict[str, float]],
                 after: dict[tuple[str, str, str], dict[str, float]]) -> dict[tuple[str, str, str], dict[str, float]]:
    diff = {}
    for key, values in after.items():
        prev = before.get(key, {})
        d = {k: v - prev.get(k, 0.0) for k, v in values.items()}
        if d.get("count", 0) > 0:
            diff[key] = d
    return diff


def server_p99(series: list[dict[str, float]]) -> float:
    """The upper bound (ms) of the histogram bucket holding the 99th percentile, over the series given."""
    total = sum(s.get("count", 0) for s in series)
    if not total:
        return float("nan")
    bounds = sorted({k for s in series for k in s if k.startswith("le=")},
                    key=lambda k: float("inf") if k == "le=+Inf" else float(k[3:]))
    for b in bounds:
        if sum(s.get(b, 0) for s in series) >= 0.99 * total:
            return float("inf") if b == "le=+Inf" else float(b[3:]) * 1e3
    return float("inf")


async def provision(base: str, args: argparse.Namespace, app_url: str) -> list[dict[str, str]]:
    import httpx

    tenants: list[dict[str, str]] = []
    async with httpx.AsyncClient(base_url=base + API, timeout=30) as c:
        admin = (EMAIL, PASSWORD)
        for i in range(args.accounts):
            r = await c.post("/Accounts.json", auth=admin,
                             data={"EmailAddress": f"tenant{i}@example.com", "Password": TENANT_PASSWORD})
            r.raise_for_status()
            acct = r.json()
            tenants.append({"sid": acct["sid"], "token": acct["auth_token"]})
            for j in range(args.subaccounts):
                r = await c.post("/Accounts.json", auth=(acct["sid"], acct["auth_token"]),
                                 data={"EmailAddress": f"tenant{i}-sub{j}@example.com", "Password": TENANT_PASSWORD})
                r.raise_for_status()
                sub = r.json()
                tenants.append({"sid": sub["sid"], "token": sub["auth_token"]})
        for t_index, t in enumerate(tenants):
            t["sender"], t["receiver"] = f"+1666{t_index:04d}001", f"+1666{t_index:04d}002"
            for number, form in ((t["sender"], {}), (t["receiver"], {"SmsUrl": app_url})):
                r = await c.post(f"/Accounts/{t['sid']}/IncomingPhoneNumbers.json", auth=(t["sid"], t["token"]),
                                 data={"PhoneNumber": number, "isSIP": "true", **form})
                r.raise_for_status()
    return tenants


async def wait_drained(stats: dict[str, Any], sent: int, limit: float) -> float:
    """Seconds until every accepted message had its final status callback (or the timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if len(stats["final"] - {""}) >= sent:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - t0


async def round_async(args: argparse.Namespace, base: str, workdir: Path, server_pid: int) -> dict[str, Any]:
    import httpx

    stats: dict[str, Any] = {"callbacks": Counter(), "final": set(), "app_requests": 0}
    loop = asyncio.get_running_loop()
    rport = free_port()
    server = await loop.create_server(lambda: Loopback(stats), "127.0.0.1", rport)
    app_url, status_url = f"http://127.0.0.1:{rport}/sms", f"http://127.0.0.1:{rport}/status"
    try:
        tenants = await provision(base, args, app_url)
        async with httpx.AsyncClient(timeout=30) as c:
            before = parse_metrics((await c.get(base + "/metrics")).text)
        weights = {n: w for n, (w, _) in OPERATIONS.items()}
        for item in filter(None, (args.weights or "").split(",")):
            name, _, w = item.partition("=")
            if name not in OPERATIONS:
                raise SystemExit(f"unknown operation {name!r}; known: {', '.join(OPERATIONS)}")
            weights[name] = int(w)
        cfg = {"base": base, "duration": args.duration, "weights": weights, "tenants": tenants,
               "workers": len(tenants) * args.workers_per_tenant, "app_url": app_url, "status_url": status_url,
               "out": str(workdir / "loadgen.json")}
        (workdir / "loadgen-config.json").write_text(json.dumps(cfg))  # noqa: ASYNC240 - before the load
        gen = await asyncio.create_subprocess_exec(sys.executable, SELF, "--loadgen",
                                                   str(workdir / "loadgen-config.json"))
        cpu0 = cpu_seconds(server_pid)
        rusage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc = await gen.wait()
        if rc != 0:
            raise SystemExit(f"load generator failed ({rc})")
        rusage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = json.loads((workdir / "loadgen.json").read_text())  # noqa: ASYNC240 - after the load
        result["server_cpu_seconds"] = cpu_seconds(server_pid) - cpu0
        result["loadgen_cpu_seconds"] = (rusage1.ru_utime + rusage1.ru_stime) - (rusage0.ru_utime + rusage0.ru_stime)
        async with httpx.AsyncClient(timeout=30) as c:
            after = parse_metrics((await c.get(base + "/metrics")).text)
        sent = result["routes"]["POST /Accounts/{AccountSid}/SMS/Messages"]["statuses"].get("200", 0)
        result["drain_seconds"] = await wait_drained(stats, sent, args.drain_timeout)
    finally:
        server.close()
    result["tenants"] = len(tenants)
    result["workers"] = cfg["workers"]
    result["sms"] = {"accepted": sent, "app_requests": stats["app_requests"], "callbacks": dict(stats["callbacks"]),
                     "messages_with_callback": len(stats["final"] - {""})}
    diff = metrics_diff(before, after)
    server_side: dict[str, Any] = {}
    for (method, route, status), values in diff.items():
        if route == "/metrics":
            continue
        key = f"{method} {route.removeprefix(API)}"
        entry = server_side.setdefault(key, {"count": 0, "statuses": {}, "series": []})
        entry["count"] += values["count"]
        entry["statuses"][status] = entry["statuses"].get(status, 0) + values["count"]
        entry["series"].append(values)
    result["server"] = {k: {"count": v["count"], "statuses": v["statuses"], "p99_bucket_ms": server_p99(v["series"])}
                        for k, v in server_side.items()}
    return result


def start_server(args: argparse.Namespace, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:

    inventory = []
    for w in range(workers):
        for k in range(NUMBERS_PER_WORKER):
            inventory.append(f'[[available_phone_numbers]]\nphone_number = "{inventory_number(w, k)}"\n'
                             'iso_country = "US"\ntype = "local"\nsms_capable = true\nvoice_capable = true\n')
    config = workdir / "restcomm.toml"
    config.write_text("\n".join(inventory) + "\n[sms]\npoll_interval = 0.5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTCOMM_")}
    env.update(RESTCOMM_CONFIG=str(config), RESTCOMM_DATA_DIR=str(workdir / "data"), RESTCOMM_ADMIN_EMAIL=EMAIL,
               RESTCOMM_ADMIN_PASSWORD=PASSWORD, RESTCOMM_LOG_LEVEL="WARNING", RESTCOMM_SIP_LISTEN="127.0.0.1:0", PYTHONPATH=str(ROOT / "src"))
    if args.database_url:
        env["RESTCOMM_DATABASE_URL"] = args.database_url
        out = subprocess.run([sys.executable, "-m", "restcomm", "db", "upgrade"], env=env, capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"db upgrade failed: {out.stdout}\n{out.stderr}")
    port = free_port()
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen([sys.executable, "-m", "restcomm", "serve", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/health", proc, workdir / "server.log")
    return proc, base


def one_round(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    admin_url = name = None
    if args.database_url:
        admin_url, name = pg_admin_url(args.database_url)
        pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    proc = None
    try:
        workers = (args.accounts * (1 + args.subaccounts)) * args.workers_per_tenant
        proc, base = start_server(args, workdir, workers)
        import uvloop

        result = uvloop.run(round_async(args, base, workdir, proc.pid))
        proc.terminate()
        proc.wait(timeout=30)
        log = (workdir / "server.log").read_text(errors="replace")
        result["server_log_errors"] = [line for line in log.splitlines()
                                       if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]
        result["load_average"] = os.getloadavg()
        return result
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        if admin_url:
            pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def fmt_statuses(statuses: dict[str, int]) -> str:
    bad = {s: n for s, n in sorted(statuses.items()) if not s.startswith("2")}
    return ", ".join(f"{s}: {n:g}" for s, n in bad.items()) or "-"


def report(rounds: list[dict[str, Any]]) -> int:
    med = statistics.median
    n = len(rounds)
    print(f"\n{'route (method, template under ' + API + ')':<82} {'count':>7} {'p50':>7} {'p90':>7} {'p99':>7} "
          f"{'max':>8}  {'server':>7} {'srv p99<=':>9}  non-2xx")
    total_5xx = 0
    for method, template in ROUTES:
        key = f"{method} {template}"
        rs = [r["routes"][key] for r in rounds]
        srv = [r["server"].get(key, {"count": 0, "p99_bucket_ms": float("nan")}) for r in rounds]
        statuses: Counter[str] = Counter()
        for r in rs:
            statuses.update(r["statuses"])
        total_5xx += sum(c for s, c in statuses.items() if not s[:1].isdigit() or s.startswith("5"))
        print(f"{key:<82} {med(r['count'] for r in rs):>7.0f} {med(r['p50'] for r in rs):>7.1f} "
              f"{med(r['p90'] for r in rs):>7.1f} {med(r['p99'] for r in rs):>7.1f} {med(r['max'] for r in rs):>8.1f}  "
              f"{med(s['count'] for s in srv):>7.0f} {med(s['p99_bucket_ms'] for s in srv):>9.1f}  "
              f"{fmt_statuses(dict(statuses))}")
    reqs = [sum(v["count"] for v in r["routes"].values()) for r in rounds]
    rps = [q / r["elapsed"] for q, r in zip(reqs, rounds, strict=True)]
    print(f"(latencies in ms; medians over {n} round{'s' if n > 1 else ''})")
    print(f"requests: {med(reqs):.0f} in {med(r['elapsed'] for r in rounds):.1f} s = {med(rps):.0f} req/s "
          f"(rounds: {', '.join(f'{x:.0f}' for x in rps)}); {rounds[0]['tenants']} tenants, "
          f"{rounds[0]['workers']} closed-loop workers")
    cpu = [1e3 * r["server_cpu_seconds"] / q for q, r in zip(reqs, rounds, strict=True)]
    gen_cpu = [1e3 * r["loadgen_cpu_seconds"] / q for q, r in zip(reqs, rounds, strict=True)]
    print(f"CPU per request: server {med(cpu):.2f} ms (with the SMS pipeline behind the sends), "
          f"load generator {med(gen_cpu):.2f} ms")
    print(f"5xx or no answer: {total_5xx} (all rounds)")
    for i, r in enumerate(rounds):
        client_counts = {k: v["count"] for k, v in r["routes"].items() if v["count"]}
        server_counts = {k: v["count"] for k, v in r["server"].items()}
        mismatch = {k: (client_counts.get(k, 0), server_counts.get(k, 0))
                    for k in set(client_counts) | set(server_counts) if client_counts.get(k, 0) != server_counts.get(k, 0)}
        srv_5xx = sum(c for v in r["server"].values() for s, c in v["statuses"].items() if s.startswith("5"))
        sms = r["sms"]
        print(f"round {i}: {reqs[i]} requests, {rps[i]:.0f} req/s; /metrics: {sum(server_counts.values()):.0f} "
              f"requests, {srv_5xx:.0f} 5xx, per-route count differences {mismatch or 'none'}; SMS: "
              f"{sms['accepted']} accepted, {sms['app_requests']} app requests, final status callback (delivered, undelivered or failed) for "
              f"{sms['messages_with_callback']} ({sms['callbacks']}) {r['drain_seconds']:.1f} s after the load; "
              f"server log errors: {len(r['server_log_errors'])}; load average {r['load_average'][0]:.2f}")
        for line in r["server_log_errors"][:5]:
            print(f"    {line}")
        for k, v in list(r["samples"].items())[:10]:
            print(f"    first {k}: {v}")
    return 1 if total_5xx else 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--loadgen":
        loadgen(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--accounts", type=int, default=4, help="accounts under the administrator")
    ap.add_argument("--subaccounts", type=int, default=1, help="sub-accounts per account (also tenants)")
    ap.add_argument("--workers-per-tenant", type=int, default=4, help="closed-loop workers (connections) per tenant")
    ap.add_argument("--weights", default="", help="operation weights to change, e.g. send_sms=30,list_messages=0")
    ap.add_argument("--repeat", type=int, default=1, help="independent rounds; medians are reported")
    ap.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for the SMS callbacks")
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL (postgresql+asyncpg://user@host:port/NAME): NAME is created, used, dropped")
    ap.add_argument("--json", default=None, help="also write every round's results here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (server log)")
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}, load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{'PostgreSQL' if args.database_url else 'SQLite (synchronous=FULL)'}", flush=True)
    rounds = []
    for i in range(args.repeat):
        rounds.append(one_round(args))
        print(f"round {i} done: {sum(v['count'] for v in rounds[-1]['routes'].values())} requests", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=1, default=str))
    return report(rounds)


if __name__ == "__main__":
    sys.exit(main())
