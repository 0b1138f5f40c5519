"""Semantic checks over the rendered objects (what the API server's cross-object logic, the
webhooks and the controllers would find): every check over every scenario, then each check
against an object broken the way it guards against."""

from __future__ import annotations

import copy
from collections.abc import Callable

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
from tests.integration.helm_kit import CHART, SCENARIOS, Obj, objects, scenario_objects


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_check_passes(scenario: str, check: str) -> None:
    if check == "linkerd_annotations" and not KNOWN_LINKERD:
        pytest.skip("../shared/k8s/linkerd_known_annotations.txt is absent")
    problems = CHECKS[check](scenario_objects(scenario))
    assert not problems, "\n".join(problems)


def test_default_requests_fit_the_documented_nodes() -> None:
    node = values_file_node(CHART)
    assert fits_nodes(scenario_objects("defaults"), float(node["cpu"]), _mem(node["memory"]), int(node["count"])) == []
    # and the packing is tight enough to mean something: one node fewer does not hold them
    assert fits_nodes(scenario_objects("defaults"), float(node["cpu"]), _mem(node["memory"]), int(node["count"]) - 1)


def _find(objs: list[Obj], kind: str, name_part: str = "") -> Obj:
    return next(o for o in objs if o["kind"] == kind and name_part in o["metadata"]["name"])


def _break_selector(objs: list[Obj]) -> None:
    _find(objs, "Deployment", "tts-en")["spec"]["selector"]["matchLabels"]["voxmesh.io/deployment"] = "nope"


def _break_probe_port(objs: list[Obj]) -> None:
    c = _find(objs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["port"] = "metrics"


def _break_service_port(objs: list[Obj]) -> None:
    _find(objs, "Service", "mt")["spec"]["ports"][0]["targetPort"] = "grpc"


def _break_route_weights(objs: list[Obj]) -> None:
    _find(objs, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]["weight"] = 80


def _break_route_backend(objs: list[Obj]) -> None:
    _find(objs, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][1]["name"] = "vm-voxmesh-voice-v3"


def _break_authorization(objs: list[Obj]) -> None:
    ids = _find(objs, "MeshTLSAuthentication")["spec"]["identityRefs"]
    ids.append({"kind": "ServiceAccount", "name": "vm-voxmesh-mt"})  # a worker may call workers


def _break_autoscaler(objs: list[Obj]) -> None:
    so = _find(objs, "ScaledObject", "tts-en")
    objs.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "extra"}, "spec": {"scaleTargetRef": so["spec"]["scaleTargetRef"],
                                                         "minReplicas": 1, "maxReplicas": 2}})


def _break_pdb(objs: list[Obj]) -> None:
    pdb = _find(objs, "PodDisruptionBudget", "gateway")
    pdb["spec"]["minAvailable"] = 2  # the gateway HPA's minimum is 2: no pod may leave


def _break_annotation(objs: list[Obj]) -> None:
    _find(objs, "Service", "tts-en")["metadata"]["annotations"]["config.linkerd.io/timeout"] = "30s"


def _misplace_annotation(objs: list[Obj]) -> None:
    tpl = _find(objs, "Deployment", "tts-en")["spec"]["template"]
    tpl["metadata"]["annotations"]["retry.linkerd.io/limit"] = "2"


def _break_cron(objs: list[Obj]) -> None:
    _find(objs, "CronJob")["spec"]["schedule"] = "0 25 * * *"


def _break_security(objs: list[Obj]) -> None:
    c = _find(objs, "Deployment", "mt")["spec"]["template"]["spec"]["containers"][0]
    c["securityContext"]["readOnlyRootFilesystem"] = False


def _break_command(objs: list[Obj]) -> None:
    c = _find(objs, "Deployment", "mt")["spec"]["template"]["spec"]["containers"][0]
    c["args"] = [a for a in c["args"] if a != "--engine" and a != "llamacpp"]


def _break_gateway_config(objs: list[Obj]) -> None:
    cm = _find(objs, "ConfigMap", "config")
    data = yaml.safe_load(cm["data"]["gateway.yaml"])
    data["deployments"][0]["external"]["urls"] = ["http://vm-voxmesh-gone.voxmesh.svc.cluster.local:8000"]
    cm["data"]["gateway.yaml"] = yaml.safe_dump(data)


def _break_name(objs: list[Obj]) -> None:
    _find(objs, "Service", "mt")["metadata"]["name"] = "vm-voxmesh-mt.v1"


def _break_metric_template(objs: list[Obj]) -> None:
    objs.remove(_find(objs, "MetricTemplate", "latency"))


BREAKERS: dict[str, tuple[str, Callable[[list[Obj]], None]]] = {
    "names": ("defaults", _break_name),
    "selectors": ("defaults", _break_selector),
    "selectors-flagger": ("flagger", _break_metric_template),
    "ports": ("defaults", _break_probe_port),
    "ports-service": ("defaults", _break_service_port),
    "httproutes": ("canary", _break_route_weights),
    "httproutes-backend": ("canary", _break_route_backend),
    "authorization": ("defaults", _break_authorization),
    "single_autoscaler": ("defaults", _break_autoscaler),
    "pdbs": ("defaults", _break_pdb),
    "linkerd_annotations": ("defaults", _break_annotation),
    "linkerd_annotations-kind": ("defaults", _misplace_annotation),
    "cronjobs": ("ha", _break_cron),
    "security": ("defaults", _break_security),
    "commands": ("defaults", _break_command),
    "gateway_config": ("defaults", _break_gateway_config),
}


@pytest.mark.parametrize("case", sorted(BREAKERS))
def test_check_finds_the_break(case: str) -> None:
    scenario, breaker = BREAKERS[case]
    check = case.split("-")[0]
    if check == "linkerd_annotations" and not KNOWN_LINKERD:
        pytest.skip("../shared/k8s/linkerd_known_annotations.txt is absent")
    objs = copy.deepcopy(scenario_objects(scenario))
    assert not run_checks(objs, [check])
    breaker(objs)
    assert run_checks(objs, [check]), f"check {check} missed the break {breaker.__name__}"


def test_every_check_has_a_break() -> None:
    assert {c.split("-")[0] for c in BREAKERS} == set(CHECKS)


def test_scaled_objects_scale_on_the_controllers_metrics() -> None:
    """KEDA's triggers are the local controller's: in-flight (running + queued) and QPS of the
    worker's own metrics, with the deployment's per-replica targets; runners on queue length."""
    objs = scenario_objects("canary")
    v1 = _find(objs, "ScaledObject", "voice-v1")["spec"]
    (trig,) = v1["triggers"]
    assert trig["metadata"]["query"] == ('sum(voxmesh_worker_in_flight{namespace="voxmesh",model="voice-v1"})'
                                         ' + sum(voxmesh_worker_queue_length{namespace="voxmesh",model="voice-v1"})')
    assert trig["metadata"]["threshold"] == "2" and trig["metricType"] == "AverageValue"
    assert (v1["minReplicaCount"], v1["maxReplicaCount"]) == (3, 4)  # min 2 + warm 1
    (qps,) = _find(objs, "ScaledObject", "voice-v2")["spec"]["triggers"]
    assert qps["metadata"]["query"] == 'sum(rate(voxmesh_worker_requests_total{namespace="voxmesh",model="voice-v2"}[1m]))'
    runner = _find(scenario_objects("ha"), "ScaledObject", "runner")["spec"]
    assert runner["triggers"][0]["type"] == "rabbitmq"
    assert runner["triggers"][0]["metadata"].items() >= {"mode": "QueueLength", "queueName": "tts-tasks",
                                                          "value": "20"}.items()
    pg = _find(scenario_objects("flagger"), "ScaledObject", "runner")["spec"]["triggers"][0]
    assert pg["type"] == "postgresql" and "chunks" in pg["metadata"]["query"]


def test_keda_off_means_cpu_hpas_on_every_worker_and_the_runners() -> None:
    objs = scenario_objects("keda-off-hpa")
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects(objs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"vm-voxmesh-gateway", "vm-voxmesh-tts-en", "vm-voxmesh-tts-multi", "vm-voxmesh-mt",
                         "vm-voxmesh-runner"}
    for h in hpas.values():
        assert h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert not objects(objs, "ScaledObject")


def test_workers_request_their_threads_and_wait_for_the_model() -> None:
    dep = _find(scenario_objects("defaults"), "Deployment", "tts-multi")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["cpu"] == "2" and c["resources"]["limits"]["cpu"] == "2"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] >= 1
    spec = dep["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > 60  # the worker drains for up to 60 s
    assert "replicas" not in dep["spec"]  # KEDA owns the count


def test_linkerd_mode_reaches_the_split_service_and_the_gateway_splits_without_linkerd() -> None:
    cm = _find(scenario_objects("canary"), "ConfigMap", "config")
    gw = yaml.safe_load(cm["data"]["gateway.yaml"])
    assert gw["settings"]["gateway"]["mesh"] == "linkerd" and "splits" not in gw
    assert {"name": "voice", "external": {"urls": ["http://vm-voxmesh-voice.voxmesh.svc.cluster.local:8000"],
                                          "kind": "tts"}} in gw["deployments"]
    cm = _find(scenario_objects("linkerd-off"), "ConfigMap", "config")
    gw = yaml.safe_load(cm["data"]["gateway.yaml"])
    assert gw["settings"]["gateway"]["mesh"] == "builtin" and gw["splits"] == {"voice": {"voice-v1": 75, "voice-v2": 25}}
    env = _find(scenario_objects("canary"), "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "VOXMESH_GATEWAY__MESH", "value": "linkerd"} in env


def test_remote_engine_reaches_its_chat_server_through_the_gateway() -> None:
    c = _find(scenario_objects("external-gpu"), "Deployment", "-mt")["spec"]["template"]["spec"]["containers"][0]
    opts = yaml.safe_load(c["args"][c["args"].index("--options") + 1])
    assert opts == {"base_url": "http://vm-voxmesh-gateway.voxmesh.svc.cluster.local:80", "model": "chat-gpu"}


def test_scale_to_zero_wakes_on_gateway_demand() -> None:
    so = _find(scenario_objects("external-gpu"), "ScaledObject", "-mt")["spec"]
    assert so["minReplicaCount"] == 0 and so["cooldownPeriod"] == 600
    wake = next(t for t in so["triggers"] if t["name"] == "gateway-requests")
    assert wake["metadata"]["query"] == (
        'sum(rate(voxmesh_route_requests_total{namespace="voxmesh",deployment="mt"}[2m]))')
    assert wake["metadata"]["activationThreshold"] == "0.1"
    assert not [o for o in scenario_objects("external-gpu")
                if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"].endswith("-mt")]
