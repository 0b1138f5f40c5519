"""Translate HTML by its text nodes, keeping every tag as it was.

Algorithm
    The stdlib :class:`html.parser.HTMLParser` (a tolerant tokenizer, no tree building) splits the
    document into tokens. Start tags, self-closing tags, comments, doctypes and processing
    instructions are kept as their *raw source text*; end tags are re-emitted as ``</name>``.
    Text nodes are unescaped (``&amp;`` -> ``&``), handed out for translation, and escaped again
    on the way back (``&``, ``<``, ``>``). Leading and trailing whitespace of a text node is kept
    outside the translation, so indentation and spacing around inline tags survive.

    Skipped (kept verbatim): whitespace-only nodes, the contents of ``script``, ``style``,
    ``code``, ``pre``, ``textarea``, ``noscript``, ``svg`` and ``math``, and any element marked
    ``translate="no"`` or ``class="notranslate"`` (as Google and the HTML spec use them).

Limits
    A sentence split by inline markup (``Hello <b>big</b> world``) is translated as three pieces;
    word order across the tags cannot change. Attribute values (``alt``, ``title``) are not
    translated. Void elements (``<br>``, ``<img>``) never push onto the skip stack.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["HtmlDocument", "parse_html", "translate_html"]

_SKIP_TAGS = {"script", "style", "code", "pre", "textarea", "noscript", "svg", "math"}
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip


@dataclass
class _Text:
    lead: str
    body: str  # unescaped text to translate
    trail: str


class _Tokenizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str | _Text] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, opened a no-translate region)

    def _skipping(self) -> bool:
        return any(skip for _, skip in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(self.get_starttag_text() or f"<{tag}>")
        if tag in _VOID:
            return
        amap = {k.lower(): (v or "") for k, v in attrs}
        skip = (
            tag in _SKIP_TAGS
            or amap.get("translate", "").lower() == "no"
            or "notranslate" in amap.get("class", "").split()
        )
        self._stack.append((tag, skip))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")
        for i in range(len(self._stack) - 1, -1, -1):  # tolerate unclosed inner tags
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        body = data.strip()
        if not body or self._skipping():
            # Inside script/style the parser hands raw text: it must not be escaped again.
            raw = data if self._stack and self._stack[-1][0] in ("script", "style") else html.escape(data, quote=False)
            self.parts.append(raw)
            return
        lead = data[: len(data) - len(data.lstrip())]
        trail = data[len(data.rstrip()) :]
        self.parts.append(_Text(lead, body, trail))

    def handle_comment(self, data: str) -> None:
        self.parts.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.parts.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.parts.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.parts.append(f"<![{data}]>")


@dataclass
class HtmlDocument:
    """An HTML fragment split into verbatim markup and translatable text nodes."""

    parts: list[str | _Text]

    @property
    def texts(self) -> list[str]:
        return [p.body for p in self.parts if isinstance(p, _Text)]

    def render(self, translations: Sequence[str]) -> str:
        nodes = [p for p in self.parts if isinstance(p, _Text)]
        if len(translations) != len(nodes):
            raise ValueError(f"expected {len(nodes)} translations, got {len(translations)}")
        it = iter(translations)
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, _Text):
                out.append(part.lead + html.escape(next(it), quote=False) + part.trail)
            else:
                out.append(part)
        return "".join(out)


def parse_html(source: str) -> HtmlDocument:
    tok = _Tokenizer()
    tok.feed(source)
    tok.close()
    return HtmlDocument(tok.parts)


def translate_html(source: str, translate: Callable[[list[str]], list[str]]) -> str:
    """``source`` with every translatable text node replaced by ``translate``'s answer for it."""
    doc = parse_html(source)
    texts = doc.texts
    return doc.render(translate(texts) if texts else [])
