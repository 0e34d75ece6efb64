"""Command line: `restcomm serve`, `restcomm db upgrade`, `restcomm smsc-sim`, `restcomm sample-app`,
admin commands.

Every configuration problem found here or while starting ends as one line on stderr,
``restcomm: configuration error: ...``, and exit status 2 (``main``); the whole configuration, the
TOML sections the subsystems read included, is checked before anything listens (``preflight``), so
a typo in ``[[carriers]]`` is not a traceback from inside the server's start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from restcomm.config import ConfigError, Settings, load_settings
from restcomm.observability import configure_logging


def _uvicorn_config(app: Any, settings: Settings, args: argparse.Namespace) -> Any:
    import uvicorn

    from restcomm.httpguard import protocol_class

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our handler (redaction, JSON, request ids) serves uvicorn's loggers too
        log_level=settings.log_level.lower(),
        access_log=args.access_log,
        timeout_graceful_shutdown=args.drain_seconds,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        lifespan="on",
        http=protocol_class(settings),  # deadlines and connection caps for slow clients
        timeout_keep_alive=settings.http_keep_alive_timeout,
    )


def preflight(settings: Settings) -> None:
    """Check what the server would only read while starting: the TOML sections of carriers, SMS
    and SMTP, and the administrator password (held to the API's strength rule, as an account's)."""
    from restcomm.messaging.config import load_sms_settings
    from restcomm.messaging.email import smtp_config
    from restcomm.smpp.carriers import load_carriers

    load_carriers(settings)
    load_sms_settings(settings)
    smtp_config(settings)
    check_admin_password(settings)


def check_admin_password(settings: Settings) -> None:
    """The first-start administrator's password obeys the rule the API applies to every account."""
    from restcomm.api.passwords import is_strong

    if settings.admin_password and not is_strong(settings.admin_password):
        raise ConfigError("RESTCOMM_ADMIN_PASSWORD is too weak (the API's rule for account passwords, error "
                          "22001): mix upper and lower case letters, digits and symbols like - ! or _, "
                          "e.g. 'Ch4nge-me-now!'")


def listening_url(settings: Settings, tls: bool) -> str:
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    return f"{'https' if tls else 'http'}://{host}:{settings.port}"


def _serve(args: argparse.Namespace) -> int:

    from restcomm.app import build_app

    settings = load_settings(host=args.host, port=args.port, workers=args.workers)
    configure_logging(settings.log_format, settings.log_level)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise ConfigError("--ssl-certfile and --ssl-keyfile go together")
    preflight(settings)
    if settings.workers > 1:
        from restcomm.workers import serve_workers

        # uvicorn prints its "running on" line only for a server it binds itself; the workers share a
        # socket bound by the parent, so the address is said here.
        logging.getLogger("restcomm").info("%d workers listening on %s", settings.workers,
                                           listening_url(settings, bool(args.ssl_certfile)))
        return serve_workers(settings, lambda s: _uvicorn_config(build_app(s), s, args))
    from restcomm.workers import serving_server

    server = serving_server(_uvicorn_config(build_app(settings), settings, args))
    server.run()
    return 0 if server.started else 1


def _db_upgrade(args: argparse.Namespace) -> int:
    from restcomm.store import db

    settings = load_settings()

    async def run() -> str | None:
        engine = db.create_engine(settings)
        try:
            await db.upgrade(engine)
            return await db.current_revision(engine)
        finally:
            await engine.dispose()

    rev = asyncio.run(run())
    print(f"database at revision {rev}")
    return 0


def _smsc_sim(argv: list[str]) -> int:
    from restcomm.smpp.simulator import main as sim_main

    return sim_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["smsc-sim", "inject"]:
        from restcomm.smpp.simulator import inject_main

        return inject_main(argv[2:])
    if argv[:1] == ["smsc-sim"]:
        return _smsc_sim(argv[1:])
    if argv[:1] == ["sample-app"]:
        from restcomm.sample_app import main as sample_main

        return sample_main(argv[1:])
    if argv[:1] == ["phone"]:
        from restcomm.phone_cli import main as phone_main

        return phone_main(argv[1:])
    parser = argparse.ArgumentParser(prog="restcomm", description="Restcomm-compatible communications platform")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server and its background services")
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8080)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--workers", type=int, default=None,
                       help="server processes sharing the port, each a node of its own (default 1)")
    serve.add_argument("--drain-seconds", type=int, default=30, help="graceful shutdown limit")
    serve.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate (PEM, chain included)")
    serve.add_argument("--ssl-keyfile", default=None, help="the certificate's private key (PEM)")
    dbp = sub.add_parser("db", help="database schema")
    dbsub = dbp.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply schema migrations")
    sub.add_parser("smsc-sim", help="run the SMSC simulator (see `restcomm smsc-sim --help`); "
                   "`restcomm smsc-sim inject` sends a handset message through a running one")
    sub.add_parser("sample-app", help="run the sample SMS application (an echo) for the quickstart "
                   "(see `restcomm sample-app --help`)")
    sub.add_parser("phone", help="a command-line softphone (see `restcomm phone --help`)")
    from restcomm import admin

    admin.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "db":
            return _db_upgrade(args)
        if args.command == "admin":
            configure_logging(level="WARNING")
            check_admin_password(load_settings())
            return admin.run(args)
    except ConfigError as exc:
        print(f"restcomm: configuration error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
