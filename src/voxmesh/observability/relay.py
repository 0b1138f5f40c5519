"""Relay the workers' ``/metrics`` on the gateway's, so one scrape sees the whole machine.

The supervisor already reads every serving worker's ``/metrics`` once per autoscaler period
(:meth:`voxmesh.autoscale.supervisor.Supervisor.scrape_all`); it keeps the text it read, and
:func:`relay` re-exposes those texts with ``deployment`` and ``replica`` labels added, one
``# HELP``/``# TYPE`` per family across replicas. Nothing is scraped twice, and the relayed
figures are at most one autoscaler period old.

A label the worker already sets (its stage histogram carries ``deployment``) is kept as the
worker wrote it, as Prometheus' ``honor_labels: true`` would.

In a cluster Prometheus scrapes the pods directly instead, with the usual annotations on
the worker and gateway pod templates::

    metadata:
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9000"        # the worker's port (gateway: 8080)
        prometheus.io/path: /metrics
        prometheus.io/scheme: http        # https when the pod serves mTLS itself

and ``relabel_configs`` that copy the pod label ``app.kubernetes.io/instance`` (the
deployment's name) to ``deployment`` and ``__meta_kubernetes_pod_name`` to ``replica``, so
the queries and dashboards read the same labels in both modes (a gateway pod runs no
supervisor, so it relays nothing there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Family", "parse_families", "relay"]


@dataclass
class Family:
    name: str
    meta: list[str] = field(default_factory=list)  # "# HELP ..." and "# TYPE ..." lines
    samples: list[str] = field(default_factory=list)


def _add_labels(sample: str, labels: Mapping[str, str]) -> str:
    brace = sample.find("{")
    space = sample.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        end = sample.rfind("}")
        inner = sample[brace + 1 : end]
        have = {part.split("=", 1)[0].strip() for part in inner.split(",") if "=" in part}
        extra = [f'{k}="{_escape(v)}"' for k, v in labels.items() if k not in have]
        joined = ",".join([*extra, inner] if inner else extra)
        return f"{sample[:brace]}{{{joined}}}{sample[end + 1 :]}"
    name, _, rest = sample.partition(" ")
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{pairs}}} {rest}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_families(text: str, labels: Mapping[str, str] | None = None) -> list[Family]:
    """Prometheus text -> families in order, each sample with ``labels`` added."""
    families: list[Family] = []
    current: Family | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                if current is None or current.name != parts[2]:
                    current = Family(parts[2])
                    families.append(current)
                current.meta.append(line)
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if current is None or not (name == current.name or name.startswith(current.name + "_")):
            current = Family(name)
            families.append(current)
        current.samples.append(_add_labels(line, labels) if labels else line)
    return families


def relay(sources: Iterable[tuple[Mapping[str, str], str]]) -> str:
    """Merge metric texts, each with its own extra labels, into one exposition."""
    merged: dict[str, Family] = {}
    for labels, text in sources:
        for fam in parse_families(text, labels):
            into = merged.get(fam.name)
            if into is None:
                merged[fam.name] = into = Family(fam.name, list(fam.meta))
            into.samples.extend(fam.samples)
    lines: list[str] = []
    for fam in merged.values():
        lines += fam.meta
        lines += fam.samples
    return "\n".join(lines) + "\n" if lines else ""
