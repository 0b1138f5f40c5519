"""The core scheduler on N cores: thread classes, fair shares, the engine's useful-thread cap,
and the scheduler's invariants (never oversubscribed, no idle core while a
request waits, FIFO start order) for N in {1, 2, 3, 4, 8, 16}."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.worker.scheduler import Admit, CoreScheduler, Grant, class_at_most, thread_classes


def test_thread_classes() -> None:
    assert thread_classes(1) == (1,)
    assert thread_classes(2) == (1, 2)
    assert thread_classes(6) == (1, 2, 4, 6)
    assert thread_classes(16) == (1, 2, 4, 8, 16)
    assert class_at_most((1, 2, 4, 8, 16), 7) == 4
    assert class_at_most((1, 2, 4), 0) == 1


def test_shares_follow_the_load_on_16_cores() -> None:
    s = CoreScheduler(cores=16, max_queue=32)
    assert s.submit(1) == (Admit.RUN, Grant(1, 16))  # alone: every core
    assert s.submit(2) == (Admit.QUEUED, None)  # 1 holds all 16 for its segment
    assert s.threads_for(1) == 8  # two requests: half each
    assert s.admit_waiting() == [Grant(2, 8)]
    assert s.submit(3) == (Admit.QUEUED, None)  # no free core
    assert s.threads_for(1) == 4  # three: 16 // 3 = 5 -> class 4
    assert s.admit_waiting() == [Grant(3, 4)]
    assert s.threads_for(2) == 4
    assert s.threads_granted == 12
    assert s.submit(4) == (Admit.RUN, Grant(4, 4))  # four: 4 each, on the 4 idle cores
    assert s.threads_granted == 16
    s.release(1)
    s.release(2)
    s.release(3)
    assert s.threads_for(4) == 16  # alone again
    assert s.grants_by_threads == {8: 1, 4: 2, 16: 1}  # threads_for calls, by class


def test_max_useful_threads_caps_every_grant() -> None:
    s = CoreScheduler(cores=16, max_queue=8, max_useful_threads=2)  # Kokoro int8 on a 16-core Xeon
    assert s.submit(1) == (Admit.RUN, Grant(1, 2))
    # the 14 cores it leaves are not idled behind it: others start at once beside it
    assert [s.submit(t)[1] for t in range(2, 9)] == [Grant(t, 2) for t in range(2, 9)]
    assert s.threads_granted == 16
    assert s.submit(9) == (Admit.QUEUED, None)
    with pytest.raises(ValueError):
        CoreScheduler(cores=4, max_queue=1, max_useful_threads=0)


def test_max_useful_threads_rounds_down_to_a_class() -> None:
    s = CoreScheduler(cores=16, max_queue=8, max_useful_threads=6)
    assert s.submit(1) == (Admit.RUN, Grant(1, 4))


def test_calm_holds_a_lone_request_to_half_the_cores() -> None:
    s = CoreScheduler(cores=8, max_queue=8, calm_s=1.0)
    s.submit(1, now=0.0)
    s.submit(2, now=0.0)
    s.threads_for(1, now=0.1)
    s.admit_waiting(now=0.1)
    s.release(2, now=0.2)  # contention ends here
    assert s.threads_for(1, now=0.5) == 4
    assert s.threads_for(1, now=1.3) == 8


def test_a_preempted_segment_reruns_on_one_core_then_gets_its_share() -> None:
    s = CoreScheduler(cores=8, max_queue=4, preempt_frac=0.5)
    s.submit(1, now=0.0)
    assert s.threads_for(1, now=0.0, cost=10.0) == 8
    assert s.submit(2, now=1.0) == (Admit.RUN, Grant(2, 4))
    assert s.take_preempted() == [1]
    assert s.threads_for(1, now=1.0) == 1
    assert s.threads_for(1, now=2.0) == 4


SUBMIT, RELEASE, SEGMENT, SET_CAP = range(4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(SUBMIT, SET_CAP), st.integers(0, 40)), max_size=120),
       st.sampled_from([1, 2, 3, 4, 8, 16]), st.integers(0, 8), st.sampled_from([0.0, 0.5, 1.0]),
       st.sampled_from([None, 1, 2, 4, 6]), st.sampled_from([0.0, 2.0]))
def test_invariants_on_n_cores(ops: list[tuple[int, int]], cores: int, max_queue: int, preempt_frac: float,
                               useful: int | None, calm_s: float) -> None:
    s = CoreScheduler(cores=cores, max_queue=max_queue, preempt_frac=preempt_frac,
                      max_useful_threads=useful, calm_s=calm_s)
    classes = set(thread_classes(cores))
    cap = min(cores, useful or cores)
    live: list[int] = []
    running: list[int] = []
    started: list[int] = []
    next_ticket = 0

    def granted(grants: list[Grant]) -> None:
        for g in grants:
            assert g.threads in classes and g.threads <= cap
            assert g.threads <= s.max_useful_threads  # the measured cap in use, where one is set
            started.append(g.ticket)
            running.append(g.ticket)

    for now, (op, pick) in enumerate(ops):
        if op == SUBMIT:
            next_ticket += 1
            admit, grant = s.submit(next_ticket, now=now)
            if admit is not Admit.REJECTED:
                live.append(next_ticket)
            granted([grant] if grant else [])
            for ticket in s.take_preempted():
                assert ticket in running
                assert s.threads_for(ticket, now=now, cost=4.0) == 1
        elif op == RELEASE and live:
            ticket = live.pop(pick % len(live))
            if ticket in running:
                running.remove(ticket)
            granted(s.release(ticket, now=now))
        elif op == SEGMENT and running:
            threads = s.threads_for(running[pick % len(running)], now=now, cost=4.0)
            assert threads in classes and threads <= cap and threads <= s.max_useful_threads
            demand = s.in_flight + s.queued
            assert threads <= max(1, cores // demand)  # never above its fair share
            granted(s.admit_waiting(now=now))
        elif op == SET_CAP:  # the worker's measured speed-ups move the cap (worker/speedup.py)
            ordered = sorted(classes)
            s.set_max_useful(ordered[pick % len(ordered)] if pick % 5 else None)
        assert s.in_flight <= cores
        assert s.threads_granted <= cores  # never oversubscribed
        assert s.queued <= max_queue
        assert s.queued == 0 or s.threads_granted == cores  # no idle core while a request waits
    assert started == sorted(started)  # FIFO start order


def test_engine_option_sets_the_cap_and_admission_passes_it() -> None:
    from voxmesh.engines.registry import KOKORO_MAX_USEFUL_THREADS, _useful_threads
    from voxmesh.errors import ConfigError
    from voxmesh.worker.admission import Admission

    assert KOKORO_MAX_USEFUL_THREADS == 2
    assert _useful_threads("kokoro", {}, 2) == 2
    assert _useful_threads("kokoro", {"max_useful_threads": 4}, 2) == 4
    assert _useful_threads("piper", {}, None) is None
    for bad in (0, "2", True, 1.5):
        with pytest.raises(ConfigError, match="max_useful_threads must be an integer"):
            _useful_threads("piper", {"max_useful_threads": bad}, None)
    assert Admission(16, 4, max_useful_threads=2).scheduler.max_useful_threads == 2
    assert Admission(2, 4, max_useful_threads=8).scheduler.max_useful_threads == 2


def test_worker_metrics_show_grants_by_class_and_the_engine_cap() -> None:
    from voxmesh.engines.registry import create_engine
    from voxmesh.settings import WorkerSettings
    from voxmesh.worker.server import WorkerApp

    engine = create_engine("tone")
    engine.max_useful_threads = 4
    app = WorkerApp(engine, model="m", engine_name="tone", settings=WorkerSettings(), cores=16)
    try:
        sched = app.admission.scheduler
        assert sched.max_useful_threads == 4
        sched.submit(1)
        sched.threads_for(1)
        text = app.render_metrics()
        assert 'voxmesh_worker_segment_threads_total{model="m",threads="4"} 1' in text
    finally:
        app.pool.shutdown(wait=False)
