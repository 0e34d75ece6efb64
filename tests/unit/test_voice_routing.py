"""Trunk choice for a number: longest prefix first, file order among equals, failover statuses."""

from __future__ import annotations

from restcomm.config import SipTrunk
from restcomm.voice.routing import classify, is_failover, trunk_route, trunks_for


def test_longest_prefix_first_then_the_default_route() -> None:
    default = SipTrunk(name="default", host="10.0.0.1")
    us = SipTrunk(name="us", host="10.0.0.2", prefixes=("+1",))
    nyc = SipTrunk(name="nyc", host="10.0.0.3", prefixes=("+1212", "+1646"))
    uk = SipTrunk(name="uk", host="10.0.0.4", prefixes=("+44",))
    trunks = [default, us, nyc, uk]
    assert [t.name for t in trunks_for("+12125550100", trunks)] == ["nyc", "us", "default"]
    assert [t.name for t in trunks_for("12125550100", trunks)] == ["nyc", "us", "default"]  # without +
    assert [t.name for t in trunks_for("+447700900123", trunks)] == ["uk", "default"]
    assert trunks_for("+33123", [us, uk]) == []


def test_carrier_failures_fail_over_callee_answers_do_not() -> None:
    assert all(is_failover(s) for s in (408, 500, 502, 503, 504, 580))
    assert not any(is_failover(s) for s in (404, 480, 486, 603))


def test_trunk_route_uses_host_port_transport_and_credentials() -> None:
    r = trunk_route("+15550100", SipTrunk(name="t", host="sip.carrier", port=5080, transport="tcp",
                                          username="u", password="p"))
    assert r.target == "sip:+15550100@sip.carrier:5080;transport=tcp"
    assert r.destination == ("TCP", "sip.carrier", 5080) and r.credentials == ("u", "p") and r.trunk == "t"


def test_classify_api_to() -> None:
    assert classify("client:alice") == ("client", "alice")
    assert classify("sip:bob@example.com") == ("sip", "sip:bob@example.com")
    assert classify("+15550100") == ("number", "+15550100")
