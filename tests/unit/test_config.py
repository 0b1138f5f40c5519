from __future__ import annotations

from pathlib import Path

import pytest

from voxmesh.deployments import DEFAULT_CONFIG, load_deployments
from voxmesh.errors import ConfigError
from voxmesh.settings import load_settings


def test_default_config_loads() -> None:
    cfg = load_deployments(DEFAULT_CONFIG)
    names = [d.name for d in cfg.deployments]
    assert names == ["tts-en", "tts-multi", "mt"]
    assert cfg.aliases["tts-1"] == "tts-en"


def test_env_overrides_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXMESH_SERVER__PORT", "9191")
    s = load_settings()
    assert s.server.port == 9191


def test_file_settings_and_unknown_key_warns(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("settings:\n  server: {port: 7000}\n  bogus: 1\n")
    with pytest.warns(UserWarning, match="bogus"):
        s = load_settings(f)
    assert s.server.port == 7000


def test_bad_values_are_config_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("deployments:\n  - name: x\n    engine: piper\n    replicas: {min: 3, max: 1}\n")
    with pytest.raises(ConfigError, match="replicas"):
        load_deployments(f)
    f.write_text("deployments:\n  - name: x\n    engine: piper\naliases: {tts-1: nope}\n")
    with pytest.raises(ConfigError, match="nope"):
        load_deployments(f)
    with pytest.raises(ConfigError, match="port"):
        load_settings(None, server={"port": 99999})
