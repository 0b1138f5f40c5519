"""Quality regression guard: chrF of the packaged 270M model on the project's test sets.

Thresholds sit a little below what benchmarks/mt.py measured at temperature 0 with the same
engine configuration (few-shot prompts, max_batch_size=8; batch composition changes float
rounding, so keep it equal to the benchmark's). They catch a broken prompt, tokenizer or
sampler, not a quality claim: the model is demo grade. See benchmarks/reports/mt.md."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("sacrebleu")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.mt import evaluate

from voxmesh.engines.llamacpp import LlamaCppEngine
from voxmesh.mt.prompts import PromptStyle

pytestmark = pytest.mark.slow

# measured (benchmarks/reports/mt.md): en-zh 32.5, zh-en 54.6
THRESHOLDS = {"en-zh": 29.0, "zh-en": 50.0}


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    eng = LlamaCppEngine(max_batch_size=8)
    eng.load(1)
    yield eng
    eng.close()


def test_chrf_does_not_regress(engine: LlamaCppEngine) -> None:
    scores = evaluate(engine, PromptStyle.FEWSHOT)
    for direction, (score, _, hyps) in scores.items():
        assert len(hyps) >= 30
        assert score >= THRESHOLDS[direction], f"{direction} chrF {score:.1f} < {THRESHOLDS[direction]}"
