"""Voice matching's search, driven by a fake renderer whose 'audio' is the style itself."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import numpy.typing as npt

from voxmesh.voices.fit import FitConfig, Style, fit_voice, offset_std, stock_embeddings_for

rng = np.random.default_rng(1)
TABLES = {f"af_{i}": rng.standard_normal((510, 256)).astype(np.float32) for i in range(6)}


def effective(style: Style) -> npt.NDArray[np.float32]:
    total = sum(w for _, w in style.weights)
    table = sum(TABLES[v] * (w / total) for v, w in style.weights)
    vec = np.asarray(table, dtype=np.float32).mean(axis=0)
    return vec + (np.asarray(style.offset, dtype=np.float32) if style.offset else 0)


class Identity:
    name = "identity"

    def embed(self, pcm16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return pcm16k


def run(target: npt.NDArray[np.float32], walk: int = 6) -> tuple[object, list[tuple[str, int, int]]]:
    seen: list[tuple[str, int, int]] = []
    texts: list[str] = []

    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        texts.append(text)
        return effective(style)

    async def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))

    cfg = FitConfig("fit", "held", tuple(TABLES), offset_std(list(TABLES.values())), top_k=2, walk_steps=walk)
    result = asyncio.run(fit_voice(target, render, Identity(), cfg, rng=random.Random(0), progress=progress))
    assert texts.count("held") == 2 and set(texts) == {"fit", "held"}
    return result, seen


def test_picks_the_best_stock_voice_then_improves_on_it() -> None:
    target = effective(Style((("af_2", 0.75), ("af_3", 0.25))))  # a blend the line search can reach exactly
    result, seen = run(target)
    assert result.best_stock == max(result.stock_scores, key=lambda v: result.stock_scores[v]) == "af_2"
    assert result.fit_score > result.stock_fit_score
    assert dict(result.style.weights) == {"af_2": 0.75, "af_3": 0.25} and result.fit_score > 0.999
    assert result.renders == 6 + 2 * 4 + 6 + 2
    assert seen[-1][1] == seen[-1][2] == result.renders and [s for s, _, _ in seen].count("stock") == 6
    report = result.report()
    assert report["best_stock"] == "af_2" and report["heldout_text"]["gain"] >= 0


def test_walk_keeps_only_improvements() -> None:
    target = effective(Style((("af_1", 1.0),))) + np.float32(0.05) * rng.standard_normal(256).astype(np.float32)
    result, _ = run(target, walk=10)
    scores = [s["score"] for s in result.steps]
    assert scores == sorted(scores)  # every kept step improved the fitting score
    assert len(result.style.offset) in (0, 256)
    restored = Style.from_dict(result.style.as_dict())
    assert dict(restored.weights) == dict(result.style.weights)


def test_no_walk_without_offset_scale() -> None:
    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        return effective(style)

    cfg = FitConfig("fit", "held", ("af_0", "af_1"), (), top_k=1, alphas=(0.5,), walk_steps=5)
    result = asyncio.run(fit_voice(effective(Style((("af_0", 1.0),))), render, Identity(), cfg, rng=random.Random(0)))
    assert result.renders == 2 + 1 + 2 and result.style.offset == ()


def test_cached_stock_embeddings_skip_their_renders() -> None:
    calls: list[Style] = []

    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        calls.append(style)
        return effective(style)

    async def go() -> tuple[object, object]:
        cache = await stock_embeddings_for(list(TABLES), "fit", render, Identity())
        calls.clear()
        cfg = FitConfig("fit", "held", tuple(TABLES), (), top_k=1, alphas=(0.5,), walk_steps=0)
        target = effective(Style((("af_5", 1.0),)))
        cached = await fit_voice(target, render, Identity(), cfg, rng=random.Random(0), stock_embeddings=cache)
        fresh = await fit_voice(target, render, Identity(), cfg, rng=random.Random(0))
        return cached, fresh

    cached, fresh = asyncio.run(go())
    assert cached.renders == 1 + 2 and fresh.renders == 6 + 1 + 2  # type: ignore[attr-defined]
    assert cached.stock_scores == fresh.stock_scores  # type: ignore[attr-defined]


def test_validation_keeps_stock_when_the_fit_does_not_carry_over() -> None:
    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        if text == "val":  # on unseen text the blend partner and the offset only hurt
            primary = max(style.weights, key=lambda p: p[1])[0]
            return effective(Style(((primary, 1.0),))) - (0 if len(style.weights) == 1 else 0.5)
        return effective(style)

    target = effective(Style((("af_2", 0.75), ("af_3", 0.25))))
    cfg = FitConfig("fit", "held", tuple(TABLES), (), top_k=2, walk_steps=0, validation_text="val")
    result = asyncio.run(fit_voice(target, render, Identity(), cfg, rng=random.Random(0)))
    assert result.style == Style((("af_2", 1.0),)) and result.steps[-1]["kept"] == "stock"
    assert result.renders == 6 + 2 * 4 + 2 + 2
    cfg_ok = FitConfig("fit", "held", tuple(TABLES), (), top_k=2, walk_steps=0, validation_text="fit")
    kept = asyncio.run(fit_voice(target, render, Identity(), cfg_ok, rng=random.Random(0)))
    assert dict(kept.style.weights) == {"af_2": 0.75, "af_3": 0.25} and kept.steps[-1]["kept"] == "matched"
