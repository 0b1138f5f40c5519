"""Chart values from a deployments file: the model part of ``values.yaml``.

Pure: a validated :class:`~voxmesh.deployments.DeploymentsConfig` in, a values mapping out.
Managed deployments become ``workers.deployments`` (one Deployment + Service each), external
ones ``externals`` (routed by the gateway only), splits whole percentages (an HTTPRoute's
backend weights), and the ``settings`` block travels as is, less what only means something on
one machine (listen address, data dir). A deployment that cannot move to a cluster raises
:class:`~voxmesh.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from voxmesh.deployments import Deployment, DeploymentsConfig
from voxmesh.errors import ConfigError
from voxmesh.settings import Settings

__all__ = ["LOCAL_ONLY_SETTINGS", "values_from_config", "whole_percentages"]

# settings that describe one machine; the chart sets the cluster's own
LOCAL_ONLY_SETTINGS = ("server", "data_dir", "deployments_file")

_SCALING_KEYS = (
    "in_flight_per_replica", "qps_per_replica", "cpu_utilization", "queue_per_replica",
    "scale_down_window_s", "scale_up_window_s", "sync_period_s", "scale_to_zero",
    "activation_threshold", "zero_after_s",
)


def whole_percentages(weights: Mapping[str, float], where: str) -> dict[str, int]:
    """Relative weights as whole percentages summing to exactly 100 (largest remainder)."""
    total = float(sum(weights.values()))
    if total <= 0:
        raise ConfigError(f"{where}: weights sum to {total:g}; give at least one a positive weight")
    exact = {name: 100.0 * w / total for name, w in weights.items()}
    out = {name: math.floor(v) for name, v in exact.items()}
    left = 100 - sum(out.values())
    for name in sorted(exact, key=lambda n: (out[n] - exact[n], n))[:left]:
        out[name] += 1
    return out


def _check_settings(settings: Mapping[str, Any]) -> None:
    """The ``settings`` block as ``voxmesh up`` would read it (unknown keys are its warnings,
    not errors); the first bad field raises, named."""
    for key, value in settings.items():
        field = Settings.model_fields.get(key)
        if field is None or field.annotation is None:
            continue
        try:
            TypeAdapter(field.annotation).validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in (key, *first["loc"]))
            raise ConfigError(f"settings.{loc}: {first['msg']}") from exc


def _worker(index: int, dep: Deployment) -> dict[str, Any]:
    where = f"deployments[{index}] ({dep.name})"
    if dep.pronunciation_dictionary is not None:
        raise ConfigError(f"{where}.pronunciation_dictionary: a local file does not travel to a cluster; "
                          "bake it into the image and set it in the worker's options, or drop it")
    scaling = dep.scaling.model_dump(include=set(_SCALING_KEYS), exclude_none=True)
    out: dict[str, Any] = {
        "name": dep.name,
        "engine": dep.engine,
        "options": dict(dep.options),
        # a pod's CPU request is explicit: threads not given means one core, not "the node's"
        "threads": dep.threads or 1,
        "replicas": dep.replicas.model_dump(),
        "scaling": scaling,
    }
    if dep.env:
        out["env"] = dict(dep.env)
    return out


def values_from_config(cfg: DeploymentsConfig, chart_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The chart values that run ``cfg`` on a cluster (merge cluster-only values on top).

    Helm merges maps key by key, so an alias the chart's own defaults declare would survive
    into a release whose deployments file does not have it: given ``chart_defaults`` (the
    chart's values.yaml), such aliases are set to null, which drops them."""
    workers: list[dict[str, Any]] = []
    externals: list[dict[str, Any]] = []
    for i, dep in enumerate(cfg.deployments):
        if dep.external is not None:
            externals.append({"name": dep.name, "external": dep.external.model_dump(mode="json")})
        else:
            workers.append(_worker(i, dep))
    managed = {w["name"] for w in workers}
    splits: dict[str, dict[str, int]] = {}
    for model, weights in cfg.splits.items():
        outside = sorted(set(weights) - managed)
        if outside:
            raise ConfigError(f"splits.{model}: {outside} are external deployments; a cluster split "
                              "weighs Services of managed deployments only")
        splits[model] = whole_percentages(weights, f"splits.{model}")
    _check_settings(cfg.settings)
    settings = {k: v for k, v in cfg.settings.items() if k not in LOCAL_ONLY_SETTINGS}
    jobs = settings.get("jobs", {}) if isinstance(settings.get("jobs"), dict) else {}
    storage = settings.get("storage", {}) if isinstance(settings.get("storage"), dict) else {}
    shared_queue = str(jobs.get("db_url", "")).startswith("postgresql") and storage.get("backend") == "s3"
    values: dict[str, Any] = {
        "settings": settings,
        "workers": {"deployments": workers},
        "externals": externals,
        "splits": splits,
        "aliases": {**dict.fromkeys((chart_defaults or {}).get("aliases") or {}), **cfg.aliases},
        # runners in their own pods need a database (PostgreSQL) and an object store every pod shares
        "jobs": {"runners": {"enabled": bool(shared_queue)}},
    }
    return values
