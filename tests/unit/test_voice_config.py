"""[sip], [media] and [[sip_trunks]] settings: defaults, parsing, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from restcomm.config import ConfigError, SipTrunk, load_settings


def settings(tmp_path: Path, text: str, **env: str) -> object:
    path = tmp_path / "restcomm.toml"
    path.write_text(text)
    return load_settings(env={"RESTCOMM_CONFIG": str(path), "RESTCOMM_DATA_DIR": str(tmp_path), **env})


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})
    assert s.sip_address == ("127.0.0.1", 5080) and s.media_host == "127.0.0.1"
    assert s.rtp_port_range == (20000, 29999) and s.sip_trunks == []


def test_sections_and_trunks(tmp_path: Path) -> None:
    s = settings(tmp_path, """
[sip]
listen = "0.0.0.0:5060"
[media]
address = "203.0.113.5"
rtp_ports = "30000-30999"
[[sip_trunks]]
name = "acme"
host = "sip.acme.example"
port = 5070
transport = "TCP"
username = "me"
password = "pw"
register = true
prefixes = ["+44", ""]
inbound_addresses = ["198.51.100.0/24", "192.0.2.7"]
[[sip_trunks]]
name = "backup"
host = "192.0.2.99"
""")
    assert s.sip_address == ("0.0.0.0", 5060) and s.media_host == "203.0.113.5"  # type: ignore[attr-defined]
    assert s.rtp_port_range == (30000, 30999)  # type: ignore[attr-defined]
    assert s.sip_trunks == [  # type: ignore[attr-defined]
        SipTrunk("acme", "sip.acme.example", 5070, "tcp", "me", "pw", True, ("+44", ""),
                 ("198.51.100.0/24", "192.0.2.7")),
        SipTrunk("backup", "192.0.2.99"),
    ]
    env = settings(tmp_path, "", RESTCOMM_SIP_LISTEN="127.0.0.1:5099", RESTCOMM_RTP_PORTS="40000-40100")
    assert env.sip_address == ("127.0.0.1", 5099) and env.rtp_port_range == (40000, 40100)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "message"), [
    ('[[sip_trunks]]\nname = "a"\nhost = "h"\nhots = "x"\n', "[[sip_trunks]] 'a' has no setting hots"),
    ('[[sip_trunks]]\nhost = "h"\n', "[[sip_trunks]] #1 needs name"),
    ('[[sip_trunks]]\nname = "a"\nhost = "h"\ntransport = "tls"\n', "transport must be udp or tcp"),
    ('[[sip_trunks]]\nname = "a"\nhost = "h"\nport = 70000\n', "port must be an integer"),
    ('[[sip_trunks]]\nname = "a"\nhost = "h"\nregister = true\n', "register = true needs a username"),
    ('[[sip_trunks]]\nname = "a"\nhost = "h"\ninbound_addresses = ["x.y"]\n', "is not an IP address"),
    ('[[sip_trunks]]\nname = "a"\nhost = "h"\n[[sip_trunks]]\nname = "a"\nhost = "i"\n', "configured twice"),
    ('[sip]\nlisten = "5080"\n', "[sip] listen must be host:port"),
    ('[media]\nrtp_ports = "30000"\n', "[media] rtp_ports must be a range"),
    ('[media]\nrtp_ports = "30000-30001"\n', "room for two"),
])
def test_errors_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_voice_section(tmp_path: Path) -> None:
    s = settings(tmp_path, "[voice]\nrecovery_interval = 0.5\ncall_lease = 12\n")
    assert s.voice_recovery_interval == 0.5 and s.voice_call_lease == 12.0  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"\[voice\] has no setting lease"):
        settings(tmp_path, "[voice]\nlease = 1\n")
    with pytest.raises(ConfigError, match="positive"):
        settings(tmp_path, "[voice]\ncall_lease = 0\n")
