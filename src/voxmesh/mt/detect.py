"""Language identification for ``source: "auto"`` and ``POST /detect``, without a model.

Algorithm
    1. Count letters per Unicode script. Kana means Japanese (even mixed with Han); Hangul
       Korean; Han alone Chinese; Thai, Hebrew, Arabic, Devanagari, Bengali, Tamil, Telugu,
       Gujarati, Khmer, Myanmar, Tibetan name their language directly. Cyrillic is Russian
       unless Ukrainian-only letters (і ї є ґ) or Kazakh letters appear.
    2. Latin text is scored against short stop-word lists and a few telltale letters
       (ß/ä/ö/ü for German, ñ/¿/¡ for Spanish, ã/õ/ç for Portuguese, etc.).
    3. Confidence is the winning share of the evidence, scaled to 0-100 as LibreTranslate
       reports it; candidates outside the ``allowed`` set are dropped.

Limits
    Short Latin snippets without stop words ("OK", names) fall back to English with a low
    confidence. Related languages (es/pt, ms/id) are told apart only by their stop words.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Detection", "detect"]


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float  # 0-100


_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x3040, 0x30FF, "kana"),
    (0x31F0, 0x31FF, "kana"),
    (0xFF66, 0xFF9D, "kana"),
    (0xAC00, 0xD7AF, "hangul"),
    (0x1100, 0x11FF, "hangul"),
    (0x3130, 0x318F, "hangul"),
    (0x4E00, 0x9FFF, "han"),
    (0x3400, 0x4DBF, "han"),
    (0xF900, 0xFAFF, "han"),
    (0x0400, 0x04FF, "cyrillic"),
    (0x0590, 0x05FF, "he"),
    (0x0600, 0x06FF, "arabic"),
    (0x0E00, 0x0E7F, "th"),
    (0x0900, 0x097F, "hi"),
    (0x0980, 0x09FF, "bn"),
    (0x0A80, 0x0AFF, "gu"),
    (0x0B80, 0x0BFF, "ta"),
    (0x0C00, 0x0C7F, "te"),
    (0x1780, 0x17FF, "km"),
    (0x1000, 0x109F, "my"),
    (0x0F00, 0x0FFF, "bo"),
)

def _w(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _w("the and is are was of to in that it you for with on this have be not what"),
    "fr": _w("le la les des est et un une du que pour dans pas vous nous je il elle sur ce suis très avec mais oui merci au aux"),
    "de": _w("der die das und ist nicht ein eine ich sie es zu mit den dem auf für wir"),
    "es": _w("el la los las es y un una que de en por para con no se lo está muy dónde qué cómo hola gracias del al"),
    "pt": _w("o a os as é e um uma que de em para com não se do da você está muito"),
    "it": _w("il lo la gli le è e un una che di in per con non si sono questo molto"),
    "nl": _w("de het een en is van dat niet ik je we met op voor zijn"),
    "pl": _w("i w nie na się jest to z że do jak co tak"),
    "cs": _w("a je se na v že to s z jak ale jsem není"),
    "tr": _w("ve bir bu da de için ne çok ile mi değil ben"),
    "vi": _w("và là của có không một được người này tôi"),
    "id": _w("dan yang di ini itu tidak dengan untuk saya adalah"),
    "ms": _w("dan yang di ini itu tidak dengan untuk saya ialah boleh"),
    "tl": _w("ang ng mga sa ay at na hindi ako ko"),
}
_LETTERS: dict[str, str] = {
    "de": "ßäöü",
    "es": "ñ¿¡",
    "pt": "ãõç",
    "fr": "çèêëœàù",
    "pl": "ąęłńśźż",
    "cs": "ěščřžůý",
    "tr": "ğışç",
    "vi": "ơưđạảấầẩẫậắằẳẵặẹẻẽềểễệỉịọỏốồổỗộớờởỡợụủứừửữự",
    "it": "àèìòù",
}
_UNKNOWN = "?"  # evidence that names no language: counts in the total, never reported
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script(ch: str) -> str | None:
    cp = ord(ch)
    for lo, hi, name in _SCRIPT_RANGES:
        if lo <= cp <= hi:
            return name
    if ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
        return "latin"
    return None


def _scores(text: str) -> dict[str, float]:
    scripts = Counter(s for s in map(_script, text) if s)
    scores: defaultdict[str, float] = defaultdict(float)
    if scripts["kana"]:
        scores["ja"] += scripts["kana"] * 2 + scripts["han"]
    elif scripts["han"]:
        scores["zh"] += scripts["han"]
    if scripts["hangul"]:
        scores["ko"] += scripts["hangul"] * 2
    if scripts["cyrillic"]:
        low = text.lower()
        if any(c in low for c in "іїєґ"):
            scores["uk"] += scripts["cyrillic"]
        elif any(c in low for c in "әғқңөұүһ"):
            scores["kk"] += scripts["cyrillic"]
        else:
            scores["ru"] += scripts["cyrillic"]
    if scripts["arabic"]:
        low = text
        scores["fa" if any(c in low for c in "پچژگ") else ("ur" if "ے" in low else "ar")] += scripts["arabic"]
    for direct in ("he", "th", "hi", "bn", "gu", "ta", "te", "km", "my", "bo"):
        scores[direct] += scripts[direct]
    if scripts["latin"]:
        words = [w.lower() for w in _WORD.findall(text)]
        latin: Counter[str] = Counter()
        for lang, stops in _STOPWORDS.items():
            latin[lang] += 2 * sum(1 for w in words if w in stops)
        low = text.lower()
        for lang, letters in _LETTERS.items():
            latin[lang] += sum(low.count(c) for c in letters)
        total = sum(latin.values())
        if total == 0:
            # Nothing to go on: the commonest guess, with most of the mass left unknown.
            latin["en"], latin[_UNKNOWN] = 1, 3
            total = 4
        # Latin letters are the evidence; split them over the languages by their share.
        for lang, value in latin.items():
            if value:
                scores[lang] += scripts["latin"] * value / total
    return {k: v for k, v in scores.items() if v > 0}


def detect(text: str, allowed: Iterable[str] | None = None, limit: int = 3) -> list[Detection]:
    """Candidate languages for ``text``, best first (empty when it holds no letters)."""
    scores = _scores(text)
    if allowed is not None:
        keep = {*allowed, _UNKNOWN}
        scores = {k: v for k, v in scores.items() if k in keep}
    total = sum(scores.values())
    named = {k: v for k, v in scores.items() if k != _UNKNOWN}
    if total <= 0 or not named:
        return []
    ranked = sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [Detection(lang, round(100.0 * value / total, 1)) for lang, value in ranked]
