"""`restcomm sample-app`: the smallest SMS application, shipped so the quickstart really replies.

It answers every request to ``/sms`` (GET or POST, form-encoded as the server sends them) with RCML
that echoes the message back to its sender, and logs each request's parameters to stdout so a new
user sees what an application receives (docs/sms-apps.md describes them). It is a plain standard
library HTTP server on purpose: nothing to install, and nothing in it is specific to this server
beyond the RCML it answers, so it doubles as a template for a real application.
"""

from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

MAX_BODY = 64 * 1024


def reply_rcml(params: dict[str, str], prefix: str) -> str:
    """The echo: one ``<Sms>`` back to the sender (``to`` defaults to the sender, ``from`` to our number)."""
    body = params.get("Body", "")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Sms>{escape(prefix + body)}</Sms></Response>\n'


def voice_rcml(params: dict[str, str]) -> str:
    """A caller hears a greeting and presses a key; the key (``Digits``) is read back, then goodbye."""
    digits = params.get("Digits")
    if digits:
        inner = f"<Say>You pressed {escape(' '.join(digits))}. Goodbye.</Say><Hangup/>"
    else:
        inner = ('<Gather numDigits="1" timeout="5" action="/voice" method="POST">'
                 "<Say>Welcome to Restcomm. Press a key.</Say></Gather><Say>No key. Goodbye.</Say>")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Response>{inner}</Response>\n'


PAGES = {"/sms": None, "/voice": voice_rcml}


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "restcomm-sample-app"
    prefix = "Echo: "

    def _answer(self, params: dict[str, str]) -> None:
        path = urlsplit(self.path).path
        page = path.rstrip("/")
        if page not in PAGES:
            self.send_error(404, "this sample app answers at /sms and /voice")
            return
        print(f"sample-app: {self.command} {path} " + " ".join(f"{k}={v!r}" for k, v in sorted(params.items())),
              flush=True)
        voice = PAGES[page]
        data = (voice(params) if voice else reply_rcml(params, self.prefix)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._answer(dict(parse_qsl(urlsplit(self.path).query)))

    def do_POST(self) -> None:  # noqa: N802
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        form = self.rfile.read(length).decode("utf-8", "replace")
        self._answer({**dict(parse_qsl(urlsplit(self.path).query)), **dict(parse_qsl(form))})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request is printed by _answer, with the parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="restcomm sample-app",
        description="A sample application: answers http://HOST:PORT/sms with RCML that echoes the "
                    "message back to its sender, http://HOST:PORT/voice with a greeting that gathers a key, "
                    "and prints each request's parameters.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--prefix", default="Echo: ", help="put before the echoed text (default 'Echo: ')")
    args = parser.parse_args(argv)
    handler = type("Handler", (EchoHandler,), {"prefix": args.prefix})
    httpd = ThreadingHTTPServer((args.host, args.port), handler)
    print(f"sample-app answering at http://{args.host}:{httpd.server_address[1]}/sms", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
