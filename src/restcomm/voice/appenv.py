"""What running a call's RCML needs besides the call: fetcher, notifier, ``<Sms>``/``<Email>``.

One place builds them for every leg that runs an application (calls placed by the API here; the
inbound handler builds the same things inline and can switch to this helper), so a document
fetched for an outbound call is signed, guarded and limited exactly as for an inbound one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from restcomm.messaging.model import OUTBOUND_CALL
from restcomm.messaging.rcml_sms import PipelineEmail, PipelineReplies
from restcomm.rcml.interpreter import DocumentFetcher
from restcomm.rcml.notifications import StoreNotifier

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine


def app_environment(engine: VoiceEngine, account: Mapping[str, Any], call_sid: str, *, default_to: str,
                    default_from: str) -> dict[str, Any]:
    """Keyword arguments of ``rcml.voice.run_voice_application`` other than call, request, entry."""
    ms = engine.messaging
    assert ms.http is not None
    return {
        "fetcher": DocumentFetcher(ms.http, account["auth_token"], timeout=ms.sms.app_timeout,
                                   max_redirects=ms.sms.app_max_redirects, guard=ms.guard),
        "notifier": StoreNotifier(engine.write, account["sid"], clock=engine.clock, call_sid=call_sid),
        "public_base": engine.public_base(),
        "replies": PipelineReplies(ms, account, default_to=default_to, default_from=default_from,
                                   direction=OUTBOUND_CALL),
        "email": PipelineEmail(ms, account["sid"]),
    }
