"""One core budget for every worker on a host (issue 18).

The budget is :func:`voxmesh.cpu_budget.cpu_budget` (the pod's CPU limit from cgroup v2
``cpu.max`` or v1 CFS quota, else the host's cores) unless ``hostcores.total`` says;
:mod:`.budget` is the pure grant rule (weights and guaranteed minimums per deployment,
waiting demand included); :mod:`.broker` keeps the leases and waiters of all workers in
one locked file, wakes waiters when it grants them cores and reclaims the cores of dead
processes; :mod:`.config` turns the ``hostcores`` settings into a worker's broker;
:mod:`.busy` is the lease of an engine that runs a decode loop (llama.cpp) rather than segments.
"""

from voxmesh.hostcores.budget import BudgetState, Lease, Share, Waiter, allocate, entitlement

__all__ = ["BudgetState", "Lease", "Share", "Waiter", "allocate", "entitlement"]
