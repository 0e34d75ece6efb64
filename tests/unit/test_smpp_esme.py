"""Pure pieces of the asyncio ESME: addressing, config, error codes, the token bucket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from restcomm.smpp.esme import Carrier, CarrierConfig, TokenBucket, address_ton_npi, submit_error_code
from restcomm.smpp.pdu import BindTransceiverResp, Status


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("+15551234567", ("15551234567", 1, 1)),
        ("15551234567", ("15551234567", 0, 1)),
        ("12345", ("12345", 0, 1)),
        ("ACME", ("ACME", 5, 0)),
        ("Acme 24", ("Acme 24", 5, 0)),
        ("+1-555", ("+1-555", 5, 0)),  # not a number: sent as text rather than mangled
        ("", ("", 0, 0)),
    ],
)
def test_address_ton_npi(address: str, expected: tuple[str, int, int]) -> None:
    assert address_ton_npi(address) == expected


def test_config_from_mapping() -> None:
    cfg = CarrierConfig.from_mapping(
        {"name": "c", "host": "h", "port": 2776, "system_id": "u", "password": "p", "system_type": "",
         "binds": 2, "window": 10, "max_tps": 50, "prefixes": ["+1", "+44"]}
    )
    assert cfg.binds == 2 and cfg.prefixes == ("+1", "+44") and cfg.max_tps == 50
    assert CarrierConfig.from_mapping({"name": "c", "host": "h", "prefixes": "+1"}).prefixes == ("+1",)
    with pytest.raises(ValueError, match="unknown carrier settings: windw"):
        CarrierConfig.from_mapping({"name": "c", "host": "h", "windw": 3})
    with pytest.raises(ValueError):
        CarrierConfig(name="c", host="h", window=0)


@pytest.mark.parametrize(
    ("status", "code"),
    [(Status.ESME_RTHROTTLED, 30001), (Status.ESME_RMSGQFUL, 30001), (Status.ESME_RINVDSTADR, 30005),
     (Status.ESME_RDELIVERYFAILURE, 30006), (Status.ESME_RX_R_APPN, 30007), (Status.ESME_RSUBMITFAIL, 30008),
     (0x400, 30008)],
)
def test_submit_error_codes(status: int, code: int) -> None:
    assert submit_error_code(status) == code


def test_token_bucket_paces_exactly() -> None:
    b = TokenBucket(rate=10, now=0.0, burst=1)
    assert b.reserve(0.0) == 0.0
    # the next two callers at the same instant book the next tokens: 0.1 s and 0.2 s away
    assert b.reserve(0.0) == pytest.approx(0.1)
    assert b.reserve(0.0) == pytest.approx(0.2)
    # after 1 s idle the bucket holds at most `burst` tokens
    b2 = TokenBucket(rate=100, now=0.0)
    assert b2.burst == 10
    waits = [b2.reserve(5.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10 and waits[10] == pytest.approx(0.01) and waits[11] == pytest.approx(0.02)


def test_token_bucket_rate_over_a_second() -> None:
    b = TokenBucket(rate=50, now=0.0)
    t = 0.0
    sent = 0
    while True:
        wait = b.reserve(t)
        t += wait
        if t > 1.0:
            break
        sent += 1
    assert 50 <= sent <= 50 + b.burst + 1


def test_token_bucket_disabled() -> None:
    b = TokenBucket(rate=0, now=0.0)
    assert all(b.reserve(0.0) == 0.0 for _ in range(1000))


class _FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


async def test_bind_answered_before_create_connection_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: when the bind_resp was processed before create_connection() returned (seen
    with the simulator in another process), the bind was not registered yet, so the Bound
    wake-up was lost and wait_bound() and the dispatcher never saw the bind."""
    loop = asyncio.get_running_loop()

    async def create_connection(factory: Callable[[], Any], host: str, port: int) -> tuple[Any, Any]:
        proto = factory()
        transport = _FakeTransport()
        proto.connection_made(transport)
        proto.data_received(BindTransceiverResp(1, 0, "eager").encode())
        await asyncio.sleep(0)
        return transport, proto

    monkeypatch.setattr(loop, "create_connection", create_connection)

    async def ignore(item: object) -> None:
        return None

    c = Carrier(CarrierConfig(name="eager", host="x", binds=2, unbind_timeout=0.01, drain_timeout=0.01), ignore)
    await c.start()
    try:
        await asyncio.wait_for(c.wait_bound(2), 1.0)
    finally:
        await c.close()
