"""``instructions`` (gpt-4o-mini-tts's free-text style prompt) -> emotion preset and speed.

A pure function of the text; only what the prompt names explicitly is used. Rules:

1. emotion words (case-insensitive, whole words) select a preset:
   happy  <- happy, cheerful, joyful, excited, upbeat, enthusiastic, bright
   sad    <- sad, sorrowful, melancholy, melancholic, somber, sombre, gloomy
   angry  <- angry, furious, annoyed, irritated, mad, frustrated
   calm   <- calm, soothing, relaxed, gentle, serene, soft, peaceful
   neutral<- neutral, flat, monotone, matter-of-fact
2. a word negated by one of not / don't / never / no / without within the two words before it
   is ignored ("not angry at all" selects nothing).
3. when several emotions are named, the first one in the text wins.
4. speed words multiply the request's speed: "very slowly"/"very slow" x0.75, "slowly"/
   "slow"/"unhurried" x0.88, "quickly"/"fast"/"rapidly"/"briskly" x1.12, "very quickly"/
   "very fast" x1.25. The first speed phrase wins.
5. an explicit request ``emotion`` other than "neutral" wins over rule 1; speed from rule 4
   still applies. Everything else in the prompt (accent, persona...) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["StyleHints", "parse_instructions"]

_EMOTIONS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "cheerful", "joyful", "excited", "upbeat", "enthusiastic", "bright"),
    "sad": ("sad", "sorrowful", "melancholy", "melancholic", "somber", "sombre", "gloomy"),
    "angry": ("angry", "furious", "annoyed", "irritated", "mad", "frustrated"),
    "calm": ("calm", "soothing", "relaxed", "gentle", "serene", "soft", "peaceful"),
    "neutral": ("neutral", "flat", "monotone", "matter-of-fact"),
}
_SPEEDS: tuple[tuple[str, float], ...] = (
    (r"very (?:slowly|slow)", 0.75),
    (r"very (?:quickly|fast)", 1.25),
    (r"slowly|slow|unhurried", 0.88),
    (r"quickly|fast|rapidly|briskly", 1.12),
)
_NEGATIONS = {"not", "don't", "dont", "never", "no", "without"}
_WORD = re.compile(r"[a-z][a-z'\-]*")


@dataclass(frozen=True)
class StyleHints:
    emotion: str | None = None
    speed: float = 1.0


def _negated(words: list[str], index: int) -> bool:
    return any(w in _NEGATIONS for w in words[max(0, index - 2):index])


def _emotion(words: list[str]) -> str | None:
    lookup = {w: emo for emo, ws in _EMOTIONS.items() for w in ws}
    for i, word in enumerate(words):
        emo = lookup.get(word)
        if emo is not None and not _negated(words, i):
            return emo
    return None


def _speed(text: str) -> float:
    best: tuple[int, float] | None = None
    for pattern, factor in _SPEEDS:
        for m in re.finditer(rf"\b(?:{pattern})\b", text):
            words = _WORD.findall(text[:m.start()])
            if _negated(words, len(words)):
                continue
            if best is None or m.start() < best[0]:
                best = (m.start(), factor)
            break
    return best[1] if best else 1.0


def parse_instructions(text: str | None) -> StyleHints:
    if not text:
        return StyleHints()
    low = text.lower()
    return StyleHints(_emotion(_WORD.findall(low)), _speed(low))
