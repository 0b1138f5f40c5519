"""Values the chart refuses (``fail`` helpers and values.schema.json), and ``voxmesh deploy``
end to end: the default ``voxmesh up`` config renders to manifests that pass every check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.helm_checks import (
    CHECKS,
    KNOWN_LINKERD,
    _mem,
    fits_nodes,
    run_checks,
    values_file_node,
)
from tests.integration.helm_kit import CHART, ROOT, SHARED_K8S, objects, render

from voxmesh.errors import ConfigError


def refused(values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        render(values)
    msg = info.value.message
    assert "\n" not in msg
    return msg


def test_fail_min_above_max() -> None:
    msg = refused({"workers": {"deployments": [{"name": "a", "engine": "piper", "replicas": {"min": 3, "max": 2}}]}})
    assert "workers.deployments[a].replicas: min (3) is above max (2)" in msg
    assert "jobs.runners.replicas" in refused({"jobs": {"runners": {"replicas": {"min": 5, "max": 1}}}})
    assert "gateway.hpa" in refused({"gateway": {"hpa": {"minReplicas": 9, "maxReplicas": 3}}})


def test_fail_weights_not_100() -> None:
    workers = {"deployments": [{"name": "v1", "engine": "piper", "replicas": {"min": 1, "max": 1}},
                               {"name": "v2", "engine": "piper", "replicas": {"min": 1, "max": 1}}]}
    msg = refused({"workers": workers, "splits": {"voice": {"v1": 90, "v2": 20}}, "aliases": {"tts-1-hd": None}})
    assert "splits.voice: weights sum to 110, not 100" in msg
    assert "is not a workers.deployments name" in refused(
        {"workers": workers, "splits": {"voice": {"v1": 90, "v3": 10}}})


def test_fail_hpa_and_keda_both_on() -> None:
    msg = refused({"autoscaling": {"keda": {"enabled": True}, "hpa": {"enabled": True}}})
    assert "keda.enabled and hpa.enabled are both true" in msg


def test_fail_runners_without_shared_storage() -> None:
    assert "settings.storage.backend: s3" in refused({"jobs": {"runners": {"enabled": True}}})


def test_fail_references() -> None:
    assert "aliases.tts-1: \"gone\"" in refused({"aliases": {"tts-1": "gone"}})
    assert "canary.flagger.deployments" in refused({"canary": {"flagger": {"enabled": True, "deployments": ["nope"]}}})
    long = "a" * 60
    assert "longer than 63" in refused({"workers": {"deployments": [
        {"name": long, "engine": "piper", "replicas": {"min": 1, "max": 1}}]}, "aliases": {"tts-1": long, "tts-1-hd": None}})


@pytest.mark.parametrize(("values", "where"), [
    ({"workers": {"port": 0}}, "/workers/port"),
    ({"splits": {"voice": {"a": "90", "b": 10}}}, "/splits/voice/a"),
    ({"linkerd": {"inject": "both"}}, "/linkerd/inject"),
    ({"linkerd": {"timeout": {"request": "2 minutes"}}}, "/linkerd/timeout/request"),
    ({"autoscaling": {"hpa": {"cpuUtilization": 170}}}, "/autoscaling/hpa/cpuUtilization"),
    ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext/readOnlyRootFilesystem"),
    ({"workers": {"deployments": [{"name": "Bad Name", "engine": "piper", "replicas": {"min": 1, "max": 1}}]}},
     "/workers/deployments/0/name"),
    ({"workers": {"deployments": [{"name": "a", "engine": "piper", "replicas": {"min": 1, "max": 1},
                                   "scaling": {"in_flight": 2}}]}}, "/workers/deployments/0/scaling"),
    ({"gatway": {}}, "gatway"),
])
def test_schema_rejects(values: dict[str, Any], where: str) -> None:
    assert where in refused(values)


def voxmesh(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voxmesh", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_deploy_render_of_the_default_config_passes_every_check(tmp_path: Path) -> None:
    from tests.integration.test_helm_validate import validate_all

    proc = voxmesh("deploy", "render", "--release", "vm", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert {o["metadata"]["name"] for o in objects(objs, "Deployment")} >= {
        "vm-voxmesh-gateway", "vm-voxmesh-tts-en", "vm-voxmesh-tts-multi", "vm-voxmesh-mt"}
    checks = [c for c in CHECKS if KNOWN_LINKERD or c != "linkerd_annotations"]
    assert run_checks(objs, checks) == []
    problems, core, custom = validate_all(objs)
    assert problems == [] and core > 5
    assert custom > 5 or not (SHARED_K8S / "crds").is_dir()
    node = values_file_node(CHART)
    assert fits_nodes(objs, float(node["cpu"]), _mem(node["memory"]), int(node["count"])) == []


def test_deploy_values_round_trips_through_the_chart(tmp_path: Path) -> None:
    proc = voxmesh("deploy", "values", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    values = yaml.safe_load(proc.stdout)
    assert [d["name"] for d in values["workers"]["deployments"]] == ["tts-en", "tts-multi", "mt"]
    (tmp_path / "values.yaml").write_text(proc.stdout)
    extra = tmp_path / "extra.yaml"
    extra.write_text("autoscaling: {keda: {enabled: false}, hpa: {enabled: true}}\n")
    proc = voxmesh("deploy", "render", "--values", str(extra), "--namespace", "speech", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert not objects(objs, "ScaledObject") and len(objects(objs, "HorizontalPodAutoscaler")) == 4
    assert "voxmesh-tts-en.speech.svc.cluster.local" in proc.stdout


@pytest.mark.parametrize(("config", "field"), [
    ("deployments:\n  - name: x\n    engine: piper\n    replicas: {min: 3, max: 2}\n", "deployments.0.replicas"),
    ("deployments:\n  - name: x\n    engine: piper\n    replica: {min: 1}\n", "deployments.0.replica"),
    ("deployments:\n  - name: x\n    engine: piper\n    pronunciation_dictionary: d.jsonl\n",
     "deployments[0] (x).pronunciation_dictionary"),
    ("settings: {jobs: {queue: kafka}}\ndeployments:\n  - name: x\n    engine: piper\n", "settings.jobs.queue"),
    ("deployments:\n  - name: x\n    engine: piper\n  - name: y\n    external: {urls: ['http://h:1']}\n"
     "splits: {v: {x: 1, y: 1}}\n", "splits.v"),
])
def test_bad_config_exits_non_zero_with_one_line_naming_the_field(tmp_path: Path, config: str, field: str) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_text(config)
    for sub in ("values", "render"):
        proc = voxmesh("deploy", sub, "--config", str(path), cwd=tmp_path)
        assert proc.returncode == 2 and proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and field in lines[0], proc.stderr


def test_bad_values_file_exits_with_one_line(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("autoscaling: {hpa: {enabled: true}}\n")
    proc = voxmesh("deploy", "render", "--values", str(extra), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "keda.enabled and hpa.enabled" in proc.stderr


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0", "1.37.0"])
def test_kubernetes_validate_cli_on_the_rendered_manifests(tmp_path: Path, version: str) -> None:
    """The `kubernetes-validate --strict` command itself on `voxmesh deploy render`'s output:
    it exits 0 even for kinds it has no schema for (only a WARN), so every WARN must name a
    kind an upstream CRD covers (test_helm_validate checks those)."""
    import re

    from tests.integration.test_helm_validate import CUSTOM_GROUPS

    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = voxmesh("deploy", "render", "--release", "vm", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(proc.stdout)
    out = subprocess.run([str(exe), "--strict", "--quiet", "-k", version, str(manifests)],
                         capture_output=True, text=True, timeout=60)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert out.returncode == 0, lines
    for line in lines:
        m = re.search(r"Couldn't find schema for kind (\w+) with api version (\S+)", line)
        assert m is not None and m.group(2).startswith(CUSTOM_GROUPS), line
