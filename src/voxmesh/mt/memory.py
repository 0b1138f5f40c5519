"""An in-memory MT engine for tests and demos of the plumbing (no model).

It "translates" a segment by looking it up in a phrasebook (``{(source, target): {text: text}}``)
and otherwise tags it: ``"[zh] Hello."``. Streaming yields word by word. ``delay_s`` simulates
per-segment compute so concurrency and streaming can be observed; ``fail_with`` makes every call
raise the given error (fault paths).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from voxmesh.errors import VoxmeshError
from voxmesh.mt.languages import DEFAULT_LANGUAGES, LanguageSet
from voxmesh.mt.prompts import SamplingParams, relevant_terms
from voxmesh.mt.streaming import Piece

__all__ = ["MemoryEngine"]


class MemoryEngine:
    def __init__(
        self,
        phrasebook: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
        *,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        delay_s: float = 0.0,
        fail_with: VoxmeshError | None = None,
    ) -> None:
        self.phrasebook = {k: dict(v) for k, v in (phrasebook or {}).items()}
        self.languages = LanguageSet(languages)
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.calls: list[tuple[tuple[str, ...], str, str]] = []

    @property
    def model_name(self) -> str:
        return "memory"

    def _one(self, text: str, source: str, target: str, glossary: Mapping[str, str] | None) -> str:
        known = self.phrasebook.get((source, target), {})
        if text in known:
            return known[text]
        for src, tgt in relevant_terms(text, glossary):
            text = text.replace(src, tgt)
        return f"[{target}] {text}"

    async def atranslate(self, segments: Sequence[str], source: str, target: str, *,
                         glossary: Mapping[str, str] | None = None, context: str | None = None,
                         params: SamplingParams | None = None) -> list[str]:
        self.calls.append((tuple(segments), source, target))
        if self.fail_with is not None:
            raise self.fail_with
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return [self._one(s, source, target, glossary) for s in segments]

    async def astream(self, segments: Sequence[str], source: str, target: str, *,
                      glossary: Mapping[str, str] | None = None, context: str | None = None,
                      params: SamplingParams | None = None) -> AsyncIterator[Piece]:
        self.calls.append((tuple(segments), source, target))
        if self.fail_with is not None:
            raise self.fail_with
        for i, seg in enumerate(segments):
            words = self._one(seg, source, target, glossary).split(" ")
            for j, word in enumerate(words):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s / max(1, len(words)))
                yield Piece(i, word if j == 0 else " " + word)
