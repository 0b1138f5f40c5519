"""Weighted traffic split: public model name -> backend deployments (SMI ``TrafficSplit``).

``set("voice", {"voice-v1": 90, "voice-v2": 10})`` sends about 10% of the requests for
``voice`` to ``voice-v2``. Weights are relative (they need not sum to 100), may be zero
(a deployment kept in the split but receiving nothing, as after a canary rollback), and
are replaced atomically at run time. A model that was never given a split routes to the
deployment of the same name, so a plain deployment needs no split at all.

Algorithm
    Cumulative weights and one uniform draw from the injected rng per pick, so a seeded rng
    gives a reproducible sequence and the share converges as a binomial (2,000 picks at 10%:
    standard deviation 0.67 percentage points).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass

from voxmesh.errors import InvalidRequest

__all__ = ["TrafficSplit", "WeightedChoice"]


@dataclass(frozen=True)
class WeightedChoice:
    names: tuple[str, ...]
    weights: tuple[float, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, weights: Mapping[str, float]) -> WeightedChoice:
        if not weights:
            raise InvalidRequest("a traffic split needs at least one deployment", param="weights")
        for name, w in weights.items():
            if not isinstance(w, int | float) or w < 0 or w != w:
                raise InvalidRequest(f"weight of {name!r} must be a number >= 0, got {w!r}", param="weights")
        if sum(weights.values()) <= 0:
            raise InvalidRequest("at least one weight in a traffic split must be > 0", param="weights")
        names = tuple(weights)
        ws = tuple(float(weights[n]) for n in names)
        return cls(names, ws, tuple(itertools.accumulate(ws)))

    def pick(self, rng: random.Random) -> str:
        x = rng.random() * self.cumulative[-1]
        i = bisect.bisect_right(self.cumulative, x)
        # bisect_right skips zero-weight entries (equal cumulative values) by construction.
        return self.names[min(i, len(self.names) - 1)]

    def shares(self) -> dict[str, float]:
        total = self.cumulative[-1]
        return {n: w / total for n, w in zip(self.names, self.weights, strict=True)}


class TrafficSplit:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else random.Random()
        self._splits: dict[str, WeightedChoice] = {}

    def set(self, model: str, weights: Mapping[str, float]) -> None:
        self._splits[model] = WeightedChoice.of(weights)

    def clear(self, model: str) -> None:
        self._splits.pop(model, None)

    def pick(self, model: str) -> str:
        split = self._splits.get(model)
        return model if split is None else split.pick(self.rng)

    def weights(self, model: str) -> dict[str, float]:
        split = self._splits.get(model)
        return {model: 1.0} if split is None else dict(zip(split.names, split.weights, strict=True))

    def models(self) -> list[str]:
        return sorted(self._splits)
