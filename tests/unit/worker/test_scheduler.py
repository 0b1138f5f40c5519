from __future__ import annotations

from voxmesh.worker.scheduler import Admit, CoreScheduler, Grant


def test_lone_request_gets_all_cores() -> None:
    s = CoreScheduler(cores=2, max_queue=4)
    assert s.submit(1) == (Admit.RUN, Grant(1, 2))


def two_running(cores: int = 2, max_queue: int = 4) -> CoreScheduler:
    """Tickets 1 and 2 running on one core each."""
    s = CoreScheduler(cores=cores, max_queue=max_queue)
    s.submit(1)
    s.submit(2)
    s.threads_for(1)
    assert s.admit_waiting() == [Grant(2, 1)]
    return s


def test_second_request_waits_for_the_wide_segment_then_both_run_on_one_core() -> None:
    s = CoreScheduler(cores=2, max_queue=4)
    assert s.submit(1) == (Admit.RUN, Grant(1, 2))
    # 1 holds both cores for its current segment: starting 2 beside it would oversubscribe them
    assert s.submit(2) == (Admit.QUEUED, None)
    assert s.admit_waiting() == []
    # at its next segment 1 is no longer alone: one core, and 2 starts on the other
    assert s.threads_for(1) == 1
    assert s.admit_waiting() == [Grant(2, 1)]
    assert s.threads_granted == 2
    s.release(2)
    assert s.threads_for(1) == 2


def test_a_request_that_ends_its_wide_segment_hands_over_both_cores() -> None:
    s = CoreScheduler(cores=2, max_queue=4)
    s.submit(1)
    s.submit(2)
    s.submit(3)
    assert s.release(1) == [Grant(2, 1), Grant(3, 1)]


def test_fifo_order_and_bounded_queue() -> None:
    s = two_running(max_queue=2)
    assert s.submit(3) == (Admit.QUEUED, None)
    assert s.submit(4) == (Admit.QUEUED, None)
    assert s.submit(5) == (Admit.REJECTED, None)
    assert s.release(2) == [Grant(3, 1)]
    assert s.release(1) == [Grant(4, 1)]
    assert s.queued == 0 and s.in_flight == 2


def test_cancelled_waiter_leaves_the_queue() -> None:
    s = CoreScheduler(cores=1, max_queue=4)
    s.submit(1)
    s.submit(2)
    s.submit(3)
    assert s.release(2) == []
    assert s.release(1) == [Grant(3, 1)]


# The invariants (never oversubscribed, no idle core while a request waits, FIFO start order)
# are property-tested for 1 to 16 cores in test_scheduler_ncores.py.


def test_a_fresh_wide_segment_is_taken_back_for_a_newcomer() -> None:
    s = CoreScheduler(cores=2, max_queue=4, preempt_frac=0.25)
    s.submit(1, now=0.0)
    assert s.threads_for(1, now=0.0, cost=1.6) == 2  # a 1.6 s segment on both cores
    # 0.1 s in (< 0.25 x 1.6 s): starting over on one core beats waiting 1.5 s
    assert s.submit(2, now=0.1) == (Admit.RUN, Grant(2, 1))
    assert s.take_preempted() == [1] and s.take_preempted() == []
    assert s.threads_granted == 2 and s.preemptions == 1
    assert s.threads_for(1, now=0.11, cost=1.6) == 1  # its segment runs again on one core


def test_a_wide_segment_past_the_window_is_waited_out() -> None:
    s = CoreScheduler(cores=2, max_queue=4, preempt_frac=0.25)
    s.submit(1, now=0.0)
    s.threads_for(1, now=0.0, cost=1.6)
    assert s.submit(2, now=0.5) == (Admit.QUEUED, None)
    assert s.take_preempted() == [] and s.preemptions == 0


def test_no_preemption_without_an_expected_time_or_when_off() -> None:
    s = CoreScheduler(cores=2, max_queue=4, preempt_frac=0.25)
    s.submit(1, now=0.0)
    s.threads_for(1, now=0.0)  # cost unknown
    assert s.submit(2, now=0.01) == (Admit.QUEUED, None)
    off = CoreScheduler(cores=2, max_queue=4)
    off.submit(1, now=0.0)
    off.threads_for(1, now=0.0, cost=1.6)
    assert off.submit(2, now=0.01) == (Admit.QUEUED, None)


def test_preempt_frac_is_checked() -> None:
    import pytest

    with pytest.raises(ValueError, match="preempt_frac"):
        CoreScheduler(cores=2, max_queue=4, preempt_frac=1.5)
