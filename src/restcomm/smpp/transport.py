"""The SMPP carrier as a messaging ``Transport``: one configured carrier's :class:`Carrier` behind
the interface the dispatcher calls (``restcomm.messaging.transports``).

The mapping is honest because the dispatcher relies on it never to send a message twice:

* ``accepted``: every segment got a submit_sm_resp with ESME_ROK; ``message_ids`` are the
  carrier's ids, one per segment in order, which the dispatcher stores so receipts find the
  message (``Messaging.record_receipt``).
* ``rejected``: the carrier refused a segment for good (or refused it long enough: throttling
  that never clears), or only some segments went out before the carrier became unavailable (a
  retry would duplicate the parts already sent). The Twilio 30xxx code comes from the Carrier
  (ESME_RINVDSTADR -> 30005, ESME_RDELIVERYFAILURE -> 30006, ...).
* ``unavailable``: nothing was handed on: no bind came up within ``bind_wait`` seconds, the
  carrier is closing, its queue is full, or every attempt timed out. The dispatcher puts the
  message back in its queue with a backoff; with several carriers for the prefix the next round
  picks one that is up (see ``available``).

Encoding: the message's recorded encoding (``GSM-7``/``UCS-2``, chosen when it was accepted and
the basis of its ``num_segments``) is what goes on the wire, so the count the customer saw is
the count the carrier bills. A body that cannot be sent in the recorded encoding (it cannot
happen for rows the API wrote, but rows are data) falls back to automatic choice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from restcomm.encoding import GSM7, UCS2, Encoding, EncodingError
from restcomm.messaging.transports import CarrierMessage, SendResult
from restcomm.smpp.esme import Carrier, OutboundMessage, SubmitOutcome

log = logging.getLogger("restcomm.smpp.transport")

#: How long a send waits for a bind when none is up (start-up, a reconnect in progress) before
#: reporting the carrier unavailable; the dispatcher then retries later or elsewhere.
DEFAULT_BIND_WAIT = 5.0


class SmppTransport:
    """A ``Transport`` named after the carrier; ``available`` is False while no bind is up."""

    def __init__(self, carrier: Carrier, *, bind_wait: float = DEFAULT_BIND_WAIT) -> None:
        self.carrier = carrier
        self.name = carrier.config.name
        self.bind_wait = bind_wait
        self.sent = 0  # messages handed over (accepted), for the carriers API
        self.refused = 0
        self.unavailable = 0

    @property
    def capacity(self) -> int:
        """Messages worth handing over at once: the windows' worth many times over (submits answered
        in milliseconds drain that quickly), or about two seconds at the TPS limit when that is less. The dispatcher keeps the rest in the store (not
        yet routed), where a crash leaves them to be sent later instead of "in doubt"."""
        cfg = self.carrier.config
        windows = max(cfg.binds * cfg.window, 1)
        cap = windows * 32
        if cfg.max_tps:
            cap = min(cap, max(windows, int(cfg.max_tps * 2)))
        return cap

    @property
    def available(self) -> bool:
        return self.carrier.bound_count() > 0

    async def send(self, message: CarrierMessage) -> SendResult:
        carrier = self.carrier
        if carrier.bound_count() == 0:
            try:
                await asyncio.wait_for(carrier.wait_bound(1), self.bind_wait)
            except TimeoutError:
                self.unavailable += 1
                return SendResult("unavailable", error_message=f"carrier {self.name}: no bind is up")
        encoding = _encoding(message.encoding)
        try:
            outcome = await carrier.submit(OutboundMessage(message.source, message.destination, message.body, encoding))
        except EncodingError:
            log.warning("message %s: body does not fit %s, sending with automatic encoding", message.sid,
                        message.encoding)
            outcome = await carrier.submit(OutboundMessage(message.source, message.destination, message.body))
        return self._result(message, outcome)

    def _result(self, message: CarrierMessage, outcome: SubmitOutcome) -> SendResult:
        if outcome.status == "accepted":
            self.sent += 1
            log.info("message %s submitted to carrier %s (message id %s)", message.sid, self.name,
                     ",".join(outcome.message_ids))
            return SendResult("accepted", message_ids=outcome.message_ids)
        if outcome.status == "rejected":
            self.refused += 1
            log.info("carrier %s refused %s: %s (error %s)", self.name, message.sid, outcome.error_message,
                     outcome.error_code)
            return SendResult("rejected", message_ids=outcome.message_ids, error_code=outcome.error_code or 30008,
                              error_message=outcome.error_message)
        self.unavailable += 1
        return SendResult("unavailable", error_message=outcome.error_message)


def _encoding(value: str | None) -> Encoding | None:
    if value in (GSM7, UCS2):
        return cast(Encoding, value)
    return None
