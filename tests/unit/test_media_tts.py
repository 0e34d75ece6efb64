"""Offline TTS: intelligible 8 kHz speech, voice/language mapping, memory and file caches."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from restcomm.media import tts
from tests.peers.asr import recognize, recognize_phrase

PHRASES = ["please call me tomorrow", "leave a message after the tone", "one two three four five"]


@pytest.fixture(scope="module")
def synth() -> tts.Synthesizer:
    s = tts.Synthesizer(None)
    yield s
    s.close()


@pytest.mark.parametrize("voice", ["man", "woman", "alice"])
def test_speech_is_recognised(synth: tts.Synthesizer, voice: str) -> None:
    pcm = synth.synthesize_sync("leave a message after the tone", voice, "en-US")
    assert 1.0 < len(pcm) / 16000 < 4.0  # 8 kHz 16-bit
    assert recognize_phrase(pcm, PHRASES) == "leave a message after the tone"


def test_digits_are_recognised_word_by_word(synth: tts.Synthesizer) -> None:
    pcm = synth.synthesize_sync("one two three four five")
    assert recognize(pcm, "one two three four five six seven eight nine zero".split()) == \
        ["one", "two", "three", "four", "five"]


@pytest.mark.parametrize(
    ("voice", "variant"),
    [("man", "m3"), ("woman", "f3"), ("alice", "f2"), ("Polly.Joanna", "f3"), ("Polly.Matthew", "m3"),
     ("Polly.Joanna-Neural", "f3"), (None, "m3"), ("unknown", "m3"), ("WOMAN", "f3")],
)
def test_voice_names(voice: str | None, variant: str) -> None:
    assert tts.variant_for(voice) == variant


@pytest.mark.parametrize(
    ("language", "espeak"),
    [("en-US", "en-us"), ("en-GB", "en"), ("en", "en-us"), ("es-ES", "es"), ("es-MX", "es-419"),
     ("fr-FR", "fr"), ("de-DE", "de"), ("pt-BR", "pt-br"), ("zh-CN", "cmn"), ("ja-JP", "ja"),
     ("xx-YY", "en-us"), (None, "en-us"), ("it_IT", "it")],
)
def test_languages(synth: tts.Synthesizer, language: str | None, espeak: str) -> None:
    assert synth._get_engine().language_for(language) == espeak


def test_other_languages_produce_audio(synth: tts.Synthesizer) -> None:
    for language in ("es-ES", "fr-FR", "de-DE"):
        assert len(synth.synthesize_sync("uno dos tres", "woman", language)) > 8000


async def test_memory_and_file_caches(tmp_path: Path) -> None:
    first = tts.Synthesizer(tmp_path, memory_items=2)
    pcm = await first.synthesize("hello world", "man", "en-US")
    assert await first.synthesize("hello world", "man", "en-US") == pcm
    assert first.hits == {"memory": 1, "file": 0, "synth": 1}
    await first.synthesize("second", "man", "en-US")
    await first.synthesize("third", "man", "en-US")  # evicts "hello world" from memory (LRU of 2)
    assert await first.synthesize("hello world", "man", "en-US") == pcm
    assert first.hits["file"] == 1
    first.close()
    files = sorted(e.path for e in os.scandir(tmp_path))  # two-level layout: <key[:2]>/<key>.pcm
    pcm_files = [f for d in files for f in os.listdir(d) if f.endswith(".pcm")]
    assert len(pcm_files) == 3 and not [f for d in files for f in os.listdir(d) if f.endswith(".tmp")]
    # a new process (new instance) reads the file cache
    second = tts.Synthesizer(tmp_path)
    assert await second.synthesize("hello world", "man", "en-US") == pcm
    assert second.hits == {"memory": 0, "file": 1, "synth": 0}
    # the key includes voice and language
    await second.synthesize("hello world", "woman", "en-US")
    await second.synthesize("hello world", "man", "en-GB")
    assert second.hits["synth"] == 2
    second.close()


async def test_concurrent_requests_share_one_synthesis() -> None:
    s = tts.Synthesizer(None)
    results = await asyncio.gather(*(s.synthesize("same prompt for everyone") for _ in range(5)))
    assert len(set(results)) == 1
    assert s.hits["synth"] == 1
    s.close()


async def test_module_entry_point() -> None:
    pcm = await tts.synthesize("one two three", "man", "en-US")
    assert len(pcm) > 8000
