"""Voice matching's search, driven by a fake renderer whose 'audio' is the style itself."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import numpy.typing as npt

from voxmesh.voices.candidates import LocalSearch, blend_pool, half_move, stock_means
from voxmesh.voices.fit import FitConfig, FitResult, Style, fit_voice, offset_std, stock_embeddings_for

rng = np.random.default_rng(1)
TABLES = {f"af_{i}": rng.standard_normal((510, 256)).astype(np.float32) for i in range(6)}
MEANS = stock_means(TABLES)


def effective(style: Style) -> npt.NDArray[np.float32]:
    total = sum(w for _, w in style.weights)
    table = sum(TABLES[v] * (w / total) for v, w in style.weights)
    vec = np.asarray(table, dtype=np.float32).mean(axis=0)
    return vec + (np.asarray(style.offset, dtype=np.float32) if style.offset else 0)


class Identity:
    name = "identity"

    def embed(self, pcm16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return pcm16k


def run(target: npt.NDArray[np.float32], **kw: object) -> tuple[FitResult, list[tuple[str, int, int]], list[str]]:
    seen: list[tuple[str, int, int]] = []
    texts: list[str] = []

    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        texts.append(text)
        return effective(style)

    async def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))

    opts: dict[str, object] = {"top_k": 2, "alphas": (0.25,), **kw}
    cfg = FitConfig("fit", "held", tuple(TABLES), **opts)  # type: ignore[arg-type]
    result = asyncio.run(fit_voice(target, render, Identity(), cfg, rng=random.Random(0), progress=progress))
    assert texts.count("held") == 2
    assert result.renders == len(texts)
    assert seen[-1][1] == seen[-1][2]  # progress ends at its total
    return result, seen, texts


def test_picks_the_best_stock_voice_then_the_pool_reaches_a_blend() -> None:
    target = effective(Style((("af_2", 0.75), ("af_3", 0.25))))  # a blend the pool holds exactly
    result, seen, _ = run(target)
    assert result.best_stock == max(result.stock_scores, key=lambda v: result.stock_scores[v]) == "af_2"
    assert dict(result.style.weights) == {"af_2": 0.75, "af_3": 0.25} and result.fit_score > 0.999
    assert result.renders == 6 + 2 + 2  # stock, pool (50/50 and +0.25), report
    assert [s for s, _, _ in seen].count("stock") == 6 and [s for s, _, _ in seen].count("pool") == 2
    report = result.report()
    assert report["best_stock"] == "af_2" and report["heldout_text"]["gain"] >= 0


def test_every_fitting_text_is_rendered_for_every_candidate() -> None:
    target = effective(Style((("af_2", 0.75), ("af_3", 0.25))))
    result, _, texts = run(target, extra_fit_texts=("fit2",))
    assert texts.count("fit") == texts.count("fit2") == 6 + 2
    assert result.renders == 2 * (6 + 2) + 2


def test_half_moves_reach_a_voice_with_another_voices_timbre() -> None:
    target = effective(half_move("af_2", "af_3", 0.5, 0, MEANS))
    result, _, _ = run(target, stock_means=MEANS)
    assert result.style == half_move("af_2", "af_3", 0.5, 0, MEANS) and result.fit_score > 0.999
    assert any(s.get("candidate") == "af_2 timbre->af_3" for s in result.steps)


def test_the_local_search_improves_on_the_pool() -> None:
    target = effective(Style((("af_2", 0.5), ("af_3", 0.3), ("af_4", 0.2))))
    pooled, _, _ = run(target, top_k=3)
    local, _, _ = run(target, top_k=3, local_steps=24, stock_means=MEANS)
    assert local.fit_score > pooled.fit_score
    assert [s["score"] for s in local.steps] == sorted(s["score"] for s in local.steps)
    assert abs(sum(w for _, w in local.style.weights) - 1.0) < 1e-3


def test_the_render_budget_bounds_every_fit() -> None:
    target = effective(Style((("af_2", 0.5), ("af_3", 0.3), ("af_4", 0.2))))
    for budget in (3, 9, 14, 40):
        result, seen, _ = run(target, top_k=3, local_steps=50, walk_steps=50, stock_means=MEANS,
                              offset_std=offset_std(list(TABLES.values())), max_renders=budget,
                              extra_fit_texts=("fit2",), validation_text="val")
        # the 6 stock voices (2 texts each) always run; past them the budget is kept
        assert result.renders <= max(budget, 6 * 2 + 4), budget
        assert seen[-1][2] == len(seen)


def test_walk_keeps_only_improvements() -> None:
    target = effective(Style((("af_1", 1.0),))) + np.float32(0.05) * rng.standard_normal(256).astype(np.float32)
    result, _, _ = run(target, top_k=0, walk_steps=10, offset_std=offset_std(list(TABLES.values())))
    scores = [s["score"] for s in result.steps]
    assert scores == sorted(scores)  # every kept step improved the fitting score
    assert len(result.style.offset) in (0, 256)
    restored = Style.from_dict(result.style.as_dict())
    assert dict(restored.weights) == dict(result.style.weights)


def test_no_walk_without_offset_scale() -> None:
    result, _, _ = run(effective(Style((("af_0", 1.0),))), top_k=0, walk_steps=5)
    assert result.renders == 6 + 2 and result.style.offset == ()


def test_cached_stock_embeddings_skip_their_renders() -> None:
    calls: list[Style] = []

    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        calls.append(style)
        return effective(style)

    async def go() -> tuple[FitResult, FitResult, FitResult]:
        cache = await stock_embeddings_for(list(TABLES), "fit", render, Identity())
        calls.clear()
        cfg = FitConfig("fit", "held", tuple(TABLES), top_k=2, alphas=())
        target = effective(Style((("af_5", 1.0),)))
        cached = await fit_voice(target, render, Identity(), cfg, rng=random.Random(0), stock_embeddings=cache)
        bare = {k: v.embedding for k, v in cache.items()}
        cached_bare = await fit_voice(target, render, Identity(), cfg, rng=random.Random(0), stock_embeddings=bare)
        fresh = await fit_voice(target, render, Identity(), cfg, rng=random.Random(0))
        return cached, cached_bare, fresh

    cached, cached_bare, fresh = asyncio.run(go())
    assert cached.renders == cached_bare.renders == 1 + 2 and fresh.renders == 6 + 1 + 2
    assert cached.stock_scores == fresh.stock_scores
    assert cached_bare.stock_scores.keys() == fresh.stock_scores.keys()


def test_validation_keeps_stock_when_the_fit_does_not_carry_over() -> None:
    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        if text == "val":  # on unseen text the blend partner only hurts
            primary = max(style.weights, key=lambda p: p[1])[0]
            return effective(Style(((primary, 1.0),))) - (0 if len(style.weights) == 1 else 0.5)
        return effective(style)

    target = effective(Style((("af_2", 0.75), ("af_3", 0.25))))
    cfg = FitConfig("fit", "held", tuple(TABLES), top_k=2, validation_text="val")
    result = asyncio.run(fit_voice(target, render, Identity(), cfg, rng=random.Random(0)))
    assert result.style == Style((("af_2", 1.0),)) and result.steps[-1]["kept"] == "stock"
    assert result.renders == 6 + 2 + 2 + 2
    cfg_ok = FitConfig("fit", "held", tuple(TABLES), top_k=2, validation_text="fit")
    kept = asyncio.run(fit_voice(target, render, Identity(), cfg_ok, rng=random.Random(0)))
    assert dict(kept.style.weights) == {"af_2": 0.75, "af_3": 0.25} and kept.steps[-1]["kept"] == "matched"


def test_blend_pool_shape() -> None:
    pool = blend_pool(["af_0", "af_1", "af_2"], 3, (0.25, -0.25), MEANS)
    labels = [label for label, _ in pool]
    assert labels[:3] == ["af_0+af_1", "af_0+af_2", "af_1+af_2"]
    assert len(pool) == 3 + 2 * 2 + 2 * 2
    assert {"af_0 timbre->af_1", "af_0 prosody->af_2"} <= set(labels)
    timbre = dict(pool)["af_0 timbre->af_1"]
    assert np.allclose(timbre.offset[128:], 0) and not np.allclose(timbre.offset[:128], 0)
    assert len(blend_pool(["af_0", "af_1"], 2, (0.25,), None)) == 2  # no half moves without the means


def test_local_search_proposals_keep_the_weights_summing_to_one() -> None:
    search = LocalSearch(Style((("af_0", 0.75), ("af_1", 0.25)), (0.1,) * 256), list(TABLES), MEANS,
                         random.Random(3), size=4)
    assert search.basis[:2] == ["af_0", "af_1"] and len(search.basis) == 4
    for _ in range(3):
        styles = search.ask()
        assert all(abs(sum(w for _, w in s.weights) - 1.0) < 1e-3 and s.offset == (0.1,) * 256 for s in styles)
        search.tell([float(i) for i in range(len(styles))])


def test_the_acoustic_term_steers_the_search_but_not_the_baseline() -> None:
    from voxmesh.voices.acoustic import acoustic_features

    async def render(style: Style, text: str) -> npt.NDArray[np.float32]:
        return effective(style)

    target = effective(Style((("af_2", 0.75), ("af_3", 0.25))))
    cfg = FitConfig("fit", "held", tuple(TABLES), top_k=2, acoustic_weight=5.0)
    loud = acoustic_features(effective(Style((("af_4", 1.0),))))  # 'sounds like' af_4 to the acoustic term
    result = asyncio.run(fit_voice(target, render, Identity(), cfg, rng=random.Random(0), reference_acoustic=loud))
    plain = asyncio.run(fit_voice(target, render, Identity(), FitConfig("fit", "held", tuple(TABLES), top_k=2),
                                  rng=random.Random(0)))
    assert result.best_stock == plain.best_stock == "af_2"  # the encoder's pick, whatever the acoustic term says
    assert result.stock_scores == plain.stock_scores and result.stock_heldout_score == plain.stock_heldout_score
    assert any(s.get("note") == "best with the acoustic term" and s["voice"] == "af_4" for s in result.steps)
