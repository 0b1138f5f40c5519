from __future__ import annotations

from voxmesh.clock import FakeClock
from voxmesh.gateway.canary import CanaryConfig, CanaryPhase, CanaryState, Decision
from voxmesh.gateway.canary_loop import CanaryLoop
from voxmesh.gateway.golden import GoldenMetrics
from voxmesh.observability.metrics import Registry


class Plane:
    """The two things CanaryLoop needs from a DataPlane: its golden metrics and set_split."""

    def __init__(self) -> None:
        self.golden = GoldenMetrics(Registry())
        self.splits: list[dict[str, float]] = []

    def set_split(self, model: str, weights: dict[str, float]) -> None:
        self.splits.append(weights)

    def traffic(self, deployment: str, ok: int, failed: int, ttfb: float) -> None:
        stats = self.golden.route("/v1/audio/speech", deployment)
        for i in range(ok + failed):
            status = "200" if i < ok else "500"
            self.golden.request_done(stats, "/v1/audio/speech", deployment, status, i < ok, ttfb)


CFG = CanaryConfig(interval_s=10, threshold=1, step_weight=25, max_weight=50, min_success_rate=0.9,
                   max_p99_ms=300, min_requests=10)  # fmt: skip


def test_checks_see_only_the_last_interval_and_promote() -> None:
    clock, plane = FakeClock(), Plane()
    loop = CanaryLoop(plane, model="voice", primary="v1", canary="v2", config=CFG, clock=clock)
    d, state = loop.step(CanaryState())
    assert d is Decision.ADVANCE and plane.splits[-1] == {"v1": 75.0, "v2": 25.0}
    plane.traffic("v2", ok=0, failed=50, ttfb=0.01)  # a bad start...
    plane.traffic("v1", ok=100, failed=0, ttfb=0.01)  # (the primary's traffic is not the canary's)
    clock.advance(5)
    assert loop.step(state) == (Decision.WAIT, state)
    clock.advance(5)
    # the first check covers everything since the start: 0% success
    d, rolled = loop.step(state)
    assert d is Decision.ROLLBACK and rolled.weight == 0 and plane.splits[-1] == {"v1": 100.0, "v2": 0.0}

    clock2, plane2 = FakeClock(), Plane()
    loop2 = CanaryLoop(plane2, model="voice", primary="v1", canary="v2", config=CFG, clock=clock2)
    _, state = loop2.step(CanaryState())
    plane2.traffic("v2", ok=40, failed=0, ttfb=0.05)
    clock2.advance(10)
    d, state = loop2.step(state)
    assert d is Decision.ADVANCE and state.weight == 50
    assert state.log[-1].inputs.requests == 40 and state.log[-1].inputs.p99_ms <= 75
    plane2.traffic("v2", ok=40, failed=0, ttfb=0.05)
    clock2.advance(10)
    d, state = loop2.step(state)
    assert d is Decision.PROMOTE and state.phase is CanaryPhase.PROMOTED
    assert state.log[-1].inputs.requests == 40  # the difference, not the total
    assert plane2.splits[-1] == {"v1": 0.0, "v2": 100.0}


def test_slow_canary_fails_on_p99() -> None:
    clock, plane = FakeClock(), Plane()
    loop = CanaryLoop(plane, model="voice", primary="v1", canary="v2", config=CFG, clock=clock)
    _, state = loop.step(CanaryState())
    plane.traffic("v2", ok=100, failed=0, ttfb=0.9)
    clock.advance(10)
    d, state = loop.step(state)
    assert d is Decision.ROLLBACK and "p99" in state.log[-1].reason
