"""voxmesh.deploy.values: a deployments file -> the chart's values (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxmesh.deploy.chart import merge_values
from voxmesh.deploy.values import values_from_config, whole_percentages
from voxmesh.deployments import DEFAULT_CONFIG, DeploymentsConfig, load_deployments
from voxmesh.errors import ConfigError


def test_default_config() -> None:
    v = values_from_config(load_deployments(DEFAULT_CONFIG))
    assert [d["name"] for d in v["workers"]["deployments"]] == ["tts-en", "tts-multi", "mt"]
    tts = v["workers"]["deployments"][0]
    assert tts["engine"] == "piper" and tts["threads"] == 2
    assert tts["replicas"] == {"min": 1, "max": 2, "warm": 1}
    assert tts["scaling"]["in_flight_per_replica"] == 2 and tts["scaling"]["queue_per_replica"] == 2
    assert "qps_per_replica" not in tts["scaling"] and "hold_requests" not in tts["scaling"]
    assert v["aliases"] == {"tts-1": "tts-en", "tts-1-hd": "tts-multi", "gpt-4o-mini-tts": "tts-multi"}
    assert "server" not in v["settings"]  # 127.0.0.1:8080 is one machine's
    assert v["jobs"]["runners"]["enabled"] is False  # SQLite: runners cannot share it


def test_externals_splits_and_runners() -> None:
    cfg = DeploymentsConfig.model_validate({
        "settings": {"jobs": {"db_url": "postgresql+asyncpg://db/voxmesh", "queue": "rabbitmq"}, "data_dir": "/x",
                     "storage": {"backend": "s3"}},
        "deployments": [
            {"name": "voice-v1", "engine": "piper"},
            {"name": "voice-v2", "engine": "kokoro", "threads": 3, "env": {"VOXMESH_WORKER__MAX_QUEUE": "8"}},
            {"name": "gpu", "external": {"urls": ["http://gpu:8000"], "kind": "tts"}},
        ],
        "splits": {"voice": {"voice-v1": 2, "voice-v2": 1}},
    })
    v = values_from_config(cfg)
    assert v["splits"] == {"voice": {"voice-v1": 67, "voice-v2": 33}}
    assert v["externals"] == [{"name": "gpu", "external": {"urls": ["http://gpu:8000"], "kind": "tts", "tls": False}}]
    assert v["workers"]["deployments"][0]["threads"] == 1  # not "every core of the node"
    assert v["workers"]["deployments"][1]["env"] == {"VOXMESH_WORKER__MAX_QUEUE": "8"}
    assert v["jobs"]["runners"]["enabled"] is True
    assert v["settings"] == {"jobs": {"db_url": "postgresql+asyncpg://db/voxmesh", "queue": "rabbitmq"},
                             "storage": {"backend": "s3"}}


def test_chart_default_aliases_are_dropped_unless_the_file_has_them() -> None:
    cfg = DeploymentsConfig.model_validate({"deployments": [{"name": "a", "engine": "piper"}],
                                            "aliases": {"tts-1": "a"}})
    v = values_from_config(cfg, {"aliases": {"tts-1": "tts-en", "tts-1-hd": "tts-multi"}})
    assert v["aliases"] == {"tts-1": "a", "tts-1-hd": None}


def test_split_over_an_external_is_refused() -> None:
    cfg = DeploymentsConfig.model_validate({
        "deployments": [{"name": "a", "engine": "piper"}, {"name": "b", "external": {"urls": ["http://b"]}}],
        "splits": {"m": {"a": 1, "b": 1}},
    })
    with pytest.raises(ConfigError, match=r"splits\.m: \['b'\]"):
        values_from_config(cfg)


def test_zero_weights_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"splits\.m: weights sum to 0"):
        whole_percentages({"a": 0, "b": 0}, "splits.m")


@given(st.dictionaries(st.text("abc", min_size=1, max_size=3), st.floats(0, 1000), min_size=1, max_size=6)
       .filter(lambda w: sum(w.values()) > 0))
def test_whole_percentages_sum_to_100_and_stay_within_one_point(weights: dict[str, float]) -> None:
    out = whole_percentages(weights, "w")
    assert sum(out.values()) == 100 and set(out) == set(weights)
    total = sum(weights.values())
    for k, w in weights.items():
        assert abs(out[k] - 100 * w / total) < 1


def test_merge_values_is_helms_coalescing() -> None:
    low = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_values(low, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert low == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_keda_replicas() -> None:
    from voxmesh.deploy.keda import desired_replicas, desired_replicas_many

    assert desired_replicas(57, 20, 1, 10) == 3
    assert desired_replicas(250, 20, 1, 10) == 10
    assert desired_replicas(0, 20, 2, 10) == 2
    assert desired_replicas(0, 20, 0, 10) == 0 and desired_replicas(0.5, 20, 0, 10) == 1
    assert desired_replicas(3, 2, 0, 10, activation=5) == 0
    assert desired_replicas_many([(5, 2), (9, 2)], 1, 4) == 4
    with pytest.raises(ValueError):
        desired_replicas(1, 0, 1, 2)


def test_chart_dir_env_then_source_tree(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from voxmesh.deploy.chart import chart_dir

    monkeypatch.delenv("VOXMESH_CHART_DIR", raising=False)
    assert (chart_dir() / "Chart.yaml").is_file()  # deploy/helm/voxmesh of this source tree
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: voxmesh\nversion: 0.0.1\n")
    monkeypatch.setenv("VOXMESH_CHART_DIR", str(tmp_path))
    assert chart_dir() == tmp_path
    with pytest.raises(ConfigError, match="VOXMESH_CHART_DIR"):
        chart_dir(tmp_path / "nowhere")
