from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxmesh.clock import FakeClock
from voxmesh.mesh.rotation import (
    RotationAction,
    RotationSnapshot,
    decide,
    retry_delay,
    rotation_time,
)
from voxmesh.settings import MeshSettings

DAY = 24 * 3600.0


def test_rotation_time_is_two_thirds_of_life_by_default() -> None:
    frac = MeshSettings.model_fields["rotate_fraction"].default
    assert frac == pytest.approx(2 / 3)
    assert rotation_time(1000.0, 1000.0 + DAY, frac) == pytest.approx(1000.0 + 16 * 3600)


def test_keep_before_rotate_at_and_wake_exactly_then() -> None:
    d = decide(RotationSnapshot(now=10.0, not_before=0.0, not_after=30.0))
    assert d.action is RotationAction.KEEP and not d.due and not d.expired
    assert d.wake_at == pytest.approx(20.0)


def test_rotate_at_and_after_rotate_at() -> None:
    assert decide(RotationSnapshot(now=20.0, not_before=0.0, not_after=30.0)).due
    d = decide(RotationSnapshot(now=29.0, not_before=0.0, not_after=30.0))
    assert d.due and d.wake_at == 29.0 and not d.expired


def test_expired_is_flagged_and_still_rotates() -> None:
    d = decide(RotationSnapshot(now=31.0, not_before=0.0, not_after=30.0))
    assert d.due and d.expired


def test_backoff_after_failures_then_retry() -> None:
    snap = RotationSnapshot(now=21.0, not_before=0.0, not_after=DAY, failures=1, last_failure_at=21.0)
    # not yet due for 24h certs: KEEP wins over backoff
    assert decide(snap).action is RotationAction.KEEP
    base = dict(not_before=0.0, not_after=30.0)
    d = decide(RotationSnapshot(now=20.5, failures=1, last_failure_at=20.0, **base))
    assert d.action is RotationAction.BACKOFF and d.wake_at == pytest.approx(21.0)
    assert decide(RotationSnapshot(now=21.0, failures=1, last_failure_at=20.0, **base)).due


def test_retry_delay_doubles_and_is_capped_by_life_and_30s() -> None:
    assert [retry_delay(n, DAY) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]
    assert retry_delay(5, 3.0) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(now=0, not_before=0, not_after=10, fraction=0),
        dict(now=0, not_before=0, not_after=10, fraction=1),
        dict(now=0, not_before=10, not_after=10),
        dict(now=0, not_before=0, not_after=10, failures=1),
    ],
)
def test_invalid_snapshots_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RotationSnapshot(**kwargs)  # type: ignore[arg-type]


def _run(clock: FakeClock, ttl: float, horizon: float, fail_first: int = 0) -> list[tuple[float, float, bool]]:
    """Drive the policy like ReloadableIdentity does; returns (rotated_at, life_used, expired)."""
    not_before, not_after = clock(), clock() + ttl
    failures, last_failure = 0, None
    log = []
    while clock() < horizon:
        d = decide(RotationSnapshot(clock(), not_before, not_after, 2 / 3, failures, last_failure))
        if d.due:
            if fail_first:
                fail_first -= 1
                failures, last_failure = failures + 1, clock()
                continue
            log.append((clock(), (clock() - not_before) / ttl, d.expired))
            not_before, not_after, failures, last_failure = clock(), clock() + ttl, 0, None
            continue
        clock.advance(max(d.wake_at - clock(), 0.0))
    return log


def test_a_day_of_24h_certs_with_a_fake_clock_rotates_at_two_thirds_and_never_expires() -> None:
    clock = FakeClock(1_700_000_000.0)
    log = _run(clock, DAY, clock() + 5 * DAY)
    assert len(log) == 7  # every 16 h over 5 days
    assert all(used == pytest.approx(2 / 3) and not expired for _, used, expired in log)


def test_issuer_outage_is_ridden_out_with_backoff_before_expiry() -> None:
    clock = FakeClock(0.0)
    log = _run(clock, DAY, 2 * DAY, fail_first=8)  # 1+2+4+8+16+30+30+30 s of outage
    first_at, _used, expired = log[0]
    assert not expired
    assert first_at == pytest.approx(16 * 3600 + 121)


@given(
    ttl=st.floats(min_value=1.0, max_value=30 * DAY),
    frac=st.floats(min_value=0.05, max_value=0.95),
    at=st.floats(min_value=0.0, max_value=1.5),
)
def test_decision_invariants(ttl: float, frac: float, at: float) -> None:
    snap = RotationSnapshot(now=at * ttl, not_before=0.0, not_after=ttl, fraction=frac)
    d = decide(snap)
    assert d.wake_at >= snap.now
    assert d.due == (snap.now >= d.rotate_at)
    assert d.expired == (snap.now >= ttl)
    assert d.rotate_at < ttl
