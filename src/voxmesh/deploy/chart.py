"""Render the voxmesh Helm chart offline, as ``helm template`` does, with helm-python-sdk.

Where the chart is, first found wins:

1. ``VOXMESH_CHART_DIR`` (a directory holding ``Chart.yaml``);
2. ``deploy/helm/voxmesh`` of the source tree this package runs from (a checkout, an editable
   install, or the image built from the repository).

A wheel installed elsewhere has no chart: set ``VOXMESH_CHART_DIR`` (or pass ``--chart``).

Custom resources in the chart are gated on ``.Capabilities.APIVersions``; an offline render
has no cluster to ask, so the caller says which APIs the target cluster serves
(:data:`ALL_API_VERSIONS` when Linkerd, the Gateway API, KEDA and Flagger are installed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from voxmesh.errors import ConfigError

__all__ = ["ALL_API_VERSIONS", "DEFAULT_KUBE_VERSION", "chart_defaults", "chart_dir", "merge_values", "render_manifests"]

ALL_API_VERSIONS = (
    "policy.linkerd.io/v1beta3",
    "policy.linkerd.io/v1alpha1",
    "gateway.networking.k8s.io/v1",
    "keda.sh/v1alpha1",
    "flagger.app/v1beta1",
)
DEFAULT_KUBE_VERSION = "v1.30.0"


def chart_dir(override: Path | None = None) -> Path:
    candidates: list[Path] = []
    if override is not None:
        candidates.append(override)
    env = os.environ.get("VOXMESH_CHART_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[3] / "deploy" / "helm" / "voxmesh")
    if override is not None:
        candidates = candidates[:1]  # an explicit --chart is not second-guessed
    for c in candidates:
        if (c / "Chart.yaml").is_file():
            return c
    raise ConfigError(f"the voxmesh chart is not at {candidates[0]}: set VOXMESH_CHART_DIR to deploy/helm/voxmesh "
                      "of a voxmesh checkout (or pass --chart)")


def chart_defaults(chart: Path | None = None) -> dict[str, Any]:
    """The chart's own values.yaml."""
    import yaml

    data = yaml.safe_load((chart_dir(chart) / "values.yaml").read_text()) or {}
    return dict(data)


def merge_values(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge key by key, anything else (lists too) is replaced."""
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    marker = "error calling fail: "
    return text.split(marker, 1)[1] if marker in text else text


def render_manifests(
    values: Mapping[str, Any],
    *,
    chart: Path | None = None,
    release: str = "voxmesh",
    namespace: str = "voxmesh",
    api_versions: Sequence[str] = ALL_API_VERSIONS,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> dict[str, str]:
    """Template path -> rendered YAML (empty templates left out). Bad values raise
    :class:`ConfigError` with the chart's one-line reason (schema or ``fail`` helper)."""
    import helm_python as helm
    from helm_python import _native

    path = chart_dir(chart)
    loaded = helm.Chart.load(str(path))
    try:
        loaded.validate_schema(dict(values))
        # Chart.render without the API versions the C ABI accepts: call it with them
        opts = {"name": release, "namespace": namespace, "is_install": True,
                "api_versions": list(api_versions), "kube_version": kube_version}
        raw = _native.call_string("helm_render", loaded._raw(), json.dumps(values), json.dumps(opts))
    except helm.HelmError as exc:
        raise ConfigError(f"chart values: {_one_line(exc)}") from exc
    rendered: dict[str, str] = json.loads(raw)
    return {k: v for k, v in sorted(rendered.items()) if v.strip() and any(
        line.strip() and not line.lstrip().startswith("#") and line.strip() != "---" for line in v.splitlines())}
