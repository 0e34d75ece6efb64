"""Recordings (Restcomm ``/Accounts/{AccountSid}/Recordings``; Twilio ``/2010-04-01/…/Recordings``).

List (account-wide, paged; per call at ``/Calls/{CallSid}/Recordings``), read, delete (the row and
its file). The media is at ``/Recordings/{sid}.wav`` (the file as recorded: WAV, 8 kHz, 16-bit
mono, flushed as it is written, so a recording still in progress or cut by a crash plays what was
recorded) and ``/Recordings/{sid}.mp3`` (encoded from the WAV on first request with LAME, from the
``lameenc`` wheel, and kept next to it). ``.mp4`` (Restcomm's video form) serves the WAV.

Media needs no credentials, as at Restcomm and Twilio (whose default is the same): the SID is 128
random bits and the URL is what an application receives as ``RecordingUrl``. Everything else needs
the account's credentials, like any other resource.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from starlette.responses import FileResponse, Response

from restcomm.api.auth import authenticate
from restcomm.api.calls import TWILIO_ROOT, twilio_date
from restcomm.api.framework import API_ROOT, Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.store.schema import calls, recordings
from restcomm.util import API_VERSION, rfc2822

TAG = "Recordings"
TWILIO_TAG = "Twilio Recordings"
LIST_PATH = "/Accounts/{AccountSid}/Recordings"
ITEM_PATH = "/Accounts/{AccountSid}/Recordings/{RecordingSid}"
CALL_LIST_PATH = "/Accounts/{AccountSid}/Calls/{CallSid}/Recordings"
MEDIA = {".wav": "audio/x-wav", ".mp3": "audio/mpeg", ".mp4": "audio/x-wav"}


def _uri(r: Any, root: str = f"/{API_VERSION}") -> str:
    return f"{root}/Accounts/{r['account_sid']}/Recordings/{r['sid']}"


RECORDING = Shape(
    name="Recording",
    list_name="Recordings",
    items_key="recordings",
    fields=(
        col("sid", "Sid"),
        computed("date_created", "DateCreated", lambda r: rfc2822(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: rfc2822(r["date_updated"])),
        col("account_sid", "AccountSid"),
        col("call_sid", "CallSid"),
        computed("duration", "Duration", lambda r: None if r["duration"] is None else f"{float(r['duration'])}",
                 description="seconds, as a string (Restcomm: \"12.0\")"),
        col("status", "Status"),
        col("api_version", "ApiVersion"),
        computed("uri", "Uri", _uri, is_uri=True),
        computed("file_uri", "FileUri", lambda r: r.get("file_uri"), description="absolute URL of the WAV"),
    ),
)

_TWILIO_SUBRESOURCES = Shape(
    name="SubresourceUris", list_name="", items_key="",
    fields=(computed("transcriptions", "Transcriptions", lambda r: _uri(r, TWILIO_ROOT) + "/Transcriptions",
                     is_uri=True),),
)

TWILIO_RECORDING = Shape(
    name="Recording",
    list_name="Recordings",
    items_key="recordings",
    json_nulls=True,
    fields=(
        col("account_sid", "AccountSid"),
        computed("api_version", "ApiVersion", lambda r: TWILIO_ROOT.strip("/")),
        col("call_sid", "CallSid"),
        computed("conference_sid", "ConferenceSid", lambda r: None),
        col("channels", "Channels", type="integer"),
        computed("date_created", "DateCreated", lambda r: twilio_date(r["date_created"])),
        computed("date_updated", "DateUpdated", lambda r: twilio_date(r["date_updated"])),
        computed("start_time", "StartTime", lambda r: twilio_date(r["start_time"])),
        computed("duration", "Duration", lambda r: None if r["duration"] is None else str(r["duration"])),
        col("sid", "Sid"),
        col("price", "Price"),
        col("price_unit", "PriceUnit"),
        col("status", "Status"),
        col("source", "Source"),
        col("error_code", "ErrorCode", type="integer"),
        computed("encryption_details", "EncryptionDetails", lambda r: None, type="object"),
        computed("media_url", "MediaUrl", lambda r: r.get("media_url")),
        computed("uri", "Uri", lambda r: _uri(r, TWILIO_ROOT), is_uri=True),
        computed("subresource_uris", "SubresourceUris", lambda r: r, type="object", nested=_TWILIO_SUBRESOURCES),
    ),
)

FILTERS = (
    Param("StartTime", "date", description="created on or after this day"),
    Param("EndTime", "date", description="created on or before this day"),
    Param("DateCreated", "date", description="Twilio: created on this day"),
    Param("DateCreated>", "date", description="Twilio: created on or after this day"),
    Param("DateCreated<", "date", description="Twilio: created on or before this day"),
    Param("CallSid", max_length=34, description="only this call's recordings"),
)


def _base(call: Call) -> str:
    public = call.settings.public_url.rstrip("/")
    return public or str(call.request.base_url).rstrip("/")


def _with_urls(call: Call, row: Any) -> dict[str, Any]:
    base = _base(call)
    return {**row, "file_uri": f"{base}{API_ROOT}/Accounts/{row['account_sid']}/Recordings/{row['sid']}.wav",
            "media_url": f"{base}{TWILIO_ROOT}/Accounts/{row['account_sid']}/Recordings/{row['sid']}"}


def media_path(call: Call, row: Any) -> Path | None:
    if not row["file_path"]:
        return None
    path = Path(row["file_path"])
    return path if path.is_absolute() else call.settings.data_dir / path


def _encode_mp3(wav_path: Path, mp3_path: Path) -> None:
    import lameenc

    with wave.open(str(wav_path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError("recordings are 16-bit WAV")
    enc = lameenc.Encoder()
    enc.set_bit_rate(32)
    enc.set_in_sample_rate(rate)
    enc.set_channels(channels)
    enc.set_quality(2)
    data = bytes(enc.encode(frames) + enc.flush())
    tmp = mp3_path.with_suffix(".mp3.tmp")
    tmp.write_bytes(data)
    tmp.replace(mp3_path)


async def _media(call: Call, sid: str, ext: str) -> Response:
    row = await call.fetch_one(select(recordings).where(recordings.c.sid == sid,
                                                        recordings.c.account_sid == call.path["AccountSid"]))
    path = media_path(call, row) if row is not None else None
    if row is None or path is None or not path.is_file():
        return Response(b"", 404)
    if ext == ".mp3":
        mp3 = path.with_suffix(".mp3")
        if not mp3.is_file() or (row["status"] != "completed" and mp3.stat().st_mtime < path.stat().st_mtime):
            await asyncio.to_thread(_encode_mp3, path, mp3)
        path = mp3
    return FileResponse(path, media_type=MEDIA[ext], filename=f"{sid}{ext if ext != '.mp4' else '.wav'}")


async def _authenticated(call: Call) -> None:
    """What the framework does before any authenticated operation (this one also serves media)."""
    call.principal = await authenticate(call)
    await call.account()


def _split_media(sid: str) -> tuple[str, str | None]:
    for ext in MEDIA:
        if sid.endswith(ext):
            return sid[: -len(ext)], ext
    return sid, None


async def _list(call: Call, extra: list[Any]) -> tuple[list[Any], int, int, int]:
    from datetime import timedelta

    account = await call.account()
    q = call.query
    c = recordings.c
    cond: list[Any] = [c.account_sid == account["sid"], *extra]
    if q.get("CallSid"):
        cond.append(c.call_sid == q["CallSid"])
    for name in ("StartTime", "DateCreated>"):
        if name in q:
            cond.append(c.date_created >= q[name])
    for name in ("EndTime", "DateCreated<"):
        if name in q:
            cond.append(c.date_created < q[name] + timedelta(days=1))
    if "DateCreated" in q:
        cond += [c.date_created >= q["DateCreated"], c.date_created < q["DateCreated"] + timedelta(days=1)]
    page, size = call.paging()
    total = (await call.fetch_one(select(func.count().label("n")).select_from(recordings).where(*cond)))["n"]
    rows = await call.fetch_all(select(recordings).where(*cond).order_by(c.date_created.desc(), c.sid)
                                .offset(page * size).limit(size))
    return [_with_urls(call, r) for r in rows], total, page, size


async def _delete(call: Call) -> None:
    _, row = await call.owned(recordings, "RecordingSid", "The recording", write=True)
    async with call.write() as conn:
        await conn.execute(delete(recordings).where(recordings.c.sid == row["sid"]))
        await call.audit(conn, "delete", "Recording", row["sid"], row["account_sid"])
    path = media_path(call, row)
    if path is not None:
        for p in (path, path.with_suffix(".mp3")):
            p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Restcomm surface


@operation("GET", LIST_PATH, summary="List the account's recordings, newest first", tag=TAG, shape=RECORDING,
           kind="page", query=FILTERS)
async def list_recordings(call: Call) -> Response:
    rows, total, page, size = await _list(call, [])
    return call.page(RECORDING, rows, total, page, size)


@operation("GET", ITEM_PATH, summary="Read a recording; {RecordingSid}.wav or .mp3 is its audio (no credentials "
           "needed for the audio)", tag=TAG, shape=RECORDING, auth=False)
async def get_recording(call: Call) -> Response:
    sid, ext = _split_media(call.path["RecordingSid"])
    if ext is not None:
        return await _media(call, sid, ext)
    await _authenticated(call)
    _, row = await call.owned(recordings, "RecordingSid", "The recording")
    return call.item(RECORDING, _with_urls(call, row))


@operation("DELETE", ITEM_PATH, summary="Delete a recording and its audio", tag=TAG, kind="empty")
async def delete_recording(call: Call) -> Response:
    await _delete(call)
    return call.empty(200)


@operation("GET", CALL_LIST_PATH, summary="The recordings of one call", tag=TAG, shape=RECORDING, kind="list")
async def list_call_recordings(call: Call) -> Response:
    _, row = await call.owned(calls, "CallSid", "The call")
    rows = await call.fetch_all(select(recordings).where(recordings.c.call_sid == row["sid"])
                                .order_by(recordings.c.date_created.desc(), recordings.c.sid))
    return call.bare_list(RECORDING, [_with_urls(call, r) for r in rows])


# ---------------------------------------------------------------------------------------------
# Twilio surface


@operation("GET", LIST_PATH, summary="List recordings (Twilio 2010-04-01)", tag=TWILIO_TAG, shape=TWILIO_RECORDING,
           kind="page", query=FILTERS, root=TWILIO_ROOT)
async def list_recordings_twilio(call: Call) -> Response:
    rows, total, page, size = await _list(call, [])
    if call.fmt != "json":
        return call.page(TWILIO_RECORDING, rows, total, page, size)
    path = f"{TWILIO_ROOT}/Accounts/{call.path['AccountSid']}/Recordings.json"
    return call.respond(call.twilio_page(TWILIO_RECORDING, rows, total, page, size, path))


@operation("GET", ITEM_PATH, summary="Fetch a recording; .wav or .mp3 is its audio (Twilio 2010-04-01)",
           tag=TWILIO_TAG, shape=TWILIO_RECORDING, root=TWILIO_ROOT, auth=False)
async def fetch_recording_twilio(call: Call) -> Response:
    sid, ext = _split_media(call.path["RecordingSid"])
    if ext is not None:
        return await _media(call, sid, ext)
    await _authenticated(call)
    _, row = await call.owned(recordings, "RecordingSid", "The recording")
    return call.item(TWILIO_RECORDING, _with_urls(call, row))


@operation("DELETE", ITEM_PATH, summary="Delete a recording (Twilio 2010-04-01)", tag=TWILIO_TAG, kind="empty",
           status=204, root=TWILIO_ROOT)
async def delete_recording_twilio(call: Call) -> Response:
    await _delete(call)
    return call.empty(204)


@operation("GET", CALL_LIST_PATH, summary="List a call's recordings (Twilio 2010-04-01)", tag=TWILIO_TAG,
           shape=TWILIO_RECORDING, kind="page", root=TWILIO_ROOT)
async def list_call_recordings_twilio(call: Call) -> Response:
    _, row = await call.owned(calls, "CallSid", "The call")
    rows, total, page, size = await _list(call, [recordings.c.call_sid == row["sid"]])
    if call.fmt != "json":
        return call.page(TWILIO_RECORDING, rows, total, page, size)
    path = f"{TWILIO_ROOT}/Accounts/{call.path['AccountSid']}/Calls/{row['sid']}/Recordings.json"
    return call.respond(call.twilio_page(TWILIO_RECORDING, rows, total, page, size, path))
