from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "voxmesh.mt.batcher": {"DynamicBatcher"},
    "voxmesh.mt.service": {"HttpTranslator", "InProcessTranslator", "MtEngine", "TranslationRequest",
                           "TranslationResult", "Translator", "translator_from_settings"},
    "voxmesh.mt.streaming": {"Handle", "InOrder", "Piece", "Start", "StopScanner", "aordered", "ordered"},
    "voxmesh.engines.remote": {"RemoteChatEngine"},
    "voxmesh.api.translate": {"TRANSLATOR_KEY", "setup_translate_routes"},
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_public_surface(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == EXPECTED[module]
    for name in mod.__all__:
        assert hasattr(mod, name)


def test_translator_from_settings_picks_the_remote_engine_without_loading_a_model() -> None:
    from voxmesh.engines.remote import RemoteChatEngine
    from voxmesh.mt.service import translator_from_settings
    from voxmesh.settings import MtSettings

    tr, engine = translator_from_settings(MtSettings(remote_base_url="http://127.0.0.1:9/v1", languages=["en", "zh"]))
    assert isinstance(engine, RemoteChatEngine) and engine.base_url == "http://127.0.0.1:9"
    assert tr.engine is engine
