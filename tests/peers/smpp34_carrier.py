"""A second, independent SMSC for the carrier tests: smpp34's Rust/tokio ``Server`` with a control
port that speaks the same line protocol as ``restcomm smsc-sim --control-port`` (a subset), so a
test can drive either peer the same way:

    python tests/peers/smpp34_carrier.py --port P --control-port C [--receipt-delay 0]

Control lines: ``STATS``, ``MESSAGES``, ``MOX <json>``, ``SET <setting> <json>``,
``WAIT <counter> <n> [seconds]``, ``DISCONNECT``. Settings: ``receipt_delay`` (negative: none),
``throttle_every`` (reject every Nth submit with ESME_RTHROTTLED), ``drop_every`` (never answer
every Nth submit), ``disconnect_after`` (after the Nth submit, unbind every ESME from the SMSC
side, once), ``undelivered_every`` (every Nth receipt is UNDELIV).

What smpp34 does on the wire is its own (framing, sequence numbers, windowing, enquire_link);
what this script adds is the SMSC's behaviour:

* every accepted submit_sm gets id ``s34-N``; the parts of a concatenated message (UDH, 8-bit
  reference) are reassembled into ``MESSAGES`` as a handset would show them;
* receipts alternate between the two forms carriers use: odd ids get the Appendix B *text* only,
  even ids the ``receipted_message_id``/``message_state`` *TLVs* only (empty short_message);
* a receipt that cannot be delivered (its ESME is gone) waits for the next bind of the same
  system_id, as an SMSC's store-and-forward does, so a server restarted after a crash still gets it;
* MO injected with ``MOX`` goes out in parts by UDH (8/16-bit reference) or SAR TLVs.

smpp34 can crash at interpreter exit, so the tests kill this process rather than asking it to
stop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import smpp34

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from restcomm.encoding import (  # noqa: E402
    build_udh,
    build_udh16,
    decode_gsm7,
    parse_udh,
    segment,
)

STATE_DELIVERED, STATE_UNDELIVERABLE = 2, 5


class Peer:
    def __init__(self, port: int, receipt_delay: float) -> None:
        self.server = smpp34.Server(host="127.0.0.1", port=port, system_id="smpp34")
        self.settings: dict[str, Any] = {
            "receipt_delay": receipt_delay, "throttle_every": 0, "drop_every": 0, "disconnect_after": 0,
            "undelivered_every": 0,
        }
        self.stats: dict[str, int] = dict.fromkeys(
            ("binds", "submits", "accepted", "throttled", "dropped", "disconnects", "receipts_sent",
             "receipts_acked", "receipts_queued", "mo_sent", "unbinds"), 0)
        self.esmes: dict[str, smpp34.Esme] = {}
        self.messages: list[dict[str, Any]] = []
        self.parts: dict[tuple[Any, ...], dict[int, tuple[str, str]]] = {}
        self.pending: list[dict[str, Any]] = []  # receipts waiting for a bind
        self.held: list[Any] = []  # submits never answered (drop_every)
        self.changed = asyncio.Condition()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.receipts = 0

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- SMSC ---------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            ev = await self.server.next()
            if isinstance(ev, smpp34.Esme):
                self.esmes[ev.session_id] = ev
                self.stats["binds"] += 1
                waiting = [r for r in self.pending if r["system_id"] == ev.system_id]
                self.pending = [r for r in self.pending if r["system_id"] != ev.system_id]
                for receipt in waiting:
                    self.spawn(self.deliver_receipt(receipt))
            elif isinstance(ev, smpp34.SubmitSmEvent):
                self.on_submit(ev)
            elif isinstance(ev, smpp34.Unbound):
                self.esmes.pop(ev.session_id, None)
                self.stats["unbinds"] += 1
            await self.notify()

    def on_submit(self, ev: Any) -> None:
        s = self.settings
        self.stats["submits"] += 1
        n = self.stats["submits"]
        if s["throttle_every"] and n % s["throttle_every"] == 0:
            self.stats["throttled"] += 1
            ev.reject(smpp34.ESME_RTHROTTLED)
            return
        if s["drop_every"] and n % s["drop_every"] == 0:
            self.stats["dropped"] += 1
            self.held.append(ev)  # kept alive and never answered: the ESME's response timer fires
            return
        if s["disconnect_after"] and n >= s["disconnect_after"]:
            s["disconnect_after"] = 0
            self.stats["disconnects"] += 1
            self.held.append(ev)
            for esme in list(self.esmes.values()):
                self.spawn(esme.unbind())
            return
        self.stats["accepted"] += 1
        mid = f"s34-{self.stats['accepted']}"
        ev.accept(mid)
        self.record(ev, mid)
        if ev.registered_delivery & 1 and s["receipt_delay"] >= 0:
            self.receipts += 1
            undelivered = bool(s["undelivered_every"]) and self.receipts % s["undelivered_every"] == 0
            owner = self.esmes.get(ev.session_id)
            receipt = {"mid": mid, "src": ev.destination_addr, "dst": ev.source_addr, "session": ev.session_id,
                       "system_id": owner.system_id if owner is not None else "",
                       "state": STATE_UNDELIVERABLE if undelivered else STATE_DELIVERED,
                       "text_form": self.stats["accepted"] % 2 == 1}
            self.spawn(self.later(s["receipt_delay"], receipt))

    def record(self, ev: Any, mid: str) -> None:
        data = bytes(ev.short_message)
        concat = None
        if ev.esm_class & 0x40:
            udh, data = parse_udh(data)
            concat = udh.concat
        text = data.decode("utf-16-be") if ev.data_coding == 8 else decode_gsm7(data, errors="replace")
        base = {"system_id": "", "source": ev.source_addr, "destination": ev.destination_addr,
                "data_coding": ev.data_coding, "source_ton": ev.source_addr_ton, "destination_ton": ev.dest_addr_ton}
        if concat is None or concat.total == 1:
            self.messages.append({**base, "text": text, "message_ids": [mid], "segments": 1})
            return
        key = (ev.source_addr, ev.destination_addr, concat.ref, concat.total)
        got = self.parts.setdefault(key, {})
        got[concat.seq] = (text, mid)
        if len(got) == concat.total:
            del self.parts[key]
            ordered = [got[i] for i in range(1, concat.total + 1)]
            self.messages.append({**base, "text": "".join(t for t, _ in ordered),
                                  "message_ids": [m for _, m in ordered], "segments": concat.total})

    async def later(self, delay: float, receipt: dict[str, Any]) -> None:
        if delay > 0:
            await asyncio.sleep(delay)  # the SMSC's own timing (a handset answering later)
        await self.deliver_receipt(receipt)

    async def deliver_receipt(self, receipt: dict[str, Any]) -> None:
        esme = self.esmes.get(receipt["session"]) or next(
            (e for e in self.esmes.values() if e.system_id == receipt["system_id"]), None)
        if esme is None:
            self.pending.append(receipt)
            self.stats["receipts_queued"] += 1
            await self.notify()
            return
        mid, delivered = receipt["mid"], receipt["state"] == STATE_DELIVERED
        stamp = datetime.now(UTC).strftime("%y%m%d%H%M")
        if receipt["text_form"]:
            stat, err = ("DELIVRD", "000") if delivered else ("UNDELIV", "001")
            text = (f"id:{mid} sub:001 dlvrd:{'001' if delivered else '000'} submit date:{stamp} "
                    f"done date:{stamp} stat:{stat} err:{err} text:")
            kw: dict[str, Any] = {"short_message": text.encode()}
        else:
            kw = {"short_message": b"", "tlvs": [
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, mid.encode() + b"\0"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([receipt["state"]])),
            ]}
        try:
            self.stats["receipts_sent"] += 1
            resp = await esme.deliver_sm(destination_addr=receipt["dst"], source_addr=receipt["src"], esm_class=0x04,
                                         **kw)
        except Exception:
            self.pending.append(receipt)  # the bind went away: the next bind gets it
            self.stats["receipts_queued"] += 1
            await self.notify()
            return
        if resp.command_status == 0:
            self.stats["receipts_acked"] += 1
        else:
            receipt["session"] = ""
            self.spawn(self.later(0.2, receipt))  # e.g. ESME_RX_T_APPN: re-deliver later
        await self.notify()

    async def inject_mo(self, source: str, destination: str, text: str, concat: str = "udh",
                        encoding: str | None = None, order: list[int] | None = None, ref: int = 42) -> list[int]:
        esme = next(iter(self.esmes.values()), None)
        if esme is None:
            raise RuntimeError("no bound ESME to deliver an MO to")
        seg = segment(text, encoding)  # type: ignore[arg-type]
        payloads = seg.payloads()
        total = len(payloads)
        src_ton = 1 if source.startswith("+") else 0
        dst_ton = 1 if destination.startswith("+") else 0
        common = {"source_addr": source.lstrip("+"), "source_addr_ton": src_ton, "source_addr_npi": 1,
                  "dest_addr_ton": dst_ton, "dest_addr_npi": 1, "data_coding": seg.data_coding}
        pdus: list[dict[str, Any]] = []
        for i, p in enumerate(payloads, 1):
            if total == 1:
                pdus.append({"short_message": p})
            elif concat == "udh":
                pdus.append({"short_message": build_udh(ref & 0xFF, total, i) + p, "esm_class": 0x40})
            elif concat == "udh16":
                pdus.append({"short_message": build_udh16(ref, total, i) + p, "esm_class": 0x40})
            else:
                pdus.append({"short_message": p, "tlvs": [
                    smpp34.Tlv(smpp34.TLV_SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
                    smpp34.Tlv(smpp34.TLV_SAR_TOTAL_SEGMENTS, bytes([total])),
                    smpp34.Tlv(smpp34.TLV_SAR_SEGMENT_SEQNUM, bytes([i])),
                ]})
        if order is not None:
            pdus = [pdus[i - 1] for i in order]
        statuses = []
        for kw in pdus:
            resp = await esme.deliver_sm(destination_addr=destination.lstrip("+"), **common, **kw)
            statuses.append(resp.command_status)
        self.stats["mo_sent"] += 1
        return statuses

    # -- control ------------------------------------------------------------------------------

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                cmd, _, rest = line.decode().strip().partition(" ")
                cmd = cmd.upper()
                try:
                    reply = await self.command(cmd, rest)
                except Exception as exc:  # report, keep the control connection
                    reply = f"ERR {type(exc).__name__}: {exc}"
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    async def command(self, cmd: str, rest: str) -> str:
        if cmd == "STATS":
            return json.dumps({**self.stats, "connections": len(self.esmes), "pending_receipts": len(self.pending)})
        if cmd == "MESSAGES":
            return json.dumps(self.messages)
        if cmd == "MOX":
            statuses = await asyncio.wait_for(self.inject_mo(**json.loads(rest)), 10)
            return "OK " + ",".join(str(s) for s in statuses)
        if cmd == "SET":
            name, _, raw = rest.partition(" ")
            if name not in self.settings:
                return f"ERR no setting {name!r}"
            self.settings[name] = json.loads(raw)
            return "OK"
        if cmd == "DISCONNECT":
            for esme in list(self.esmes.values()):
                self.spawn(esme.unbind())
            return "OK"
        if cmd == "WAIT":
            key, n, *t = rest.split()
            timeout = float(t[0]) if t else 30.0

            async def reached() -> None:
                async with self.changed:
                    await self.changed.wait_for(lambda: self.stats[key] >= int(n))

            try:
                await asyncio.wait_for(reached(), timeout)
            except TimeoutError:
                return "ERR timeout " + json.dumps(self.stats)
            return "OK " + json.dumps(self.stats)
        return "ERR unknown command"


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--control-port", type=int, required=True)
    p.add_argument("--receipt-delay", type=float, default=0.0)
    args = p.parse_args()
    peer = Peer(args.port, args.receipt_delay)
    await peer.server.start()
    control = await asyncio.start_server(peer.control, "127.0.0.1", args.control_port)
    print(json.dumps({"event": "ready"}), flush=True)
    async with control:
        await peer.run()


if __name__ == "__main__":
    asyncio.run(main())
