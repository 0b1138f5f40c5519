"""The host core budget's grant rule: pure functions of a frozen :class:`BudgetState`.

Every worker of every deployment on a host leases cores before a segment and returns them
after. :func:`grant` answers how many of the ``want`` cores a worker gets now:

* nobody else waiting: whatever is free (a busy deployment uses the cores an idle one leaves);
* others waiting: at most the deployment's :func:`entitlement` minus what it already holds,
  where the entitlement splits the budget among the deployments holding or waiting by
  ``weight``, never below their ``min_cores`` guarantee (guarantees first, then the rest by
  weight). Leases are one segment long, so a deployment above its entitlement falls back to
  it within a segment, as the worker's own scheduler does for requests.

0 means wait (the broker retries). The sum of leases never exceeds ``total``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["BudgetState", "Lease", "Share", "entitlement", "grant"]


@dataclass(frozen=True, slots=True)
class Share:
    """A deployment's share under contention (``deployments`` config: ``cores.weight``,
    ``cores.min``)."""

    weight: float = 1.0
    min_cores: int = 0

    def __post_init__(self) -> None:
        if self.weight <= 0 or self.min_cores < 0:
            raise ValueError("core share: weight must be > 0 and min_cores >= 0")


@dataclass(frozen=True, slots=True)
class Lease:
    holder: int  # the worker's pid (a dead holder's leases are reclaimed)
    deployment: str
    cores: int


@dataclass(frozen=True, slots=True)
class BudgetState:
    total: int
    leases: tuple[Lease, ...] = ()
    waiting: frozenset[str] = frozenset()  # deployments with a worker waiting for cores

    @property
    def granted(self) -> int:
        return sum(lease.cores for lease in self.leases)

    def held(self, deployment: str) -> int:
        return sum(lease.cores for lease in self.leases if lease.deployment == deployment)

    def active(self) -> frozenset[str]:
        return frozenset(lease.deployment for lease in self.leases) | self.waiting


def entitlement(total: int, deployment: str, active: frozenset[str], shares: Mapping[str, Share]) -> int:
    """``deployment``'s cores when every deployment in ``active`` (it included) wants more."""
    members = sorted(active | {deployment})
    share = {d: shares.get(d, Share()) for d in members}
    guaranteed = {d: min(share[d].min_cores, total) for d in members}
    rest = max(total - sum(guaranteed.values()), 0)
    weight = sum(share[d].weight for d in members)
    extra = int(rest * share[deployment].weight / weight)
    return max(1, guaranteed[deployment] + extra)


def grant(state: BudgetState, deployment: str, want: int, shares: Mapping[str, Share]) -> int:
    """Cores to lease now (0: wait)."""
    free = state.total - state.granted
    if want <= 0 or free <= 0:
        return 0
    others_waiting = state.waiting - {deployment}
    if not others_waiting:
        return min(want, free)
    room = entitlement(state.total, deployment, state.active(), shares) - state.held(deployment)
    return max(0, min(want, free, room))
