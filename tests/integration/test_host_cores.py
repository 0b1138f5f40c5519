"""Host core budget across processes: two deployments busy at once never lease more cores
than the budget (checked from the broker's grant metrics) and each keeps its weighted share;
a crashed worker's lease comes back.

The workers here are plain processes that lease cores per "segment" and hold them for 10 ms
(sleeping: the budget's accounting is under test, not this shared machine's CPU).
"""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import re
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from voxmesh.hostcores.broker import CoreBroker
from voxmesh.hostcores.budget import Share

TOTAL = 4
SHARES = {"piper": Share(weight=3), "kokoro": Share(weight=1)}


def _worker(path: str, deployment: str, seconds: float, go: Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """A busy worker: one long request, a lease per 10 ms segment. Like the real worker it
    hands each lease back in the same step as it asks for the next (``returning``), so its
    deployment never looks idle between two segments, however late this shared machine
    schedules it."""
    broker = CoreBroker(path, TOTAL, SHARES)
    core_s = 0.0
    go.wait(30)  # every worker starts together: the shares are measured under contention
    end = time.monotonic() + seconds
    lease = None
    while time.monotonic() < end:
        lease, cores = broker.acquire(deployment, TOTAL, timeout_s=10, returning=lease)
        t0 = time.monotonic()
        time.sleep(0.01)
        core_s += cores * (time.monotonic() - t0)
    if lease is not None:
        broker.release(lease)
    out.put((deployment, core_s))


def _granted(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r'voxmesh_host_cores_granted\{deployment="(\w+)"\} (\d+)', text)}


def test_two_busy_deployments_share_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "cores.json"
    broker = CoreBroker(path, TOTAL, SHARES)
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(path), dep, 2.0, go, out))
             for dep in ("piper", "piper", "kokoro", "kokoro")]
    samples: list[dict[str, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_granted(broker.metrics_text()))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    for p in procs:
        p.start()
    sampler.start()
    go.set()
    for p in procs:
        p.join(30)
    stop.set()
    sampler.join()
    results = [out.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs)
    assert len(samples) > 50
    assert max(sum(s.values()) for s in samples) <= TOTAL  # never more threads than cores
    assert broker.snapshot()["max_granted"] <= TOTAL
    core_s = {d: sum(c for dd, c in results if dd == d) for d in ("piper", "kokoro")}
    piper_frac = core_s["piper"] / (core_s["piper"] + core_s["kokoro"])
    assert 0.6 <= piper_frac <= 0.9, core_s  # weight 3:1 -> 0.75 of the cores under contention
    text = broker.metrics_text()
    assert 'voxmesh_host_core_waits_total{deployment="piper"}' in text


def _crash_holding(path: str) -> None:
    CoreBroker(path, TOTAL, SHARES).acquire("kokoro", TOTAL)
    os._exit(1)  # dies without releasing


def test_a_crashed_workers_lease_is_reclaimed(tmp_path: Path) -> None:
    path = tmp_path / "cores.json"
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_crash_holding, args=(str(path),))
    p.start()
    p.join(10)
    assert p.exitcode == 1
    broker = CoreBroker(path, TOTAL, SHARES)
    lease, cores = broker.acquire("piper", TOTAL, timeout_s=2)
    assert cores == TOTAL
    broker.release(lease)


def test_a_torn_lease_file_starts_afresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cores.json"
    path.write_text('{"leases": [{"ticket": 1, "hol')  # a writer killed mid-write
    broker = CoreBroker(path, TOTAL, SHARES)
    lease, cores = broker.acquire("piper", TOTAL, timeout_s=2)
    assert cores == TOTAL and "unreadable" in caplog.text
    broker.release(lease)
    assert broker.snapshot()["leases"] == []


def test_a_waiter_past_its_timeout_withdraws_and_a_renewal_keeps_the_turn(tmp_path: Path) -> None:
    path = tmp_path / "cores.json"
    broker = CoreBroker(path, TOTAL, SHARES, wake_min_s=0.01)
    held, _ = broker.acquire("kokoro", TOTAL)
    with pytest.raises(TimeoutError, match="no core for piper"):
        broker.acquire("piper", 1, timeout_s=0.1)
    assert broker.snapshot()["waiters"] == []
    # returning a lease and asking again is one step: the cores come straight back
    renewed, cores = broker.acquire("kokoro", TOTAL, returning=held)
    assert cores == TOTAL and renewed != held
    broker.release(renewed)
    assert 'voxmesh_host_core_waits_total{deployment="piper"} 1' in broker.process_metrics()


def test_acquire_now_grants_without_waiting_or_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cores.json"
    broker = CoreBroker(path, TOTAL, SHARES)
    held = broker.acquire_now("kokoro", TOTAL, sizes=(1, 2, 4))
    assert held is not None and held[1] == TOTAL
    before = broker.snapshot()
    assert broker.acquire_now("piper", 1) is None  # no core free: nothing filed, nothing changed
    assert broker.snapshot() == before
    with open(path) as f:  # someone else holds the lock: no blocking on an event loop
        fcntl.flock(f, fcntl.LOCK_EX)
        assert broker.acquire_now("kokoro", TOTAL, returning=held[0]) is None
    renewed = broker.acquire_now("kokoro", 2, returning=held[0])
    assert renewed is not None and renewed[1] == 2
    broker.release(renewed[0])
    assert broker.snapshot()["leases"] == []


def test_a_busy_loop_leases_renews_within_its_share_and_returns_when_idle(tmp_path: Path) -> None:
    """llama.cpp's decode loop: a lease while it has work, renewed every renew_s (down to its
    share once another deployment waits), returned when idle."""
    from voxmesh.hostcores.busy import BusyLease

    now = [0.0]
    broker = CoreBroker(tmp_path / "cores.json", TOTAL, SHARES)
    loop = BusyLease(broker, "kokoro", TOTAL, renew_s=0.25, clock=lambda: now[0])
    assert loop.hold() == TOTAL  # alone: every core
    assert loop.hold() is None  # within renew_s: the same lease, nothing to change
    # piper (3:1) files a ticket and waits; at the next renewal the loop drops to its share
    waiter = threading.Thread(target=lambda: broker.release(broker.acquire("piper", TOTAL, timeout_s=5)[0]))
    waiter.start()
    deadline = time.monotonic() + 5
    while not broker.snapshot()["waiters"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    now[0] = 0.3
    assert loop.hold() == 1
    waiter.join(5)
    loop.idle()
    assert broker.snapshot()["leases"] == []


def test_without_an_abstract_socket_a_waiter_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_abstract(self: socket.socket, address: object) -> None:
        raise OSError("no abstract namespace here")

    monkeypatch.setattr(socket.socket, "bind", no_abstract)
    broker = CoreBroker(tmp_path / "cores.json", TOTAL, SHARES)
    held, _ = broker.acquire("kokoro", TOTAL)
    got: list[tuple[int, int]] = []
    waiter = threading.Thread(target=lambda: got.append(broker.acquire("piper", 2, timeout_s=5)))
    waiter.start()
    time.sleep(0.1)
    broker.release(held)
    waiter.join(5)
    assert got and got[0][1] == 2
