from __future__ import annotations

import pytest

from voxmesh.clock import FakeClock
from voxmesh.mt.batcher import DynamicBatcher


def make(size: int = 4, wait: float = 0.25, **kw: int) -> tuple[DynamicBatcher[str], FakeClock]:
    clock = FakeClock()
    return DynamicBatcher(size, wait, clock=clock, **kw), clock


def test_lone_item_waits_for_company_until_max_wait() -> None:
    b, clock = make()
    b.add("a")
    assert b.take(free=4) == []
    assert b.deadline() == 0.25
    clock.advance(0.125)
    assert b.take(free=4) == []
    clock.advance(0.125)
    assert b.take(free=4) == ["a"]
    assert b.deadline() is None


def test_full_batch_starts_at_once_in_fifo_order() -> None:
    b, _ = make(size=3)
    for x in "abcde":
        b.add(x)
    assert b.take(free=8) == ["a", "b", "c"]
    # two left, fewer than a batch and not yet due
    assert b.take(free=8) == []


def test_free_slots_bound_the_batch_and_define_full() -> None:
    b, _ = make(size=8)
    b.add("a")
    b.add("b")
    assert b.take(free=2) == ["a", "b"]  # 2 free slots: 2 items is a full batch
    b.add("c")
    assert b.take(free=0) == []


def test_busy_engine_admits_immediately() -> None:
    b, _ = make()
    b.add("a")
    assert b.take(free=3, busy=True) == ["a"]


def test_remove_and_queue_cap() -> None:
    b, clock = make(max_queue=2)
    assert b.add("a") and b.add("b")
    assert not b.add("c")
    assert b.remove("a")
    assert not b.remove("zzz")
    clock.advance(1)
    assert b.take(free=4) == ["b"]


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(0, 0.1)
    with pytest.raises(ValueError):
        DynamicBatcher(1, -1)
