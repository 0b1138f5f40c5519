"""Every rendered object validated as strictly as an API server would, offline:

* core objects with ``kubernetes-validate --strict`` (its library call) for Kubernetes 1.30,
  1.33 and 1.37 - a kind it has no schema for fails, unless an upstream CRD covers it;
* custom resources against the upstream CRDs in ``../shared/k8s/crds`` (strict JSON Schema
  after defaulting, then the CRDs' CEL rules with cel-python).

Each validator is also shown a broken object, so a validator that finds nothing fails here.
"""

from __future__ import annotations

import copy
import functools

import kubernetes_validate
import pytest
from tests.integration.crd_schema import CrdSet, load_crds
from tests.integration.helm_kit import SCENARIOS, SHARED_K8S, Obj, objects, scenario_objects

K8S_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
CUSTOM_GROUPS = ("policy.linkerd.io/", "gateway.networking.k8s.io/", "keda.sh/", "flagger.app/")

needs_shared = pytest.mark.skipif(not (SHARED_K8S / "crds").is_dir(),
                                  reason=f"{SHARED_K8S}/crds (upstream CRDs, ../shared beside the checkout) is absent")


@functools.cache
def crds() -> CrdSet:
    return load_crds(SHARED_K8S / "crds")


def core_errors(obj: Obj, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']} @ {version}: {exc.message} at {list(exc.absolute_path)}"
    except kubernetes_validate.SchemaNotFoundError:
        return f"{obj['kind']}/{obj['metadata']['name']} @ {version}: no schema for {obj['apiVersion']} {obj['kind']}"
    return None


def validate_all(objs: list[Obj]) -> tuple[list[str], int, int]:
    """(problems, core objects checked, custom resources checked)."""
    problems: list[str] = []
    core = custom = 0
    cs = crds() if (SHARED_K8S / "crds").is_dir() else None
    for o in objs:
        if cs is None and o["apiVersion"].startswith(CUSTOM_GROUPS):
            continue  # no upstream CRDs here: the callers that need them skip
        if cs is not None and cs.covers(o["apiVersion"], o["kind"]):
            custom += 1
            problems += [f"{o['kind']}/{o['metadata']['name']}: {e}" for e in cs.errors(o)]
            continue
        core += 1
        for v in K8S_VERSIONS:
            err = core_errors(o, v)
            if err:
                problems.append(err)
    return problems, core, custom


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_valid(scenario: str) -> None:
    """Core objects always; custom resources where ../shared/k8s/crds is there."""
    problems, core, custom = validate_all(scenario_objects(scenario))
    assert not problems, "\n".join(problems)
    assert core > 5
    if scenario != "linkerd-off" and (SHARED_K8S / "crds").is_dir():
        assert custom > 0


def test_core_validation_catches_a_typo_and_an_unknown_kind() -> None:
    dep = next(o for o in scenario_objects("defaults") if o["metadata"]["name"] == "vm-voxmesh-gateway"
               and o["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 2
    assert core_errors(dep, "1.30.0") and "periodSecond" in str(core_errors(dep, "1.30.0"))
    so = objects(scenario_objects("defaults"), "ScaledObject")[0]
    assert "no schema" in str(core_errors(so, "1.37.0"))


@needs_shared
def test_every_custom_kind_the_chart_emits_has_an_upstream_schema() -> None:
    kinds = {(o["apiVersion"], o["kind"]) for s in SCENARIOS for o in scenario_objects(s)}
    custom = {k for k in kinds if "." in k[0].split("/")[0] and not k[0].startswith(
        ("apps/", "policy/", "batch/", "autoscaling/", "networking.k8s.io/", "scheduling.k8s.io/"))}
    assert custom == {k for k in custom if crds().covers(*k)}
    assert {k[1] for k in custom} == {"Server", "AuthorizationPolicy", "MeshTLSAuthentication", "HTTPRoute",
                                      "ScaledObject", "TriggerAuthentication", "Canary", "MetricTemplate"}


@needs_shared
def test_cel_rules_run_on_the_rendered_routes_and_scaled_objects() -> None:
    route = objects(scenario_objects("canary"), "HTTPRoute")[0]
    report = crds().cel(route)
    assert report.passed >= 10 and not report.failed
    so = objects(scenario_objects("defaults"), "ScaledObject")[0]
    assert crds().cel(so).passed >= 1


def _broken(kind: str, scenario: str, mutate) -> list[str]:  # type: ignore[no-untyped-def]
    obj = copy.deepcopy(objects(scenario_objects(scenario), kind)[0])
    mutate(obj)
    return crds().errors(obj)


@needs_shared
def test_crd_validation_catches_what_the_api_server_would() -> None:
    def typo(o: Obj) -> None:
        o["spec"]["minReplicaCnt"] = o["spec"].pop("minReplicaCount")

    def min_above_max(o: Obj) -> None:
        o["spec"]["minReplicaCount"], o["spec"]["maxReplicaCount"] = 5, 2

    def weight_as_string(o: Obj) -> None:
        o["spec"]["rules"][0]["backendRefs"][0]["weight"] = "90"

    def bad_path(o: Obj) -> None:
        o["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "/v1//tts"}}]

    def no_target(o: Obj) -> None:
        del o["spec"]["targetRef"]

    def identities_not_a_list(o: Obj) -> None:
        o["spec"]["identityRefs"] = {"kind": "ServiceAccount", "name": "x"}

    def step_typo(o: Obj) -> None:
        o["spec"]["analysis"]["stepWeigth"] = o["spec"]["analysis"].pop("stepWeight")

    assert any("minReplicaCnt" in e for e in _broken("ScaledObject", "defaults", typo))
    assert _broken("ScaledObject", "defaults", min_above_max)  # KEDA's CEL rule
    assert _broken("HTTPRoute", "canary", weight_as_string)
    assert _broken("HTTPRoute", "canary", bad_path)  # Gateway API CEL rules on paths
    assert _broken("AuthorizationPolicy", "defaults", no_target)
    assert _broken("MeshTLSAuthentication", "defaults", identities_not_a_list)
    assert any("stepWeigth" in e for e in _broken("Canary", "flagger", step_typo))
