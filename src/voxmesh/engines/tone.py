"""A deterministic test engine: each segment becomes a tone whose pitch comes from a hash of
its text and whose length is proportional to the text (60 ms per character / speed).

It ships in the package for what is not about the model: data-plane, autoscaling and
crash tests, where the same bytes for the same input matter and a real model would only
add minutes. ``delay_s`` (an option) makes each segment take at least that long, like a
model would. Never used by the default deployments.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from voxmesh.engines.base import Capabilities, Interrupt, Pcm, Segment, Voice, VoiceMix
from voxmesh.errors import UnknownVoice

__all__ = ["ToneEngine"]

_VOICES = (Voice("low", "Low", ("en", "zh", "ja")), Voice("high", "High", ("en", "zh", "ja")))


class ToneEngine:
    name = "tone"

    def __init__(self, sample_rate: int = 16000, ms_per_char: float = 60.0, delay_s: float = 0.0) -> None:
        self.sample_rate = sample_rate
        self.ms_per_char = ms_per_char
        self.delay_s = delay_s
        self.loaded = False

    def load(self, threads: int) -> None:
        self.loaded = True

    def warm_up(self) -> None:
        self.synthesize_segment(Segment((), "en"), VoiceMix.single("low"), 1.0)

    def capabilities(self) -> Capabilities:
        return Capabilities(kind="tts", sample_rate=self.sample_rate, languages=("en", "zh", "ja"),
                            phoneme_input=True, voice_blending=True, max_segment_chars=200)

    def voices(self) -> list[Voice]:
        return list(_VOICES)

    def phonemize(self, text: str, language: str) -> str:
        return text.lower()

    def unknown_phonemes(self, phonemes: str, language: str) -> str:
        return ""  # any symbol makes a tone

    def synthesize_segment(self, segment: Segment, voice: VoiceMix, speed: float, *,
                           threads: int | None = None, interrupt: Interrupt | None = None) -> Pcm:
        t0 = time.monotonic()
        known = {v.id for v in _VOICES}
        for name, _ in voice.parts:
            if name not in known:
                raise UnknownVoice(f"unknown voice {name!r}: use one of {sorted(known)}", param="voice")
        text = segment.text
        digest = hashlib.sha256(f"{voice.primary}|{text}".encode()).digest()
        base = 220.0 if voice.primary == "low" else 440.0
        freq = base * (1.0 + digest[0] / 255.0)
        n = max(1, int(self.sample_rate * len(text) * self.ms_per_char / 1000.0 / speed))
        t = np.arange(n, dtype=np.float64) / self.sample_rate
        pcm = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        left = self.delay_s - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
        return pcm
