from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.epubs import make_epub

from voxmesh.errors import InvalidRequest, PayloadTooLarge, UnsupportedFormat
from voxmesh.jobs.ingest import (
    chunk_text,
    parse_epub,
    parse_markdown,
    parse_upload,
    plan_chunks,
    split_sentences,
)


def test_split_sentences() -> None:
    assert split_sentences("Hello there. How are you?  Fine!\n\nNew para") == [
        "Hello there.", "How are you?", "Fine!", "New para"
    ]
    assert split_sentences("你好。再见！") == ["你好。", "再见！"]


def test_chunk_text_packs_and_cuts() -> None:
    text = "One two. Three four five. " + "word " * 50 + "end."
    chunks = chunk_text(text, 40)
    assert all(len(c) <= 40 for c in chunks)
    assert chunks[0] == "One two. Three four five."
    assert " ".join(chunks).split() == text.split()


@given(st.text(alphabet=st.sampled_from("ab .,!?\n"), max_size=400), st.integers(20, 80))
def test_chunk_text_invariants(text: str, max_chars: int) -> None:
    chunks = chunk_text(text, max_chars)
    assert all(0 < len(c) <= max_chars for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_markdown_chapters() -> None:
    md = "Intro text.\n\n# Chapter *One*\nHello [world](http://x). `code`\n\n## Two\n- item a\n- item b\n```\nskip me\n```\n"
    chapters = parse_markdown(md)
    assert [c.title for c in chapters] == ["", "Chapter One", "Two"]
    assert "world" in chapters[1].text and "http" not in chapters[1].text
    assert "skip me" not in chapters[2].text and "item a" in chapters[2].text


def test_epub_chapters_in_spine_order() -> None:
    data = make_epub([("First", "<p>Alpha beta.</p><p>Gamma.</p>"), ("Second", "<p>Delta &amp; epsilon.</p>")])
    chapters = parse_epub(data)
    assert [c.title for c in chapters] == ["First", "Second"]
    assert "Alpha beta." in chapters[0].text and "Delta & epsilon." in chapters[1].text
    plan = plan_chunks(chapters, max_chars=400, max_chunks=100)
    assert plan.chapters == [{"title": "First", "first_chunk": 0}, {"title": "Second", "first_chunk": 1}]
    assert [c for c, _ in plan.chunks] == [0, 1]


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("book.epub", b"PK\x03\x04 not really a zip", InvalidRequest),
        ("book.epub", b"hello world", InvalidRequest),
        ("book.pdf", b"%PDF-1.4", UnsupportedFormat),
        ("book", b"text", UnsupportedFormat),
        ("book.txt", b"", InvalidRequest),
        ("book.txt", b"   \n ", InvalidRequest),
        ("book.txt", b"\xff\xfe\x00bad", InvalidRequest),
        ("book.txt", b"x" * 101, PayloadTooLarge),
    ],
)
def test_bad_uploads(name: str, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        parse_upload(name, data, max_bytes=100)
    assert 400 <= info.value.status < 500  # type: ignore[attr-defined]


def test_empty_epub_and_too_many_chunks() -> None:
    chapters = parse_upload("e.epub", make_epub([("", "<p> </p>")]), max_bytes=10**6)
    with pytest.raises(InvalidRequest, match="no readable text"):
        plan_chunks(chapters, max_chars=100, max_chunks=10)
    with pytest.raises(PayloadTooLarge):
        plan_chunks(parse_upload("a.txt", b"Sentence here. " * 100, max_bytes=10**6), max_chars=20, max_chunks=10)
