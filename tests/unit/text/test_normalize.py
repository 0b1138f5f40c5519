from __future__ import annotations

import re

import pytest

from voxmesh.text.normalize import normalize, normalize_en, normalize_zh


@pytest.mark.parametrize(("text", "expected"), [
    ("It costs $12.50.", "It costs twelve dollars and fifty cents."),
    ("It costs $1.", "It costs one dollar."),
    ("Raised €1.2 million", "Raised one point two million euros"),
    ("Pay 5 USD", "Pay five dollars"),
    ("£3.20 each", "three pounds and twenty pence each"),
    ("Up 45% today", "Up forty-five percent today"),
    ("Down 3.5%", "Down three point five percent"),
    ("Run 5 km", "Run five kilometers"),
    ("Add 1 kg", "Add one kilogram"),
    ("It is 20°C", "It is twenty degrees Celsius"),
    ("At 100 km/h", "At one hundred kilometers per hour"),
    ("the 21st time", "the twenty-first time"),
    ("On 2024-03-15 we met", "On March fifteenth, twenty twenty-four we met"),
    ("Due 3/15/2024.", "Due March fifteenth, twenty twenty-four."),
    ("Born March 3, 1999.", "Born March third, nineteen ninety-nine."),
    ("On 15 March 2024", "On the fifteenth of March, twenty twenty-four"),
    ("Meet at 9:05 pm", "Meet at nine oh five p m"),
    ("Meet at 15:30", "Meet at fifteen thirty"),
    ("Meet at 9:00.", "Meet at nine o'clock."),
    ("music of the 1990s", "music of the nineteen nineties"),
    ("in 1999 and since 2005", "in nineteen ninety-nine and since two thousand five"),
    ("1,234 people", "one thousand two hundred thirty-four people"),
    ("pi is 3.14", "pi is three point one four"),
    ("agent 007", "agent zero zero seven"),
    ("it fell to -5", "it fell to minus five"),
    ("salt & pepper", "salt and pepper"),
])
def test_english(text: str, expected: str) -> None:
    assert normalize_en(text) == expected


def test_english_leaves_no_digits_in_mixed_text() -> None:
    text = "On 2024-03-15 at 9:05 pm, 3 of 1,200 runners (25%) ran 42.2 km for $50 in the 21st race."
    out = normalize(text, "en")
    assert not re.search(r"\d", out), out


@pytest.mark.parametrize(("text", "expected"), [
    ("今天是2024-03-15。", "今天是二零二四年三月十五日。"),
    ("2023年07月08日", "二零二三年七月八日"),
    ("下午3:30开会", "下午三点三十分开会"),
    ("9:05到", "九点零五分到"),
    ("10:00出发", "十点整出发"),
    ("增长了50%", "增长了百分之五十"),
    ("价格是$5", "价格是五美元"),
    ("价格是¥100", "价格是一百元"),
    ("共1,234人", "共一千二百三十四人"),
    ("跑了10km", "跑了十公里"),
    ("温度25℃", "温度二十五摄氏度"),
    ("电话13812345678", "电话一三八一二三四五六七八"),
    ("买了2个苹果，第2名", "买了两个苹果，第二名"),
    ("3.5公里", "三点五公里"),
])
def test_chinese(text: str, expected: str) -> None:
    assert normalize_zh(text) == expected


def test_chinese_leaves_no_digits() -> None:
    out = normalize("2024年有366天，编号0086，涨了12.5%，速度120km/h。", "zh")
    assert not re.search(r"\d", out), out


def test_other_languages_pass_through() -> None:
    assert normalize("今日は3時です", "ja") == "今日は3時です"
