from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from voxmesh.worker.scheduler import Admit, CoreScheduler, Grant


def test_lone_request_gets_all_cores() -> None:
    s = CoreScheduler(cores=2, max_queue=4)
    assert s.submit(1) == (Admit.RUN, Grant(1, 2))


def test_second_request_runs_at_once_on_one_core_and_first_drops_to_one() -> None:
    s = CoreScheduler(cores=2, max_queue=4)
    s.submit(1)
    assert s.submit(2) == (Admit.RUN, Grant(2, 1))
    # at its next segment the first request is no longer alone
    assert s.threads_for(1) == 1
    s.release(2)
    assert s.threads_for(1) == 2


def test_fifo_order_and_bounded_queue() -> None:
    s = CoreScheduler(cores=2, max_queue=2)
    s.submit(1)
    s.submit(2)
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


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=80), st.integers(1, 4), st.integers(0, 5))
def test_invariants(ops: list[tuple[bool, int]], cores: int, max_queue: int) -> None:
    s = CoreScheduler(cores=cores, max_queue=max_queue)
    live: list[int] = []
    started: list[int] = []
    next_ticket = 0
    for submit, pick in ops:
        if submit:
            next_ticket += 1
            admit, grant = s.submit(next_ticket)
            if admit is not Admit.REJECTED:
                live.append(next_ticket)
            if grant:
                started.append(grant.ticket)
        elif live:
            ticket = live.pop(pick % len(live))
            started += [g.ticket for g in s.release(ticket)]
        assert s.in_flight <= cores
        assert s.queued <= max_queue
        # a core is never idle while someone waits
        assert s.queued == 0 or s.in_flight == cores
    # tickets increase with arrival, so FIFO means they start in increasing order
    assert started == sorted(started)
