"""Pronunciation control: a deployment dictionary, per-request overrides and inline markup.

Like GLM-TTS's G2P replace dictionary, a word is replaced by a fixed pronunciation before the
engine's G2P sees it.

Dictionary (JSONL, one entry per line, ``#`` comments and blank lines allowed)::

    {"word": "voxmesh", "phonemes": "vˈɑksmɛʃ"}        # engine phoneme alphabet (English)
    {"word": "重庆", "pinyin": "chong2 qing4"}           # pinyin with tone digits (Chinese)

Per-request overrides (``SpeechRequest.pronunciations``) map a word to either form: a value
made only of pinyin syllables with tone digits 1-5 (``chong2 qing4``) is pinyin, anything
else is phonemes. Overrides win over the dictionary for the same word.

Inline markup in the input (the syntax misaki uses, extended for pinyin)::

    [word](/phonemes/)          e.g. "I say [tomato](/təmˈɑːtoʊ/)."
    [词](pinyin:py1 py2 ...)    e.g. "我在[重庆](pinyin:chong2 qing4)。"

The bracketed word is what the text means (kept for logs); the phonemes or pinyin are what is
spoken. Text that is not exactly this pattern (a lone "[" or "(") is left as plain text.

Matching: English words match whole words, case-insensitive (``\\b``-style, letters, digits
and apostrophes are word characters); a word containing CJK characters matches anywhere as
a substring. Longer words win over shorter ones at the same place, leftmost match first.

Pinyin is turned into the Kokoro/misaki Mandarin alphabet by :func:`pinyin_to_phonemes`
(misaki's ``pinyin_to_ipa`` then its tone arrows: 1 ``→``, 2 ``↗``, 3 ``↓``, 4 ``↘``, 5 none).
Syllables are joined without spaces, as misaki writes one word.

Limits: no part-of-speech context (a dictionary word is replaced everywhere); pinyin applies
to Chinese segments only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from voxmesh.errors import ConfigError, InvalidRequest

__all__ = [
    "DEFAULT_DICTIONARY_PATH",
    "Marked",
    "Pronunciation",
    "PronunciationDictionary",
    "is_pinyin",
    "parse_markup",
    "pinyin_to_phonemes",
]

DEFAULT_DICTIONARY_PATH = Path(__file__).parent / "data" / "pronunciations.jsonl"
_PINYIN = re.compile(r"^\s*(?:[a-zü:v]+[1-5]\s*)+$", re.IGNORECASE)
_MARKUP = re.compile(r"\[([^\[\]\n]{1,100})\]\((?:/([^/\n]{1,300})/|pinyin:([^()\n]{1,300}))\)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Pronunciation:
    """Exactly one of ``phonemes`` (engine alphabet) or ``pinyin`` (tone digits)."""

    word: str
    phonemes: str | None = None
    pinyin: str | None = None

    def __post_init__(self) -> None:
        if (self.phonemes is None) == (self.pinyin is None):
            raise ValueError(f"pronunciation of {self.word!r} needs exactly one of phonemes or pinyin")

    def resolve(self, language: str) -> str:
        """Phonemes for a segment in ``language`` (pinyin -> Mandarin phonemes)."""
        if self.phonemes is not None:
            return self.phonemes
        if language != "zh":
            raise InvalidRequest(
                f"pinyin given for {self.word!r} but the text is not Chinese (language {language!r}); "
                "use phonemes, or set language to zh", param="pronunciations")
        return pinyin_to_phonemes(self.pinyin or "")


@dataclass(frozen=True)
class Marked:
    """An inline-markup or dictionary hit inside the text."""

    pron: Pronunciation


def is_pinyin(value: str) -> bool:
    return bool(_PINYIN.match(value))


def pinyin_to_phonemes(pinyin: str) -> str:
    """``"chong2 qing4"`` -> ``"ꭧʰʊ↗ŋʨʰi↘ŋ"`` (misaki zh alphabet); 400 on invalid syllables."""
    from misaki.zh import ZHG2P

    out = []
    for syllable in pinyin.replace("u:", "ü").split():
        if not re.fullmatch(r"[a-zü]+[1-5]?", syllable.lower()):
            raise InvalidRequest(f"invalid pinyin syllable {syllable!r}: write letters then a tone digit 1-5",
                                 param="pronunciations")
        try:
            out.append(ZHG2P.py2ipa(syllable.lower()).replace(chr(815), ""))  # as misaki does
        except (ValueError, KeyError, IndexError) as exc:
            raise InvalidRequest(f"invalid pinyin syllable {syllable!r}: {exc}", param="pronunciations") from exc
    if not out:
        raise InvalidRequest("empty pinyin", param="pronunciations")
    return "".join(out)


def parse_markup(text: str) -> list[str | Marked]:
    """Split ``text`` into plain strings and :class:`Marked` inline pronunciations."""
    out: list[str | Marked] = []
    pos = 0
    for m in _MARKUP.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        word = m.group(1)
        if m.group(2) is not None:
            pron = Pronunciation(word, phonemes=m.group(2).strip())
        else:
            pinyin = m.group(3).strip()
            if not is_pinyin(pinyin):
                raise InvalidRequest(
                    f"inline pinyin for {word!r} must be syllables with tone digits, like 'chong2 qing4'",
                    param="input")
            pron = Pronunciation(word, pinyin=pinyin)
        out.append(Marked(pron))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


class PronunciationDictionary:
    """Word -> :class:`Pronunciation`, applied to plain text with one compiled regex."""

    def __init__(self, entries: Iterable[Pronunciation] = ()) -> None:
        self._entries: dict[str, Pronunciation] = {}
        for e in entries:
            self._entries[self._key(e.word)] = e

    @staticmethod
    def _key(word: str) -> str:
        return word.strip().lower()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, word: str) -> Pronunciation | None:
        return self._entries.get(self._key(word))

    @classmethod
    def load(cls, path: Path) -> PronunciationDictionary:
        """Read a JSONL dictionary; a bad line is a start-up error naming the line."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read pronunciation dictionary {path}: {exc}") from exc
        entries = []
        for no, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                obj = json.loads(line)
                entries.append(Pronunciation(str(obj["word"]), phonemes=obj.get("phonemes"), pinyin=obj.get("pinyin")))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{no}: bad pronunciation entry ({exc}); "
                                  'expected {"word": ..., "phonemes": ...} or {"word": ..., "pinyin": ...}') from exc
        return cls(entries)

    @classmethod
    def default(cls) -> PronunciationDictionary:
        """The dictionary shipped with voxmesh (common Mandarin polyphones)."""
        return cls.load(DEFAULT_DICTIONARY_PATH)

    def with_overrides(self, overrides: Mapping[str, str]) -> PronunciationDictionary:
        """A new dictionary where per-request ``word -> phonemes | pinyin`` entries win."""
        if not overrides:
            return self
        merged = PronunciationDictionary(self._entries.values())
        for word, value in overrides.items():
            value = value.strip()
            if is_pinyin(value):
                merged._entries[self._key(word)] = Pronunciation(word, pinyin=value)
            else:
                merged._entries[self._key(word)] = Pronunciation(word, phonemes=value.strip("/"))
        return merged

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self._entries:
            return None
        alts = []
        for key in sorted(self._entries, key=len, reverse=True):
            esc = re.escape(key)
            alts.append(esc if _CJK.search(key) else rf"(?<![\w']){esc}(?![\w'])")
        return re.compile("|".join(alts), re.IGNORECASE)

    def apply(self, text: str) -> list[str | Marked]:
        """Split plain ``text`` into strings and dictionary hits."""
        pattern = self._pattern
        if pattern is None:
            return [text] if text else []
        out: list[str | Marked] = []
        pos = 0
        for m in pattern.finditer(text):
            entry = self._entries[self._key(m.group())]
            if m.start() > pos:
                out.append(text[pos : m.start()])
            out.append(Marked(entry))
            pos = m.end()
        if pos < len(text):
            out.append(text[pos:])
        return out

    def entries(self) -> list[Pronunciation]:
        return list(self._entries.values())
