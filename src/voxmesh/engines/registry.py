"""Engine registry: name -> factory, so a worker is started with ``--engine NAME``.

``create_engine(name, options)`` builds an *unloaded* engine; the worker then calls
``load(threads)`` and ``warm_up()``. Factories import their engine module lazily, so a worker
for one engine never imports another engine's heavy dependencies.

Built in: piper, kokoro (TTS), cosyvoice (zero-shot cloning on a remote CosyVoice server),
llamacpp and remote (MT), tone (the deterministic test engine). Extension point: another engine registers itself with :func:`register_engine`, or is
added to ``_BUILTIN`` below. A factory takes the options
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


def _flag(name: str, options: Mapping[str, Any], key: str) -> bool:
    value = options.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"engine {name}: option {key} must be true or false, got {value!r}")
    return value


def _useful_threads(name: str, options: Mapping[str, Any], default: int | None) -> int | None:
    """``max_useful_threads``: the most intra-op threads that still make one request of this
    engine faster (the core scheduler never grants more); ``None``: no cap."""
    value = options.get("max_useful_threads", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"engine {name}: option max_useful_threads must be an integer >= 1, got {value!r}")
    return value


def _piper(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.piper import PiperEngine

    _check_options("piper", options, {"model_path", "config_path", "release_memory", "max_useful_threads"})
    model = options.get("model_path")
    config = options.get("config_path")
    engine = PiperEngine(Path(model) if model else None, Path(config) if config else None,
                         release_memory=_flag("piper", options, "release_memory"))
    # Piper scales to 16 threads on a 16-core Xeon (463 -> 109 ms, ../shared/bench/scale_16core_xeon.txt)
    engine.max_useful_threads = _useful_threads("piper", options, None)
    return engine


# Kokoro int8 on a 16-core Xeon: 9.6 / 8.3 / 10.4 s at 1 / 2 / 4 threads (../shared/bench/kokoro_16core_xeon.txt)
KOKORO_MAX_USEFUL_THREADS = 2


def _kokoro(options: Mapping[str, Any]) -> Any:
    from voxmesh.api.openai_voices import OPENAI_VOICES
    from voxmesh.engines.kokoro import KokoroEngine

    _check_options("kokoro", options, {"release_memory", "voices_path", "openai_voices", "max_useful_threads"})
    path = options.get("voices_path")
    mapping = options.get("openai_voices") or {}
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ConfigError("engine kokoro: option openai_voices must map OpenAI voice names to voice ids")
    unknown = sorted(set(mapping) - set(OPENAI_VOICES))
    if unknown:
        raise ConfigError(f"engine kokoro: openai_voices has unknown names {unknown}; OpenAI's are {list(OPENAI_VOICES)}")
    engine = KokoroEngine(release_memory=_flag("kokoro", options, "release_memory"),
                          voices_path=Path(path) if path else None, openai_voices=dict(mapping))
    engine.max_useful_threads = _useful_threads("kokoro", options, KOKORO_MAX_USEFUL_THREADS)
    return engine


def _tone(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.tone import ToneEngine

    _check_options("tone", options, {"sample_rate", "ms_per_char", "delay_s"})
    return ToneEngine(**options)


def _llamacpp(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(**options)


def _remote(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.remote import RemoteChatEngine

    opts = dict(options)
    if "base_url" not in opts:
        raise ConfigError("engine remote needs options.base_url (an OpenAI-compatible chat server) or options.via")
    key_file = opts.pop("internal_key_file", None)
    if key_file is not None:  # options.via with auth on: the stack's internal key, read here, never on argv
        from pathlib import Path

        from voxmesh.auth.guard import load_internal_key

        opts["api_key"] = load_internal_key(Path(key_file).parent)
    return RemoteChatEngine(opts.pop("base_url"), **opts)


def _cosyvoice(options: Mapping[str, Any]) -> Any:
    from voxmesh.engines.cosyvoice import CosyVoiceRemoteEngine

    _check_options("cosyvoice", options, {"base_url", "sample_rate", "method", "timeout_s", "languages"})
    if not isinstance(options.get("base_url"), str):
        raise ConfigError("engine cosyvoice needs options.base_url: the CosyVoice FastAPI server (http://host:50000)")
    try:
        return CosyVoiceRemoteEngine(
            options["base_url"], sample_rate=int(options.get("sample_rate", 22050)),
            method=str(options.get("method", "GET")), timeout_s=float(options.get("timeout_s", 120.0)),
            languages=tuple(options.get("languages", ("zh", "en", "ja", "ko"))))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"engine cosyvoice: {exc}") from exc


_BUILTIN: dict[str, Factory] = {
    "piper": _piper, "kokoro": _kokoro, "tone": _tone, "llamacpp": _llamacpp, "remote": _remote,
    "cosyvoice": _cosyvoice,
}
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
