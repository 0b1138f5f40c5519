"""One core budget for every worker on a host (issue 18).

The budget is :func:`voxmesh.cpu_budget.cpu_budget` (the pod's CPU limit from cgroup v2
``cpu.max`` or v1 CFS quota, else the host's cores); :mod:`.budget` is the pure grant rule (weights and guaranteed
minimums per deployment); :mod:`.broker` keeps the leases of all workers in one locked file
under ``/dev/shm`` and reclaims those of dead processes.
"""

from voxmesh.hostcores.budget import BudgetState, Lease, Share, entitlement, grant

__all__ = ["BudgetState", "Lease", "Share", "entitlement", "grant"]
