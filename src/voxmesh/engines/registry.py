"""Engine registry: name -> factory, so a worker is started with ``--engine NAME``.

``create_engine(name, options)`` builds an *unloaded* engine; the worker then calls
``load(threads)`` and ``warm_up()``. Factories import their engine module lazily, so a worker
for one engine never imports another engine's heavy dependencies.

Extension point: another engine registers itself with :func:`register_engine` (for example
``register_engine("llamacpp", _llamacpp_factory)`` in ``engines/llamacpp.py``, imported from
the MT worker's start-up), or is added to ``_BUILTIN`` below. A factory takes the options
mapping from the deployment and must reject options it does not know (``ConfigError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from voxmesh.errors import ConfigError, UnknownModel

__all__ = ["create_engine", "engine_names", "register_engine"]

Factory = Callable[[Mapping[str, Any]], Any]


def _check_options(name: str, options: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"engine {name}: unknown options {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")


def _piper(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.piper import PiperEngine

    _check_options("piper", options, {"model_path", "config_path"})
    model = options.get("model_path")
    config = options.get("config_path")
    return PiperEngine(Path(model) if model else None, Path(config) if config else None)


def _kokoro(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.kokoro import KokoroEngine

    _check_options("kokoro", options, set())
    return KokoroEngine()


_BUILTIN: dict[str, Factory] = {"piper": _piper, "kokoro": _kokoro}
_REGISTRY: dict[str, Factory] = dict(_BUILTIN)


def register_engine(name: str, factory: Factory) -> None:
    """Add (or replace) an engine factory under ``name``."""
    _REGISTRY[name] = factory


def engine_names() -> list[str]:
    return sorted(_REGISTRY)


def create_engine(name: str, options: Mapping[str, Any] | None = None) -> Any:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownModel(f"unknown engine {name!r}; available: {', '.join(engine_names())}") from None
    return factory(options or {})
