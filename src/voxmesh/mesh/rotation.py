"""When to re-issue a certificate: a pure policy over a frozen snapshot (no I/O, no clock).

Rules (``life = not_after - not_before``, ``rotate_at = not_before + fraction * life``)::

    now <  rotate_at                                  -> KEEP     wake at rotate_at
    now >= rotate_at, no failed attempt pending       -> ROTATE   (now)
    now >= rotate_at, last attempt failed at t, n times
        now <  t + retry_delay(n)                     -> BACKOFF  wake at t + retry_delay(n)
        otherwise                                     -> ROTATE
    ``expired`` is set once now >= not_after (new handshakes with this certificate fail;
    connections already open keep working), whatever the action.

``retry_delay`` doubles from 1 s per consecutive failure, capped at 30 s and at a tenth of the
certificate's life, so a 3 s test certificate retries quickly and a 24 h one does not hammer an
unreachable issuer. The default fraction 2/3 (``MeshSettings.rotate_fraction``) leaves a third
of the life (8 h for 24 h) to ride out an issuer outage, like Linkerd's proxy identity.

The caller (:class:`voxmesh.mesh.tls.ReloadableIdentity`) owns the clock and the failure count:
it builds a :class:`RotationSnapshot` from ``clock()`` and the current certificate, acts on the
decision and sleeps until ``wake_at``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "RotationAction",
    "RotationDecision",
    "RotationSnapshot",
    "decide",
    "retry_delay",
    "rotation_time",
]

_MIN_RETRY_S = 1.0
_MAX_RETRY_S = 30.0


class RotationAction(enum.Enum):
    KEEP = "keep"
    ROTATE = "rotate"
    BACKOFF = "backoff"


@dataclass(frozen=True)
class RotationSnapshot:
    now: float
    not_before: float
    not_after: float
    fraction: float = 2 / 3
    failures: int = 0  # consecutive failed rotation attempts since the last success
    last_failure_at: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.fraction < 1:
            raise ValueError(f"rotate fraction must be in (0, 1), got {self.fraction}")
        if self.not_after <= self.not_before:
            raise ValueError("certificate validity is empty (not_after <= not_before)")
        if self.failures < 0 or (self.failures > 0 and self.last_failure_at is None):
            raise ValueError("failures > 0 needs last_failure_at")


@dataclass(frozen=True)
class RotationDecision:
    action: RotationAction
    rotate_at: float
    wake_at: float  # when the caller should decide again (== now for ROTATE)
    expired: bool

    @property
    def due(self) -> bool:
        return self.action is RotationAction.ROTATE


def rotation_time(not_before: float, not_after: float, fraction: float) -> float:
    return not_before + fraction * (not_after - not_before)


def retry_delay(failures: int, life_s: float) -> float:
    """Back-off after ``failures`` consecutive failures (>= 1) for a certificate of ``life_s``."""
    cap = min(_MAX_RETRY_S, max(0.1, life_s / 10))
    return float(min(cap, _MIN_RETRY_S * 2 ** (max(failures, 1) - 1)))


def decide(snap: RotationSnapshot) -> RotationDecision:
    rotate_at = rotation_time(snap.not_before, snap.not_after, snap.fraction)
    expired = snap.now >= snap.not_after
    if snap.now < rotate_at:
        return RotationDecision(RotationAction.KEEP, rotate_at, rotate_at, expired)
    if snap.failures and snap.last_failure_at is not None:
        retry_at = snap.last_failure_at + retry_delay(snap.failures, snap.not_after - snap.not_before)
        if snap.now < retry_at:
            return RotationDecision(RotationAction.BACKOFF, rotate_at, retry_at, expired)
    return RotationDecision(RotationAction.ROTATE, rotate_at, snap.now, expired)
