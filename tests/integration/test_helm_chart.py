"""The chart renders and lints clean for every scenario, gates its custom resources on values
and on the cluster's APIs, and matches the reviewed golden files.

Golden files: ``tests/integration/golden/helm_<scenario>.yaml``. After a deliberate chart
change, regenerate them with ``VOXMESH_UPDATE_GOLDEN=1 pytest tests/integration/test_helm_chart.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import helm_python as helm
import pytest
from tests.integration.helm_kit import (
    CHART,
    SCENARIOS,
    objects,
    parse,
    render,
    scenario_objects,
    scenario_values,
)

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_SCENARIOS = ("defaults", "canary", "ha")
CUSTOM_KINDS = {"Server", "AuthorizationPolicy", "MeshTLSAuthentication", "HTTPRoute", "ScaledObject",
                "TriggerAuthentication", "Canary", "MetricTemplate"}
# Kubernetes 1.30 (the chart's floor) and the newest Helm knows
KUBE_VERSIONS = ("v1.30.0", "v1.37.0")


def test_there_are_the_scenarios_the_issue_lists() -> None:
    assert set(SCENARIOS) >= {"defaults", "keda-off-hpa", "canary", "flagger", "linkerd-off", "ha", "external-gpu"}


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_strict_finds_nothing_at_warning_or_above(scenario: str, kube: str) -> None:
    report = helm.lint(str(CHART), scenario_values(scenario), strict=True, kube_version=kube)
    bad = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not bad and not report["errors"], (bad, report["errors"])


def test_lint_does_report_a_broken_template(tmp_path: Path) -> None:
    """The lint gate is live: a template with broken YAML is a finding of severity >= 2."""
    import shutil

    chart = tmp_path / "voxmesh"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "gateway" / "service.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n name: x\n  bad: [\n")
    report = helm.lint(str(chart), {}, strict=True, kube_version="v1.30.0")
    assert any(m["severity"] >= 2 for m in report["messages"]) or report["errors"]


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_renders_complete_objects(scenario: str, kube: str) -> None:
    objs = parse(render(scenario_values(scenario), kube_version=kube))
    assert objs
    for o in objs:
        assert o.get("apiVersion") and o.get("kind") and o.get("metadata", {}).get("name"), o
        assert o["metadata"]["labels"]["app.kubernetes.io/instance"] == "vm"


def test_the_default_scenario_has_each_component() -> None:
    objs = scenario_objects("defaults")
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    for dep in ("tts-en", "tts-multi", "mt"):
        for kind in ("Deployment", "Service", "ServiceAccount", "ScaledObject", "Server", "AuthorizationPolicy"):
            assert (kind, f"vm-voxmesh-{dep}") in names, (kind, dep)
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert (kind, "vm-voxmesh-gateway") in names
    assert ("Deployment", "vm-voxmesh-tts-en-placeholder") in names  # warm: 1
    assert ("PriorityClass", "vm-voxmesh-overprovisioning") in names


def test_ha_has_runners_batch_and_ingress() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in scenario_objects("ha")}
    assert {("Deployment", "vm-voxmesh-runner"), ("CronJob", "vm-voxmesh-batch"), ("Ingress", "vm-voxmesh-gateway"),
            ("ScaledObject", "vm-voxmesh-runner"), ("TriggerAuthentication", "vm-voxmesh-runner")} <= kinds


def test_custom_resources_need_the_api_on_the_cluster() -> None:
    """Without the CRDs installed (no API versions) the chart emits only core objects."""
    objs = parse(render(scenario_values("flagger") | {"canary": {"flagger": {"enabled": True, "deployments": ["tts-en"]}}},
                        api_versions=()))
    assert not {o["kind"] for o in objs} & CUSTOM_KINDS
    # KEDA missing but asked for: no ScaledObject, and no HPA sneaks in beside a future one
    objs = parse(render({}, api_versions=("policy.linkerd.io/v1beta3", "policy.linkerd.io/v1alpha1")))
    assert not objects(objs, "ScaledObject") and objects(objs, "Server")


def test_custom_resources_need_their_values() -> None:
    objs = scenario_objects("linkerd-off")
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"Server", "AuthorizationPolicy", "MeshTLSAuthentication", "HTTPRoute"}
    for o in objects(objs, "Deployment"):
        assert o["spec"]["template"]["metadata"]["annotations"].get("linkerd.io/inject") in ("disabled", None)
    assert "Canary" not in {o["kind"] for o in scenario_objects("defaults")}
    assert objects(scenario_objects("flagger"), "Canary")


def test_namespace_injection_leaves_the_pod_annotation_to_the_namespace() -> None:
    objs = parse(render({"linkerd": {"inject": "namespace"}}))
    for o in objects(objs, "Deployment"):
        ann = o["spec"]["template"]["metadata"]["annotations"]
        if o["metadata"]["name"].endswith("-placeholder"):
            continue
        assert "linkerd.io/inject" not in ann and ann["config.linkerd.io/proxy-cpu-request"] == "100m"


@pytest.mark.parametrize("scenario", GOLDEN_SCENARIOS)
def test_golden(scenario: str) -> None:
    rendered = render(scenario_values(scenario))
    text = "".join(f"# Source: {path}\n{body.strip()}\n" for path, body in rendered.items())
    path = GOLDEN / f"helm_{scenario}.yaml"
    if os.environ.get("VOXMESH_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with VOXMESH_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{scenario} differs from {path}; if intended, regenerate (see module doc)"


def test_opaque_and_skipped_ports_reach_the_pods_that_need_them() -> None:
    from tests.integration.helm_checks import KNOWN_LINKERD, check_linkerd_annotations

    objs = parse(render({"linkerd": {"opaquePorts": "9000", "skipOutboundPorts": "5432"}}))
    gw = next(o for o in objects(objs, "Deployment") if o["metadata"]["name"] == "vm-voxmesh-gateway")
    ann = gw["spec"]["template"]["metadata"]["annotations"]
    assert ann["config.linkerd.io/opaque-ports"] == "9000" and ann["config.linkerd.io/skip-outbound-ports"] == "5432"
    if KNOWN_LINKERD:
        assert check_linkerd_annotations(objs) == []


def test_a_worker_pinned_to_special_nodes_takes_its_placeholder_along() -> None:
    import kubernetes_validate

    dep = {"name": "tts-big", "engine": "kokoro", "threads": 4, "memory": "3Gi",
           "replicas": {"min": 1, "max": 3, "warm": 1},
           "extraResources": {"limits": {"memory": "4Gi"}},
           "nodeSelector": {"voxmesh.io/pool": "big"},
           "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "speech", "effect": "NoSchedule"}]}
    objs = parse(render({"workers": {"deployments": [dep]}, "aliases": {"tts-1": "tts-big", "tts-1-hd": None}}))
    work = next(o for o in objects(objs, "Deployment") if o["metadata"]["name"] == "vm-voxmesh-tts-big")
    hold = next(o for o in objects(objs, "Deployment") if o["metadata"]["name"] == "vm-voxmesh-tts-big-placeholder")
    res = work["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "4", "memory": "3Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}
    for o in (work, hold):
        assert o["spec"]["template"]["spec"]["nodeSelector"] == {"voxmesh.io/pool": "big"}
        assert o["spec"]["template"]["spec"]["tolerations"][0]["value"] == "speech"
        kubernetes_validate.validate(o, "1.30.0", strict=True)
    assert hold["spec"]["replicas"] == 1
    assert hold["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "4", "memory": "3Gi"}
