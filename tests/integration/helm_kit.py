"""Shared pieces of the chart tests: render a scenario, parse the objects, find them by kind.

Every scenario of ``deploy/helm/voxmesh/ci/*.yaml`` renders once per session (release ``vm``,
namespace ``voxmesh``, every custom-resource API present, Kubernetes 1.30) through the same
function ``voxmesh deploy render`` uses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from voxmesh.deploy.chart import ALL_API_VERSIONS, render_manifests

__all__ = [
    "CHART",
    "NAMESPACE",
    "RELEASE",
    "ROOT",
    "SCENARIOS",
    "SHARED_K8S",
    "Obj",
    "by_kind",
    "objects",
    "parse",
    "pod_specs",
    "render",
    "scenario_objects",
    "scenario_values",
]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "voxmesh"


def _shared_k8s() -> Path:
    """``../shared/k8s`` beside the checkout; from a git worktree, beside the main checkout."""
    here = ROOT.parent / "shared" / "k8s"
    git = ROOT / ".git"
    if not here.is_dir() and git.is_file():
        # "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text().split(":", 1)[1].strip())
        main = gitdir.parent.parent.parent
        if (main.parent / "shared" / "k8s").is_dir():
            return main.parent / "shared" / "k8s"
    return here


SHARED_K8S = _shared_k8s()
SCENARIOS = sorted(p.stem for p in (CHART / "ci").glob("*.yaml"))
RELEASE = "vm"
NAMESPACE = "voxmesh"

Obj = dict[str, Any]


def scenario_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / f"{name}.yaml").read_text()) or {}


def render(values: Mapping[str, Any], *, api_versions: tuple[str, ...] = ALL_API_VERSIONS,
           kube_version: str = "v1.30.0") -> dict[str, str]:
    return render_manifests(values, chart=CHART, release=RELEASE, namespace=NAMESPACE,
                            api_versions=api_versions, kube_version=kube_version)


def parse(rendered: Mapping[str, str]) -> list[Obj]:
    out: list[Obj] = []
    for text in rendered.values():
        out.extend(d for d in yaml.safe_load_all(text) if d)
    return out


@functools.cache
def _scenario(name: str) -> tuple[Obj, ...]:
    return tuple(parse(render(scenario_values(name))))


def scenario_objects(name: str) -> list[Obj]:
    """A fresh deep copy each call (tests may mutate)."""
    import copy

    return copy.deepcopy(list(_scenario(name)))


def objects(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o.get("kind") == kind]


def by_kind(objs: list[Obj]) -> dict[str, dict[str, Obj]]:
    out: dict[str, dict[str, Obj]] = {}
    for o in objs:
        out.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    return out


def pod_specs(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod template) for every Deployment and CronJob."""
    for o in objs:
        if o["kind"] == "Deployment":
            yield o, o["spec"]["template"]
        elif o["kind"] == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]
