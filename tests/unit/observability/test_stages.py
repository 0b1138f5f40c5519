from __future__ import annotations

import threading

import pytest

from voxmesh.observability.stages import STAGES, StageFault, StageTimes, bound, parse_server_timing, stage


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_adds_up_per_stage_and_renders_server_timing() -> None:
    clock = FakeClock()
    times = StageTimes(clock=clock)
    with times.time("g2p"):
        clock.now += 0.010
    with times.time("g2p"):
        clock.now += 0.005
    with times.time("encode"):
        clock.now += 0.002
    times.add("queue", 0.1)
    assert times.seconds["g2p"] == pytest.approx(0.015)
    header = times.server_timing()
    assert [p.split(";")[0] for p in header.split(", ")] == list(STAGES)
    assert parse_server_timing(header) == pytest.approx(
        {"queue": 100.0, "normalize": 0.0, "g2p": 15.0, "inference": 0.0, "prosody": 0.0, "encode": 2.0})
    assert times.server_timing(("queue",)) == "queue;dur=100.0"


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        StageTimes().add("tokenize", 1.0)


def test_fault_sleeps_inside_the_named_stage_only() -> None:
    clock = FakeClock()
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.now += s

    times = StageTimes(clock=clock, fault=StageFault("normalize", 0.25, sleep))
    with times.time("normalize"):
        clock.now += 0.01
    with times.time("encode"):
        clock.now += 0.01
    assert slept == [0.25]
    assert times.seconds["normalize"] == pytest.approx(0.26)
    assert times.seconds["encode"] == pytest.approx(0.01)


def test_stage_records_into_the_bound_request_and_nowhere_else() -> None:
    clock = FakeClock()
    times = StageTimes(clock=clock)
    with stage("g2p"):  # nothing bound: a no-op
        clock.now += 1.0
    assert times.seconds["g2p"] == 0.0

    def in_thread() -> None:  # as the worker's executor threads call engines
        with bound(times), stage("g2p"):
            clock.now += 0.5

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert times.seconds["g2p"] == pytest.approx(0.5)
    with stage("g2p"):  # unbound again after the block
        clock.now += 1.0
    assert times.seconds["g2p"] == pytest.approx(0.5)


def test_parse_server_timing_skips_entries_without_a_duration() -> None:
    assert parse_server_timing('queue;dur=1.5, cache;desc="hit", synth;dur=bad, g2p ; dur = 2') == {
        "queue": 1.5, "g2p": 2.0}
