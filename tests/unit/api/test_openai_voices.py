from __future__ import annotations

from voxmesh.api.openai_voices import KOKORO_OPENAI_VOICES, OPENAI_VOICES, map_openai_voice
from voxmesh.engines.kokoro_voices import expected_checksums

KOKORO = sorted(expected_checksums())


def test_every_openai_name_maps_to_a_stock_kokoro_voice() -> None:
    assert set(KOKORO_OPENAI_VOICES) == set(OPENAI_VOICES)
    for name in OPENAI_VOICES:
        assert map_openai_voice(name, KOKORO, KOKORO_OPENAI_VOICES, "af_heart") == KOKORO_OPENAI_VOICES[name]
    assert map_openai_voice("Nova", KOKORO, KOKORO_OPENAI_VOICES, "x") == "af_nova"


def test_single_voice_engine_takes_any_openai_name() -> None:
    assert map_openai_voice("shimmer", ["joe"], {}, "joe") == "joe"


def test_engine_ids_and_other_names_are_left_alone() -> None:
    assert map_openai_voice("af_heart", KOKORO, KOKORO_OPENAI_VOICES, "x") is None
    assert map_openai_voice("nobody", KOKORO, KOKORO_OPENAI_VOICES, "x") is None
    assert map_openai_voice("alloy", ["alloy", "b"], {"alloy": "b"}, "b") is None  # its own voice wins


def test_missing_target_falls_back_to_the_default() -> None:
    five = ["jf_alpha", "jm_kumo"]
    assert map_openai_voice("onyx", five, KOKORO_OPENAI_VOICES, "jf_alpha") == "jf_alpha"
    assert map_openai_voice("onyx", five, {"onyx": "jm_kumo"}, "jf_alpha") == "jm_kumo"
