"""One settings object, read from the environment and an optional TOML file.

Every setting is documented in docs/configuration.md. Precedence: environment variable, then the
TOML file named by ``RESTCOMM_CONFIG``, then the default below.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and why."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a boolean: {value!r}")


@dataclass
class Settings:
    # Where the embedded database and other files live.
    data_dir: Path = field(default_factory=lambda: Path.cwd() / "data")
    # SQLAlchemy URL; empty means the embedded SQLite database in data_dir.
    database_url: str = ""
    # Administrator bootstrap (first start only).
    admin_email: str = ""
    admin_password: str = ""
    # Address the API is reached at, used for absolute URLs (e.g. Link headers).
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    # Organization domain (Restcomm's default organization) and the Basic realm.
    domain: str = "default.restcomm.com"
    realm: str = "Restcomm realm"
    # Paging: default and maximum PageSize.
    default_page_size: int = 50
    max_page_size: int = 1000
    # Largest request body accepted, in bytes.
    max_body_bytes: int = 1_000_000
    # SQLite durability: FULL survives power loss, NORMAL only process crashes.
    sqlite_synchronous: str = "FULL"
    # Apply migrations automatically at start (always on for SQLite; opt-in for PostgreSQL).
    auto_migrate: bool | None = None
    # Database connection pool (PostgreSQL).
    db_pool_size: int = 10
    # Inventory of numbers that AvailablePhoneNumbers searches (TOML: [[available_phone_numbers]]).
    available_phone_numbers: list[dict[str, Any]] = field(default_factory=list)
    # Log format: "text" or "json".
    log_format: str = "text"
    log_level: str = "INFO"
    # Abuse resistance (per process; docs/operations.md). Wrong credentials from one client address,
    # or for one account, beyond these counts answer 429; the counts drain over the window. 0 = off.
    auth_failures_per_address: int = 30
    auth_failures_per_account: int = 10
    auth_failure_window: float = 60.0
    # Per-account API requests per second (token bucket) and the burst allowed; 0 = unlimited.
    api_rate_limit: float = 0.0
    api_rate_burst: int = 0
    # How long a node keeps an account's effective profile (restcomm.profiles) before reading it
    # again: a change made on this node is seen at once, one made on another node within this time.
    profile_cache_seconds: float = 10.0
    # Proxies (load balancers) whose X-Forwarded-For/-Proto are believed: comma-separated addresses
    # or networks, "*" for any. The client address is what throttling and the audit log see.
    forwarded_allow_ips: str = "127.0.0.1"
    # Slow and idle clients (docs/operations.md): seconds for a request head, for its body, for a
    # client to read a response, idle between requests; connections at once per client address
    # (trusted proxies not counted; 0 = no cap) and in all (0 = from the open-file limit).
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    http_send_timeout: float = 30.0
    http_keep_alive_timeout: float = 5.0
    http_max_connections_per_address: int = 256
    http_max_connections: int = 0
    # Browser origins allowed to call the API (CORS); empty = CORS off. "*" allows any origin.
    cors_allowed_origins: list[str] = field(default_factory=list)
    # Refuse webhook URLs that resolve to private, loopback or link-local addresses (multi-tenant).
    webhook_block_private: bool = False
    # Prometheus metrics at /metrics; with a token, scrapers must send "Authorization: Bearer <token>".
    metrics_enabled: bool = True
    metrics_token: str = ""
    # PostgreSQL: nodes wake each other with LISTEN/NOTIFY when they commit work another node may
    # take (store/wakeups.py), so polling is only the safety net. Off: nodes find it by polling.
    db_notify: bool = True
    # Server processes sharing the listening socket (``restcomm serve --workers``); each is a node
    # of its own (dispatcher, callbacks, its share of every carrier's binds). worker_index is set
    # by the server in each process.
    workers: int = 1
    worker_index: int = 0
    # Where the workers of one server reach each other (a private directory the parent creates; web/peers.py).
    workers_dir: str = ""
    # Voice: where SIP listens (UDP and TCP on one port), the address written into SDP (default:
    # the SIP listen host), the RTP port range, and the SIP trunks ([[sip_trunks]]).
    sip_listen: str = "127.0.0.1:5080"
    media_address: str = ""
    rtp_ports: str = "20000-29999"
    sip_trunks: list[SipTrunk] = field(default_factory=list)
    # [sip] digest_algorithms: offered to phones, in order. MD5 alone by default: some phones
    # (baresip's libre) refuse a challenge that also offers SHA-256.
    sip_digest_algorithms: tuple[str, ...] = ("MD5",)
    # [voice]: seconds between sweeps for calls a dead node left live, and a node's lease on a call.
    voice_recovery_interval: float = 5.0
    voice_call_lease: float = 30.0
    # The raw TOML document, for subsystems that read their own sections (carriers, smtp, ...).
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def sip_address(self) -> tuple[str, int]:
        """``sip_listen`` as (host, port)."""
        return parse_host_port(self.sip_listen, "[sip] listen")

    @property
    def media_host(self) -> str:
        return self.media_address or self.sip_address[0]

    @property
    def rtp_port_range(self) -> tuple[int, int]:
        """``rtp_ports`` as (first, last), both included."""
        return parse_port_range(self.rtp_ports)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'restcomm.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is None:
            return self.is_sqlite
        return self.auto_migrate

    def section(self, name: str) -> Any:
        return self.raw.get(name)


# Environment variable -> attribute name. Only these are read from the environment.
ENV_VARS: dict[str, str] = {
    "RESTCOMM_DATA_DIR": "data_dir",
    "RESTCOMM_DATABASE_URL": "database_url",
    "RESTCOMM_ADMIN_EMAIL": "admin_email",
    "RESTCOMM_ADMIN_PASSWORD": "admin_password",
    "RESTCOMM_PUBLIC_URL": "public_url",
    "RESTCOMM_HOST": "host",
    "RESTCOMM_PORT": "port",
    "RESTCOMM_DOMAIN": "domain",
    "RESTCOMM_MAX_PAGE_SIZE": "max_page_size",
    "RESTCOMM_MAX_BODY_BYTES": "max_body_bytes",
    "RESTCOMM_SQLITE_SYNCHRONOUS": "sqlite_synchronous",
    "RESTCOMM_AUTO_MIGRATE": "auto_migrate",
    "RESTCOMM_DB_POOL_SIZE": "db_pool_size",
    "RESTCOMM_LOG_FORMAT": "log_format",
    "RESTCOMM_LOG_LEVEL": "log_level",
    "RESTCOMM_AUTH_FAILURES_PER_ADDRESS": "auth_failures_per_address",
    "RESTCOMM_AUTH_FAILURES_PER_ACCOUNT": "auth_failures_per_account",
    "RESTCOMM_AUTH_FAILURE_WINDOW": "auth_failure_window",
    "RESTCOMM_API_RATE_LIMIT": "api_rate_limit",
    "RESTCOMM_API_RATE_BURST": "api_rate_burst",
    "RESTCOMM_PROFILE_CACHE_SECONDS": "profile_cache_seconds",
    "RESTCOMM_FORWARDED_ALLOW_IPS": "forwarded_allow_ips",
    "RESTCOMM_HTTP_HEADER_TIMEOUT": "http_header_timeout",
    "RESTCOMM_HTTP_BODY_TIMEOUT": "http_body_timeout",
    "RESTCOMM_HTTP_SEND_TIMEOUT": "http_send_timeout",
    "RESTCOMM_HTTP_KEEP_ALIVE_TIMEOUT": "http_keep_alive_timeout",
    "RESTCOMM_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "http_max_connections_per_address",
    "RESTCOMM_HTTP_MAX_CONNECTIONS": "http_max_connections",
    "RESTCOMM_CORS_ALLOWED_ORIGINS": "cors_allowed_origins",
    "RESTCOMM_WEBHOOK_BLOCK_PRIVATE": "webhook_block_private",
    "RESTCOMM_METRICS_ENABLED": "metrics_enabled",
    "RESTCOMM_METRICS_TOKEN": "metrics_token",
    "RESTCOMM_DB_NOTIFY": "db_notify",
    "RESTCOMM_WORKERS": "workers",
    "RESTCOMM_SIP_LISTEN": "sip_listen",
    "RESTCOMM_MEDIA_ADDRESS": "media_address",
    "RESTCOMM_RTP_PORTS": "rtp_ports",
}


# Top-level TOML tables read by the subsystems themselves (``Settings.section``, the voice tables
# below); any other top-level key must be a setting, so a typo is an error rather than silently ignored.
SECTIONS = ("carriers", "sms", "smtp", "sip", "media", "voice")


def did_you_mean(word: str, choices: Any) -> str:
    """`` (did you mean 'x'?)`` when one known name is close to ``word``: a typo names its fix."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = str(kinds[name])
    try:
        if name == "data_dir":
            return Path(value).expanduser().resolve()
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "list[str]":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(item).strip() for item in items if str(item).strip()]
        if kind.startswith("bool"):
            return _bool(value)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc}") from exc
    return value


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the TOML file (if any), the environment, then explicit overrides."""
    env = dict(os.environ if env is None else env)
    raw: dict[str, Any] = {}
    config_path = env.get("RESTCOMM_CONFIG")
    if config_path:
        try:
            raw = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"RESTCOMM_CONFIG names {config_path}, which does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"RESTCOMM_CONFIG {config_path}: {exc}") from exc
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)} - {"raw"}
    for key, value in raw.items():
        if key in known and key != "sip_trunks":
            values[key] = value if key == "available_phone_numbers" else _coerce(key, value)
        elif key not in known and key not in SECTIONS:
            raise ConfigError(f"{config_path}: unknown setting {key!r}{did_you_mean(key, [*known, *SECTIONS])}")
    values.update(_voice_sections(raw))
    for var, name in ENV_VARS.items():
        if var in env and env[var] != "":
            values[name] = _coerce(name, env[var])
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value)
    settings = Settings(**values, raw=raw)
    if settings.sqlite_synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigError("sqlite_synchronous must be FULL, NORMAL or EXTRA")
    if settings.max_page_size < 1 or settings.default_page_size < 1:
        raise ConfigError("page sizes must be positive")
    if settings.log_format not in ("text", "json"):
        raise ConfigError("log_format must be text or json")
    if min(settings.auth_failures_per_address, settings.auth_failures_per_account, settings.api_rate_burst) < 0:
        raise ConfigError("auth failure limits and api_rate_burst must be 0 (off) or positive")
    if settings.auth_failure_window <= 0:
        raise ConfigError("auth_failure_window must be positive (seconds)")
    if settings.api_rate_limit < 0:
        raise ConfigError("api_rate_limit must be 0 (off) or positive (requests per second)")
    if settings.profile_cache_seconds < 0:
        raise ConfigError("profile_cache_seconds must be 0 (no cache) or positive")
    if min(settings.http_header_timeout, settings.http_body_timeout, settings.http_send_timeout,
           settings.http_keep_alive_timeout) <= 0:
        raise ConfigError("http_header_timeout, http_body_timeout, http_send_timeout and "
                          "http_keep_alive_timeout must be positive (seconds)")
    if min(settings.http_max_connections, settings.http_max_connections_per_address) < 0:
        raise ConfigError("http_max_connections and http_max_connections_per_address must be 0 or positive")
    if not 1 <= settings.workers <= 64:
        raise ConfigError("workers must be between 1 and 64")
    settings.sip_address  # noqa: B018 - checked now, so a typo stops the start with its reason
    settings.rtp_port_range  # noqa: B018
    return settings


# ---------------------------------------------------------------------------------------------
# Voice: [sip], [media] and [[sip_trunks]]


@dataclass(frozen=True)
class SipTrunk:
    """A SIP carrier (bring your own): where calls to numbers go and who may send calls in.

    ``prefixes`` route outbound calls by the longest matching prefix ("" is the default route),
    trying the next matching trunk on a 5xx or a timeout. ``inbound_addresses`` (IP addresses or
    networks) may send INVITEs in. With ``register`` the server registers ``username`` to the
    carrier. The Gateways API (``/Management/Gateways``) manages the same thing at run time.
    """

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"  # udp | tcp
    username: str | None = None
    password: str | None = None
    register: bool = False
    prefixes: tuple[str, ...] = ("",)
    inbound_addresses: tuple[str, ...] = ()


_TRUNK_KEYS = frozenset(f.name for f in fields(SipTrunk))


def parse_host_port(value: str, what: str) -> tuple[str, int]:
    host, sep, port = str(value).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{what} must be host:port (e.g. 127.0.0.1:5080), not {value!r}")
    return host.strip("[]"), int(port)


def parse_port_range(value: str) -> tuple[int, int]:
    first, sep, last = str(value).strip().partition("-")
    if not (sep and first.strip().isdigit() and last.strip().isdigit()):
        raise ConfigError(f"[media] rtp_ports must be a range like 20000-29999, not {value!r}")
    lo, hi = int(first), int(last)
    if not (1024 <= lo < hi < 65536) or hi - lo < 3:
        raise ConfigError(f"[media] rtp_ports {value!r}: need 1024 <= first < last <= 65535 and room for two "
                          "RTP/RTCP pairs")
    return lo, hi


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} {key} must be a list of strings")
    return tuple(v.strip() for v in value)


def load_sip_trunks(raw: Any) -> list[SipTrunk]:
    """Parse and check ``[[sip_trunks]]``; a ConfigError names the trunk and the key at fault."""
    import ipaddress

    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("sip_trunks must be an array of tables ([[sip_trunks]])")
    out: list[SipTrunk] = []
    for i, entry in enumerate(raw):
        where = f"[[sip_trunks]] #{i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        for key in ("name", "host"):
            if not entry.get(key) or not isinstance(entry[key], str):
                raise ConfigError(f"{where} needs {key} (a non-empty string)")
        where = f"[[sip_trunks]] {entry['name']!r}"
        if any(t.name == entry["name"] for t in out):
            raise ConfigError(f"{where} is configured twice (names must be unique)")
        unknown = sorted(set(entry) - _TRUNK_KEYS)
        if unknown:
            raise ConfigError(f"{where} has no setting {', '.join(unknown)} (known: {', '.join(sorted(_TRUNK_KEYS))})")
        port = entry.get("port", 5060)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{where} port must be an integer between 1 and 65535")
        transport = str(entry.get("transport", "udp")).lower()
        if transport not in ("udp", "tcp"):
            raise ConfigError(f"{where} transport must be udp or tcp, not {entry.get('transport')!r}")
        register = entry.get("register", False)
        if not isinstance(register, bool):
            raise ConfigError(f"{where} register must be true or false")
        for key in ("username", "password"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise ConfigError(f"{where} {key} must be a string")
        if register and not entry.get("username"):
            raise ConfigError(f"{where} register = true needs a username")
        inbound = _strings(entry.get("inbound_addresses", []), where, "inbound_addresses")
        for address in inbound:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ConfigError(f"{where} inbound_addresses: {address!r} is not an IP address or network") from None
        out.append(SipTrunk(
            name=entry["name"], host=entry["host"], port=port, transport=transport,
            username=entry.get("username") or None, password=entry.get("password") or None, register=register,
            prefixes=_strings(entry.get("prefixes", [""]), where, "prefixes"), inbound_addresses=inbound,
        ))
    return out


def _voice_sections(raw: dict[str, Any]) -> dict[str, Any]:
    """[sip] listen, [media] address and rtp_ports, [[sip_trunks]], [voice]: as Settings values."""
    values: dict[str, Any] = {"sip_trunks": load_sip_trunks(raw.get("sip_trunks"))}
    for section, key, name in (("sip", "listen", "sip_listen"), ("media", "address", "media_address"),
                               ("media", "rtp_ports", "rtp_ports")):
        table = raw.get(section)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigError(f"[{section}] {key} must be a string")
            values[name] = table[key]
    sip = raw.get("sip")
    if isinstance(sip, dict) and "digest_algorithms" in sip:
        algorithms = sip["digest_algorithms"]
        if (not isinstance(algorithms, list) or not algorithms
                or any(a not in ("MD5", "SHA-256") for a in algorithms) or len(set(algorithms)) != len(algorithms)):
            raise ConfigError('[sip] digest_algorithms must list "MD5" and/or "SHA-256", e.g. ["SHA-256", "MD5"]')
        values["sip_digest_algorithms"] = tuple(algorithms)
    voice = raw.get("voice")
    if voice is not None:
        if not isinstance(voice, dict):
            raise ConfigError("[voice] must be a table")
        unknown = sorted(set(voice) - {"recovery_interval", "call_lease"})
        if unknown:
            raise ConfigError(f"[voice] has no setting {', '.join(unknown)} (known: call_lease, recovery_interval)")
        for key in ("recovery_interval", "call_lease"):
            if key in voice:
                value = voice[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ConfigError(f"[voice] {key} must be a positive number of seconds")
                values[f"voice_{key}"] = float(value)
    return values
