"""Concatenated MO survives a server crash: every part the SMSC was acknowledged for is stored.

A real `restcomm serve` bound to our simulator (`restcomm smsc-sim`) over TCP, on SQLite and
PostgreSQL. The parts of one message arrive some before a kill -9, some after the restart, some
twice, some on another node sharing the database; the application must see the whole text exactly
once, and a message whose missing part never comes must still time out into a 30009 notification
after the restart.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from restcomm.encoding import segment
from restcomm.store.schema import messages, mo_parts
from tests.peers.carrier_server import SMS, CarrierServer, app_server, carriers_toml
from tests.peers.smsc import Smsc
from tests.support.postgres import require_postgres
from tests.support.sdk.store import read_rows
from tests.support.sms_app import Answer, AppServer, add_number, wait_until

#: Long enough for a kill -9 and a restart between the parts of one message.
LONG = 60.0
#: The carrier whose incomplete messages time out while the test waits.
SHORT = 2.0


def carriers(sim: Smsc, node: str) -> str:
    return carriers_toml([
        {"name": "sim", "port": sim.port, "system_id": node, "binds": 1, "prefixes": ["+1555"],
         "mo_reassembly_timeout": LONG},
        {"name": "short", "port": sim.port, "system_id": f"{node}-short", "binds": 1, "prefixes": ["+1556"],
         "mo_reassembly_timeout": SHORT},
    ])


@pytest.fixture(scope="module")
def sim() -> Iterator[Smsc]:
    peer = Smsc.simulator().start()
    yield peer
    peer.kill()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, sim: Smsc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CarrierServer]:
    if request.param == "postgres":
        require_postgres()
    binds = sim.stats()["binds"]
    server = CarrierServer(request.param, tmp_path_factory.mktemp(f"mo-parts-{request.param}"),
                           SMS + carriers(sim, "node-a")).start()
    sim.wait("binds", binds + 2)
    yield server
    server.close()


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    yield from app_server()


def handset() -> str:
    return "+1555" + str(random.randrange(10**6, 10**7))


def hosted(srv: CarrierServer, apps: AppServer, label: str) -> tuple[str, str]:
    """A number with an application; (number, the app's path)."""
    path = apps.new_path(label)
    number = "+1999" + str(random.randrange(10**6, 10**7))
    with srv.client() as c:
        add_number(c, srv.admin_sid, number, SmsUrl=apps.route(path, Answer("<Response/>")))
    return number, path


def long_text(label: str) -> str:
    text = f"{label}-{uuid.uuid4().hex[:8]} " + "a handset's long message, three parts of it. " * 7
    assert segment(text).num_segments == 3
    return text


def restart(srv: CarrierServer, sim: Smsc) -> None:
    """kill -9, then the same server on the same database; back once its binds are up again."""
    binds = sim.stats()["binds"]
    srv.crash()
    srv.start()
    sim.wait("binds", binds + 2)


def stored(srv: CarrierServer, text: str) -> int:
    return int(read_rows(srv.env, select(func.count().label("n")).select_from(messages)
                         .where(messages.c.body == text))[0]["n"])


def parts_left(srv: CarrierServer, source: str) -> int:
    """Parts still waiting for their message (done ones are kept a while, to spot redeliveries)."""
    return int(read_rows(srv.env, select(func.count().label("n")).select_from(mo_parts)
                         .where(mo_parts.c.source == source.lstrip("+"), mo_parts.c.date_done.is_(None)))[0]["n"])


def wait_note(srv: CarrierServer, code: int, needle: str) -> dict[str, Any]:
    with srv.client() as c:
        def find() -> list[dict[str, Any]]:
            r = c.get(f"/Accounts/{srv.admin_sid}/Notifications.json",
                      params={"ErrorCode": str(code), "PageSize": "1000"})
            full = [c.get(f"/Accounts/{srv.admin_sid}/Notifications/{n['sid']}.json").json()
                    for n in r.json()["notifications"]]
            return [n for n in full if needle in n["message_text"]]

        return wait_until(find, bool, 20, f"notification {code} about {needle}")[0]


def test_a_part_acknowledged_before_a_kill_9_is_not_lost(srv: CarrierServer, sim: Smsc, apps: AppServer) -> None:
    number, path = hosted(srv, apps, "crash")
    phone, text, ref = handset(), long_text("crash"), random.randrange(256)
    # Part 1, and the same part again (an SMSC re-sending after a lost resp): the copy is ignored.
    assert sim.mo(phone, number, text, order=[1, 1], ref=ref, system_id="node-a") == [0, 0]
    restart(srv, sim)
    assert sim.mo(phone, number, text, order=[3, 3], ref=ref, system_id="node-a") == [0, 0]
    assert not apps.requests(path)
    assert sim.mo(phone, number, text, order=[2], ref=ref, system_id="node-a") == [0]
    seen = apps.wait(path, 1)
    assert [s.params["Body"] for s in seen] == [text]
    assert seen[0].params["NumSegments"] == "3" and seen[0].params["From"] == phone
    # Exactly once: one inbound message, and no part left behind to come back as a notification.
    # A part delivered again after its message went through is recognized, not a new message.
    assert sim.mo(phone, number, text, order=[3], ref=ref, system_id="node-a") == [0]
    assert stored(srv, text) == 1
    assert parts_left(srv, phone) == 0


def test_a_missing_part_still_times_out_after_a_restart(srv: CarrierServer, sim: Smsc, apps: AppServer) -> None:
    number, path = hosted(srv, apps, "timeout")
    phone, text = handset(), long_text("timeout")
    assert sim.mo(phone, number, text, order=[3, 1], system_id="node-a-short") == [0, 0]  # part 2 never comes
    restart(srv, sim)
    note = wait_note(srv, 30009, text[:20])
    assert "3-part message" in note["message_text"] and "missing part(s) 2" in note["message_text"]
    assert text[:153] in note["message_text"] and text[306:] in note["message_text"]
    assert parts_left(srv, phone) == 0
    assert not apps.requests(path)  # the application never saw the truncated text


class Control:
    """A second control connection to the simulator, so two threads can inject at once."""

    def __init__(self, sim: Smsc) -> None:
        self.sock = socket.create_connection(("127.0.0.1", sim.control_port), timeout=30)
        self.file = self.sock.makefile("rw", encoding="utf-8")

    def mo(self, **options: Any) -> list[int]:
        self.file.write("MOX " + json.dumps(options) + "\n")
        self.file.flush()
        reply = self.file.readline().strip()
        assert reply.startswith("OK "), reply
        return [int(s) for s in reply[3:].split(",")]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _inject(control: Control, options: dict[str, Any], got: dict[str, list[int]]) -> None:
    got["b"] = control.mo(**options)


def test_parts_arriving_on_two_nodes_make_one_message(srv: CarrierServer, sim: Smsc, apps: AppServer,
                                                      tmp_path: Path) -> None:
    # A second node on the same database, bound to the same SMSC under another system_id, so the
    # SMSC can hand each part to either node.
    binds = sim.stats()["binds"]
    data_dir = tmp_path / "node-b"
    other = CarrierServer(srv.backend, data_dir, SMS + carriers(sim, "node-b"),
                          env={**srv.env, "RESTCOMM_CONFIG": str(data_dir / "restcomm.toml")},
                          admin_sid=srv.admin_sid, admin_token=srv.admin_token).start()
    extra = Control(sim)
    try:
        sim.wait("binds", binds + 2)
        number, path = hosted(srv, apps, "nodes")
        texts = []
        for _ in range(5):
            phone, text, ref = handset(), long_text("nodes"), random.randrange(256)
            texts.append((phone, text))
            assert sim.mo(phone, number, text, order=[1], ref=ref, system_id="node-a") == [0]
            assert extra.mo(source=phone, destination=number, text=text, order=[1], ref=ref,
                            system_id="node-b") == [0]  # a copy of part 1, on the other node
            # The last two parts at once, one to each node.
            got: dict[str, list[int]] = {}
            to_b = {"source": phone, "destination": number, "text": text, "order": [2], "ref": ref,
                    "system_id": "node-b"}
            t = threading.Thread(target=_inject, args=(extra, to_b, got))
            t.start()
            got["a"] = sim.mo(phone, number, text, order=[3], ref=ref, system_id="node-a")
            t.join(30)
            assert got == {"a": [0], "b": [0]}
        seen = apps.wait(path, len(texts))
        assert sorted(s.params["Body"] for s in seen) == sorted(t for _, t in texts)
        for phone, text in texts:
            assert stored(srv, text) == 1
            assert parts_left(srv, phone) == 0
    finally:
        extra.close()
        other.stop()
    with httpx.Client(base_url=srv.base_url) as c:  # the first node is still serving
        assert c.get("/health").status_code == 200
