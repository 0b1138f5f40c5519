"""How many whole cores this process may use: the cgroup CPU limit, else the CPU affinity.

In a container (Kubernetes pod, ``docker run --cpus``) the CPU limit is a CFS quota, not a
smaller ``os.cpu_count()``: a pod limited to 2 CPUs on a 64-core node still sees 64 cores,
and 64 intra-op threads on 2 cores' worth of quota are throttled most of each period. The
budget is ``floor(quota / period)`` (whole cores, at least 1), capped by the cores the
process may run on (``sched_getaffinity``, else ``os.cpu_count``).

Files read (cgroup v2 first, then v1):

- v2 ``cpu.max``: ``"max 100000"`` (no limit) or ``"200000 100000"`` (quota, period in us),
  at the cgroup root (a container's namespaced view) or at the process's own cgroup path
  from ``/proc/self/cgroup`` (``0::/path``);
- v1 ``cpu/cpu.cfs_quota_us`` (``-1``: no limit) and ``cpu/cpu.cfs_period_us`` (also under
  ``cpu,cpuacct/``).

The parsers are pure functions of the file texts; :func:`cpu_budget` reads the files under
a root that tests point at a temporary directory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cpu_budget", "online_cores", "parse_cfs_quota", "parse_cpu_max", "quota_cores"]

_EPS = 1e-9


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` -> cores (quota / period), ``None`` for no limit or bad text."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def parse_cfs_quota(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` -> cores, ``None`` for no limit."""
    try:
        quota = int(quota_text.strip())
        period = int(period_text.strip())
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _own_v2_path(proc_cgroup: str | None) -> str | None:
    for line in (proc_cgroup or "").splitlines():
        if line.startswith("0::"):
            return line[3:].strip().lstrip("/")
    return None


def quota_cores(root: Path, proc_cgroup: str | None = None) -> float | None:
    """The CPU limit in cores from the cgroup files under ``root``; ``None`` when unlimited.

    With several limits found (the namespaced root and the own path), the smallest wins.
    """
    found: list[float] = []
    candidates = [root / "cpu.max"]
    own = _own_v2_path(proc_cgroup)
    if own:
        candidates.append(root / own / "cpu.max")
    for path in candidates:
        text = _read(path)
        cores = parse_cpu_max(text) if text is not None else None
        if cores is not None:
            found.append(cores)
    for v1 in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota, period = _read(root / v1 / "cpu.cfs_quota_us"), _read(root / v1 / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            cores = parse_cfs_quota(quota, period)
            if cores is not None:
                found.append(cores)
    return min(found) if found else None


def online_cores() -> int:
    """Cores this process may run on: its affinity mask, else ``os.cpu_count()``, else 1."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def cpu_budget(
    root: Path = Path("/sys/fs/cgroup"),
    *,
    proc_cgroup: str | None = None,
    cores: Callable[[], int] = online_cores,
) -> int:
    """Whole cores this process may use: ``floor`` of the cgroup limit (at least 1), capped
    by ``cores()``. ``proc_cgroup`` is the text of ``/proc/self/cgroup`` (read when None)."""
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup"))
    limit = quota_cores(root, proc_cgroup)
    available = max(1, cores())
    if limit is None:
        return available
    return max(1, min(available, math.floor(limit + _EPS)))
