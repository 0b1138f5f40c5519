"""voxmesh.lifeline: the death signal, the parent watch, child records and leftover reaping,
with real processes (``sleep``-like Python children) and /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voxmesh.lifeline import RunDir, RunDirBusy, bind_to_parent, process_start_time
from voxmesh.lifeline.pidfiles import process_cmdline

SLEEPER = "import time; time.sleep(60)"


def _sleeper(*extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, *extra])
    deadline = time.monotonic() + 10
    while process_cmdline(proc.pid) != [sys.executable, "-c", SLEEPER, *extra]:  # exec done
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def _gone(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_start_time_reads_proc_and_none_for_missing() -> None:
    me = process_start_time(os.getpid())
    assert isinstance(me, int) and me > 0
    assert process_start_time(2**22 + 12345) is None


def test_bind_to_parent_exits_at_once_when_the_parent_is_not_the_expected_one() -> None:
    calls: list[tuple[int, str]] = []
    bind_to_parent(4242, interval_s=0.01, getppid=lambda: 1, on_orphan=lambda p, why: calls.append((p, why)))
    assert calls and calls[0][0] == 4242 and "now 1" in calls[0][1]


def test_the_watch_thread_notices_a_changed_parent() -> None:
    ppid = [100]
    calls: list[int] = []
    thread = bind_to_parent(100, interval_s=0.01, getppid=lambda: ppid[0], on_orphan=lambda p, why: calls.append(p))
    time.sleep(0.05)
    assert calls == []
    ppid[0] = 1
    thread.join(2)
    assert calls == [100] and not thread.is_alive()


def test_a_grandchild_bound_to_its_parent_dies_with_it_on_kill_9(tmp_path: Path) -> None:
    """parent (python) -> child bound with bind_to_parent; kill -9 the parent: the child goes."""
    pidfile = tmp_path / "child.pid"
    child_code = (
        "import os, sys, time; from voxmesh.lifeline import bind_to_parent; "
        f"bind_to_parent(int(sys.argv[1])); open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    parent_code = (
        "import os, subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {child_code!r}, str(os.getpid())]); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        deadline = time.monotonic() + 20
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.02)
        child = int(pidfile.read_text())
        assert process_start_time(child) is not None
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        t0 = time.monotonic()
        while process_start_time(child) is not None:
            assert time.monotonic() - t0 < 2.0, "the child outlived its parent"
            time.sleep(0.01)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_lock_refuses_a_second_supervisor_and_frees_on_release(tmp_path: Path) -> None:
    first, second = RunDir(tmp_path / "run"), RunDir(tmp_path / "run")
    first.acquire()
    with pytest.raises(RunDirBusy, match=f"pid {os.getpid()}"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_reap_ends_only_recorded_processes_of_this_run_dir(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    other = str((tmp_path / "other" / "run").resolve())
    leftover = _sleeper("--run-dir", str(run.path))
    decoy_same_cmd = _sleeper("--run-dir", str(run.path))  # ours by command line, never recorded
    decoy_other_dir = _sleeper("--run-dir", other)  # recorded, but for another data dir
    recycled = _sleeper("--run-dir", str(run.path))  # recorded with a start time that is not its own
    procs = [leftover, decoy_same_cmd, decoy_other_dir, recycled]
    try:
        run.record("w-0", leftover.pid)
        run.record("w-1", decoy_other_dir.pid)
        rec = run.record("w-2", recycled.pid)
        assert rec is not None
        (run.children / "w-2.json").write_text(
            (run.children / "w-2.json").read_text().replace(f'"start_time": {rec.start_time}',
                                                               f'"start_time": {rec.start_time - 1}'))
        run.acquire()
        ended = run.reap_leftovers(grace_s=2.0)
        assert [r.pid for r in ended] == [leftover.pid]
        assert _gone(leftover)
        for p in (decoy_same_cmd, decoy_other_dir, recycled):
            assert p.poll() is None
        assert run.records() == []  # stale records are cleared too
    finally:
        run.release()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_forget_keeps_a_newer_record(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    proc = _sleeper()
    try:
        run.record("w-0", proc.pid)
        run.forget("w-0", proc.pid + 1)
        assert [r.pid for r in run.records()] == [proc.pid]
        run.forget("w-0", proc.pid)
        assert run.records() == []
    finally:
        proc.kill()
        proc.wait()


def test_reap_needs_the_lock(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="acquire"):
        RunDir(tmp_path / "run").reap_leftovers()
