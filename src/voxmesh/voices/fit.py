"""Voice matching: fit a Kokoro style to a reference speaker (not cloning).

Every candidate style is rendered on the **fitting texts** (several, so the fit does not
learn one sentence) and scored: the cosine between the reference's speaker embedding and the
normalised mean of the renders' unit embeddings, plus ``acoustic_weight`` times the
encoder-free acoustic likeness (:mod:`voxmesh.voices.acoustic`: median F0 and spectral
envelope) when the reference's acoustic features are given.

1. **stock**: every candidate stock voice (all 54 when the pack is there); keep the best.
2. **pool** (:func:`voxmesh.voices.candidates.blend_pool`): 50/50 blends of every pair of the
   ``top_k`` best, blends from the best toward the others at ``alphas``, and moves of only the
   timbre half or only the prosody half of the best's style toward each other top voice.
3. **local**: ``local_steps`` evaluations of a small evolution strategy on signed blend
   weights around the pool's winner (:class:`voxmesh.voices.candidates.LocalSearch`).
4. **walk**: ``walk_steps`` of a (1+1) random search on the shared offset (noise
   ``N(0, 1) · std_dim · U(0.05, 0.3)``); off by default: it overfits the fitting encoder.
5. **validate** (when ``validation_text`` is set): the fitted style and the best stock voice
   read a text not used for fitting; unless the fitted style scores higher there too, the
   stock voice is kept.
6. **report**: the chosen style and the best stock voice rendered on ``heldout_text`` (used
   neither for fitting nor for validation) and scored: the honest figure.

``max_renders`` bounds the renders of one fit (stock renders included; a cached stock voice
costs none): steps 2-4 stop early so that 5 and 6 always fit in it.

Limits (``benchmarks/reports/voices.md``, ``voices_ceiling.md``): the result is a Kokoro voice
moved toward the reference within the model's style space. Over 4 non-Kokoro speakers, judged on
held-out text by the encoder not used for fitting, the gain over the best stock voice is +0.017
and +0.039 cosine; a ~7x larger search gains only +0.025 / +0.031 even judged by the fitting
encoder itself, because the encoders disagree about which Kokoro voice is nearest. Rendering is
most of the cost, so the render function is injected (in-process engine, or the kokoro
deployment through the gateway) along with the encoder and the rng.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from voxmesh.voices.acoustic import AcousticFeatures, acoustic_features, acoustic_similarity
from voxmesh.voices.candidates import LocalSearch, blend_pool
from voxmesh.voices.encoder import SpeakerEncoder, cosine
from voxmesh.voices.style import Style

__all__ = ["FitConfig", "FitResult", "Heard", "Progress", "Render", "Style", "fit_voice", "offset_std",
           "stock_embeddings_for"]

Render = Callable[[Style, str], Awaitable[npt.NDArray[np.float32]]]  # -> 16 kHz mono PCM
Progress = Callable[[str, int, int], Awaitable[None]]  # stage, done, total


@dataclass(frozen=True)
class FitConfig:
    fit_text: str
    heldout_text: str
    candidates: tuple[str, ...]
    offset_std: tuple[float, ...] = ()  # per-dimension spread of the stock voices (256): the walk's scale
    top_k: int = 4
    alphas: tuple[float, ...] = (0.25,)
    walk_steps: int = 0
    validation_text: str | None = None
    extra_fit_texts: tuple[str, ...] = ()  # scored with fit_text (mean embedding)
    local_steps: int = 0
    acoustic_weight: float = 0.0
    max_renders: int | None = None
    stock_means: Mapping[str, npt.NDArray[np.float64]] | None = None  # for half moves and the local search

    @property
    def fit_texts(self) -> tuple[str, ...]:
        return (self.fit_text, *self.extra_fit_texts)


@dataclass(frozen=True)
class Heard:
    """What scoring needs from one style's renders of the fitting texts."""

    embedding: npt.NDArray[np.float32]  # normalised mean of the per-text unit embeddings
    acoustic: tuple[AcousticFeatures, ...] = ()


@dataclass
class FitResult:
    style: Style
    encoder: str
    best_stock: str
    stock_scores: dict[str, float]
    fit_score: float  # fitted style, fitting texts (encoder cosine)
    stock_fit_score: float  # best stock voice (by the encoder alone), fitting texts
    heldout_score: float  # fitted style, held-out text
    stock_heldout_score: float  # best stock voice, held-out text
    renders: int
    steps: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        top = dict(sorted(self.stock_scores.items(), key=lambda kv: -kv[1])[:5])
        return {
            "encoder": self.encoder, "best_stock": self.best_stock, "top_stock": top,
            "fit_text": {"matched": round(self.fit_score, 4), "best_stock": round(self.stock_fit_score, 4)},
            "heldout_text": {"matched": round(self.heldout_score, 4), "best_stock": round(self.stock_heldout_score, 4),
                             "gain": round(self.heldout_score - self.stock_heldout_score, 4)},
            "renders": self.renders, "steps": self.steps,
            "note": "cosine similarity by the fitting encoder (the held-out text is not used for fitting)",
        }


def _unit(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


async def hear(style: Style, texts: Sequence[str], render: Render, encoder: SpeakerEncoder) -> Heard:
    embs, feats = [], []
    for text in texts:
        pcm = await render(style, text)
        embs.append(_unit(np.asarray(await asyncio.to_thread(encoder.embed, pcm), dtype=np.float32)))
        feats.append(acoustic_features(pcm))
    return Heard(_unit(np.mean(embs, axis=0).astype(np.float32)), tuple(feats))


class _Scorer:
    def __init__(self, reference: npt.NDArray[np.float32], render: Render, encoder: SpeakerEncoder,
                 acoustic: AcousticFeatures | None, weight: float) -> None:
        self.reference = reference
        self.render = render
        self.encoder = encoder
        self.acoustic = acoustic
        self.weight = weight if acoustic is not None else 0.0
        self.renders = 0

    def value(self, heard: Heard) -> float:
        """What the search maximises: the encoder's cosine plus the weighted acoustic term."""
        s = cosine(self.reference, heard.embedding)
        if self.weight and self.acoustic is not None and heard.acoustic:
            s += self.weight * float(np.mean([acoustic_similarity(self.acoustic, f) for f in heard.acoustic]))
        return s

    async def hear(self, style: Style, texts: Sequence[str]) -> Heard:
        self.renders += len(texts)
        return await hear(style, texts, self.render, self.encoder)

    async def score(self, style: Style, texts: Sequence[str]) -> tuple[float, float]:
        """(search value, encoder cosine) of ``style`` reading ``texts``."""
        heard = await self.hear(style, texts)
        return self.value(heard), cosine(self.reference, heard.embedding)


async def fit_voice(reference: npt.NDArray[np.float32], render: Render, encoder: SpeakerEncoder, cfg: FitConfig,
                    *, rng: random.Random, progress: Progress | None = None,
                    stock_embeddings: Mapping[str, Heard | npt.NDArray[np.float32]] | None = None,
                    reference_acoustic: AcousticFeatures | None = None) -> FitResult:
    """Fit a style to the speaker of ``reference`` (an embedding by ``encoder``); see the module doc.

    ``stock_embeddings`` (voice id -> :class:`Heard` of that stock voice on ``cfg.fit_texts``,
    or a bare embedding) skips step 1's renders for the voices it has: they are the same for
    every reference, so a caller that fits many voices computes them once
    (:func:`stock_embeddings_for`)."""
    if not cfg.candidates:
        raise ValueError("no candidate voices to fit from")
    texts = cfg.fit_texts
    n = len(texts)
    scorer = _Scorer(reference, render, encoder, reference_acoustic, cfg.acoustic_weight)
    cache = stock_embeddings or {}
    uncached = sum(1 for v in cfg.candidates if v not in cache)
    walk_asked = cfg.walk_steps if len(cfg.offset_std) == 256 else 0
    tail = (2 if cfg.validation_text else 0) + 2
    budget = cfg.max_renders if cfg.max_renders is not None else 10**9
    # candidate evaluations (n renders each) the budget leaves after the stock voices and the tail
    spare = max(0, (budget - uncached * n - tail) // n)

    def plan(pool_size: int) -> tuple[int, int, int, int]:
        pool_n = min(pool_size, spare)
        local = min(cfg.local_steps, spare - pool_n)
        walk = min(walk_asked, spare - pool_n - local)
        return pool_n, local, walk, len(cfg.candidates) + pool_n + local + walk + tail

    pool: list[tuple[str, Style]] = []
    pool_n, local, walk, total = plan(len(blend_pool(cfg.candidates, cfg.top_k, cfg.alphas, cfg.stock_means))
                                      if cfg.top_k > 1 else 0)
    done = 0

    async def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            await progress(stage, min(done, total), total)

    stock: dict[str, tuple[float, float]] = {}  # voice -> (search value, encoder cosine)
    for vid in cfg.candidates:
        cached = cache.get(vid)
        if cached is None:
            stock[vid] = await scorer.score(Style(((vid, 1.0),)), texts)
        else:
            heard = cached if isinstance(cached, Heard) else Heard(np.asarray(cached, dtype=np.float32))
            stock[vid] = scorer.value(heard), cosine(reference, heard.embedding)
        await tick("stock")
    # the baseline (and the fallback) is the stock voice the encoder alone finds closest: the
    # acoustic term steers the search, never the voice the fit is compared with
    base_id = max(stock, key=lambda v: stock[v][1])
    ranked = sorted(stock, key=lambda v: -stock[v][0])
    best = Style(((ranked[0], 1.0),))
    best_score, best_cos = stock[ranked[0]]
    steps: list[dict[str, Any]] = [{"stage": "stock", "voice": base_id, "score": round(stock[base_id][1], 4)}]
    if ranked[0] != base_id:
        steps.append({"stage": "stock", "voice": ranked[0], "note": "best with the acoustic term",
                      "score": round(best_score, 4)})
    if cfg.top_k > 1:
        pool = blend_pool(ranked, cfg.top_k, cfg.alphas, cfg.stock_means)
        pool_n, local, walk, total = plan(len(pool))

    async def consider(stage: str, cand: Style, **info: Any) -> float:
        nonlocal best, best_score, best_cos
        value, cos = await scorer.score(cand, texts)
        await tick(stage)
        if value > best_score:
            best, best_score, best_cos = cand, value, cos
            steps.append({"stage": stage, **info, "score": round(value, 4)})
        return value

    for label, cand in pool[:pool_n]:
        await consider("pool", cand, candidate=label)
    if local:
        search = LocalSearch(best, ranked, cfg.stock_means, rng)
        left = local
        while left > 0:
            styles = search.ask()[:left]
            search.tell([await consider("local", cand) for cand in styles])
            left -= len(styles)
    std = np.asarray(cfg.offset_std, dtype=np.float64)
    for _ in range(walk):
        scale = rng.uniform(0.05, 0.3)
        noise = np.array([rng.gauss(0.0, 1.0) for _ in range(256)]) * std * scale
        offset = np.asarray(best.offset, dtype=np.float64) if best.offset else np.zeros(256)
        await consider("walk", Style(best.weights, tuple(float(x) for x in offset + noise)), scale=round(scale, 3))
    stock_style = Style(((base_id, 1.0),))
    if cfg.validation_text and best != stock_style:
        v_fit = (await scorer.score(best, (cfg.validation_text,)))[0]
        await tick("validate")
        v_stock = (await scorer.score(stock_style, (cfg.validation_text,)))[0]
        await tick("validate")
        kept = "matched" if v_fit > v_stock else "stock"
        steps.append({"stage": "validate", "matched": round(v_fit, 4), "stock": round(v_stock, 4), "kept": kept})
        if kept == "stock":
            best, best_cos = stock_style, stock[base_id][1]
    elif cfg.validation_text:
        total -= 2  # nothing to validate: the stock voice won
    held = (await scorer.score(best, (cfg.heldout_text,)))[1]
    await tick("report")
    stock_held = (await scorer.score(stock_style, (cfg.heldout_text,)))[1]
    await tick("report")
    return FitResult(best, encoder.name, base_id, {v: c for v, (_, c) in stock.items()}, best_cos,
                     stock[base_id][1], held, stock_held, scorer.renders, steps)


async def stock_embeddings_for(voices: Sequence[str], texts: str | Sequence[str], render: Render,
                               encoder: SpeakerEncoder, progress: Progress | None = None) -> dict[str, Heard]:
    """What each stock voice sounds like on the fitting ``texts`` (step 1's cache); ``progress``
    gets ("stock-cache", done, total)."""
    texts = (texts,) if isinstance(texts, str) else tuple(texts)
    out: dict[str, Heard] = {}
    for i, vid in enumerate(voices, 1):
        out[vid] = await hear(Style(((vid, 1.0),)), texts, render, encoder)
        if progress is not None:
            await progress("stock-cache", i, len(voices))
    return out


def offset_std(tables: Sequence[npt.NDArray[np.float32]]) -> tuple[float, ...]:
    """Per-dimension spread of the stock voices' mean style (the walk's noise scale)."""
    means = np.stack([np.asarray(t, dtype=np.float64).mean(axis=0) for t in tables])
    return tuple(float(x) for x in means.std(axis=0))
