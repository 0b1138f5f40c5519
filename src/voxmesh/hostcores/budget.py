"""The host core budget's grant rule: pure functions of a frozen :class:`BudgetState`.

Every worker of every deployment on a host leases cores before a segment and returns them
after. A worker that wants cores files a :class:`Waiter` (a ticket: its deployment and how
many cores it wants); :func:`allocate` answers which waiters get how many cores now. The
broker runs it whenever the state changes (a ticket filed, a lease returned, a dead holder
reclaimed), so a freed core goes straight to the waiter the rule picks, not to whoever
polls first.

The rule, in two named steps over the waiters in FIFO (ticket) order:

1. :func:`by_entitlement`: each waiter gets up to its deployment's :func:`entitlement` minus
   what the deployment holds (grants of this pass included). The entitlement splits the
   budget among the *contending* deployments (holding a lease or waiting) by ``weight``,
   never below their ``min_cores`` guarantee (guarantees first, then the rest by weight).
   Waiting demand counts: a deployment whose workers are between segments, with tickets
   filed, contends exactly like one holding leases, so a weight binds even when every
   segment is short and leases are returned and retaken all the time.
2. :func:`work_conserving`: cores still free (every waiter's deployment is at its
   entitlement) go to the remaining waiters in FIFO order, so a busy deployment uses the
   cores an idle one leaves. Leases are one segment long, so a deployment above its
   entitlement falls back to it within a segment once another one wants cores.

A waiter gets at least 1 and at most ``want`` cores, in one grant, and only a size it can
use (``sizes``: a worker runs a segment on a thread class 1, 2, 4, ..., so 3 cores would leave
one idle: it gets 2). The sum of leases never exceeds ``total`` (property-tested).

Limits. A deployment with one request in flight gets its entitlement rounded down to a thread
class (3 of 4 cores: 2); the core left over stays free until someone files a ticket, as a
grant made in this pass is not topped up (tried: topping up hands a neighbour the cores of a
deployment that is only between two requests, for a whole segment: in one run with two
requests per deployment the 3:1 share fell from 0.65 to 0.55 of the cores). With several
requests in flight per deployment the share is met (0.74-0.75 of the cores for 3:1).
A lease is one segment long and never taken back, so a deployment that got cores while the
other was between requests keeps them to the end of that segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = ["BudgetState", "Lease", "Share", "Waiter", "allocate", "by_entitlement", "entitlement",
           "work_conserving"]


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
    ticket: int = 0


@dataclass(frozen=True, slots=True)
class Waiter:
    ticket: int  # FIFO order: lower first
    holder: int
    deployment: str
    want: int
    sizes: tuple[int, ...] = ()  # the grants it can use, ascending; () any of 1..want

    def fit(self, cores: int) -> int:
        """The most it can use of ``cores`` (0: none)."""
        cores = min(cores, self.want)
        if not self.sizes or cores < 1:
            return max(cores, 0)
        return max((s for s in self.sizes if s <= cores), default=0)


@dataclass(frozen=True, slots=True)
class BudgetState:
    total: int
    leases: tuple[Lease, ...] = ()
    waiters: tuple[Waiter, ...] = ()  # in ticket order

    @property
    def granted(self) -> int:
        return sum(lease.cores for lease in self.leases)

    @property
    def free(self) -> int:
        return max(self.total - self.granted, 0)

    def held(self, deployment: str) -> int:
        return sum(lease.cores for lease in self.leases if lease.deployment == deployment)

    def contending(self) -> frozenset[str]:
        return frozenset(lease.deployment for lease in self.leases) | {w.deployment for w in self.waiters}

    def granting(self, waiter: Waiter, cores: int) -> BudgetState:
        """The state after ``waiter`` leased ``cores`` (its ticket leaves the queue)."""
        return replace(self, leases=(*self.leases, Lease(waiter.holder, waiter.deployment, cores, waiter.ticket)),
                       waiters=tuple(w for w in self.waiters if w.ticket != waiter.ticket))


def entitlement(total: int, deployment: str, active: frozenset[str], shares: Mapping[str, Share]) -> int:
    """``deployment``'s cores when every deployment in ``active`` (it included) wants more."""
    members = sorted(active | {deployment})
    share = {d: shares.get(d, Share()) for d in members}
    guaranteed = {d: min(share[d].min_cores, total) for d in members}
    rest = max(total - sum(guaranteed.values()), 0)
    weight = sum(share[d].weight for d in members)
    extra = int(rest * share[deployment].weight / weight)
    return max(1, guaranteed[deployment] + extra)


def by_entitlement(state: BudgetState, shares: Mapping[str, Share]) -> tuple[BudgetState, dict[int, int]]:
    """Step 1: waiters in FIFO order, each up to its deployment's room under its entitlement."""
    grants: dict[int, int] = {}
    active = state.contending()
    for waiter in state.waiters:
        room = entitlement(state.total, waiter.deployment, active, shares) - state.held(waiter.deployment)
        cores = waiter.fit(min(state.free, room))
        if cores > 0:
            state = state.granting(waiter, cores)
            grants[waiter.ticket] = cores
    return state, grants


def work_conserving(state: BudgetState) -> tuple[BudgetState, dict[int, int]]:
    """Step 2: cores nobody is entitled to go to the remaining waiters in FIFO order."""
    grants: dict[int, int] = {}
    for waiter in state.waiters:
        cores = waiter.fit(state.free)
        if cores > 0:
            state = state.granting(waiter, cores)
            grants[waiter.ticket] = cores
    return state, grants


def allocate(state: BudgetState, shares: Mapping[str, Share]) -> tuple[BudgetState, dict[int, int]]:
    """The grants to make now (``ticket -> cores``) and the state after them."""
    state, first = by_entitlement(state, shares)
    state, second = work_conserving(state)
    return state, {**first, **second}
