"""``voice.audio.AudioCache``: a <Play> URL is fetched once, revalidated with its validators, and
re-fetched when it changed; failures are MediaError; the destination guard applies to every hop.
A real aiohttp server on loopback plays the web server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from restcomm.config import Settings
from restcomm.media.wav import write_wav
from restcomm.rcml.call import MediaError
from restcomm.voice.audio import AudioCache

ONE = write_wav(b"\x01\x00" * 800)
TWO = write_wav(b"\x02\x00" * 1600)


class Site:
    def __init__(self) -> None:
        self.body = ONE
        self.etag = '"v1"'
        self.requests: list[dict[str, str]] = []

    async def audio(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        return web.Response(body=self.body, content_type="audio/wav", headers={"ETag": self.etag})

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/audio.wav")

    async def missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404)


@pytest.fixture
async def site() -> AsyncIterator[tuple[Site, str]]:
    s = Site()
    app = web.Application()
    app.router.add_get("/audio.wav", s.audio)
    app.router.add_get("/moved", s.moved)
    app.router.add_get("/missing", s.missing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield s, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_fetch_once_then_revalidate_then_refetch_when_changed(site: tuple[Site, str], tmp_path: Path) -> None:
    s, base = site
    cache = AudioCache(tmp_path, revalidate_after=0.0)
    async with aiohttp.ClientSession() as http:
        assert await cache.get(http, base + "/audio.wav") == b"\x01\x00" * 800
        assert await cache.get(http, base + "/audio.wav") == b"\x01\x00" * 800  # 304: the copy is kept
        assert s.requests[1].get("If-None-Match") == '"v1"'
        assert cache.stats == {"hit": 0, "revalidated": 1, "fetched": 1}
        s.body, s.etag = TWO, '"v2"'
        assert await cache.get(http, base + "/audio.wav") == b"\x02\x00" * 1600
        # a new process (empty memory) revalidates what is on disk instead of downloading it again
        fresh = AudioCache(tmp_path, revalidate_after=0.0)
        assert await fresh.get(http, base + "/audio.wav") == b"\x02\x00" * 1600
        assert fresh.stats["revalidated"] == 1 and fresh.stats["fetched"] == 0


async def test_within_the_interval_no_request_is_made(site: tuple[Site, str], tmp_path: Path) -> None:
    s, base = site
    cache = AudioCache(tmp_path, revalidate_after=60.0)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            await cache.get(http, base + "/moved")  # a redirect is followed
    assert len(s.requests) == 1 and cache.stats["hit"] == 2


async def test_failures_are_media_errors(site: tuple[Site, str], tmp_path: Path) -> None:
    _, base = site
    cache = AudioCache(tmp_path)
    guarded = AudioCache(tmp_path, guard=Settings(webhook_block_private=True))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(MediaError, match="404"):
            await cache.get(http, base + "/missing")
        with pytest.raises(MediaError):
            await guarded.get(http, base + "/audio.wav")  # loopback refused by the guard
