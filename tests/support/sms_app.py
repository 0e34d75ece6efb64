"""Test peers for the SMS tests: real SMS applications on loopback, and helpers to drive the server.

``AppServer`` is an aiohttp server running in its own thread (the tests themselves are synchronous
and talk to the server with httpx). Each route answers with whatever the test set: TwiML made by
``twilio.twiml.messaging_response.MessagingResponse``, hand-written RCML, an error status, a wrong
content type... Every request is recorded, and its ``X-Twilio-Signature`` is checked with twilio's
own ``RequestValidator`` against the URL that was actually requested, keyed with the AuthToken the
test registered for the route.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.support.waiting import wait_until

XML = "text/xml"


@dataclass
class Seen:
    path: str
    method: str
    url: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool | None
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)

    @property
    def params(self) -> dict[str, str]:
        return {**self.query, **self.form}


@dataclass
class Answer:
    body: str | bytes = "<Response/>"
    status: int = 200
    content_type: str = XML
    delay: float = 0.0  # seconds before answering (a slow application)
    headers: dict[str, str] = field(default_factory=dict)  # more response headers (e.g. Location)


Responder = Answer | Callable[["Seen"], Answer]


@dataclass
class AppServer:
    port: int = 0
    routes: dict[str, Responder] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # path prefix -> AuthToken for validation
    seen: list[Seen] = field(default_factory=list)
    peak: dict[str, int] = field(default_factory=dict)  # most requests to a path being answered at once
    _active: dict[str, int] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, answer: Responder, token: str | None = None) -> str:
        """Serve ``answer`` at ``path`` (query strings are ignored for matching); returns the URL."""
        self.routes[path.split("?")[0]] = answer
        if token is not None:
            self.tokens[path.split("?")[0]] = token
        return self.url(path)

    def new_path(self, name: str = "app") -> str:
        return f"/{name}-{uuid.uuid4().hex[:8]}"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> AppServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="sms-test-app")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)) if request.method == "POST" else {}
        url = f"http://{request.host}{request.raw_path}"
        token = self.tokens.get(request.path)
        signature = request.headers.get("X-Twilio-Signature")
        valid = None
        if token is not None:
            valid = signature is not None and RequestValidator(token).validate(url, form, signature)
        seen = Seen(request.path, request.method, url, dict(request.query), form, dict(request.headers), valid)
        responder = self.routes.get(request.path)
        if responder is None:
            answer = Answer("not found", 404, "text/plain")
        elif isinstance(responder, Answer):
            answer = responder
        else:
            answer = responder(seen)
        with self._cond:
            self.seen.append(seen)
            self._active[request.path] = self._active.get(request.path, 0) + 1
            self.peak[request.path] = max(self.peak.get(request.path, 0), self._active[request.path])
            self._cond.notify_all()
        try:
            if answer.delay:
                await asyncio.sleep(answer.delay)
        finally:
            with self._cond:
                self._active[request.path] -= 1
        body = answer.body.encode() if isinstance(answer.body, str) else answer.body
        return web.Response(body=body, status=answer.status,
                            headers={"Content-Type": answer.content_type, **answer.headers})

    # -- waiting ----------------------------------------------------------------------------------

    def requests(self, path: str) -> list[Seen]:
        with self._cond:
            return [s for s in self.seen if s.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 15) -> list[Seen]:
        """The first ``count`` requests to ``path`` once they have arrived (bounded wait)."""
        with self._cond:
            self._cond.wait_for(lambda: len([s for s in self.seen if s.path == path]) >= count, timeout=timeout)
            found = [s for s in self.seen if s.path == path]
        assert len(found) >= count, f"expected {count} request(s) to {path}, got {len(found)}"
        return found[:count]


# ---------------------------------------------------------------------------------------------
# Driving the server


def unique_number() -> str:
    """A fresh +1 555 number (reserved for fiction), unique enough for one test session."""
    return "+1555" + str(uuid.uuid4().int)[:7]


def add_number(client: httpx.Client, account_sid: str, number: str, **fields: str) -> dict[str, Any]:
    r = client.post(f"/Accounts/{account_sid}/IncomingPhoneNumbers.json",
                    data={"PhoneNumber": number, "isSIP": "true", **fields})
    assert r.status_code == 200, r.text
    return r.json()


def send(client: httpx.Client, account_sid: str, frm: str, to: str, body: str, **extra: str) -> httpx.Response:
    return client.post(f"/Accounts/{account_sid}/SMS/Messages.json", data={"From": frm, "To": to, "Body": body, **extra})


def wait_statuses(client: httpx.Client, account_sid: str, sids: Iterable[str], done: Callable[[dict[str, str]], bool],
                  timeout: float = 30, what: str = "") -> dict[str, str]:
    """Poll the messages' statuses through the API until ``done(statuses)``; an accepted message
    that is gone (not 200) fails at once."""
    wanted = list(sids)

    def statuses() -> dict[str, str]:
        out: dict[str, str] = {}
        for sid in wanted:
            r = client.get(f"/Accounts/{account_sid}/SMS/Messages/{sid}.json")
            assert r.status_code == 200, f"accepted message {sid} was lost: {r.status_code}"
            out[sid] = r.json()["status"]
        return out

    return wait_until(statuses, done, timeout, what)  # type: ignore[no-any-return]


def message(client: httpx.Client, account_sid: str, sid: str) -> dict[str, Any]:
    r = client.get(f"/Accounts/{account_sid}/SMS/Messages/{sid}.json")
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(client: httpx.Client, account_sid: str, sid: str, statuses: set[str], timeout: float = 15) -> dict[str, Any]:
    return wait_until(lambda: message(client, account_sid, sid), lambda m: m["status"] in statuses, timeout,
                      f"message {sid} to reach {statuses}")


def messages(client: httpx.Client, account_sid: str, **query: str) -> list[dict[str, Any]]:
    r = client.get(f"/Accounts/{account_sid}/SMS/Messages.json", params={"PageSize": "1000", **query})
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def notifications(client: httpx.Client, account_sid: str, **query: str) -> list[dict[str, Any]]:
    r = client.get(f"/Accounts/{account_sid}/Notifications.json", params={"PageSize": "1000", **query})
    assert r.status_code == 200, r.text
    return r.json()["notifications"]


def wait_notification(client: httpx.Client, account_sid: str, code: int, timeout: float = 15) -> dict[str, Any]:
    found = wait_until(lambda: notifications(client, account_sid, ErrorCode=str(code)), bool, timeout,
                       f"notification {code}")
    return found[0]
