"""Split input into sentence-sized segments and join the translations back.

Algorithm
    Lines are kept apart (a newline is never inside a segment). Each line is cut after sentence
    punctuation: ``. ! ? …`` followed by whitespace, and ``。！？`` anywhere (CJK does not put a
    space after them); closing quotes and brackets stay with their sentence. A sentence longer
    than ``max_chars`` is cut again after clause punctuation (``, ; : ，；：、``), and a clause
    still too long at the last space before the limit (or hard at the limit for unspaced text).

    :class:`Segmented` keeps the separators (the whitespace between segments), so ``join``
    rebuilds the layout: ``seps[0] + t0 + seps[1] + t1 + ... + seps[-1]``. When translating into
    a language written without spaces (zh, ja, yue) the spaces between sentences are dropped; out
    of one, sentences that touched get a single space.

Limits
    Abbreviations ("Dr. Smith") are cut as sentence ends; for translation that costs a little
    context but never text. Numbers like "3.5" are safe (no space after the dot).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voxmesh.mt.languages import normalize_code

__all__ = ["Segmented", "segment"]

_UNSPACED = {"zh", "zh-Hant", "ja", "yue", "th", "km", "my", "bo"}
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[”’」』)）\]]*)")
_CLAUSE_END = re.compile(r"[,;:，；：、]\s*")


@dataclass(frozen=True)
class Segmented:
    segments: tuple[str, ...]
    seps: tuple[str, ...]  # len(segments) + 1: before, between and after the segments

    def separator(self, i: int, source: str, target: str) -> str:
        """The text to put after segment ``i`` (``-1``: before the first), adapted to the target."""
        sep = self.seps[i + 1]
        between = 0 <= i < len(self.segments) - 1
        if between and "\n" not in sep:
            src_unspaced = normalize_code(source) in _UNSPACED
            tgt_unspaced = normalize_code(target) in _UNSPACED
            if tgt_unspaced and not src_unspaced:
                return ""
            if src_unspaced and not tgt_unspaced and sep == "":
                return " "
        return sep

    def join(self, translations: Sequence[str], source: str, target: str) -> str:
        if len(translations) != len(self.segments):
            raise ValueError("one translation per segment")
        out = [self.separator(-1, source, target)]
        for i, text in enumerate(translations):
            out += [text, self.separator(i, source, target)]
        return "".join(out)


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    start = 0
    for m in _CLAUSE_END.finditer(sentence):
        pieces.append(sentence[start : m.end()])
        start = m.end()
    pieces.append(sentence[start:])
    merged: list[str] = []
    for piece in pieces:  # re-merge short clauses up to the limit
        if merged and len(merged[-1]) + len(piece) <= max_chars:
            merged[-1] += piece
        else:
            merged.append(piece)
    out: list[str] = []
    for piece in merged:
        while len(piece) > max_chars:
            cut = piece.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            out.append(piece[:cut])
            piece = piece[cut:]
        out.append(piece)
    return [p for p in out if p]  # whitespace-only pieces stay: segment() keeps them as separators


def _sentences(line: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(line):
        out.append(line[start : m.end()])
        start = m.end()
    out.append(line[start:])
    return out


def segment(text: str, max_chars: int = 400) -> Segmented:
    """Cut ``text`` into segments (no leading/trailing whitespace) and the separators around them."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    raw: list[str] = []
    for line in re.split(r"(\n)", text):
        if line == "\n":
            raw.append("\n")
            continue
        for sentence in _sentences(line):
            raw.extend(_split_long(sentence, max_chars) if sentence.strip() else [sentence])
    segments: list[str] = []
    seps: list[str] = [""]
    for chunk in raw:
        body = chunk.strip()
        if not body:
            seps[-1] += chunk
            continue
        lead = chunk[: len(chunk) - len(chunk.lstrip())]
        trail = chunk[len(chunk.rstrip()) :]
        seps[-1] += lead
        segments.append(body)
        seps.append(trail)
    return Segmented(tuple(segments), tuple(seps))
