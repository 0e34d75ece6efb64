"""webhooks.guard: which webhook destinations are refused, with the switch on and off."""

from __future__ import annotations

import asyncio

import pytest

from restcomm.config import load_settings
from restcomm.webhooks.guard import (
    DestinationRefused,
    GuardedResolver,
    check_destination,
    check_destination_async,
)

ON = load_settings(env={"RESTCOMM_WEBHOOK_BLOCK_PRIVATE": "true"})
OFF = load_settings(env={})

PRIVATE = [
    "http://127.0.0.1/sms", "http://127.1.2.3:8080/x", "http://localhost/sms", "http://10.0.0.5/",
    "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://0.0.0.0/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[fd00::1]/", "http://[fe80::1]/",
    "http://224.0.0.1/", "http://[2002:7f00:1::]/", "https://240.0.0.1/",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_destinations_are_refused_when_the_switch_is_on(url: str) -> None:
    with pytest.raises(DestinationRefused, match="private, loopback or reserved"):
        check_destination(url, ON)
    check_destination(url, OFF)  # off by default: local development works


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", "/relative",
                                 "http:///nohost", "http://[::1/"])
def test_only_http_and_https_urls_ever(url: str) -> None:
    for settings in (ON, OFF):
        with pytest.raises(DestinationRefused):
            check_destination(url, settings)


def test_public_destinations_pass() -> None:
    check_destination("https://93.184.216.34/sms", ON)
    check_destination("http://[2606:2800:220:1:248:1893:25c8:1946]:8080/x", ON)
    # A name is resolved, and every address it resolves to must be public.
    check_destination("https://app.example.com/sms", ON, resolve=lambda host, port: ["93.184.216.34"])
    with pytest.raises(DestinationRefused, match="resolves to 10.1.2.3"):
        check_destination("https://app.example.com/sms", ON,
                          resolve=lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(DestinationRefused, match="does not resolve"):
        check_destination("https://app.example.com/sms", ON, resolve=lambda host, port: [])


def test_async_check_resolves_in_the_loop() -> None:
    with pytest.raises(DestinationRefused, match="127.0.0.1|::1"):
        asyncio.run(check_destination_async("http://localhost:9/x", ON))
    with pytest.raises(DestinationRefused, match="does not resolve"):
        asyncio.run(check_destination_async("http://no-such-host.invalid/x", ON))
    asyncio.run(check_destination_async("http://localhost:9/x", OFF))


def test_guarded_resolver_refuses_private_answers() -> None:
    class Fake:
        def __init__(self, answer: str) -> None:
            self.answer = answer

        async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, object]]:
            return [{"hostname": host, "host": self.answer, "port": port, "family": family, "proto": 0, "flags": 0}]

        async def close(self) -> None:
            pass

    async def run() -> None:
        rebinding = GuardedResolver(ON, Fake("127.0.0.1"))
        with pytest.raises(OSError, match="private, loopback"):
            await rebinding.resolve("app.example.com", 80)
        assert (await GuardedResolver(ON, Fake("93.184.216.34")).resolve("app.example.com", 80))[0]["host"] == "93.184.216.34"
        assert (await GuardedResolver(OFF, Fake("127.0.0.1")).resolve("app.example.com", 80))[0]["host"] == "127.0.0.1"

    asyncio.run(run())
