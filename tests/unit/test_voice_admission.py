"""Who may send calls in (trunk addresses and networks) and what an INVITE tells the application."""

from __future__ import annotations

from restcomm.config import SipTrunk
from restcomm.voice.inbound import trusted_source

TRUNKS = [SipTrunk(name="a", host="198.51.100.7", inbound_addresses=("198.51.100.7",)),
          SipTrunk(name="b", host="carrier.example", inbound_addresses=("203.0.113.0/28", "2001:db8::/64", "junk"))]


def test_addresses_and_networks_of_any_trunk_are_trusted() -> None:
    assert trusted_source("198.51.100.7", TRUNKS) is TRUNKS[0]
    assert trusted_source("203.0.113.14", TRUNKS) is TRUNKS[1]
    assert trusted_source("2001:db8::1", TRUNKS) is TRUNKS[1]


def test_everything_else_is_not() -> None:
    for host in ("198.51.100.8", "203.0.113.16", "127.0.0.1", "carrier.example", ""):
        assert trusted_source(host, TRUNKS) is None
    assert trusted_source("198.51.100.7", []) is None
