"""Speech recognition for tests: prove that audio carried words, not only packets.

pocketsphinx (PyPI wheel with its en-us model inside) decodes free speech from espeak badly, but
with a JSGF grammar of the expected words it is exact (dependency trials §6), so tests say which
words may occur and assert which came back. Input is the platform's linear PCM (8 kHz mono 16-bit),
upsampled to the model's 16 kHz.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import miniaudio


def _grammar(words: Iterable[str]) -> str:
    vocabulary = sorted({w.lower() for w in words})
    return "#JSGF V1.0;\ngrammar expected;\npublic <utterance> = ( " + " | ".join(vocabulary) + " )+ ;\n"


def recognize(pcm8k: bytes, words: Iterable[str]) -> list[str]:
    """Words recognised in `pcm8k`, constrained to `words` (the grammar allows any sequence of them).

    Loose: short function words get confused on synthetic speech; content words and digits are
    reliable. Use `recognize_phrase` for an exact check."""
    return _decode(pcm8k, _grammar(words))


def _decode(pcm8k: bytes, grammar: str) -> list[str]:
    from pocketsphinx import Decoder

    pcm16k = bytes(
        miniaudio.convert_frames(
            miniaudio.SampleFormat.SIGNED16, 1, 8000, pcm8k, miniaudio.SampleFormat.SIGNED16, 1, 16000
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "expected.jsgf"
        path.write_text(grammar)
        decoder = Decoder(samprate=16000, jsgf=str(path), lm=None, loglevel="FATAL")
        decoder.start_utt()
        decoder.process_raw(pcm16k, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
    return hyp.hypstr.split() if hyp is not None else []


def recognize_phrase(pcm8k: bytes, phrases: Iterable[str]) -> str:
    """Which of `phrases` was spoken (a grammar of whole-phrase alternatives; exact on espeak speech).

    Pass several distinct candidates: a pipeline that garbled the audio then picks a wrong one or
    none (empty string), which the caller's assertion catches."""
    alternatives = " | ".join(f"( {p.lower()} )" for p in phrases)
    grammar = "#JSGF V1.0;\ngrammar expected;\npublic <utterance> = " + alternatives + " ;\n"
    return " ".join(_decode(pcm8k, grammar))


def recognize_wav(path: str | Path, words: Iterable[str]) -> list[str]:
    """`recognize` over a WAV file in any format `restcomm.media.wav.read_wav` accepts."""
    from restcomm.media.wav import read_wav

    return recognize(read_wav(Path(path).read_bytes()), words)
