"""Sentence, then clause, then word chunking under an engine's segment limit (pure).

Algorithm
    1. Sentences: cut after ``. ! ? …`` (followed by whitespace or the end, so "3.14" and
       "e.g.x" stay whole; not after common abbreviations such as "Dr." or "e.g.") and after
       ``。 ！ ？ ； …`` (CJK, no space needed), keeping closing quotes and brackets with the
       sentence; line breaks also end a sentence.
    2. A sentence longer than ``max_chars`` is cut into clauses after ``, ; : —`` and
       ``， 、 ； ：``, and the clauses are packed greedily back together up to ``max_chars``.
    3. A clause still too long is cut between words: at whitespace, or between CJK characters
       (each CJK character is a word boundary). Text is never cut inside a Latin word or number:
       a single word longer than ``max_chars`` becomes a chunk of its own, over the limit.

    Chunks are stripped of surrounding whitespace; empty ones are dropped. Joining the chunks
    with single spaces gives back the text up to whitespace.

Limits
    Sentence detection is punctuation-based (no language model): "U.S. Army" style
    abbreviations outside the list are cut after the period.
"""

from __future__ import annotations

import re

__all__ = ["chunk_text", "split_clauses", "split_sentences"]

_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "no", "fig", "approx", "dept", "inc", "ltd", "co", "corp", "mt"]
)
_CLOSERS = "\"'”’)]}」』》）"
_SENT_END = re.compile(
    rf"(?:[.!?…]+[{re.escape(_CLOSERS)}]*(?=\s|$)|[。！？；…]+[{re.escape(_CLOSERS)}]*|\n+)"
)
_CLAUSE_END = re.compile(rf"(?:[,;:—–]+[{re.escape(_CLOSERS)}]*(?=\s|$)|[，、；：]+)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _split_after(text: str, pattern: re.Pattern[str], *, check_abbrev: bool = False) -> list[str]:
    out: list[str] = []
    start = 0
    for m in pattern.finditer(text):
        if check_abbrev and m.group().startswith("."):
            word = re.search(r"([\w.]+)$", text[start : m.start()])
            if word and (word.group(1).lower() in _ABBREVIATIONS or len(word.group(1)) == 1):
                continue
        out.append(text[start : m.end()])
        start = m.end()
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def split_sentences(text: str) -> list[str]:
    return _split_after(text, _SENT_END, check_abbrev=True)


def split_clauses(sentence: str) -> list[str]:
    return _split_after(sentence, _CLAUSE_END)


def _words(clause: str) -> list[tuple[str, bool]]:
    """(word, space_before) pairs: whitespace-separated, CJK characters one by one."""
    out: list[tuple[str, bool]] = []
    for m in re.finditer(r"\S+", clause):
        space = True
        buf = ""
        for ch in m.group():
            if _CJK.match(ch):
                if buf:
                    out.append((buf, space))
                    space = False
                    buf = ""
                out.append((ch, space))
                space = False
            else:
                buf += ch
        if buf:
            out.append((buf, space))
    return out


def _pack(pieces: list[tuple[str, bool]], max_chars: int) -> list[str]:
    chunks: list[str] = []
    cur = ""
    for piece, space in pieces:
        joined = f"{cur} {piece}" if (cur and space) else cur + piece
        if cur and len(joined) > max_chars:
            chunks.append(cur)
            cur = piece
        else:
            cur = joined
    if cur:
        chunks.append(cur)
    return chunks


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Chunks of at most ``max_chars`` characters (except single over-long words)."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    chunks: list[str] = []
    for sentence in split_sentences(text):
        if len(sentence) <= max_chars:
            chunks.append(sentence)
            continue
        pieces: list[tuple[str, bool]] = []
        for clause in split_clauses(sentence):
            if len(clause) <= max_chars:
                pieces.append((clause, not _CJK.match(clause[0])))
            else:
                pieces.extend((w, True) for w in _pack(_words(clause), max_chars))
        chunks.extend(_pack(pieces, max_chars))
    return chunks
