"""A file-backed core broker: every worker on a host leases from one budget.

State lives in one JSON file (default under ``/dev/shm``, so in memory) guarded by
``flock``: the leases (holder pid, deployment, cores) and the deployments waiting. Each
operation takes the lock, drops the leases and waits of dead processes (``kill(pid, 0)``:
a crashed worker's cores come back at the next operation of anyone), applies the pure rule
of :mod:`voxmesh.hostcores.budget`, and writes the file back. A worker that gets 0 cores
registers as waiting (so busy deployments fall back to their share) and polls.

Counters per deployment (leases granted, cores granted now, waits) are in the file too, so
the controller can export ``voxmesh_host_cores_granted{deployment}`` and
``voxmesh_host_core_waits_total{deployment}`` (:meth:`CoreBroker.metrics_text`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from voxmesh.hostcores.budget import BudgetState, Lease, Share, grant

__all__ = ["CoreBroker", "from_env", "parse_shares", "pid_alive"]


def parse_shares(text: str) -> dict[str, Share]:
    """``"piper=3,kokoro=1:2"``: weight, then an optional guaranteed minimum after ``:``."""
    out: dict[str, Share] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, spec = item.partition("=")
        if not sep or not name:
            raise ValueError(f"core share {item!r}: expected name=weight[:min_cores]")
        weight, _, minimum = spec.partition(":")
        out[name] = Share(float(weight), int(minimum) if minimum else 0)
    return out


def from_env(env: Mapping[str, str] | None = None) -> tuple[CoreBroker, str] | None:
    """The broker a worker leases from, and its deployment: ``VOXMESH_HOST_CORES_FILE`` (unset:
    no host budget), ``VOXMESH_HOST_CORES`` (default: the cgroup limit or the host's cores),
    ``VOXMESH_HOST_CORE_SHARES`` (:func:`parse_shares`), ``VOXMESH_DEPLOYMENT``."""
    from voxmesh.cpu_budget import cpu_budget

    env = os.environ if env is None else env
    path = env.get("VOXMESH_HOST_CORES_FILE")
    if not path:
        return None
    total = int(env["VOXMESH_HOST_CORES"]) if env.get("VOXMESH_HOST_CORES") else cpu_budget()
    shares = parse_shares(env.get("VOXMESH_HOST_CORE_SHARES", ""))
    return CoreBroker(path, total, shares), env.get("VOXMESH_DEPLOYMENT", "default")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CoreBroker:
    def __init__(self, path: Path | str, total: int, shares: Mapping[str, Share] | None = None,
                 alive: Callable[[int], bool] = pid_alive, poll_s: float = 0.002) -> None:
        if total < 1:
            raise ValueError("core budget must be >= 1")
        self.path = Path(path)
        self.total = total
        self.shares = dict(shares or {})
        self.alive = alive
        self.poll_s = poll_s
        self.path.touch(exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                text = f.read()
                data: dict[str, Any] = json.loads(text) if text.strip() else {}
                data.setdefault("leases", [])
                data.setdefault("waiting", {})
                data.setdefault("waits", {})
                data.setdefault("grants", {})
                data.setdefault("max_granted", 0)
                self._reclaim(data)
                yield data
                f.seek(0)
                f.truncate()
                f.write(json.dumps(data))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _reclaim(self, data: dict[str, Any]) -> None:
        data["leases"] = [x for x in data["leases"] if self.alive(int(x["holder"]))]
        data["waiting"] = {k: v for k, v in data["waiting"].items() if self.alive(int(k.split(":")[0]))}

    def _state(self, data: dict[str, Any]) -> BudgetState:
        return BudgetState(
            self.total,
            tuple(Lease(int(x["holder"]), str(x["deployment"]), int(x["cores"])) for x in data["leases"]),
            frozenset(str(v) for v in data["waiting"].values()),
        )

    def try_acquire(self, deployment: str, want: int, pid: int | None = None) -> tuple[int, int]:
        """One attempt: ``(lease id, cores)``; cores 0 means wait (registered as waiting)."""
        holder = os.getpid() if pid is None else pid
        key = f"{holder}:{deployment}"
        with self._locked() as data:
            cores = grant(self._state(data), deployment, want, self.shares)
            if cores <= 0:
                if key not in data["waiting"]:
                    data["waits"][deployment] = data["waits"].get(deployment, 0) + 1
                data["waiting"][key] = deployment
                return 0, 0
            data["waiting"].pop(key, None)
            lease_id = int(data.get("next_id", 1))
            data["next_id"] = lease_id + 1
            data["leases"].append({"id": lease_id, "holder": holder, "deployment": deployment, "cores": cores})
            data["grants"][deployment] = data["grants"].get(deployment, 0) + 1
            data["max_granted"] = max(int(data["max_granted"]), sum(int(x["cores"]) for x in data["leases"]))
            return lease_id, cores

    def acquire(self, deployment: str, want: int, timeout_s: float = 60.0) -> tuple[int, int]:
        """Block (polling) until at least one core is leased; ``TimeoutError`` past ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            lease_id, cores = self.try_acquire(deployment, want)
            if cores:
                return lease_id, cores
            if time.monotonic() > deadline:
                self.cancel_wait(deployment)
                raise TimeoutError(f"no core for {deployment} within {timeout_s} s")
            time.sleep(self.poll_s)

    def cancel_wait(self, deployment: str, pid: int | None = None) -> None:
        holder = os.getpid() if pid is None else pid
        with self._locked() as data:
            data["waiting"].pop(f"{holder}:{deployment}", None)

    def release(self, lease_id: int) -> None:
        with self._locked() as data:
            data["leases"] = [x for x in data["leases"] if int(x["id"]) != lease_id]

    def snapshot(self) -> dict[str, Any]:
        """Leases, waits and counters as they are now (dead holders already reclaimed)."""
        with self._locked() as data:
            return json.loads(json.dumps(data))  # type: ignore[no-any-return]

    def metrics_text(self) -> str:
        data = self.snapshot()
        granted: dict[str, int] = {}
        for x in data["leases"]:
            granted[x["deployment"]] = granted.get(x["deployment"], 0) + int(x["cores"])
        deployments = sorted(set(granted) | set(data["waits"]) | set(data["grants"]) | set(self.shares))
        lines = [
            "# HELP voxmesh_host_cores_granted cores leased now from the host budget",
            "# TYPE voxmesh_host_cores_granted gauge",
            *(f'voxmesh_host_cores_granted{{deployment="{d}"}} {granted.get(d, 0)}' for d in deployments),
            "# HELP voxmesh_host_cores_total the host core budget",
            "# TYPE voxmesh_host_cores_total gauge",
            f"voxmesh_host_cores_total {self.total}",
            "# HELP voxmesh_host_core_waits_total times a worker had to wait for cores",
            "# TYPE voxmesh_host_core_waits_total counter",
            *(f'voxmesh_host_core_waits_total{{deployment="{d}"}} {data["waits"].get(d, 0)}' for d in deployments),
            "# HELP voxmesh_host_core_leases_total leases granted",
            "# TYPE voxmesh_host_core_leases_total counter",
            *(f'voxmesh_host_core_leases_total{{deployment="{d}"}} {data["grants"].get(d, 0)}' for d in deployments),
        ]
        return "\n".join(lines) + "\n"
