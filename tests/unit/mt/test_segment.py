from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voxmesh.mt.segment import segment


def test_sentences_and_layout_survive() -> None:
    text = "  Hello there. How are you?\n\nFine!  Thanks."
    seg = segment(text)
    assert seg.segments == ("Hello there.", "How are you?", "Fine!", "Thanks.")
    assert seg.join(list(seg.segments), "en", "fr") == text


def test_cjk_sentences_split_without_spaces_and_join_for_target() -> None:
    seg = segment("你好。今天很冷！我们走吧")
    assert seg.segments == ("你好。", "今天很冷！", "我们走吧")
    assert seg.join(["Hi.", "It is cold!", "Let's go"], "zh", "en") == "Hi. It is cold! Let's go"
    en = segment("Hi. It is cold.")
    assert en.join(["你好。", "很冷。"], "en", "zh") == "你好。很冷。"


def test_numbers_are_not_sentence_ends() -> None:
    assert segment("It costs 3.50 dollars. Really.").segments == ("It costs 3.50 dollars.", "Really.")


def test_long_sentence_split_at_clauses_then_spaces() -> None:
    long = ", ".join(["word " * 5] * 10)
    seg = segment(long, max_chars=60)
    assert all(len(s) <= 60 for s in seg.segments)
    assert " ".join(seg.segments).split() == long.split()


@given(st.text(alphabet=st.sampled_from(list("ab .!?。\n,，")), max_size=80), st.integers(5, 50))
def test_identity_join_rebuilds_text_and_respects_limit(text: str, limit: int) -> None:
    seg = segment(text, max_chars=limit)
    assert seg.join(list(seg.segments), "en", "en") == text
    assert all(s.strip() == s and s and len(s) <= limit for s in seg.segments)
    assert all("\n" not in s for s in seg.segments)
