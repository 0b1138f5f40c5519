"""A fitted Kokoro style: signed blend weights over stock voices plus a shared 256-d offset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Style"]


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
