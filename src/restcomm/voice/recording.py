"""Recordings of ``<Record>``: the row before the first byte, the file under the data directory.

``DbRecordings`` is the ``RecordingSink`` (voice/session.py) of the engine: ``open`` writes the
recording's row (``in-progress``, ``voice.store.create_recording``) and returns the WAV path
``<data dir>/recordings/<RE sid>.wav`` (stored relative to the data dir, as ``api/recordings.py``
serves it) and the public ``RecordingUrl``; ``close`` stores the duration (``completed``; an empty
recording is ``absent``) and posts ``recordingStatusCallback`` once the file is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restcomm.rcml.call import Callback
from restcomm.util import API_VERSION, new_sid
from restcomm.voice import store
from restcomm.voice.session import OpenRecording
from restcomm.webhooks.fetch import post_callback

if TYPE_CHECKING:
    from restcomm.voice.engine import VoiceEngine

log = logging.getLogger("restcomm.voice")


class DbRecordings:
    def __init__(self, engine: VoiceEngine, account: Mapping[str, Any]) -> None:
        self.engine = engine
        self.account = account
        self._call_sids: dict[str, str] = {}

    async def open(self, call_sid: str) -> OpenRecording:
        sid = new_sid("RE")
        relative = Path("recordings") / f"{sid}.wav"
        path = self.engine.settings.data_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        now = self.engine.clock()
        account_sid = self.account["sid"]
        await self.engine.write(lambda conn: store.create_recording(
            conn, now, account_sid=account_sid, call_sid=call_sid, file_path=str(relative), sid=sid))
        self._call_sids[sid] = call_sid
        url = f"{self.engine.public_base()}/restcomm/{API_VERSION}/Accounts/{account_sid}/Recordings/{sid}.wav"
        return OpenRecording(sid, path, url)

    async def close(self, recording: OpenRecording, duration: float, callback: Callback | None) -> None:
        now = self.engine.clock()
        status = "completed" if duration > 0 else "absent"
        await self.engine.write(lambda conn: store.finish_recording(conn, recording.sid, now, duration=duration,
                                                                    status=status))
        if callback is None or self.engine.messaging.http is None:
            return
        params = {
            "AccountSid": self.account["sid"], "CallSid": self._call_sids.pop(recording.sid, ""),
            "RecordingSid": recording.sid, "RecordingUrl": recording.url, "RecordingStatus": status,
            "RecordingDuration": str(round(duration)), "RecordingChannels": "1", "RecordingSource": "RecordVerb",
        }
        self.engine.spawn(post_callback(self.engine.messaging.http, callback.url, params, self.account["auth_token"],
                                        method=callback.method, guard=self.engine.messaging.guard))
