"""Declared deployments: what the controller turns into running workers.

A config file (YAML) has two top-level keys: ``settings`` (see :mod:`voxmesh.settings`) and
``deployments``, plus optional ``splits`` (public model name -> weighted deployments) and
``aliases`` (OpenAI model names such as ``tts-1`` -> a deployment or split).

.. code-block:: yaml

    deployments:
      - name: tts-en
        engine: piper
        replicas: {min: 1, max: 3, warm: 1}
        threads: 2
        scaling: {in_flight_per_replica: 2}
      - name: my-openai-tts            # an external server: no managed workers
        external: {urls: ["http://10.0.0.5:8000"], kind: tts}
    aliases: {tts-1: tts-en}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from voxmesh.errors import ConfigError
from voxmesh.settings import HostCoreShare

__all__ = ["CoreShareSpec", "Deployment", "DeploymentsConfig", "ExternalSpec", "ReplicaSpec", "ScalingTargets", "load_deployments"]

DEFAULT_CONFIG = Path(__file__).parent / "config" / "default.yaml"


class ReplicaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int = Field(1, ge=0)
    max: int = Field(1, ge=1)
    warm: int = Field(0, ge=0, description="loaded replicas kept out of rotation, promoted on scale-up")

    @model_validator(mode="after")
    def _bounds(self) -> ReplicaSpec:
        if self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) is above replicas.max ({self.max})")
        return self


class ScalingTargets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_flight_per_replica: float | None = Field(None, gt=0)
    qps_per_replica: float | None = Field(None, gt=0)
    cpu_utilization: float | None = Field(None, gt=0, le=1)
    queue_per_replica: float | None = Field(None, gt=0)
    scale_down_window_s: float = Field(30.0, ge=0)
    scale_up_window_s: float = Field(0.0, ge=0)
    sync_period_s: float = Field(1.0, gt=0)
    scale_to_zero: bool = False
    activation_threshold: float = Field(0.0, ge=0)
    zero_after_s: float = Field(300.0, ge=0, description="idle time before scaling to zero (KEDA cooldownPeriod)")
    hold_requests: int = Field(100, ge=0, description="requests held while scaling from zero; more get 503")
    hold_timeout_s: float = Field(120.0, gt=0, description="how long a held request waits for the first replica")


class ExternalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    urls: list[str] = Field(min_length=1)
    kind: Literal["tts", "mt", "chat"] = "tts"
    tls: bool = False


CoreShareSpec = HostCoreShare  # a deployment's ``cores:`` (one model with the settings' shares)


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    engine: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    replicas: ReplicaSpec = ReplicaSpec()
    threads: int | None = Field(None, ge=1, description="inference threads per replica (default: cores)")
    scaling: ScalingTargets = ScalingTargets()
    pronunciation_dictionary: Path | None = None
    external: ExternalSpec | None = None
    env: dict[str, str] = Field(default_factory=dict, description="extra VOXMESH_* settings for its workers")
    cores: CoreShareSpec = CoreShareSpec()

    @model_validator(mode="after")
    def _engine_or_external(self) -> Deployment:
        if (self.engine is None) == (self.external is None):
            raise ValueError(f"deployment {self.name!r}: set exactly one of 'engine' or 'external'")
        return self

    def threads_per_replica(self) -> int:
        from voxmesh.cpu_budget import cpu_budget

        return self.threads or cpu_budget()


class DeploymentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    settings: dict[str, Any] = Field(default_factory=dict)
    deployments: list[Deployment] = Field(default_factory=list)
    splits: dict[str, dict[str, float]] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> DeploymentsConfig:
        names = {d.name for d in self.deployments}
        if len(names) != len(self.deployments):
            raise ValueError("deployment names must be unique")
        for model, weights in self.splits.items():
            unknown = set(weights) - names
            if unknown:
                raise ValueError(f"split {model!r} names unknown deployments {sorted(unknown)}")
        for alias, target in self.aliases.items():
            if target not in names and target not in self.splits:
                raise ValueError(f"alias {alias!r} points at unknown deployment or split {target!r}")
        return self

    def by_name(self, name: str) -> Deployment:
        for d in self.deployments:
            if d.name == name:
                return d
        raise KeyError(name)


def load_deployments(path: Path | None) -> DeploymentsConfig:
    path = path or DEFAULT_CONFIG
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read deployments config {path}: {exc}") from exc
    try:
        cfg = DeploymentsConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {loc}: {first['msg']}") from exc
    base = path.parent
    for d in cfg.deployments:
        if d.pronunciation_dictionary is not None and not d.pronunciation_dictionary.is_absolute():
            d.pronunciation_dictionary = base / d.pronunciation_dictionary
    return cfg
