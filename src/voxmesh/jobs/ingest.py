"""Turn an upload (plain text, Markdown or EPUB) into chapters, then into chunks.

Algorithm: the document is split into chapters (Markdown ``#``/``##`` headings, EPUB spine
documents in reading order; plain text is one chapter), each chapter into sentences (a
regex splitter: ``.``, ``!``, ``?``, ``…`` and CJK ``。！？`` followed by space or end, and
blank lines), and sentences are packed greedily into chunks of at most ``max_chars``. A
sentence longer than ``max_chars`` is cut at the last comma/semicolon, else the last space,
else hard at ``max_chars``. Chunks never span chapters, so chapter marks fall on chunk edges.

Limits: the sentence splitter is deliberately simple (``Dr. Smith`` splits after ``Dr.``;
harmless for synthesis, which only needs sensible pauses). ``voxmesh.text.chunking`` did not
exist when this was written; swap it in here when it does. Every failure raises a 4xx error
before anything is stored.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

from voxmesh.errors import InvalidRequest, PayloadTooLarge, UnsupportedFormat
from voxmesh.jobs.archive import ZipLimits, check_epub

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Chapter",
    "Plan",
    "chunk_text",
    "parse_epub",
    "parse_markdown",
    "parse_upload",
    "plan_chunks",
    "split_sentences",
]

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".epub")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])|\n\s*\n")
_WORD = re.compile(r"\w")
_SOFT_BREAK = re.compile(r"[,;:，；、]\s")


@dataclass(frozen=True)
class Chapter:
    title: str
    text: str


@dataclass(frozen=True)
class Plan:
    """Chunks as ``(chapter index, text)`` in reading order, and chapter marks."""

    chunks: list[tuple[int, str]]
    chapters: list[dict[str, Any]]  # {"title", "first_chunk"}


def split_sentences(text: str) -> list[str]:
    parts = (re.sub(r"\s+", " ", p).strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if p]


def _cut(sentence: str, max_chars: int) -> list[str]:
    out = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        soft = [m.end() for m in _SOFT_BREAK.finditer(window)]
        cut = soft[-1] if soft else window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        out.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        out.append(sentence)
    return out


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Pack sentences into chunks of at most ``max_chars`` characters."""
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        for piece in _cut(sentence, max_chars):
            if current and len(current) + 1 + len(piece) <= max_chars:
                current = f"{current} {piece}"
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


_MD_HEADING = re.compile(r"^(#{1,2})\s+(.+?)\s*#*\s*$", re.M)


def _strip_markdown(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code is not read aloud
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+", "", text, flags=re.M)  # list markers
    text = re.sub(r"^\s{0,3}(?:#{1,6}\s*|>\s?)", "", text, flags=re.M)
    text = re.sub(r"(\*\*|__|\*|_|`)", "", text)
    return text


def parse_markdown(text: str) -> list[Chapter]:
    """Chapters at ``#`` and ``##`` headings; text before the first heading is its own chapter."""
    matches = list(_MD_HEADING.finditer(text))
    if not matches:
        return [Chapter("", _strip_markdown(text))]
    chapters = []
    if text[: matches[0].start()].strip():
        chapters.append(Chapter("", _strip_markdown(text[: matches[0].start()])))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        title = _strip_markdown(m.group(2)).strip()
        chapters.append(Chapter(title, f"{title}.\n\n{_strip_markdown(text[m.end():end])}"))
    return chapters


class _HtmlText(HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "tr", "blockquote"})
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in ("h1", "h2", "h3") and not self.title:
            self._heading = []
        if tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            self.title = " ".join("".join(self._heading).split())
            self._heading = None
            self.parts.append(".")  # a heading is a sentence of its own
        if tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._heading is not None:
            self._heading.append(data)


def parse_epub(data: bytes, limits: ZipLimits | None = None) -> list[Chapter]:
    """Chapters from the EPUB spine in reading order (navigation documents skipped), after the
    archive checks of :mod:`voxmesh.jobs.archive` (zip bombs, XML entities)."""
    import ebooklib
    from ebooklib import epub

    check_epub(data, limits or ZipLimits())
    try:
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    except (zipfile.BadZipFile, KeyError, ValueError, AttributeError, IndexError, TypeError) as exc:
        raise InvalidRequest(f"not a valid EPUB file ({type(exc).__name__}: {exc})", param="file") from exc
    except Exception as exc:  # ebooklib raises its own EpubException and lxml errors
        raise InvalidRequest(f"not a valid EPUB file: {exc}", param="file") from exc
    chapters = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        parser = _HtmlText()
        parser.feed(item.get_content().decode("utf-8", errors="replace"))
        body = "".join(parser.parts)
        if body.strip():
            chapters.append(Chapter(parser.title or item.get_name(), body))
    return chapters


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the file is not UTF-8 text (byte {exc.start}): save it as UTF-8", param="file") from exc


def parse_upload(filename: str, data: bytes, *, max_bytes: int, zip_limits: ZipLimits | None = None) -> list[Chapter]:
    """Chapters of an uploaded file, by its suffix (``.txt``, ``.md``, ``.epub``)."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormat(
            f"unsupported file type {suffix or '(none)'!r} for {filename!r}: upload a .txt, .md or .epub file",
            param="file",
        )
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"file is {len(data)} bytes; the limit is {max_bytes} bytes")
    if not data.strip():
        raise InvalidRequest(f"file {filename!r} is empty", param="file")
    if suffix == ".epub":
        return parse_epub(data, zip_limits)
    text = _decode(data)
    return parse_markdown(text) if suffix in (".md", ".markdown") else [Chapter("", text)]


def plan_chunks(chapters: list[Chapter], *, max_chars: int, max_chunks: int) -> Plan:
    """Chunk every chapter; raise 400 if there is nothing to read, 413 if there is too much."""
    out: list[tuple[int, str]] = []
    marks: list[dict[str, Any]] = []
    for chapter in chapters:
        # a chunk of bare punctuation has nothing to say
        pieces = [p for p in chunk_text(chapter.text, max_chars) if _WORD.search(p)]
        if not pieces:
            continue
        marks.append({"title": chapter.title, "first_chunk": len(out)})
        out.extend((len(marks) - 1, p) for p in pieces)
        if len(out) > max_chunks:
            raise PayloadTooLarge(f"text is too long: more than {max_chunks} chunks of {max_chars} characters")
    if not out:
        raise InvalidRequest("the input contains no readable text", param="input")
    return Plan(out, marks)
