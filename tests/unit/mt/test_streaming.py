from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voxmesh.mt.streaming import InOrder, StopScanner


def test_stop_scanner_strips_leading_space_holds_partial_stop_and_cuts() -> None:
    s = StopScanner(["\n\n"])
    assert s.feed("  Hello") == "Hello"
    assert s.feed(" world\n") == " world"  # the newline might start the stop: held
    assert s.feed("\nmore") == ""
    assert s.stopped and s.text == "Hello world"
    assert s.feed("ignored") == ""


def test_stop_scanner_releases_held_text_at_the_end() -> None:
    s = StopScanner(["\n\n"])
    assert s.feed("Hi\n") == "Hi"
    assert s.flush() == "\n"
    assert s.text == "Hi\n"


@given(st.lists(st.text(alphabet="ab\n ", max_size=4), max_size=12))
def test_emitted_text_is_always_a_prefix_of_the_final_text(chunks: list[str]) -> None:
    s = StopScanner(["\n"])
    out = "".join(s.feed(c) for c in chunks) + s.flush()
    assert out == s.text
    assert "\n" not in out


def test_in_order_buffers_later_segments() -> None:
    o = InOrder(3)
    assert o.add(1, "b") == []
    assert o.add(0, "a") == [(0, "a")]
    assert o.add(2, "c") == []
    assert o.finish(2) == []
    assert o.finish(0) == [(1, "b")]
    assert o.add(1, "b2") == [(1, "b2")]
    assert o.finish(1) == [(2, "c")]
