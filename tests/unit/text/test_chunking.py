from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.text.chunking import chunk_text, split_clauses, split_sentences


def test_sentences_english() -> None:
    text = 'Dr. Smith paid 3.14 dollars. Really? Yes! "Quoted." Next line\nLast e.g. this one.'
    assert split_sentences(text) == [
        "Dr. Smith paid 3.14 dollars.", "Really?", "Yes!", '"Quoted."', "Next line", "Last e.g. this one.",
    ]


def test_sentences_cjk() -> None:
    assert split_sentences("今天天气很好。我们去公园吧！好吗？「好的。」最后") == [
        "今天天气很好。", "我们去公园吧！", "好吗？", "「好的。」", "最后",
    ]


def test_clauses() -> None:
    assert split_clauses("First, second; third: fourth") == ["First,", "second;", "third:", "fourth"]
    assert split_clauses("我们，你们、他们；结束") == ["我们，", "你们、", "他们；", "结束"]


def test_long_sentence_cut_at_clauses_then_words() -> None:
    text = "This is a long sentence, which has several clauses; it keeps going: until it is longer than allowed."
    chunks = chunk_text(text, 40)
    assert chunks[0] == "This is a long sentence,"
    assert all(len(c) <= 40 for c in chunks)
    assert " ".join(chunks) == text


def test_cjk_cut_between_characters() -> None:
    text = "这是一个非常长的句子它没有任何标点符号所以只能在字之间切开才能满足长度限制"
    chunks = chunk_text(text, 10)
    assert all(len(c) <= 10 for c in chunks)
    assert "".join(chunks) == text


def test_never_splits_a_word() -> None:
    assert chunk_text("supercalifragilisticexpialidocious is long", 10) == [
        "supercalifragilisticexpialidocious", "is long",
    ]


_word = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
_punct = st.sampled_from(["", "", ",", ".", "!", ";", "?"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_word, _punct), min_size=1, max_size=60), st.integers(min_value=5, max_value=80))
def test_chunks_respect_limit_and_keep_words(words: list[tuple[str, str]], limit: int) -> None:
    text = " ".join(w + p for w, p in words)
    chunks = chunk_text(text, limit)
    for c in chunks:
        # over the limit only when the chunk is one unbreakable word
        assert len(c) <= limit or " " not in c
    assert re.sub(r"\s+", " ", " ".join(chunks)) == text
    original = [w + p for w, p in words]
    assert [w for c in chunks for w in c.split()] == original
