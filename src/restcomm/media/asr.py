"""Offline speech recognition for ``<Gather input="speech">``: pocketsphinx, an optional extra.

``pip install 'restcomm[asr]'`` adds pocketsphinx (a wheel with its US English model inside, no
service to run). Without it a speech ``<Gather>`` collects digits only (warning 12200), as before.

What it is good for, measured on the platform's own 8 kHz telephone audio (dependency trials §6):
with the ``hints`` of the ``<Gather>`` as a grammar (each hint one alternative phrase) recognition
was exact; free speech without hints decodes with a general language model, which gets short
telephone phrases wrong more often than right. So hints decide: an IVR that lists what callers may
say ("sales, support, billing") gets exact answers; the ``Confidence`` sent is the decoder's
posterior probability of the result.

The decoder is not re-entrant: one thread runs every decode (a 3-second utterance takes ~50 ms);
decoders are made once per grammar (and once for free speech) and kept, a small LRU.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import re
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DECODERS_KEPT = 16
_WORD = re.compile(r"[a-z']+")


def available() -> bool:
    """Whether the optional recognizer is installed."""
    return importlib.util.find_spec("pocketsphinx") is not None


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str  # "" when nothing was recognised
    confidence: float  # 0..1


def phrases_of(hints: str | None) -> tuple[str, ...]:
    """The hint phrases (comma-separated, as Twilio reads ``hints``), lower case, words only."""
    out: list[str] = []
    for part in (hints or "").split(","):
        words = _WORD.findall(part.lower())
        if words and " ".join(words) not in out:
            out.append(" ".join(words))
    return tuple(out)


def _grammar(phrases: tuple[str, ...]) -> str:
    alternatives = " | ".join(f"( {p} )" for p in phrases)
    return "#JSGF V1.0;\ngrammar hints;\npublic <utterance> = " + alternatives + " ;\n"


class Recognizer:
    """One per process; ``recognize`` is safe to call from the event loop."""

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self._decoders: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._dir = tempfile.TemporaryDirectory(prefix="restcomm-asr-")

    async def recognize(self, pcm8k: bytes, hints: str | None = None) -> Recognition:
        """What was said in ``pcm8k`` (8 kHz mono 16-bit linear PCM)."""
        if not pcm8k:
            return Recognition("", 0.0)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._decode, pcm8k, phrases_of(hints))

    def _decoder(self, phrases: tuple[str, ...]) -> Any:
        decoder = self._decoders.get(phrases)
        if decoder is not None:
            self._decoders.move_to_end(phrases)
            return decoder
        from pocketsphinx import Decoder

        if phrases:
            path = Path(self._dir.name) / f"hints-{len(self._decoders)}-{abs(hash(phrases))}.jsgf"
            path.write_text(_grammar(phrases))
            decoder = Decoder(samprate=16000, jsgf=str(path), lm=None, loglevel="FATAL")
        else:
            decoder = Decoder(samprate=16000, loglevel="FATAL")
        self._decoders[phrases] = decoder
        while len(self._decoders) > _DECODERS_KEPT:
            self._decoders.popitem(last=False)
        return decoder

    def _decode(self, pcm8k: bytes, phrases: tuple[str, ...]) -> Recognition:
        import miniaudio

        pcm16k = bytes(miniaudio.convert_frames(miniaudio.SampleFormat.SIGNED16, 1, 8000, pcm8k,
                                                miniaudio.SampleFormat.SIGNED16, 1, 16000))
        decoder = self._decoder(phrases)
        decoder.start_utt()
        decoder.process_raw(pcm16k, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return Recognition("", 0.0)
        return Recognition(hyp.hypstr.strip(), max(0.0, min(1.0, float(hyp.prob))))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._decoders.clear()
        self._dir.cleanup()
