"""The environment that joins a worker to the host core budget (pure).

The controller is started with ``VOXMESH_HOST_CORES_FILE`` (and optionally
``VOXMESH_HOST_CORES``); every worker it spawns then gets the same file, the shares of all
deployments (``cores: {weight, min}`` in the deployments config) and its deployment's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from voxmesh.deployments import Deployment

__all__ = ["shares_text", "worker_env"]


def shares_text(deployments: Iterable[Deployment]) -> str:
    """``name=weight:min,...`` for :func:`voxmesh.hostcores.broker.parse_shares`."""
    return ",".join(f"{d.name}={d.cores.weight:g}:{d.cores.min}" for d in deployments)


def worker_env(env: Mapping[str, str], deployments: Iterable[Deployment], deployment: str) -> dict[str, str]:
    """The variables to add to a worker's environment (none without ``VOXMESH_HOST_CORES_FILE``)."""
    if not env.get("VOXMESH_HOST_CORES_FILE"):
        return {}
    return {"VOXMESH_HOST_CORE_SHARES": shares_text(deployments), "VOXMESH_DEPLOYMENT": deployment}
