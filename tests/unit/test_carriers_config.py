"""[[carriers]] parsing, longest-prefix routing with failover, and MO address normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from restcomm.config import ConfigError, Settings
from restcomm.messaging.transports import CarrierMessage, CarrierRouter, SendResult
from restcomm.smpp.carriers import DELIVER_CONCURRENCY, load_carriers
from restcomm.smpp.mo import e164


def settings(*carriers: dict[str, Any]) -> Settings:
    return Settings(raw={"carriers": list(carriers)})


def test_the_operator_keys_and_tuning_knobs() -> None:
    [acme] = load_carriers(settings({
        "name": "acme", "host": "smpp.example", "port": 2776, "system_id": "u", "password": "p", "system_type": "x",
        "binds": 3, "window": 5, "max_tps": 50, "prefixes": ["+44", ""], "response_timeout": 2.5, "bind_wait": 1,
    }))
    c = acme.config
    assert (c.name, c.host, c.port, c.system_id, c.password, c.system_type) == ("acme", "smpp.example", 2776, "u", "p", "x")
    assert (c.binds, c.window, c.max_tps, c.prefixes, c.response_timeout) == (3, 5, 50, ("+44", ""), 2.5)
    assert acme.bind_wait == 1 and c.deliver_concurrency == DELIVER_CONCURRENCY


def test_defaults_route_everything_and_none_configured_is_fine() -> None:
    [c] = load_carriers(settings({"name": "a", "host": "h"}))
    assert c.config.prefixes == ("",) and c.config.port == 2775
    assert load_carriers(Settings()) == []


@pytest.mark.parametrize(("entry", "message"), [
    ({"host": "h"}, "needs name"),
    ({"name": "a"}, "needs host"),
    ({"name": "a", "host": "h", "windw": 5}, "no setting 'windw' .did you mean 'window'"),
    ({"name": "a", "host": "h", "port": "2775"}, "port must be an integer"),
    ({"name": "a", "host": "h", "port": 70000}, "port must be between"),
    ({"name": "a", "host": "h", "binds": 0}, "binds and window must be at least 1"),
    ({"name": "a", "host": "h", "max_tps": -1}, "max_tps"),
    ({"name": "a", "host": "h", "prefixes": [44]}, "prefixes must be a list of strings"),
    ({"name": "a", "host": "h", "bind_wait": -1}, "bind_wait"),
])
def test_mistakes_name_the_carrier_and_the_key(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_carriers(settings(entry))


def test_names_are_unique() -> None:
    with pytest.raises(ConfigError, match="configured twice"):
        load_carriers(settings({"name": "a", "host": "h"}, {"name": "a", "host": "g"}))


def test_carriers_must_be_an_array_of_tables() -> None:
    with pytest.raises(ConfigError, match="array of tables"):
        load_carriers(Settings(raw={"carriers": {"name": "a"}}))


@dataclass
class Fake:
    name: str
    available: bool = True

    async def send(self, message: CarrierMessage) -> SendResult:
        return SendResult("accepted", ("x",))


def test_longest_prefix_then_configuration_order_and_failover() -> None:
    router = CarrierRouter()
    uk, uk2, default = Fake("uk"), Fake("uk2"), Fake("default")
    router.register(uk, ("+44",))
    router.register(uk2, ("+44",))
    router.register(default, ("",))
    assert router.carrier_for("+447700900123") == "uk"
    assert router.carrier_for("447700900123") == "uk"  # with or without the +
    assert router.carrier_for("+15550001111") == "default"
    uk.available = False
    assert router.carrier_for("+447700900123") == "uk2"  # the next carrier for the same prefix
    uk2.available = False
    assert router.carrier_for("+447700900123") == "default"  # then the shorter prefix
    default.available = False
    assert router.carrier_for("+447700900123") == "uk"  # none is up: the first match waits for its bind
    assert router.carrier_for("+15550001111") == "default"


def test_international_mo_addresses_get_their_plus_back() -> None:
    assert e164("15550001111", 1) == "+15550001111"
    assert e164("5550001111", 0) == "5550001111"  # national: left for the number matcher
    assert e164("ACME", 5) == "ACME"
    assert e164("", 1) == ""
