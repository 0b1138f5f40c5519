from __future__ import annotations

import pytest

from voxmesh import errors
from voxmesh.mt.memory import MemoryEngine
from voxmesh.mt.service import InProcessTranslator, TranslationRequest, TranslationResult
from voxmesh.mt.streaming import Piece


def make(**kw: object) -> tuple[InProcessTranslator, MemoryEngine]:
    engine = MemoryEngine({("en", "zh"): {"Hello.": "你好。", "How are you?": "你好吗？"}}, languages=["en", "zh", "ja"])
    return InProcessTranslator(engine, **kw), engine  # type: ignore[arg-type]


async def test_segments_of_all_texts_go_to_the_engine_in_one_call() -> None:
    tr, engine = make()
    result = await tr.translate(TranslationRequest(("Hello. How are you?", "Bye."), "en", "zh"))
    assert result.translations == ["你好。你好吗？", "[zh] Bye."]
    assert engine.calls == [(("Hello.", "How are you?", "Bye."), "en", "zh")]
    assert result.detected == []


async def test_auto_detects_per_text_and_same_language_passes_through() -> None:
    tr, engine = make()
    result = await tr.translate(TranslationRequest(("Hello.", "早上好"), "auto", "zh"))
    assert result.translations == ["你好。", "早上好"]
    assert [d.language for d in result.detected if d] == ["en", "zh"]
    assert len(engine.calls) == 1


async def test_html_keeps_tags() -> None:
    tr, _ = make()
    result = await tr.translate(TranslationRequest(('<p class="a">Hello. <b>How are you?</b></p>',), "en", "zh", "html"))
    assert result.translations == ['<p class="a">你好。 <b>你好吗？</b></p>']


async def test_unsupported_pair_lists_supported_and_oversize_is_413() -> None:
    tr, _ = make(max_input_chars=10)
    with pytest.raises(errors.UnsupportedLanguage) as err:
        await tr.translate(TranslationRequest(("Hi",), "en", "fr"))
    assert err.value.status == 400 and "en, zh, ja" in err.value.message
    with pytest.raises(errors.PayloadTooLarge):
        await tr.translate(TranslationRequest(("x" * 11,), "en", "zh"))
    with pytest.raises(errors.InvalidRequest):
        await tr.translate(TranslationRequest((), "en", "zh"))


async def test_long_input_is_split_by_sentence() -> None:
    tr, engine = make(max_segment_chars=30)
    text = "This is a fairly long sentence, with a clause, and another clause that runs on."
    await tr.translate(TranslationRequest((text,), "en", "zh"))
    segments = engine.calls[0][0]
    assert len(segments) > 1 and all(len(s) <= 30 for s in segments)


async def test_stream_yields_pieces_in_order_then_the_result() -> None:
    tr, _ = make()
    items = [x async for x in tr.stream(TranslationRequest(("Hello. Bye now.", "Good"), "en", "zh"))]
    pieces = [x for x in items if isinstance(x, Piece)]
    result = items[-1]
    assert isinstance(result, TranslationResult)
    assert "".join(p.text for p in pieces if p.index == 0) == result.translations[0] == "你好。[zh] Bye now."
    assert "".join(p.text for p in pieces if p.index == 1) == result.translations[1] == "[zh] Good"
    assert [p.index for p in pieces] == sorted(p.index for p in pieces)
