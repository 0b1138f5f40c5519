"""A breaker that never ejects, for ``gateway.mesh: linkerd``.

Under Linkerd the gateway has one endpoint per deployment: the Service, whose pods the
proxy balances and ejects by its own failure accrual. Ejecting that single endpoint in the
gateway would turn a few failing pods into a whole deployment answering 503, stacked on
top of Linkerd's breaker. So this variant keeps the interface of
:class:`~voxmesh.gateway.resilience.breaker.Breaker` (the data plane and ``Attempt`` call it
the same way) and stays CLOSED whatever happens; it still counts consecutive failures for
``/admin/topology``.

Rules
    CLOSED --SUCCESS--> CLOSED  (the failure count restarts at 0)
    CLOSED --FAILURE--> CLOSED  (one more consecutive failure; never OPEN)
"""

from __future__ import annotations

from voxmesh.gateway.resilience.breaker import BreakerState, Ticket
from voxmesh.gateway.resilience.classify import Outcome

__all__ = ["NoEjection"]

_TICKET = Ticket(epoch=0, probe=False)


class NoEjection:
    """Always CLOSED; ``available`` is always true; failures are only counted."""

    failures = 0  # no failure limit
    open_until = 0.0
    ejections = 0
    probe_in_flight = False
    epoch = 0

    def __init__(self) -> None:
        self.consecutive_failures = 0

    def state(self, now: float) -> BreakerState:
        return BreakerState.CLOSED

    def available(self, now: float) -> bool:
        return True

    def dispatch(self, now: float) -> Ticket:
        return _TICKET

    def record(self, ticket: Ticket, outcome: Outcome, now: float) -> None:
        self.consecutive_failures = 0 if outcome is Outcome.SUCCESS else self.consecutive_failures + 1

    def abandon(self, ticket: Ticket, now: float) -> None:
        return None
