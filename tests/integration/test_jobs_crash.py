"""Crash test: kill -9 runner processes, and the whole stack, at random points during jobs.

Processes: the jobs API (``voxmesh.jobs.api_main``) and a runner process with two runner
loops (``voxmesh.jobs.runner_main``, FakeSynthesizer with a per-chunk delay), sharing one
SQLite file (WAL) or a PostgreSQL database, and the filesystem object store. Ten SIGKILLs
in all, each at a random moment (seeded) after the runner has leased a chunk: most hit the
runner, every third the whole stack (API and runner at once); killed processes are
restarted, and a third job is submitted midway.

Then: every job succeeds, no job is lost, each result is byte-identical to an uninterrupted
in-process run of the same input, and no chunk was sent to the engine more than twice (the
DB's durable ``synth_calls`` counter, bumped before each call). Kill moments are random, but
a kill waits while a chunk that already lost one runner is waiting to be redone (its dead
owner's lease not yet expired) or being redone: a third call is then the test's doing, not
the system's. A completed chunk being redone, or a live runner's
lease being stolen, still shows up as a third call.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from voxmesh.clock import FakeClock
from voxmesh.jobs.queue import DbQueue
from voxmesh.jobs.runner import Runner
from voxmesh.jobs.service import JobService
from voxmesh.jobs.synth import FakeSynthesizer
from voxmesh.settings import Settings
from voxmesh.storage.db import JobDB
from voxmesh.storage.memory import MemoryObjectStore

pytestmark = pytest.mark.slow

CHUNK_CHARS = 80
BOOK_A = " ".join(f"Line {i} of the first book tells a small story." for i in range(100))  # >= 50 chunks
BOOK_B = "# Part one\n" + " ".join(f"Part one, sentence {i}." for i in range(30)) + "\n# Part two\n" + " ".join(
    f"Part two, sentence {i}." for i in range(30)
)
BOOK_C = " ".join(f"A late arrival, number {i}." for i in range(40))
INPUTS = [("a.txt", BOOK_A), ("b.md", BOOK_B), ("c.txt", BOOK_C)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _baseline(tmp: Path) -> list[bytes]:
    """The same inputs run uninterrupted, in-process."""
    settings = Settings(data_dir=tmp, jobs={"chunk_chars": CHUNK_CHARS})
    db = await JobDB.open("sqlite+aiosqlite://")
    store = MemoryObjectStore()
    clock = FakeClock(1.0)
    queue = DbQueue(db, clock=clock)
    service = JobService(settings, db, store, queue, clock=clock)
    runner = Runner(db=db, store=store, queue=queue, synth=FakeSynthesizer(), settings=settings.jobs, clock=clock)
    out = []
    for name, text in INPUTS:
        job = await service.create(filename=name, data=text.encode(), voice="v", model="m")
        while await runner.step():
            pass
        out.append((await service.result(job.id))[0])
    await db.close()
    return out


class Stack:
    def __init__(self, env: dict[str, str], port: int, logs: Path) -> None:
        self.env = env
        self.port = port
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def start(self, name: str) -> None:
        module = "voxmesh.jobs.api_main" if name == "api" else "voxmesh.jobs.runner_main"
        args = [sys.executable, "-m", module] + (["--port", str(self.port)] if name == "api" else ["--runners", "2"])
        self.starts += 1
        with (self.logs / f"{name}.{self.starts}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def request(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None) -> bytes:
        deadline = time.monotonic() + 60  # process start-up is slow on a loaded 2-core machine
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method)
                if ctype:
                    req.add_header("Content-Type", ctype)
                with urllib.request.urlopen(req, timeout=10) as resp:
                    data: bytes = resp.read()
                    return data
            except (ConnectionError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def submit(self, name: str, text: str) -> str:
        import json
        import uuid

        b = uuid.uuid4().hex
        body = (
            f'--{b}\r\nContent-Disposition: form-data; name="voice"\r\n\r\nv\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n{text}\r\n--{b}--\r\n'
        ).encode()
        job: dict[str, Any] = json.loads(self.request("POST", "/v1/jobs", body, f"multipart/form-data; boundary={b}"))
        return str(job["id"])


def _db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'voxmesh.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _db_url(request, tmp_path)


async def _redo_pending(db: JobDB, ids: list[str], live_pids: list[int]) -> bool:
    """A chunk that lost a runner is still to be redone (its dead owner's lease has not
    expired yet, or it is back to pending) or is being redone."""
    live = {str(pid) for pid in live_pids}
    for job_id in ids:
        for c in await db.job_chunks(job_id):
            if c.state.value in ("done", "dead"):
                continue
            # attempts counts leases in the lease's own transaction; synth_calls is bumped in the
            # next one, so a just re-leased orphan shows attempts 2 while synth_calls is still 1
            redone = c.attempts >= 2 or c.synth_calls >= 2
            owner_pid = (c.lease_owner or "-?").split("-")[1]
            orphaned = c.synth_calls >= 1 and (c.state.value == "pending" or owner_pid not in live)
            if redone or orphaned:
                return True
    return False


async def _holding(db: JobDB, ids: list[str], pids: list[int]) -> bool:
    owners = set()
    for job_id in ids:
        owners |= {c.lease_owner.split("-")[1] for c in await db.job_chunks(job_id) if c.lease_owner}
    return all(str(pid) in owners for pid in pids)


async def _chunks_left(db: JobDB, ids: list[str]) -> int:
    left = 0
    for job_id in ids:
        p = await db.progress(job_id)
        left += p.total - p.done
    return left


async def test_kill_9_runners_and_whole_stack(tmp_path: Path, db_url: str) -> None:
    import json

    expected = await _baseline(tmp_path / "baseline")
    data = tmp_path / "data"
    data.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")}
    env.update({
        "VOXMESH_DATA_DIR": str(data),
        "VOXMESH_JOBS__DB_URL": db_url,
        "VOXMESH_JOBS__ENGINE": "fake",
        "VOXMESH_JOBS__FAKE_DELAY_S": "0.1",  # ~0.08 s per chunk
        "VOXMESH_JOBS__LEASE_S": "1.0",
        "VOXMESH_JOBS__POLL_INTERVAL_S": "0.05",
        "VOXMESH_JOBS__IDLE_POLL_MAX_S": "0.2",
        "VOXMESH_JOBS__MAX_ATTEMPTS": "50",
        "VOXMESH_JOBS__CHUNK_CHARS": str(CHUNK_CHARS),
        "VOXMESH_SERVER__HOST": "127.0.0.1",
    })
    db = await JobDB.open(db_url)
    stack = Stack(env, _free_port(), logs)
    rng = random.Random(20251122)
    started = time.monotonic()
    try:
        for name in ("api", "runner"):
            stack.start(name)
        ids = [stack.submit(n, t) for n, t in INPUTS[:2]]
        assert (await db.get_job(ids[0])).chunks_total >= 50
        kills = 0
        left_at_kill: list[int] = []
        while kills < 10:
            victims = ["api", "runner"] if (kills + 1) % 3 == 0 else ["runner"]
            # a random point while the victim runner(s) hold a chunk, i.e. mid-work
            wait_until = time.monotonic() + 60
            while not await _holding(db, ids, [stack.procs[v].pid for v in victims if v != "api"]):
                assert time.monotonic() < wait_until, "runners never leased a chunk"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
            while await _redo_pending(db, ids, [stack.procs["runner"].pid]):
                time.sleep(0.01)
            left_at_kill.append(await _chunks_left(db, ids))
            kills += 1
            for v in victims:
                stack.kill(v)
            for v in victims:
                stack.start(v)
            if kills == 5:
                ids.append(stack.submit(*INPUTS[2]))
        assert left_at_kill[-1] > 0, "the jobs finished before the kills ended: make them longer"
        deadline = time.monotonic() + 60
        while (states := [(await db.get_job(i)).state.value for i in ids]) != ["succeeded"] * len(ids):
            assert time.monotonic() < deadline, states
            time.sleep(0.2)
        listed = json.loads(stack.request("GET", "/v1/jobs?limit=100"))["data"]
        assert sorted(j["id"] for j in listed) == sorted(ids)
        for job_id, want in zip(ids, expected, strict=True):
            assert stack.request("GET", f"/v1/jobs/{job_id}/result?stream=1") == want
        calls = [c.synth_calls for i in ids for c in await db.job_chunks(i)]
        assert max(calls) <= 2, sorted(calls)[-5:]
        redone = sum(1 for c in calls if c == 2)
        print(f"crash test: {len(calls)} chunks, {kills} kills (chunks left at each: {left_at_kill}), "
              f"{redone} chunks synthesized twice, {time.monotonic() - started:.1f} s")
    finally:
        stack.stop_all()
        await db.close()
