"""An independent SMSC for interop tests: smpp34's Rust/tokio server, driven from Python.

Run as a subprocess (smpp34 can crash at interpreter exit, so the test kills it):

    python tests/peers/smpp34_smsc.py PORT [MO_TEXT]

Prints one JSON line per event on stdout: {"event": "ready"}, {"event": "bind", ...},
{"event": "submit", ...}, {"event": "unbound", ...}. Every submit_sm is accepted with id
"s34-N"; when registered_delivery asks for it, a DELIVRD receipt follows (text form plus the
receipted_message_id and message_state TLVs). After the first bind, MO_TEXT (if given) is
delivered as a mobile-originated message from +15550001111 to 15550002222.
"""

from __future__ import annotations

import asyncio
import json
import sys

import smpp34


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main(port: int, mo_text: str | None) -> None:
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="smpp34")
    await server.start()
    emit(event="ready")
    esmes: dict[str, smpp34.Esme] = {}
    tasks: set[asyncio.Task[object]] = set()
    count = 0

    def spawn(coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def deliver(esme: smpp34.Esme, **kw: object) -> None:
        resp = await esme.deliver_sm(**kw)  # type: ignore[arg-type]
        emit(event="deliver_resp", status=resp.command_status)

    while True:
        ev = await server.next()
        if isinstance(ev, smpp34.Esme):
            esmes[ev.session_id] = ev
            emit(event="bind", system_id=ev.system_id)
            if mo_text is not None and len(esmes) == 1:
                spawn(deliver(ev, destination_addr="15550002222", short_message=mo_text.encode("latin-1"),
                              source_addr="15550001111", source_addr_ton=1, source_addr_npi=1))
        elif isinstance(ev, smpp34.SubmitSmEvent):
            count += 1
            mid = f"s34-{count}"
            ev.accept(mid)
            emit(event="submit", mid=mid, src=ev.source_addr, src_ton=ev.source_addr_ton, dst=ev.destination_addr,
                 dst_ton=ev.dest_addr_ton, esm=ev.esm_class, dc=ev.data_coding, rd=ev.registered_delivery,
                 sm=ev.short_message.hex())
            esme = esmes.get(ev.session_id)
            if ev.registered_delivery & 1 and esme is not None:
                text = f"id:{mid} sub:001 dlvrd:001 submit date:2401010000 done date:2401010001 stat:DELIVRD err:000 text:"
                spawn(deliver(
                    esme, destination_addr=ev.source_addr, short_message=text.encode(), source_addr=ev.destination_addr,
                    esm_class=0x04,
                    tlvs=[smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, mid.encode() + b"\0"),
                          smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02")],
                ))
        elif isinstance(ev, smpp34.Unbound):
            esmes.pop(ev.session_id, None)
            emit(event="unbound")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
