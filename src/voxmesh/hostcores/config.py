"""From the settings to a budget: what ``voxmesh up`` hands its workers, and a worker's broker.

``voxmesh up`` resolves its ``hostcores`` settings once (the lease file defaults to
:func:`default_file`, one budget per stack; the shares come from the deployments'
``cores: {weight, min}``) and passes them to every worker it spawns as
``VOXMESH_HOSTCORES__*`` variables (:func:`worker_env`), the settings' own environment
names, so the worker's :func:`voxmesh.settings.load_settings` reads them like any other
setting. A worker with a lease file leases from the budget (:func:`broker_for`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from voxmesh.deployments import Deployment
from voxmesh.hostcores.broker import CoreBroker
from voxmesh.hostcores.budget import Share
from voxmesh.settings import HostCoresSettings

__all__ = ["broker_for", "default_file", "resolve", "worker_env"]


def default_file(data_dir: Path, shm: Path = Path("/dev/shm")) -> Path:
    """``/dev/shm/voxmesh-cores-<hash of the data dir>.json``: in memory (a lease costs about
    30 us there, 200 us on a disk), one per stack; ``<data_dir>/run/host-cores.json``
    without ``/dev/shm``."""
    data_dir = data_dir.resolve()
    if shm.is_dir():
        return shm / f"voxmesh-cores-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]}.json"
    return data_dir / "run" / "host-cores.json"


def resolve(settings: HostCoresSettings, data_dir: Path, deployments: Iterable[Deployment]) -> HostCoresSettings:
    """The controller's budget: its lease file made absolute, every deployment's share."""
    file = (settings.file or default_file(data_dir)).resolve()
    shares = {**settings.shares, **{d.name: d.cores for d in deployments}}
    return settings.model_copy(update={"file": file, "shares": shares})


def worker_env(settings: HostCoresSettings) -> dict[str, str]:
    """The variables that hand ``settings`` (resolved) to a worker process."""
    if not settings.enabled or settings.file is None:
        return {"VOXMESH_HOSTCORES__ENABLED": "false"}
    env = {
        "VOXMESH_HOSTCORES__ENABLED": "true",
        "VOXMESH_HOSTCORES__FILE": str(settings.file),
        "VOXMESH_HOSTCORES__SHARES": json.dumps({k: v.model_dump() for k, v in settings.shares.items()}),
        "VOXMESH_HOSTCORES__WAIT_TIMEOUT_S": repr(settings.wait_timeout_s),
    }
    if settings.total is not None:
        env["VOXMESH_HOSTCORES__TOTAL"] = str(settings.total)
    return env


def broker_for(settings: HostCoresSettings, deployment: str) -> tuple[CoreBroker, str] | None:
    """The broker a worker of ``deployment`` leases from (None: no host budget)."""
    if not settings.enabled or settings.file is None:
        return None
    from voxmesh.cpu_budget import cpu_budget

    shares = {name: Share(s.weight, s.min) for name, s in settings.shares.items()}
    return CoreBroker(settings.file, settings.total or cpu_budget(), shares,
                      wait_timeout_s=settings.wait_timeout_s), deployment
