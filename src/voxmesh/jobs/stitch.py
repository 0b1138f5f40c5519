"""Chunk audio as WAV, and stitching a job's chunks into the result with chapter marks.

Chunks are stored as 16-bit mono WAV (self-describing: a re-run that finds the object needs
no DB row to know its rate). Stitching concatenates the PCM in chunk order; durations are
exact sample counts, and chapter marks are the running sample offsets at each chapter's
first chunk, so ``start_s``/``end_s`` match the audio to the sample. Output formats: ``wav``
and ``pcm`` here (stdlib ``wave``); others through ``voxmesh.audio.encoding.encode``.
Limit: the whole result is built in memory (a 10 h book at 24 kHz
is ~1.7 GB of PCM); fine for chapters, not yet for a whole multi-day corpus in one job.
"""

from __future__ import annotations

import hashlib
import io
import json
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxmesh.audio.encoding import encode
from voxmesh.errors import EngineError, UnsupportedFormat

__all__ = [
    "CONTENT_TYPES",
    "Stitched",
    "cache_key",
    "chunk_object_key",
    "encode_result",
    "pcm_to_wav",
    "stitch",
    "supported_formats",
    "wav_to_pcm",
]

CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/L16",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
}


def cache_key(text: str, *, voice: str, model: str, options: dict[str, Any]) -> str:
    """Content address of a chunk's audio: same text, voice, model and options -> same key."""
    blob = json.dumps({"t": text, "v": voice, "m": model, "o": options}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def chunk_object_key(key: str) -> str:
    return f"chunks/{key[:2]}/{key}.wav"


def pcm_to_wav(pcm_s16le: bytes, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm_s16le)
    return buf.getvalue()


def wav_to_pcm(data: bytes) -> tuple[bytes, int]:
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise EngineError("stored chunk audio is not 16-bit mono WAV")
            return w.readframes(w.getnframes()), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise EngineError(f"stored chunk audio is not valid WAV: {exc}") from exc


def supported_formats() -> tuple[str, ...]:
    return ("wav", "pcm", "mp3", "opus", "flac", "aac")


@dataclass(frozen=True)
class Stitched:
    pcm_s16le: bytes
    sample_rate: int
    duration_s: float
    chapters: list[dict[str, Any]]  # {"title", "start_s", "end_s"}


def stitch(parts: Sequence[tuple[bytes, int]], chapter_marks: Sequence[dict[str, Any]]) -> Stitched:
    """Concatenate ``(pcm, rate)`` parts in order; ``chapter_marks`` are ``{"title", "first_chunk"}``."""
    if not parts:
        raise EngineError("nothing to stitch")
    rates = {rate for _, rate in parts}
    if len(rates) != 1:
        raise EngineError(f"chunks came back at different sample rates {sorted(rates)}: cannot stitch")
    rate = rates.pop()
    offsets = [0]
    for pcm, _ in parts:
        offsets.append(offsets[-1] + len(pcm) // 2)
    total = offsets[-1]
    chapters = []
    for i, mark in enumerate(chapter_marks):
        start = offsets[int(mark["first_chunk"])]
        end = offsets[int(chapter_marks[i + 1]["first_chunk"])] if i + 1 < len(chapter_marks) else total
        chapters.append({"title": mark["title"], "start_s": start / rate, "end_s": end / rate})
    return Stitched(b"".join(pcm for pcm, _ in parts), rate, total / rate, chapters)


def encode_result(stitched: Stitched, fmt: str) -> bytes:
    if fmt == "wav":
        return pcm_to_wav(stitched.pcm_s16le, stitched.sample_rate)
    if fmt == "pcm":
        return stitched.pcm_s16le
    if fmt not in supported_formats():
        raise UnsupportedFormat(f"unknown response_format {fmt!r}: use one of {', '.join(supported_formats())}")
    samples = np.frombuffer(stitched.pcm_s16le, dtype="<i2").astype(np.float32) / 32768.0
    return encode(samples, stitched.sample_rate, fmt)
