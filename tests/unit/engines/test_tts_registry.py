from __future__ import annotations

import pytest

from voxmesh.engines.registry import create_engine, engine_names, register_engine
from voxmesh.engines.tone import ToneEngine
from voxmesh.errors import ConfigError, UnknownModel


def test_builtin_engines_are_created_unloaded() -> None:
    assert {"piper", "kokoro"} <= set(engine_names())
    piper = create_engine("piper", {})
    kokoro = create_engine("kokoro")
    assert piper.name == "piper" and kokoro.name == "kokoro"
    assert piper._sessions is None and kokoro._sessions is None  # load() is the worker's call


def test_unknown_engine_and_options() -> None:
    with pytest.raises(UnknownModel, match=r"available: .*kokoro.*piper"):
        create_engine("espeak")
    with pytest.raises(ConfigError, match="unknown options"):
        create_engine("kokoro", {"colour": "x"})


def test_register_extension_point() -> None:
    register_engine("tone-test", lambda opts: ToneEngine(**opts))
    engine = create_engine("tone-test", {"sample_rate": 8000})
    assert isinstance(engine, ToneEngine) and engine.sample_rate == 8000


def test_release_memory_option_reaches_the_engine_and_must_be_a_bool() -> None:
    assert create_engine("piper", {"release_memory": True}).release_memory is True
    assert create_engine("kokoro", {"release_memory": False}).release_memory is False
    assert create_engine("piper").release_memory is False
    with pytest.raises(ConfigError, match="release_memory must be true or false"):
        create_engine("kokoro", {"release_memory": "yes"})
