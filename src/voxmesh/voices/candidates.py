"""Candidate styles for voice matching: the blend pool and the local search (pure, no I/O).

Kokoro's 256-d style row has two halves with different jobs: dims 0-127 condition the
decoder (timbre: what the voice sounds like), dims 128-255 the prosody predictor (durations,
F0, energy: how it speaks). A blend moves both; a **half move** moves one, carried as the
style's shared offset ``a · (mean_o - mean_b)`` on that half only (``mean_v`` = voice ``v``'s
table averaged over its 510 rows), so the voice ``b`` keeps its other half.

:func:`blend_pool` (from the stock voices ranked best first, ``b`` the best):

* every pair of the ``top_k`` best, 50/50;
* ``(1 - a)·b + a·o`` for each other top voice ``o`` and each ``a`` in ``alphas``
  (negative: extrapolate away from ``o``);
* the timbre half and the prosody half of ``b`` moved half way toward each other top voice.

:class:`LocalSearch` is a (mu/mu, lambda) evolution strategy on signed blend weights over a
few voices (the start's voices, then the stock voices whose mean style is nearest the start's
main voice): proposals ``mean + sigma·z`` with ``z`` centred so the weights keep summing to 1,
the mean moves to the best half of each generation, ``sigma`` shrinks by ``decay`` per
generation; the start's offset is kept. ``ask()`` / ``tell(scores)``, with the rng injected.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import numpy.typing as npt

from voxmesh.voices.style import Style

__all__ = ["LocalSearch", "blend_pool", "half_move", "stock_means"]

HALF = 128
Means = Mapping[str, npt.NDArray[np.float64]]


def stock_means(tables: Mapping[str, npt.NDArray[np.float32]]) -> dict[str, npt.NDArray[np.float64]]:
    """Each stock voice's style table averaged over its rows (256-d)."""
    return {k: np.asarray(v, dtype=np.float64).mean(axis=0) for k, v in tables.items()}


def half_move(best: str, other: str, a: float, half: int, means: Means) -> Style:
    """``best`` with one half (0: timbre, 1: prosody) moved ``a`` of the way toward ``other``."""
    delta = np.zeros(2 * HALF)
    part = slice(0, HALF) if half == 0 else slice(HALF, 2 * HALF)
    delta[part] = a * (means[other] - means[best])[part]
    return Style(((best, 1.0),), tuple(float(x) for x in delta))


def blend_pool(ranked: Sequence[str], top_k: int, alphas: Sequence[float],
               means: Means | None) -> list[tuple[str, Style]]:
    """Labelled candidates (see the module doc); half moves only when ``means`` has both voices."""
    top = list(ranked[:max(1, top_k)])
    best = top[0]
    out: list[tuple[str, Style]] = [(f"{a}+{b}", Style(((a, 0.5), (b, 0.5)))) for a, b in combinations(top, 2)]
    for other in top[1:]:
        out += [(f"{best}->{other} {a:+g}", Style(((best, 1.0 - a), (other, a)))) for a in alphas if a != 0.5]
        if means is not None and best in means and other in means:
            out += [(f"{best} timbre->{other}", half_move(best, other, 0.5, 0, means)),
                    (f"{best} prosody->{other}", half_move(best, other, 0.5, 1, means))]
    return out


class LocalSearch:
    def __init__(self, start: Style, voices: Sequence[str], means: Means | None, rng: random.Random, *,
                 size: int = 6, sigma: float = 0.15, decay: float = 0.85, population: int = 6) -> None:
        weights = dict(start.weights)
        main = max(weights, key=lambda v: weights[v])
        near = sorted((v for v in voices if v not in weights),
                      key=lambda v: float(np.linalg.norm(means[v] - means[main])) if means and v in means
                      and main in means else 0.0)
        self.basis = [*weights, *near][:max(size, len(weights))]
        self.mean = np.array([weights.get(v, 0.0) for v in self.basis])
        self.offset = start.offset
        self.sigma = sigma
        self.decay = decay
        self.population = population
        self.rng = rng
        self._asked: list[npt.NDArray[np.float64]] = []

    def style(self, x: npt.NDArray[np.float64]) -> Style:
        return Style(tuple((v, round(float(w), 4)) for v, w in zip(self.basis, x, strict=True) if abs(w) > 1e-4),
                     self.offset)

    def ask(self) -> list[Style]:
        self._asked = []
        for _ in range(self.population):
            z = np.array([self.rng.gauss(0.0, 1.0) for _ in self.basis])
            self._asked.append(self.mean + self.sigma * (z - z.mean()))
        return [self.style(x) for x in self._asked]

    def tell(self, scores: Sequence[float]) -> None:
        """Scores of the last ``ask()``'s styles (a prefix, when the budget ran out)."""
        ranked = sorted(zip(scores, range(len(scores)), strict=False), key=lambda t: -t[0])
        keep = [self._asked[i] for _, i in ranked[:max(1, len(ranked) // 2)]]
        if keep:
            self.mean = np.mean(keep, axis=0)
        self.sigma *= self.decay
