"""Classify what happened to one attempt, apart from acting on it.

One function maps an upstream status or a transport error to an :class:`Outcome`; the
breaker, the retry loop and the metrics only read outcomes (linkerd2-proxy ``classify``).

Rules
    * status < 500 (including 4xx): SUCCESS. A 4xx is the client's mistake, not the
      endpoint's; it is passed through and does not count against the breaker.
    * status 503: RETRYABLE even for a non-idempotent request when configured: the upstream
      refused the work (load shedding) before doing it.
    * status in the configured retry statuses (default 500, 502, 503, 504): RETRYABLE for an
      idempotent request, FAILURE otherwise. Synthesis and translation are pure, so the
      data plane treats them as idempotent.
    * other 5xx: FAILURE.
    * CONNECT (the request never reached the upstream): RETRYABLE, always safe.
    * TIMEOUT or RESET (the upstream may have done the work): RETRYABLE when idempotent.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum

__all__ = ["DEFAULT_RETRY_STATUSES", "ErrorKind", "Outcome", "classify"]

DEFAULT_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class Outcome(Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    FAILURE = "failure"

    @property
    def ok(self) -> bool:
        return self is Outcome.SUCCESS


class ErrorKind(Enum):
    CONNECT = "connect"  # refused / unreachable / TLS handshake: nothing was sent
    TIMEOUT = "timeout"  # no first byte (or no next chunk) in time
    RESET = "reset"  # the connection broke after the request was sent


def classify(
    *,
    status: int | None = None,
    error: ErrorKind | None = None,
    retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
    idempotent: bool = True,
) -> Outcome:
    if (status is None) == (error is None):
        raise ValueError("classify needs exactly one of status or error")
    if error is not None:
        if error is ErrorKind.CONNECT or idempotent:
            return Outcome.RETRYABLE
        return Outcome.FAILURE
    assert status is not None
    if status < 500:
        return Outcome.SUCCESS
    if status in retry_statuses and (idempotent or status == 503):
        return Outcome.RETRYABLE
    return Outcome.FAILURE
