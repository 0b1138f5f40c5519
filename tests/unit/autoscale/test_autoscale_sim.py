"""The simulator: traces, service times, engine invariants, determinism, and the spike result."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from voxmesh.autoscale.sim.autoscalers import AutoscalerConfig, MetricSource, hpa_cpu, keda_qps, voxmesh
from voxmesh.autoscale.sim.engine import ClusterConfig, run
from voxmesh.autoscale.sim.report import summarize
from voxmesh.autoscale.sim.service import Empirical, LogNormal, piper_default
from voxmesh.autoscale.sim.trace import arrivals, make_scenario, poisson, spike
from voxmesh.autoscale.sim_cli import add_parser
from voxmesh.autoscale.simulator import compare
from voxmesh.autoscale.snapshot import Behavior, Metric, MetricKind, ScalingRules, ScalingSpec

# ---- traces and service times ------------------------------------------------------------


def test_arrival_count_matches_the_rate_integral() -> None:
    sc = spike(scale=10)
    times = arrivals(sc, np.random.default_rng(3))
    # 2 QPS x 10 for 1200 s plus the spike's extra area: (35 - 2) x 10 x (15 + 300 + 30)
    expected = 20 * 1200 + 330 * (15 + 300 + 30)
    assert abs(times.size - expected) < 4 * math.sqrt(expected)
    assert np.all(np.diff(times) >= 0) and times[0] >= 0 and times[-1] < sc.duration_s
    assert sc.spike == (300.0, 690.0) and sc.peak_qps == 350.0


def test_spike_shape_is_2_to_35_qps_per_deployment() -> None:
    sc = spike(scale=100)
    assert sc.rate(np.array([0.0, 299.0, 330.0, 600.0, 690.0, 1199.0])).tolist() == [
        200.0, 200.0, 3500.0, 3500.0, 200.0, 200.0
    ]


def test_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'x'; choose one of spike, diurnal, poisson"):
        make_scenario("x")


def test_lognormal_fit_hits_mean_and_p99() -> None:
    d = piper_default()
    assert d.mean_s == pytest.approx(0.39) and d.p99_s == pytest.approx(0.6)
    draws = d.sample(200_000, np.random.default_rng(0))
    assert float(draws.mean()) == pytest.approx(0.39, rel=0.01)
    assert float(np.quantile(draws, 0.99)) == pytest.approx(0.6, rel=0.02)
    with pytest.raises(ValueError, match="too heavy-tailed"):
        LogNormal.fit(0.1, 100.0)


def test_empirical_service_times() -> None:
    e = Empirical((0.2, 0.4))
    assert e.mean_s == pytest.approx(0.3)
    assert set(e.sample(100, np.random.default_rng(0)).tolist()) == {0.2, 0.4}


def test_metric_source_pipeline_stages() -> None:
    hpa = MetricSource(Metric.CPU_UTILIZATION, MetricKind.AVERAGE, scrape_s=15, window_s=15, offset_s=7)
    assert [hpa.observed_second(t) for t in (21.9, 22.0, 36.9, 37.0)] == [7, 22, 22, 37]
    keda = MetricSource(Metric.QPS, MetricKind.TOTAL, scrape_s=15, window_s=60, poll_s=30, offset_s=5)
    # polled at 5, 35, 65...; each poll sees the last 15 s scrape at or before it
    assert [keda.observed_second(t) for t in (34.0, 35.0, 64.9, 65.0)] == [5, 35, 35, 65]
    vox = MetricSource(Metric.IN_FLIGHT, MetricKind.TOTAL, scrape_s=1, window_s=2, delay_s=1)
    assert vox.observed_second(10.0) == 9


# ---- engine invariants ---------------------------------------------------------------------

def fixed(replicas: int, warm: int = 0) -> AutoscalerConfig:
    spec = ScalingSpec(min_replicas=replicas, max_replicas=replicas, warm_pool_size=warm,
                       target_in_flight_per_replica=1.0)
    return AutoscalerConfig("fixed", spec, MetricSource(Metric.IN_FLIGHT, MetricKind.TOTAL), sync_s=1.0)


def test_fixed_capacity_fifo_queue_by_hand() -> None:
    # one replica, three requests at t=0, 0.1, 0.2, each 1 s of work: done at 1, 2, 3
    times = np.array([0.0, 0.1, 0.2])
    res = run(times, np.ones(3), fixed(1), ClusterConfig(cold_start_jitter_s=0), duration_s=5.0)
    assert res.latency.tolist() == pytest.approx([1.0, 1.9, 2.8])
    # two replicas: the third waits for the first to finish
    res = run(times, np.ones(3), fixed(2), ClusterConfig(), duration_s=5.0)
    assert res.latency.tolist() == pytest.approx([1.0, 1.0, 1.8])


def test_requests_waiting_past_the_timeout_are_dropped() -> None:
    times = np.array([0.0, 0.0, 0.0])
    res = run(times, np.array([5.0, 5.0, 5.0]), fixed(1), ClusterConfig(request_timeout_s=7.0), duration_s=20.0)
    # the second starts at 5 (waited 5 s), the third would start at 10 (waited 10 s > 7): dropped
    assert res.latency.tolist() == [5.0, 10.0, math.inf]
    s = summarize(res, slo_s=6.0)
    assert s.dropped_pct == pytest.approx(100 / 3) and s.over_slo_pct == pytest.approx(200 / 3)


def test_every_request_is_served_or_dropped_and_cost_is_counted() -> None:
    sc = poisson(scale=1, qps=4, duration_s=120)
    rng = np.random.default_rng(5)
    times = arrivals(sc, rng)
    work = piper_default().sample(times.size, rng)
    res = run(times, work, voxmesh(1), ClusterConfig(), duration_s=sc.duration_s, initial_replicas=3)
    assert np.all(res.latency >= work - 1e-12)
    assert np.isfinite(res.latency).all()
    assert res.series["ready"].size == 121  # one sample per second, 0..120 inclusive
    # replica-seconds: at least the serving floor, at most max replicas for the whole run
    s = summarize(res, slo_s=2.0)
    assert 120 * 1 <= s.replica_s <= 120 * 25
    assert s.absorb_s is not None and math.isnan(s.absorb_s)


def test_warm_pool_promotion_is_fast_cold_start_is_not() -> None:
    """A step from 1 to ~6 busy replicas: a pool of 6 is routable within ~2 s, cold needs 15 s."""
    times = np.concatenate([np.arange(0, 30, 1.0), 30 + np.arange(0, 60, 0.1)])  # 1 QPS then 10 QPS
    work = np.full(times.size, 0.5)
    behavior = Behavior(ScalingRules(0.0), ScalingRules(30.0))
    spec = ScalingSpec(min_replicas=1, max_replicas=20, warm_pool_size=6, target_in_flight_per_replica=1.0,
                       behavior=behavior)
    src = MetricSource(Metric.IN_FLIGHT, MetricKind.TOTAL, scrape_s=1, window_s=1)
    cluster = ClusterConfig(cold_start_s=15.0, cold_start_jitter_s=0.0)
    warm = run(times, work, AutoscalerConfig("warm", spec, src, sync_s=1.0), cluster, duration_s=90.0)
    cold_spec = dataclasses.replace(spec, warm_pool_size=0)
    cold = run(times, work, AutoscalerConfig("cold", cold_spec, src, sync_s=1.0), cluster, duration_s=90.0)
    assert warm.series["ready"][34] >= 5  # decision at ~31-32 s, promoted 1 s later
    assert cold.series["ready"][34] <= 2
    assert cold.series["ready"][50] >= 5  # cold starts land after 15 s
    late = times >= 30
    assert np.quantile(warm.latency[late], 0.99) < np.quantile(cold.latency[late], 0.99)


# ---- comparison ----------------------------------------------------------------------------

def _table_without_wall(scale: float, seed: int) -> list[tuple[object, ...]]:
    cmp = compare("spike", scale=scale, seed=seed)
    return [dataclasses.astuple(dataclasses.replace(s, wall_s=0.0)) for s in cmp.summaries]


def test_same_seed_same_table_other_seed_other_table() -> None:
    a = _table_without_wall(1, seed=7)
    assert a == _table_without_wall(1, seed=7)
    assert a != _table_without_wall(1, seed=8)


def test_voxmesh_absorbs_a_spike_better_than_hpa_and_keda() -> None:
    cmp = compare("spike", scale=3, seed=2)
    by = {s.autoscaler: s for s in cmp.summaries}
    vox, hpa, keda = by["voxmesh"], by["hpa-cpu"], by["keda-qps"]
    assert vox.p99_s < hpa.p99_s and vox.p99_s < keda.p99_s
    assert vox.over_slo_pct < hpa.over_slo_pct / 5
    assert vox.absorb_s is not None and hpa.absorb_s is not None and vox.absorb_s < hpa.absorb_s
    # and it does not pay for it with more replica-seconds than the HPA's slow scale-down
    assert vox.replica_s < hpa.replica_s


def test_presets_share_the_target_utilization() -> None:
    assert voxmesh(100).spec.target_in_flight_per_replica == 0.7
    assert hpa_cpu(100).spec.target_cpu_utilization == 0.7
    assert keda_qps(100, mean_service_s=0.35).spec.target_qps_per_replica == pytest.approx(2.0)
    assert hpa_cpu(100).spec.behavior == Behavior()  # HPA defaults, 300 s scale-down window
    assert (hpa_cpu(100).sync_s, keda_qps(100).source.poll_s, voxmesh(100).sync_s) == (15.0, 30, 1.0)
    assert voxmesh(100).spec.max_replicas == 2500 and voxmesh(100).spec.warm_pool_size == 30


@pytest.mark.slow  # matplotlib import and two renders: a few seconds
def test_cli_prints_table_and_writes_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sim", "--scenario", "poisson", "--scale", "0.5", "--seed", "3",
                              "--out", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "voxmesh" in out and "hpa-cpu" in out and "keda-qps" in out and "p99 s" in out
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["autoscale_sim_poisson_p99.png", "autoscale_sim_poisson_replicas.png"]
    assert all((tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
