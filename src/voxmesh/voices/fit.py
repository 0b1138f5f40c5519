"""Voice matching: fit a Kokoro style to a reference speaker (not cloning).

Algorithm (after the research notes in DESIGN's voice section; every step scored by the cosine
between the reference's speaker embedding and the embedding of a render of ``fit_text``):

1. **stock**: render every candidate stock voice (all 54 when the pack is there); keep the best.
2. **blend**: from the best voice ``b``, line-search the difference directions to the next
   ``top_k`` voices ``o``: ``(1 - a)·b + a·o`` for ``a`` in ``alphas`` (negative ``a`` is an
   extrapolation away from ``o``); keep the best (a style may stay the stock voice).
3. **walk**: ``walk_steps`` of a (1+1) random search on one 256-d offset added to every row of
   the table (so every input length moves alike, unlike per-row noise): noise is
   ``N(0, 1) · std_dim · U(0.05, 0.3)`` with ``std_dim`` the spread of the stock voices; a step
   is kept when it improves the score.
4. **validate** (when ``validation_text`` is set): the fitted style and the best stock voice
   read a third text; unless the fitted style scores higher there too, the stock voice is kept
   (steps 2-3 overfit the fitting text easily).
5. **report**: the chosen style and the best stock voice rendered on ``heldout_text`` (used
   neither for fitting nor for validation) and scored against the reference: the honest
   figure, since steps 1-4 optimise the fitting encoder.

Limits: the result is a Kokoro voice moved toward the reference, within the model's style
space; published numbers for this route (inno-kokoro) reach about a third of the way from a
stranger to the same speaker. The walk mostly overfits the fitting encoder: keep it short.
Rendering is ~96 % of the cost, so the render function is injected (in-process engine,
or the kokoro deployment through the gateway) along with the encoder and the rng.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from voxmesh.voices.encoder import SpeakerEncoder, cosine

__all__ = ["FitConfig", "FitResult", "Progress", "Render", "Style", "fit_voice", "offset_std", "stock_embeddings_for"]


@dataclass(frozen=True)
class Style:
    """Signed blend weights over stock voices plus a 256-d offset (empty: none)."""

    weights: tuple[tuple[str, float], ...]
    offset: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "offset": [round(x, 6) for x in self.offset]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Style:
        return cls(tuple((str(k), float(v)) for k, v in data["weights"].items()),
                   tuple(float(x) for x in data.get("offset", [])))


Render = Callable[[Style, str], Awaitable[npt.NDArray[np.float32]]]  # -> 16 kHz mono PCM
Progress = Callable[[str, int, int], Awaitable[None]]  # stage, done, total


@dataclass(frozen=True)
class FitConfig:
    fit_text: str
    heldout_text: str
    candidates: tuple[str, ...]
    offset_std: tuple[float, ...] = ()  # per-dimension spread of the stock voices (256)
    top_k: int = 4
    alphas: tuple[float, ...] = (-0.5, -0.25, 0.25, 0.5)
    walk_steps: int = 8
    validation_text: str | None = None


@dataclass
class FitResult:
    style: Style
    encoder: str
    best_stock: str
    stock_scores: dict[str, float]
    fit_score: float  # fitted style, fitting text
    stock_fit_score: float  # best stock voice, fitting text
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


class _Scorer:
    def __init__(self, reference: npt.NDArray[np.float32], render: Render, encoder: SpeakerEncoder) -> None:
        self.reference = reference
        self.render = render
        self.encoder = encoder
        self.renders = 0

    async def score(self, style: Style, text: str) -> float:
        pcm = await self.render(style, text)
        self.renders += 1
        emb = await asyncio.to_thread(self.encoder.embed, pcm)
        return cosine(self.reference, emb)


def _blend(best: str, other: str, a: float) -> Style:
    return Style(((best, 1.0 - a), (other, a)))


async def fit_voice(reference: npt.NDArray[np.float32], render: Render, encoder: SpeakerEncoder, cfg: FitConfig,
                    *, rng: random.Random, progress: Progress | None = None,
                    stock_embeddings: Mapping[str, npt.NDArray[np.float32]] | None = None) -> FitResult:
    """Fit a style to the speaker of ``reference`` (an embedding by ``encoder``); see the module doc.

    ``stock_embeddings`` (voice id -> embedding of that stock voice rendering ``cfg.fit_text``)
    skips step 1's renders for the voices it has: they are the same for every reference, so a
    caller that fits many voices on one text computes them once (:func:`stock_embeddings_for`)."""
    if not cfg.candidates:
        raise ValueError("no candidate voices to fit from")
    scorer = _Scorer(reference, render, encoder)
    walk = cfg.walk_steps if len(cfg.offset_std) == 256 else 0
    others = min(cfg.top_k, len(cfg.candidates) - 1)
    total = len(cfg.candidates) + others * len(cfg.alphas) + walk + 2 + (2 if cfg.validation_text else 0)
    done = 0

    async def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            await progress(stage, done, total)

    stock: dict[str, float] = {}
    for vid in cfg.candidates:
        cached = (stock_embeddings or {}).get(vid)
        if cached is not None:
            stock[vid] = cosine(reference, cached)
        else:
            stock[vid] = await scorer.score(Style(((vid, 1.0),)), cfg.fit_text)
        await tick("stock")
    ranked = sorted(stock, key=lambda v: -stock[v])
    best_id = ranked[0]
    best, best_score = Style(((best_id, 1.0),)), stock[best_id]
    steps: list[dict[str, Any]] = [{"stage": "stock", "voice": best_id, "score": round(best_score, 4)}]
    for other in ranked[1:1 + others]:
        for a in cfg.alphas:
            cand = _blend(best_id, other, a)
            s = await scorer.score(cand, cfg.fit_text)
            await tick("blend")
            if s > best_score:
                best, best_score = cand, s
                steps.append({"stage": "blend", "with": other, "alpha": a, "score": round(s, 4)})
    std = np.asarray(cfg.offset_std, dtype=np.float64)
    offset = np.zeros(256) if walk else np.zeros(0)
    for _ in range(walk):
        scale = rng.uniform(0.05, 0.3)
        noise = np.array([rng.gauss(0.0, 1.0) for _ in range(256)]) * std * scale
        cand = Style(best.weights, tuple(float(x) for x in offset + noise))
        s = await scorer.score(cand, cfg.fit_text)
        await tick("walk")
        if s > best_score:
            best, best_score, offset = cand, s, offset + noise
            steps.append({"stage": "walk", "scale": round(scale, 3), "score": round(s, 4)})
    stock_style = Style(((best_id, 1.0),))
    if cfg.validation_text and best != stock_style:
        v_fit = await scorer.score(best, cfg.validation_text)
        await tick("validate")
        v_stock = await scorer.score(stock_style, cfg.validation_text)
        await tick("validate")
        kept = "matched" if v_fit > v_stock else "stock"
        steps.append({"stage": "validate", "matched": round(v_fit, 4), "stock": round(v_stock, 4), "kept": kept})
        if kept == "stock":
            best, best_score = stock_style, stock[best_id]
    held = await scorer.score(best, cfg.heldout_text)
    await tick("report")
    stock_held = await scorer.score(Style(((best_id, 1.0),)), cfg.heldout_text)
    await tick("report")
    return FitResult(best, encoder.name, best_id, stock, best_score, stock[best_id], held, stock_held,
                     scorer.renders, steps)


async def stock_embeddings_for(voices: Sequence[str], text: str, render: Render, encoder: SpeakerEncoder,
                               progress: Progress | None = None) -> dict[str, npt.NDArray[np.float32]]:
    """Embeddings of each stock voice rendering ``text`` (step 1's cache); ``progress`` gets
    ("stock-cache", done, total)."""
    out: dict[str, npt.NDArray[np.float32]] = {}
    for i, vid in enumerate(voices, 1):
        pcm = await render(Style(((vid, 1.0),)), text)
        out[vid] = await asyncio.to_thread(encoder.embed, pcm)
        if progress is not None:
            await progress("stock-cache", i, len(voices))
    return out


def offset_std(tables: Sequence[npt.NDArray[np.float32]]) -> tuple[float, ...]:
    """Per-dimension spread of the stock voices' mean style (the walk's noise scale)."""
    means = np.stack([np.asarray(t, dtype=np.float64).mean(axis=0) for t in tables])
    return tuple(float(x) for x in means.std(axis=0))
