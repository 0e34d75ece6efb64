"""Audio for calls: ``<Play>`` URLs fetched once and revalidated, ``<Say>`` through the synthesizer.

``AudioCache`` keeps each URL's decoded PCM (memory, bounded) and its raw bytes on disk with the
validators the server gave (``ETag``, ``Last-Modified``). A cached URL is revalidated with a
conditional GET (304 keeps the copy) at most every ``revalidate_after`` seconds, so a prompt played
to many callers costs one small request per interval, and a changed file is picked up. Every hop
goes through the webhook destination guard (``webhook_block_private``), like application requests;
redirects are followed by hand (at most 5) so each hop is checked. Fetch failures are
``MediaError`` (the Play verb writes the notification).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from restcomm.config import Settings
from restcomm.media import asr
from restcomm.media.audiofile import AudioFormatError, decode_audio
from restcomm.media.tts import Synthesizer
from restcomm.rcml.call import MediaError
from restcomm.webhooks.guard import DestinationRefused, check_request

MAX_AUDIO_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 5


@dataclass
class _Entry:
    pcm: bytes
    etag: str | None
    last_modified: str | None
    checked_at: float


class AudioCache:
    def __init__(self, directory: Path, *, guard: Settings | None = None, revalidate_after: float = 5.0,
                 memory_items: int = 64, timeout: float = 10.0) -> None:
        self.directory = directory
        self.guard = guard
        self.revalidate_after = revalidate_after
        self.memory_items = memory_items
        self.timeout = timeout
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.stats = {"hit": 0, "revalidated": 0, "fetched": 0}

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()
        base = self.directory / key[:2] / key
        return base.with_suffix(".audio"), base.with_suffix(".json")

    def _load_disk(self, url: str) -> _Entry | None:
        data_path, meta_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text())
            raw = data_path.read_bytes()
            pcm = decode_audio(raw, meta.get("content_type"))
        except (OSError, ValueError, AudioFormatError):
            return None
        return _Entry(pcm, meta.get("etag"), meta.get("last_modified"), 0.0)

    def _store_disk(self, url: str, raw: bytes, content_type: str | None, etag: str | None,
                    last_modified: str | None) -> None:
        data_path, meta_path = self._paths(url)
        try:
            data_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = data_path.with_suffix(".tmp")
            tmp.write_bytes(raw)
            tmp.replace(data_path)
            meta_path.write_text(json.dumps({"url": url, "content_type": content_type, "etag": etag,
                                             "last_modified": last_modified}))
        except OSError:
            pass  # the cache is an optimisation: a full disk must not fail the call

    def _remember(self, url: str, entry: _Entry) -> None:
        self._memory[url] = entry
        self._memory.move_to_end(url)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    async def get(self, http: aiohttp.ClientSession, url: str) -> bytes:
        """Linear PCM of the audio at ``url``; raises MediaError."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            entry = self._memory.get(url)
            if entry is None:
                entry = await asyncio.to_thread(self._load_disk, url)
            now = time.monotonic()
            if entry is not None and now - entry.checked_at < self.revalidate_after:
                self.stats["hit"] += 1
                self._remember(url, entry)
                return entry.pcm
            entry = await self._fetch(http, url, entry)
            entry.checked_at = time.monotonic()
            self._remember(url, entry)
            return entry.pcm

    async def _fetch(self, http: aiohttp.ClientSession, url: str, cached: _Entry | None) -> _Entry:
        headers: dict[str, str] = {}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        target = url
        try:
            async with asyncio.timeout(self.timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    if self.guard is not None:
                        check_request(target, self.guard)
                    async with http.get(yarl.URL(target), headers=headers, allow_redirects=False) as resp:
                        if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                            target = str(yarl.URL(target).join(yarl.URL(resp.headers["Location"])))
                            continue
                        if resp.status == 304 and cached is not None:
                            self.stats["revalidated"] += 1
                            return cached
                        if resp.status != 200:
                            raise MediaError(f"{url}: HTTP {resp.status}")
                        raw = await resp.content.read(MAX_AUDIO_BYTES + 1)
                        if len(raw) > MAX_AUDIO_BYTES:
                            raise MediaError(f"{url}: larger than {MAX_AUDIO_BYTES} bytes")
                        ctype = resp.headers.get("Content-Type")
                        etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
                        break
                else:
                    raise MediaError(f"{url}: more than {MAX_REDIRECTS} redirects")
        except DestinationRefused as exc:
            raise MediaError(f"{url}: {exc}") from None
        except TimeoutError:
            raise MediaError(f"{url}: no answer within {self.timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise MediaError(f"{url}: {type(exc).__name__}: {exc}") from None
        try:
            pcm = await asyncio.to_thread(decode_audio, raw, ctype)
        except AudioFormatError as exc:
            raise MediaError(f"{url}: {exc}") from None
        self.stats["fetched"] += 1
        if etag or modified:
            await asyncio.to_thread(self._store_disk, url, raw, ctype, etag, modified)
        return _Entry(pcm, etag, modified, 0.0)


class EngineSources:
    """``MediaSources`` (voice/session.py) of the engine: the synthesizer and the audio cache."""

    def __init__(self, synthesizer: Synthesizer, audio: AudioCache, http: Any) -> None:
        self.synthesizer = synthesizer
        self.audio = audio
        self._http = http
        self._recognizer: asr.Recognizer | None = None  # made at the first speech <Gather>

    async def recognize(self, pcm: bytes, hints: str | None) -> asr.Recognition:
        if self._recognizer is None:
            self._recognizer = asr.Recognizer()
        try:
            return await self._recognizer.recognize(pcm, hints)
        except Exception as exc:  # the recognizer missing or failing: the verb reports it
            raise MediaError(f"speech recognition failed: {exc}") from exc

    def close(self) -> None:
        if self._recognizer is not None:
            self._recognizer.close()
            self._recognizer = None

    async def say(self, text: str, voice: str, language: str) -> bytes:
        try:
            return await self.synthesizer.synthesize(text, voice, language)
        except Exception as exc:  # the TTS engine missing or failing: the verb reports it
            raise MediaError(f"text to speech failed: {exc}") from exc

    async def fetch(self, url: str) -> bytes:
        http = self._http() if callable(self._http) else self._http
        if http is None:
            raise MediaError("no HTTP client")
        return await self.audio.get(http, url)
