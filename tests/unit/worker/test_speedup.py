"""The measured speed-up per thread class: the profile's math on synthetic timings, the cap it
hands the scheduler (a class that does not pay is never granted), adaptation to served
timings on a fake clock, the steady-worker rule for samples, and the warm-up calibration."""

from __future__ import annotations

import asyncio

import pytest

from voxmesh.worker.admission import Admission, Slot
from voxmesh.worker.calibrate import calibrate
from voxmesh.worker.scheduler import Admit, CoreScheduler, Grant, thread_classes
from voxmesh.worker.speedup import SpeedProfile


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_speedups_and_useful_max_from_synthetic_timings() -> None:
    # the 16-core Xeon's Piper latencies per class (issue 18): 463 / 295 / 199 / 140 / 109 ms
    p = SpeedProfile(thread_classes(16), min_speedup=1.1, clock=FakeClock())
    assert p.useful_max() is None and p.speedups() == {}  # nothing measured: no cap
    for k, ms in ((1, 463), (2, 295), (4, 199), (8, 140), (16, 109)):
        p.seed(k, ms / 1000 / 100)  # a 100-character sentence
    assert p.speedups() == pytest.approx({2: 463 / 295, 4: 295 / 199, 8: 199 / 140, 16: 140 / 109})
    assert p.useful_max() == 16  # every doubling pays at least 1.1x
    p.min_speedup = 1.4
    assert p.useful_max() == 8  # 16 threads buy 1.28x over 8: not granted
    # Kokoro int8 on the same Xeon: 9.6 / 8.3 / 10.4 s at 1 / 2 / 4 threads
    k = SpeedProfile((1, 2, 4), min_speedup=1.1, clock=FakeClock())
    for threads, s in ((1, 9.6), (2, 8.3), (4, 10.4)):
        k.seed(threads, s / 100)
    assert k.speedups()[2] == pytest.approx(9.6 / 8.3)  # 1.157: pays
    assert k.pays(4) is False and k.useful_max() == 2


def test_the_walk_stops_at_the_first_class_that_does_not_pay() -> None:
    p = SpeedProfile((1, 2, 4), clock=FakeClock())
    p.seed(1, 1.0)
    p.seed(2, 0.98)  # 2 threads: 1.02x, does not pay
    p.seed(4, 0.5)  # 4 would pay over 2, but a single cap cannot skip 2
    assert p.useful_max() == 1


def test_an_unmeasured_class_counts_as_useful_so_it_gets_measured() -> None:
    p = SpeedProfile((1, 2, 4), clock=FakeClock())
    p.seed(1, 1.0)
    assert p.pays(2) is None and p.useful_max() == 4
    p.seed(2, 0.6)
    p.seed(4, 0.59)
    assert p.useful_max() == 2


def test_bad_samples_and_settings_are_ignored_or_refused() -> None:
    p = SpeedProfile((1, 2), clock=FakeClock())
    p.observe(2, 0, 1.0)
    p.observe(2, 10, 0.0)
    p.observe(3, 10, 1.0)  # not a class
    p.seed(1, float("nan"))
    assert p.seconds_per_unit() == {}
    for kwargs in ({"min_speedup": 0.9}, {"alpha": 0.0}, {"refresh_s": 0.0}):
        with pytest.raises(ValueError):
            SpeedProfile((1, 2), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SpeedProfile(())


def test_the_profile_adapts_when_served_timings_change() -> None:
    clock = FakeClock()
    p = SpeedProfile((1, 2), alpha=0.5, clock=clock)
    p.seed(1, 0.004)
    p.seed(2, 0.0024)  # 1.67x: two threads pay
    assert p.useful_max() == 2
    # the machine changes (another tenant's memory-bound job): two threads now buy nothing
    for _ in range(8):
        clock.t += 1.0
        p.observe(2, 100, 0.40)
    assert p.speedups()[2] == pytest.approx(1.0, abs=0.02)
    assert p.useful_max() == 1
    est = p.estimate(2)
    assert est is not None and est.samples == 8 and est.updated_at == 8.0
    # and back: once class 2 is measured fast again it is granted again
    for _ in range(8):
        p.observe(2, 100, 0.24)
    assert p.useful_max() == 2


def test_a_class_that_did_not_pay_is_retried_when_its_measure_is_stale() -> None:
    clock = FakeClock()
    p = SpeedProfile((1, 2, 4), refresh_s=300.0, clock=clock)
    p.seed(1, 1.0)
    p.seed(2, 1.0)
    p.seed(4, 0.5)
    assert p.useful_max() == 1
    clock.t = 299.0
    p.observe(1, 10, 10.0)  # class 1 keeps being served; class 2 never is
    assert p.useful_max() == 1
    clock.t = 300.0
    assert p.useful_max() == 2  # one class up (not 4), until served segments at 2 settle it
    for _ in range(2):
        p.observe(2, 10, 10.0)
        assert p.useful_max() == 2  # not settled (2 of 3 samples): still granted, no further
    p.observe(2, 10, 10.0)
    assert p.useful_max() == 1  # settled: it does not pay


def test_a_sample_replaces_a_stale_estimate_instead_of_averaging_into_it() -> None:
    clock = FakeClock()
    p = SpeedProfile((1, 2), alpha=0.2, refresh_s=60.0, min_samples=1, clock=clock)
    p.seed(1, 0.004)
    p.seed(2, 0.008)  # a calibration disturbed by foreign load: two threads look 2x slower
    assert p.useful_max() == 1
    clock.t = 60.0
    assert p.useful_max() == 2  # stale: retried on the next lone request
    p.observe(2, 100, 0.24)  # that segment, on a quiet machine
    assert p.seconds_per_unit()[2] == pytest.approx(0.0024) and p.useful_max() == 2
    p.observe(2, 100, 0.34)  # fresh now: averaged
    assert p.seconds_per_unit()[2] == pytest.approx(0.0024 + 0.2 * 0.001)


def test_scheduler_cap_is_the_smaller_of_configured_and_measured() -> None:
    s = CoreScheduler(cores=16, max_queue=4, max_useful_threads=8)
    s.set_max_useful(4)
    assert s.max_useful_threads == 4 and s.configured_useful_threads == 8
    s.set_max_useful(16)
    assert s.max_useful_threads == 8  # measuring never raises the configured cap
    s.set_max_useful(None)
    assert s.max_useful_threads == 8
    s.set_max_useful(0)
    assert s.max_useful_threads == 1


def test_a_class_that_does_not_pay_is_never_granted() -> None:
    p = SpeedProfile((1, 2), clock=FakeClock())
    p.seed(1, 0.0040)
    p.seed(2, 0.0038)  # Kokoro-like on a busy host: 1.05x, below 1.1
    adm = Admission(2, 4, profile=p)
    adm.refresh_cap()
    s = adm.scheduler
    assert s.submit(1) == (Admit.RUN, Grant(1, 1))  # alone, and still one core
    assert s.submit(2) == (Admit.RUN, Grant(2, 1))  # the other core runs a second request beside it
    assert s.threads_for(1) == 1
    s.release(2)
    assert s.threads_for(1) == 1


async def test_only_segments_of_a_steady_worker_feed_the_profile() -> None:
    clock = FakeClock()
    p = SpeedProfile((1, 2), clock=clock)
    adm = Admission(2, 4, profile=p, clock=clock)
    entered, done = asyncio.Event(), asyncio.Event()
    box: dict[str, Slot] = {}

    async def second() -> None:
        async with adm.slot(cost=10) as b:
            box["b"] = b
            entered.set()
            await done.wait()

    async with adm.slot(cost=10) as a:
        assert a.threads(cost=10) == 2
        assert a.observe(2, 10, 0.5)  # alone all along
        assert a.threads(cost=10) == 2
        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        assert adm.queued == 1
        assert a.observe(2, 10, 0.5)  # a waiter does not change what runs beside it
        assert a.threads(cost=10) == 1  # b starts on the other core
        await entered.wait()
        b = box["b"]
        assert b.threads(cost=10) == 1
        assert a.observe(1, 10, 0.8)  # b started before a's segment was granted: steady
        assert b.observe(1, 10, 0.8)
        b.threads(cost=10)
        a.threads(cost=10)  # a's neighbour moved to its next segment on the same grant: steady
        assert a.observe(1, 10, 0.8)
        a.threads(cost=10)
        done.set()
        await task  # b ends while a's segment runs
        assert not a.observe(1, 10, 2.0)
    assert p.seconds_per_unit() == pytest.approx({1: 0.08, 2: 0.05})
    interrupted = Admission(2, 4, profile=p, clock=clock)
    async with interrupted.slot() as c:
        c.threads(cost=10)
        c.interrupt.fire()
        assert not c.observe(2, 10, 0.1)


def test_calibration_keeps_the_fastest_run_after_the_discarded_ones() -> None:
    order: list[int] = []
    times = {1: iter([9.0, 4.0, 4.2]), 2: iter([9.0, 2.6, 2.5])}

    def run(k: int) -> float:
        order.append(k)
        return next(times[k])

    assert calibrate(run, (1, 2), rounds=2, discard=1) == {1: 4.0, 2: 2.5}
    assert order == [1, 2, 1, 2, 1, 2]  # the classes take turns
    with pytest.raises(ValueError):
        calibrate(run, (1, 2), rounds=0)


def test_one_slow_first_segment_does_not_hold_a_class_back() -> None:
    """A worker's first wide segment runs beside the making of its one-thread session, on a
    cold arena: seen on a quiet 2-core machine at 0.65x the speed of one thread. One sample is
    no measure: the class stays granted until ``min_samples`` samples, and their median
    (not the slow first one) is what the EWMA starts from."""
    clock = FakeClock()
    p = SpeedProfile((1, 2), alpha=0.2, min_samples=3, clock=clock)
    for _ in range(3):
        p.observe(1, 100, 0.33)  # one-core segments side by side
    p.observe(2, 100, 0.50)  # the cold first wide segment
    assert p.speedups()[2] == pytest.approx(0.66, abs=0.01)
    assert p.pays(2) is None and p.useful_max() == 2  # not settled: still granted
    p.observe(2, 100, 0.23)
    p.observe(2, 100, 0.235)
    est = p.estimate(2)
    assert est is not None and p.settled(est) and est.samples == 3
    assert p.seconds_per_unit()[2] == pytest.approx(0.00235)  # the median of the three
    assert p.pays(2) is True and p.useful_max() == 2


def test_a_settled_class_that_does_not_pay_is_held_back() -> None:
    p = SpeedProfile((1, 2, 4), min_samples=2, clock=FakeClock())
    p.observe(1, 100, 0.40)
    assert p.useful_max() == 4  # 2 and 4 not measured: granted, so they get measured
    p.observe(2, 100, 0.39)
    p.observe(4, 100, 0.2)
    assert p.useful_max() == 2  # class 2 not settled: granted, and no further
    for k, seconds in ((1, 0.40), (2, 0.39)):
        p.observe(k, 100, seconds)
    assert p.pays(2) is False and p.useful_max() == 1
    with pytest.raises(ValueError):
        SpeedProfile((1, 2), min_samples=0)
