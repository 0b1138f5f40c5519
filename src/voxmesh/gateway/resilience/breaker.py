"""Failure-accrual circuit breaker for one endpoint (Linkerd ``consecutive_failures``).

Rules
    CLOSED    --SUCCESS-->          CLOSED     (the failure count restarts at 0)
    CLOSED    --FAILURE-->          CLOSED     (one more consecutive failure)
    CLOSED    --FAILURE_LIMIT-->    OPEN       (the 7th consecutive failure: eject)
    OPEN      --SUCCESS/FAILURE-->  OPEN       (late answers are ignored while ejected)
    OPEN      --PROBATION_OVER-->   HALF_OPEN  (after backoff 1 s, 2 s, 4 s ... 60 s, jitter 0.5)
    HALF_OPEN --PROBE_SENT-->       HALF_OPEN  (one real request is the probe; no other is let in)
    HALF_OPEN --PROBE_ABANDONED-->  HALF_OPEN  (the probe was cancelled: the slot is free again)
    HALF_OPEN --SUCCESS-->          CLOSED     (the probe succeeded: re-admit, backoff resets)
    HALF_OPEN --FAILURE-->          OPEN       (the probe failed: eject again, longer backoff)

Only outcomes of requests dispatched in the current epoch count: the epoch moves on at
each ejection, so an answer to a request sent before the endpoint was ejected cannot
pass for the probe. A pair missing from the table is a bug and raises.

Sans-IO: time comes in as ``now``; probation expiry is applied lazily when the breaker is
read, which is equivalent to a timer firing at ``open_until``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from voxmesh.gateway.resilience.backoff import Backoff
from voxmesh.gateway.resilience.classify import Outcome

__all__ = ["TRANSITIONS", "Breaker", "BreakerState", "Event", "Ticket"]


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Event(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    FAILURE_LIMIT = "failure_limit"
    PROBATION_OVER = "probation_over"
    PROBE_SENT = "probe_sent"
    PROBE_ABANDONED = "probe_abandoned"


S, E = BreakerState, Event
TRANSITIONS: dict[tuple[BreakerState, Event], BreakerState] = {
    (S.CLOSED, E.SUCCESS): S.CLOSED,
    (S.CLOSED, E.FAILURE): S.CLOSED,
    (S.CLOSED, E.FAILURE_LIMIT): S.OPEN,
    (S.OPEN, E.SUCCESS): S.OPEN,
    (S.OPEN, E.FAILURE): S.OPEN,
    (S.OPEN, E.PROBATION_OVER): S.HALF_OPEN,
    (S.HALF_OPEN, E.PROBE_SENT): S.HALF_OPEN,
    (S.HALF_OPEN, E.PROBE_ABANDONED): S.HALF_OPEN,
    (S.HALF_OPEN, E.SUCCESS): S.CLOSED,
    (S.HALF_OPEN, E.FAILURE): S.OPEN,
}
del S, E


@dataclass(frozen=True)
class Ticket:
    """Handed out at dispatch; give it back with the outcome."""

    epoch: int
    probe: bool


class Breaker:
    def __init__(
        self,
        *,
        failures: int = 7,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        self.failures = failures
        self.backoff = Backoff(
            min_backoff_s, max_backoff_s, jitter, rng if rng is not None else random.Random()
        )
        self._state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.ejections = 0  # consecutive ejections without a successful probe in between
        self.open_until = 0.0
        self.probe_in_flight = False
        self.epoch = 0

    def _fire(self, event: Event, now: float) -> None:
        try:
            new = TRANSITIONS[(self._state, event)]
        except KeyError:
            raise RuntimeError(f"breaker: no transition from {self._state.name} on {event.name}") from None
        if new is BreakerState.OPEN and self._state is not BreakerState.OPEN:
            self.open_until = now + self.backoff.delay(self.ejections)
            self.ejections += 1
            self.epoch += 1
            self.probe_in_flight = False
        elif new is BreakerState.CLOSED:
            if self._state is BreakerState.HALF_OPEN:
                self.ejections = 0
            self.consecutive_failures = 0 if event is Event.SUCCESS else self.consecutive_failures
            self.probe_in_flight = False
        elif event is Event.PROBE_SENT:
            self.probe_in_flight = True
        elif event is Event.PROBE_ABANDONED:
            self.probe_in_flight = False
        self._state = new

    def state(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN and now >= self.open_until:
            self._fire(Event.PROBATION_OVER, now)
        return self._state

    def available(self, now: float) -> bool:
        """May a new request go to this endpoint now?"""
        state = self.state(now)
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self.probe_in_flight)

    def dispatch(self, now: float) -> Ticket:
        """A request is being sent; in HALF_OPEN it becomes the probe."""
        state = self.state(now)
        if state is BreakerState.HALF_OPEN:
            if self.probe_in_flight:
                raise RuntimeError("breaker: a probe is already in flight")
            self._fire(Event.PROBE_SENT, now)
            return Ticket(self.epoch, probe=True)
        return Ticket(self.epoch, probe=False)

    def record(self, ticket: Ticket, outcome: Outcome, now: float) -> None:
        state = self.state(now)
        if ticket.epoch != self.epoch:
            return  # sent before the last ejection: says nothing about the endpoint now
        if state is BreakerState.HALF_OPEN and not ticket.probe:
            return
        if outcome is Outcome.SUCCESS:
            self._fire(Event.SUCCESS, now)
            return
        if state is BreakerState.CLOSED:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.failures:
                self._fire(Event.FAILURE_LIMIT, now)
                return
        self._fire(Event.FAILURE, now)

    def abandon(self, ticket: Ticket, now: float) -> None:
        """The request ended without an outcome (client went away): free the probe slot."""
        if ticket.probe and ticket.epoch == self.epoch and self.state(now) is BreakerState.HALF_OPEN:
            self._fire(Event.PROBE_ABANDONED, now)
