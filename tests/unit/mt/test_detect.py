from __future__ import annotations

import pytest

from voxmesh.mt.detect import detect


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Hello, how are you today? The weather is nice.", "en"),
        ("你好，今天天气怎么样？", "zh"),
        ("今日は天気がいいですね。", "ja"),
        ("안녕하세요, 만나서 반갑습니다.", "ko"),
        ("Bonjour, je suis très content de vous voir.", "fr"),
        ("Der Hund ist nicht hier, er ist im Garten.", "de"),
        ("¿Dónde está la estación de tren?", "es"),
        ("Привет, как дела?", "ru"),
        ("Привіт, як справи? Її немає.", "uk"),
        ("مرحبا كيف حالك", "ar"),
    ],
)
def test_detects_common_languages(text: str, lang: str) -> None:
    best = detect(text)[0]
    assert best.language == lang
    assert 0 < best.confidence <= 100


def test_no_letters_no_answer_and_unknown_latin_is_low_confidence() -> None:
    assert detect("12345 !!") == []
    (guess,) = detect("OK")
    assert guess.language == "en" and guess.confidence < 50


def test_allowed_restricts_candidates() -> None:
    got = detect("Der Hund ist nicht hier", allowed={"en", "zh"})
    assert all(d.language in {"en", "zh"} for d in got)
