from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxmesh.errors import ConfigError, InvalidRequest
from voxmesh.text.pronunciation import (
    Marked,
    Pronunciation,
    PronunciationDictionary,
    is_pinyin,
    parse_markup,
    pinyin_to_phonemes,
)


def test_pinyin_to_kokoro_phonemes() -> None:
    # misaki zh alphabet: ꭧʰ = ch, ʨʰ = q, tone arrows 1 → 2 ↗ 3 ↓ 4 ↘
    assert pinyin_to_phonemes("chong2 qing4") == "ꭧʰʊ↗ŋʨʰi↘ŋ"
    assert pinyin_to_phonemes("yin2 hang2") == "i↗nxa↗ŋ"
    assert pinyin_to_phonemes("zhong4") == "ꭧʊ↘ŋ"
    assert pinyin_to_phonemes("lv4") == pinyin_to_phonemes("lü4") == "ly↘"
    assert pinyin_to_phonemes("ma5") == "ma"


@pytest.mark.parametrize("bad", ["xx3", "chong9", "", "重庆"])
def test_invalid_pinyin_is_a_400(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        pinyin_to_phonemes(bad)


def test_is_pinyin() -> None:
    assert is_pinyin("chong2 qing4")
    assert is_pinyin("Hang2")
    assert not is_pinyin("təmˈɑːtoʊ")
    assert not is_pinyin("chong qing")


def test_markup_parsing() -> None:
    parts = parse_markup("I say [tomato](/təmˈɑːtoʊ/) in [重庆](pinyin:chong2 qing4). [not markup] (x)")
    assert parts[0] == "I say "
    assert parts[1] == Marked(Pronunciation("tomato", phonemes="təmˈɑːtoʊ"))
    assert parts[2] == " in "
    assert parts[3] == Marked(Pronunciation("重庆", pinyin="chong2 qing4"))
    assert parts[4] == ". [not markup] (x)"


def test_markup_with_bad_pinyin_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="tone digits"):
        parse_markup("[重庆](pinyin:chong qing)")


def test_dictionary_whole_words_case_insensitive_longest_first(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [
        "# comment", "",
        json.dumps({"word": "vox", "phonemes": "vˈɑks"}),
        json.dumps({"word": "voxmesh", "phonemes": "vˈɑksmɛʃ"}),
        json.dumps({"word": "重庆", "pinyin": "chong2 qing4"}),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    d = PronunciationDictionary.load(path)
    assert len(d) == 3
    parts = d.apply("Voxmesh and vox, not voxes; 去重庆吧")
    assert parts == [
        Marked(Pronunciation("voxmesh", phonemes="vˈɑksmɛʃ")), " and ",
        Marked(Pronunciation("vox", phonemes="vˈɑks")), ", not voxes; 去",
        Marked(Pronunciation("重庆", pinyin="chong2 qing4")), "吧",
    ]


def test_overrides_win_and_detect_pinyin() -> None:
    d = PronunciationDictionary([Pronunciation("银行", pinyin="yin2 hang2")])
    merged = d.with_overrides({"银行": "yin2 xing2", "tomato": "/təmˈɑːtoʊ/"})
    assert merged.get("银行") == Pronunciation("银行", pinyin="yin2 xing2")
    assert merged.get("TOMATO") == Pronunciation("tomato", phonemes="təmˈɑːtoʊ")
    assert d.get("银行") == Pronunciation("银行", pinyin="yin2 hang2")  # original untouched


def test_bad_dictionary_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"word": "a", "phonemes": "x"}\n{"word": "b"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"d\.jsonl:2"):
        PronunciationDictionary.load(path)


def test_default_dictionary_pins_polyphones() -> None:
    d = PronunciationDictionary.default()
    assert pinyin_to_phonemes(d.get("重庆").pinyin or "") == "ꭧʰʊ↗ŋʨʰi↘ŋ"  # type: ignore[union-attr]
    assert d.get("银行").pinyin == "yin2 hang2"  # type: ignore[union-attr]


def test_pinyin_on_english_text_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="not Chinese"):
        Pronunciation("x", pinyin="chong2").resolve("en")
