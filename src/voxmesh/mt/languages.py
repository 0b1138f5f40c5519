"""Language codes, names and the pairs an MT engine supports.

The table is HY-MT1.5's (33 languages plus 5 dialect and minority variants), with the English
name used in its XX<->XX prompt and the Chinese name used in its ZH<->XX prompts. An engine
declares the subset it serves (a setting: the 270M demo model is useful for far fewer than HY-MT's
38); every ordered pair of distinct languages in that subset is supported.

Codes are normalized the way clients send them: case-insensitive, ``_`` or ``-``, region tags
dropped except for Traditional Chinese (``zh-TW``, ``zh-HK``, ``zh-Hant`` -> ``zh-Hant``), and
common aliases (``fil`` -> ``tl``, ``iw`` -> ``he``, ``zh-CN`` -> ``zh``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from voxmesh.errors import UnsupportedLanguage

__all__ = [
    "DEFAULT_LANGUAGES",
    "LANGUAGES",
    "Language",
    "LanguageSet",
    "is_chinese",
    "language",
    "normalize_code",
]


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # English name, as HY-MT's XX<->XX prompt uses it
    name_zh: str  # Chinese name, as HY-MT's ZH<->XX prompts use it


_TABLE: tuple[tuple[str, str, str], ...] = (
    ("zh", "Chinese", "中文"),
    ("en", "English", "英语"),
    ("fr", "French", "法语"),
    ("pt", "Portuguese", "葡萄牙语"),
    ("es", "Spanish", "西班牙语"),
    ("ja", "Japanese", "日语"),
    ("tr", "Turkish", "土耳其语"),
    ("ru", "Russian", "俄语"),
    ("ar", "Arabic", "阿拉伯语"),
    ("ko", "Korean", "韩语"),
    ("th", "Thai", "泰语"),
    ("it", "Italian", "意大利语"),
    ("de", "German", "德语"),
    ("vi", "Vietnamese", "越南语"),
    ("ms", "Malay", "马来语"),
    ("id", "Indonesian", "印尼语"),
    ("tl", "Filipino", "菲律宾语"),
    ("hi", "Hindi", "印地语"),
    ("zh-Hant", "Traditional Chinese", "繁体中文"),
    ("pl", "Polish", "波兰语"),
    ("cs", "Czech", "捷克语"),
    ("nl", "Dutch", "荷兰语"),
    ("km", "Khmer", "高棉语"),
    ("my", "Burmese", "缅甸语"),
    ("fa", "Persian", "波斯语"),
    ("gu", "Gujarati", "古吉拉特语"),
    ("ur", "Urdu", "乌尔都语"),
    ("te", "Telugu", "泰卢固语"),
    ("mr", "Marathi", "马拉地语"),
    ("he", "Hebrew", "希伯来语"),
    ("bn", "Bengali", "孟加拉语"),
    ("ta", "Tamil", "泰米尔语"),
    ("uk", "Ukrainian", "乌克兰语"),
    ("bo", "Tibetan", "藏语"),
    ("kk", "Kazakh", "哈萨克语"),
    ("mn", "Mongolian", "蒙古语"),
    ("ug", "Uyghur", "维吾尔语"),
    ("yue", "Cantonese", "粤语"),
)

# What the packaged demo model is offered for (the 270M model is weak beyond these).
DEFAULT_LANGUAGES = ("en", "zh", "ja", "ko", "fr", "de", "es", "pt", "it", "ru")

LANGUAGES: dict[str, Language] = {code: Language(code, name, zh) for code, name, zh in _TABLE}

_ALIASES = {
    "fil": "tl",
    "iw": "he",
    "in": "id",
    "zh-cn": "zh",
    "zh-sg": "zh",
    "zh-hans": "zh",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "zh-hant": "zh-Hant",
    "zt": "zh-Hant",  # LibreTranslate's code for Traditional Chinese
    "pb": "pt",  # LibreTranslate's Brazilian Portuguese
}


def normalize_code(code: str) -> str:
    """The canonical code for what a client sent (unknown codes come back lower-cased)."""
    raw = code.strip().replace("_", "-").lower()
    if raw in _ALIASES:
        return _ALIASES[raw]
    if raw in LANGUAGES:
        return raw
    base = raw.split("-", 1)[0]
    return _ALIASES.get(base, base)


def language(code: str) -> Language:
    try:
        return LANGUAGES[normalize_code(code)]
    except KeyError:
        raise UnsupportedLanguage(f"unknown language code {code!r}", param="language") from None


def is_chinese(code: str) -> bool:
    """Chinese in the sense of HY-MT's ZH<->XX prompt family (Simplified, Traditional, Cantonese)."""
    return normalize_code(code) in ("zh", "zh-Hant", "yue")


class LanguageSet:
    """The languages one engine serves; all ordered pairs of distinct members are supported."""

    def __init__(self, codes: Iterable[str]) -> None:
        seen: dict[str, Language] = {}
        for code in codes:
            lang = language(code)
            seen.setdefault(lang.code, lang)
        if not seen:
            raise ValueError("an engine must serve at least one language")
        self._langs = seen

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._langs)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and normalize_code(code) in self._langs

    def __iter__(self) -> Iterator[Language]:
        return iter(self._langs.values())

    def targets(self, source: str) -> tuple[str, ...]:
        src = normalize_code(source)
        return tuple(c for c in self._langs if c != src)

    def pairs(self) -> list[tuple[str, str]]:
        return [(s, t) for s in self._langs for t in self._langs if s != t]

    def check_pair(self, source: str, target: str) -> tuple[str, str]:
        """Canonical ``(source, target)``, or :class:`UnsupportedLanguage` naming the supported set."""
        src, tgt = normalize_code(source), normalize_code(target)
        supported = ", ".join(self._langs)
        if src not in self._langs:
            raise UnsupportedLanguage(
                f"source language {source!r} is not supported; supported languages: {supported} "
                "(any ordered pair of two different ones)",
                param="source",
            )
        if tgt not in self._langs:
            raise UnsupportedLanguage(
                f"target language {target!r} is not supported; supported languages: {supported} "
                "(any ordered pair of two different ones)",
                param="target",
            )
        return src, tgt
