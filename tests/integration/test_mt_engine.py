"""The llama.cpp engine on the packaged Gemma-3-270M GGUF: batching, streaming, the prompt-head
cache, cancellation, and the service on top (HTML, glossary). Temperature 0 throughout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from voxmesh import errors
from voxmesh.hostcores.broker import CoreBroker
from voxmesh.hostcores.busy import BusyLease
from voxmesh.mt.prompts import GREEDY, PromptStyle
from voxmesh.mt.service import InProcessTranslator, TranslationRequest

pytest.importorskip("llama_cpp")

from voxmesh.engines.llamacpp import LlamaCppEngine

SHORT = replace(GREEDY, max_new_tokens=24)


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    eng = LlamaCppEngine(max_batch_size=4, languages=["en", "zh", "ja", "fr"], n_ctx_per_seq=512)
    eng.load(1)
    yield eng
    eng.close()


def test_base_model_gets_fewshot_prompts_and_translates(engine: LlamaCppEngine) -> None:
    assert engine.metadata["general.architecture"] == "gemma3"
    assert "tokenizer.chat_template" not in engine.metadata  # a base model: few-shot is the default
    assert engine.style is PromptStyle.FEWSHOT
    (out,) = engine.translate(["Thank you very much."], "en", "zh", params=SHORT)
    assert isinstance(out, str) and "谢" in out


def test_concurrent_sequences_share_decode_steps(engine: LlamaCppEngine) -> None:
    texts = ["Good evening.", "The cat is black.", "I like green tea.", "See you tomorrow."]
    steps0 = engine.steps
    gens = engine.translate_segments(texts, "en", "zh", params=SHORT)
    outs = [g.wait(120) for g in gens]
    steps = engine.steps - steps0
    generated = sum(g.n_generated for g in gens)
    assert all(o.strip() for o in outs)
    # unbatched, every generated token costs a decode step; batched, the four share them
    assert steps < generated
    assert steps <= max(g.n_generated for g in gens) + 2


def test_prompt_head_is_prefilled_once_per_pair(engine: LlamaCppEngine) -> None:
    hits = engine.prefix_hits
    engine.translate(["Hello.", "Goodbye."], "en", "fr", params=SHORT)
    assert engine.prefix_hits >= hits + 1


def test_stream_pieces_add_up_to_the_translation(engine: LlamaCppEngine) -> None:
    pieces = list(engine.translate(["One apple.", "Two pears."], "en", "zh", stream=True, params=SHORT))
    assert pieces and {p.index for p in pieces} == {0, 1}
    joined = "".join(p.text for p in pieces)
    assert joined.strip()


async def test_async_stream_and_cancellation_free_the_slot(engine: LlamaCppEngine) -> None:
    agen = engine.astream(["I walk to the station every morning."], "en", "zh", params=GREEDY)
    first = await anext(agen)  # type: ignore[arg-type]
    assert first.index == 0 and first.text
    await agen.aclose()  # cancels the generation
    for _ in range(100):
        if len(engine._free_slots) == engine.max_batch_size:
            break
        await asyncio.sleep(0.05)
    assert len(engine._free_slots) == engine.max_batch_size
    assert await engine.atranslate(["Yes."], "en", "zh", params=SHORT)


def test_prompt_longer_than_the_context_is_413(engine: LlamaCppEngine) -> None:
    with pytest.raises(errors.PayloadTooLarge):
        engine.submit(engine.prompt_for("word " * 600, "en", "zh"), SHORT)


async def test_service_keeps_html_tags_and_splits_sentences(engine: LlamaCppEngine) -> None:
    tr = InProcessTranslator(engine)
    req = TranslationRequest(('<p>Good morning. <b>Thank you.</b></p>',), "en", "zh", "html", params=SHORT)
    (html,) = (await tr.translate(req)).translations
    assert html.startswith("<p>") and "<b>" in html and html.endswith("</b></p>")
    assert "Good morning" not in html
    glossary = TranslationRequest(("I use Voxmesh.",), "en", "zh", glossary={"Voxmesh": "声网"}, params=SHORT)
    assert (await tr.translate(glossary)).translations[0]


def test_the_decode_loop_leases_from_the_host_budget_while_busy(engine: LlamaCppEngine, tmp_path: Path) -> None:
    """On a host core budget the loop leases its threads for the work and returns them when idle."""
    broker = CoreBroker(tmp_path / "cores.json", 2)
    engine.core_lease = BusyLease(broker, "mt", 1)
    try:
        (out,) = engine.translate(["Good night."], "en", "zh", params=SHORT)
        assert out.strip()
        deadline = time.monotonic() + 10
        while broker.snapshot()["leases"]:  # the loop goes idle right after the last step
            assert time.monotonic() < deadline, broker.snapshot()
            time.sleep(0.01)
        assert broker.snapshot()["grants"]["mt"] >= 1 and engine.threads == 1
    finally:
        engine.core_lease = None
