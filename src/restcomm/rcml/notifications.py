"""Notifications of an application session, written through the caller's database writer.

The interpreter only knows the ``Notifier`` Protocol (``rcml/runtime.py``); this is the one the
server uses. ``run`` is the domain's writer (``GroupCommitWriter.run`` in messaging/), so a
notification commits like any other row. A notification that cannot be written is logged and
dropped: an application's session must not fail because its error report could not be stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from restcomm.notify import write_notification

_log = logging.getLogger("restcomm.rcml.interpreter")

Job = Callable[[Any], Awaitable[Any]]


class StoreNotifier:
    """Writes each notification for ``account_sid``, tied to the message or the call."""

    def __init__(
        self,
        run: Callable[[Job], Awaitable[Any]],
        account_sid: str,
        *,
        clock: Callable[[], datetime],
        message_sid: str | None = None,
        call_sid: str | None = None,
    ) -> None:
        self._run = run
        self.account_sid = account_sid
        self.clock = clock
        self.message_sid = message_sid
        self.call_sid = call_sid

    async def notify(
        self, code: int, text: str, *, log: int, request_url: str | None = None,
        request_method: str | None = None, request_variables: str | None = None,
        response_headers: str | None = None, response_body: bytes | None = None,
    ) -> None:
        async def job(conn: Any) -> None:
            await write_notification(
                conn, account_sid=self.account_sid, error_code=code, log=log, message_text=text,
                message_sid=self.message_sid, call_sid=self.call_sid, clock=self.clock,
                request_url=request_url, request_method=request_method, request_variables=request_variables,
                response_headers=response_headers, response_body=response_body,
            )

        try:
            await self._run(job)
        except Exception:
            _log.exception("could not record notification %s for %s", code, self.message_sid or self.call_sid)
