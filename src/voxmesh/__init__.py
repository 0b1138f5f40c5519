"""voxmesh: serve speech-synthesis and translation models in production."""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
