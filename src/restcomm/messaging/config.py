"""The ``[sms]`` section of the TOML configuration, read once into a frozen dataclass.

Every key is optional; the defaults below are what a fresh install runs with. Documented in
docs/compatibility.md (the operator-facing list) and here (what each one is for).

    [sms]
    alphanumeric_senders = false   # allow From = 1-11 letters/digits (with a letter) without owning it
    app_timeout = 5.0              # seconds for one request to an SMS application (connect + answer)
    app_max_redirects = 5          # HTTP 301/302/303/307/308 followed per application request
    max_documents = 10             # documents one SMS session may fetch (first + Redirect/action): 14106
    max_messages_per_session = 10  # messages + emails one SMS session may create: then 14109, session stops
    hop_limit = 10                 # app-to-app hops before a message is no longer given to an app: 14109
    lease_seconds = 15.0           # how long a claimed row stays with a node that stopped renewing it
                                   # (live nodes renew every third of it; a crashed node's work resumes after it)
    poll_interval = 1.0            # seconds between store polls (work committed by other nodes)
    batch_size = 256               # rows claimed per dispatcher transaction
    group_commit_max_batch = 2000  # jobs sharing one transaction (1 = a transaction per job: for comparison)
    app_concurrency = 64           # SMS application sessions running at once per node
    app_concurrency_per_account = 0  # ... of which one account may hold (0 = a quarter of app_concurrency)
    callback_timeout = 5.0         # seconds for one status-callback request
    callback_max_attempts = 6      # attempts before a status callback is given up (notification 11200)
    callback_backoff = 1.0         # first retry delay in seconds, doubled per attempt ...
    callback_backoff_max = 300.0   # ... up to this
    callback_concurrency = 256     # status callbacks in flight per node
    callback_concurrency_per_account = 0  # ... of which one account's (0 = a quarter of callback_concurrency)
    queue_timeout = 14400.0        # seconds a message may wait to be sent; then failed 30001 (0 = for ever)
    stop_reply = "..."             # auto-reply to STOP and friends ("" for none)
    start_reply = "..."            # auto-reply to START/UNSTOP/YES ("" for none)
    help_reply = "..."             # auto-reply to HELP/INFO ("" for none)

    [[sms.routes]]                 # carrier routes, longest prefix wins; "" matches everything
    prefix = "+44"
    carrier = "uk-smsc"            # the name a carrier transport registers under
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from restcomm.config import ConfigError, Settings, did_you_mean

DEFAULT_STOP_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from this number. "
    "Reply START to resubscribe."
)
DEFAULT_START_REPLY = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe."
)
DEFAULT_HELP_REPLY = "Reply STOP to unsubscribe. Reply START to resubscribe."


@dataclass(frozen=True)
class CarrierRoute:
    prefix: str
    carrier: str


@dataclass(frozen=True)
class SmsSettings:
    alphanumeric_senders: bool = False
    app_timeout: float = 5.0
    app_max_redirects: int = 5
    max_documents: int = 10
    max_messages_per_session: int = 10
    hop_limit: int = 10
    lease_seconds: float = 15.0
    poll_interval: float = 1.0
    batch_size: int = 256
    group_commit_max_batch: int = 2000
    app_concurrency: int = 64
    app_concurrency_per_account: int = 0
    callback_timeout: float = 5.0
    callback_max_attempts: int = 6
    callback_backoff: float = 1.0
    callback_backoff_max: float = 300.0
    callback_concurrency: int = 256
    callback_concurrency_per_account: int = 0
    queue_timeout: float = 14400.0
    stop_reply: str = DEFAULT_STOP_REPLY
    start_reply: str = DEFAULT_START_REPLY
    help_reply: str = DEFAULT_HELP_REPLY
    routes: tuple[CarrierRoute, ...] = field(default_factory=tuple)

    @property
    def app_account_limit(self) -> int:
        """Sessions one account may have running at once on a node (so a slow app cannot take every slot)."""
        return self.app_concurrency_per_account or max(self.app_concurrency // 4, 1)

    @property
    def callback_account_limit(self) -> int:
        """Status callbacks of one account in flight at once on a node."""
        return self.callback_concurrency_per_account or max(self.callback_concurrency // 4, 1)

    def callback_delay(self, attempts: int) -> float:
        """Delay before attempt ``attempts + 1`` (``attempts`` failures so far)."""
        return min(self.callback_backoff * (2 ** max(attempts - 1, 0)), self.callback_backoff_max)


def load_sms_settings(settings: Settings) -> SmsSettings:
    raw: dict[str, Any] = dict(settings.section("sms") or {})
    routes = raw.pop("routes", [])
    known = {f.name: f for f in fields(SmsSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known or key == "routes":
            raise ConfigError(f"[sms] has no setting {key!r}{did_you_mean(key, known)}")
        default = getattr(SmsSettings(), key)
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError("must be true or false")
                values[key] = value
            elif isinstance(default, int):
                values[key] = int(value)
            elif isinstance(default, float):
                values[key] = float(value)
            else:
                values[key] = str(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[sms] {key}: {exc}") from exc
    parsed: list[CarrierRoute] = []
    if not isinstance(routes, list):
        raise ConfigError("[sms] routes must be an array of tables ([[sms.routes]])")
    for entry in routes:
        if not isinstance(entry, dict) or "carrier" not in entry:
            raise ConfigError("[[sms.routes]] needs prefix and carrier")
        parsed.append(CarrierRoute(str(entry.get("prefix", "")), str(entry["carrier"])))
    values["routes"] = tuple(sorted(parsed, key=lambda r: len(r.prefix), reverse=True))
    sms = SmsSettings(**values)
    for name in ("app_timeout", "lease_seconds", "poll_interval", "callback_timeout"):
        if getattr(sms, name) <= 0:
            raise ConfigError(f"[sms] {name} must be positive")
    if sms.queue_timeout < 0:
        raise ConfigError("[sms] queue_timeout must be 0 (no limit) or positive")
    for name in ("app_concurrency_per_account", "callback_concurrency_per_account"):
        if getattr(sms, name) < 0:
            raise ConfigError(f"[sms] {name} must be 0 (a quarter of the node's limit) or positive")
    for name in ("batch_size", "app_concurrency", "callback_concurrency", "callback_max_attempts", "max_documents",
                 "group_commit_max_batch", "max_messages_per_session"):
        if getattr(sms, name) < 1:
            raise ConfigError(f"[sms] {name} must be at least 1")
    return sms
