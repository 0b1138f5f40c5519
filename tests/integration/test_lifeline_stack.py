"""Workers never outlive their supervisor, leftovers of a crashed run are ended (only they),
and a dead worker leaves the pool within a second with no client request failing.

Real processes on loopback: ``voxmesh up`` as a subprocess with tone deployments (the
deterministic test engine), kill -9, /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.procs import free_port, stop_process
from tests.support.stacks import RunningUp, closed_loop, spawn_up, start_stack, wait_up

from voxmesh.gateway.balancer.pool import Remove
from voxmesh.lifeline import RunDir, process_start_time
from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

TONE = {"engine": "tone", "options": {"delay_s": 0.1, "ms_per_char": 5}, "threads": 1}
CONFIG = {
    "deployments": [
        {"name": "tone-a", **TONE, "replicas": {"min": 1, "max": 1, "warm": 1}},
        {"name": "tone-b", **TONE, "replicas": {"min": 1, "max": 1, "warm": 0}},
    ],
    "aliases": {"tts-1": "tone-a"},
}


def _up(tmp: Path, data: Path, ups: list[RunningUp]) -> RunningUp:
    """``voxmesh up`` with CONFIG on ``data``, stopped by the ``ups`` fixture."""
    up = spawn_up(tmp, yaml.safe_dump(CONFIG), data_dir=data)
    ups.append(up)
    return up


def _worker_pids(up: RunningUp) -> list[int]:
    return [r.pid for r in RunDir(up.data_dir / "run").records()]


@pytest.fixture
def ups() -> Iterator[list[RunningUp]]:
    started: list[RunningUp] = []
    yield started
    for up in started:
        if up.proc.poll() is None:
            stop_process(up.proc, 30)


def _alive(pid: int) -> bool:
    return process_start_time(pid) is not None


def test_kill_9_of_voxmesh_up_takes_its_workers_with_it(tmp_path: Path, ups: list[RunningUp]) -> None:
    up = _up(tmp_path, tmp_path / "data", ups)
    wait_up(up, 90)
    deadline = time.monotonic() + 30
    while len(pids := _worker_pids(up)) < 3:  # tone-a: 1 serving + 1 warm; tone-b: 1
        assert time.monotonic() < deadline, pids
        time.sleep(0.1)
    assert all(_alive(p) for p in pids)
    os.kill(up.proc.pid, signal.SIGKILL)
    up.proc.wait()
    t0 = time.monotonic()
    while any(_alive(p) for p in pids):
        assert time.monotonic() - t0 < 2.0, [p for p in pids if _alive(p)]
        time.sleep(0.02)
    # a restart on the same data dir starts one set, not a second one beside the first
    again = _up(tmp_path, tmp_path / "data", ups)
    wait_up(again, 90)
    time.sleep(1.0)
    assert len(_worker_pids(again)) == 3


def test_a_new_supervisor_ends_the_leftover_and_only_it(tmp_path: Path, ups: list[RunningUp]) -> None:
    """A worker whose supervisor died without taking it along (started by hand, no
    --parent-pid, recorded in the run dir) is ended; a decoy with the same engine and
    command shape for another data dir, and an unrecorded one, survive."""
    data = tmp_path / "data"
    run = RunDir(data / "run")
    other = RunDir(tmp_path / "other" / "run")

    def worker(run_dir: RunDir) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "voxmesh", "worker", "--engine", "tone", "--model", "tone-a",
                                 "--port", str(free_port()), "--threads", "1", "--run-dir", str(run_dir.path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    leftover, decoy, unrecorded = worker(run), worker(other), worker(run)
    try:
        time.sleep(1.0)  # exec'd: /proc shows the final command line
        assert run.record("tone-a-0", leftover.pid) is not None
        assert other.record("tone-a-0", decoy.pid) is not None
        up = _up(tmp_path, data, ups)
        wait_up(up, 90)
        assert leftover.wait(10) is not None
        assert decoy.poll() is None and unrecorded.poll() is None
        assert "leftover-ended" in up.log.read_text()
        # a second supervisor on the same data dir is refused, and ends nothing
        second = subprocess.run([sys.executable, "-m", "voxmesh", "up", "--port", "0", "--data-dir", str(data)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another voxmesh supervisor" in second.stderr, second.stderr
        assert all(_alive(p) for p in _worker_pids(up))
    finally:
        for p in (leftover, decoy, unrecorded):
            if p.poll() is None:
                p.kill()
                p.wait()


# ---- a dead worker leaves the pool at once ---------------------------------------------

TWO = {
    "deployments": [{"name": "tone", "engine": "tone", "options": {"delay_s": 0.2, "ms_per_char": 5},
                     "replicas": {"min": 2, "max": 2, "warm": 0}, "threads": 1}],
    "aliases": {"tts-1": "tone"},
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(tmp_path, TWO) as st:
        yield st


async def test_kill_9_worker_under_load_leaves_the_pool_within_1s_and_no_request_fails(stack: Stack) -> None:
    sup = stack.supervisor
    removed: dict[str, float] = {}
    discovery = sup.discovery

    def spy(dep: str, event: Any) -> None:
        if isinstance(event, Remove):
            removed[event.id] = time.monotonic()
        discovery(dep, event)

    sup.discovery = spy
    while len(sup.serving("tone")) < 2:
        await asyncio.sleep(0.05)
    statuses: list[int] = []
    stop = asyncio.Event()

    def body(i: int, n: int) -> dict[str, str]:
        return {"model": "tts-1", "input": f"Client {i} request {n}.", "voice": "low", "response_format": "pcm"}

    traffic = asyncio.ensure_future(closed_loop(stack.url, body, clients=4, stop=stop.is_set, statuses=statuses))
    try:
        await asyncio.sleep(1.5)
        victim = sup.serving("tone")[0]
        assert victim.proc is not None
        in_flight_before = len(statuses)
        killed_at = time.monotonic()
        os.kill(victim.proc.pid, signal.SIGKILL)
        while victim.id not in removed:
            assert time.monotonic() - killed_at < 5, "never removed"
            await asyncio.sleep(0.005)
        await asyncio.sleep(3.0)
    finally:
        stop.set()
        await traffic
    detect = removed[victim.id] - killed_at
    print(f"kill -9 -> Remove: {detect * 1000:.1f} ms; {len(statuses)} requests, {in_flight_before} before the kill")
    assert detect < 1.0
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    # the requests the victim held when it died were retried on the other replica
    retries = stack.dataplane.topology()["deployments"]["tone"]["retry_budget"]["retries"]
    assert retries >= 1, "no request was in flight on the victim: the test proved nothing"
    assert any(e["event"] == "crash" and e["replica"] == victim.id for e in sup.events)


def test_a_job_runner_process_dies_with_its_parent(tmp_path: Path) -> None:
    """``voxmesh.jobs.runner_main --parent-pid``: a runner started by a supervisor that is
    kill -9'd goes too."""
    pidfile = tmp_path / "runner.pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")}
    env.update({"VOXMESH_DATA_DIR": str(tmp_path / "data"), "VOXMESH_JOBS__ENGINE": "fake"})
    parent_code = (
        "import os, subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-m', 'voxmesh.jobs.runner_main', '--parent-pid', str(os.getpid())]); "
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(120)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env)
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        runner = int(pidfile.read_text())
        time.sleep(3.0)  # past its start-up: serving its loop
        assert _alive(runner), "the runner did not start"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        t0 = time.monotonic()
        while _alive(runner):
            assert time.monotonic() - t0 < 2.0, "the runner outlived its parent"
            time.sleep(0.02)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
