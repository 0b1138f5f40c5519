"""Chaos soak: the local stack under mixed traffic while faults hit it on a seeded schedule.

What runs (all on loopback, all owned by this script and stopped with it):

* ``voxmesh up`` as a subprocess (restarted after a kill -9) with a ``tone`` deployment of two
  replicas (the deterministic test engine, so every job result can be compared byte for byte),
  mTLS to the workers, one in-process job runner; plus one job-runner process
  (``voxmesh.jobs.runner_main --parent-pid``) like a separately deployed runner;
* a private PostgreSQL (jobs DB), a private RabbitMQ node (jobs queue) and SeaweedFS (S3
  objects) from :mod:`chaos_infra`, never the machine's shared 5432 / 5672;
* the data dir on a small tmpfs, so "disk nearly full" fills only that.

Traffic: non-streaming speech (2 loops), streaming speech (1 loop), and one long-text job
(``POST /v1/jobs``) every ``--job-every`` seconds, from three fixed texts.

Faults (``--faults``; the order is a seeded shuffle, cycled until ``--minutes`` is up, after
a fault-free warm-up): ``worker-kill`` (kill -9 of a serving worker), ``runner-kill`` (kill
-9 of the runner process), ``stack-kill`` (kill -9 of ``voxmesh up``, then start it again),
``worker-500`` / ``worker-hang`` (one worker answers 500 / holds every request for 60 s,
for ``--hold-s``, toggled through its ``/admin/faults`` over mTLS), ``pg-restart``
(``pg_ctl -m immediate`` + start), ``rabbitmq-restart`` (kill -9 of the node + start),
``s3-stop`` (SeaweedFS stopped for 30 s), ``disk-full`` (the data dir's filesystem filled
to 256 KiB free for ``--hold-s``).

Recovery of a fault: from the moment the fault is lifted (the kill itself for kills) until
one probe passes: ``/readyz`` 200, a speech request 200, ``GET /v1/jobs`` 200, both
replicas serving, the runner process alive, (when jobs are unfinished) job chunks done
moved forward, and a new job accepted (201; that job is checked with the others). A
request belongs to the phase of the fault open when it started (from injection to
recovery), or to the fault injected while it was in flight, else ``steady``.

At the end: every acknowledged job must succeed with a result byte-identical to the same
job run on a fresh stack that sees no fault (SQLite, filesystem objects, DB queue: a
different set of backends too; the same runners: the stack's own and a runner process),
started after the soak. A job whose reference run did not succeed is counted apart (``no
reference result``: unchecked, and it fails the run), never as differing; the waits end
when no job has finished for ``--drain-s``, not at a fixed time. For every differing job
the report names the chunks that differ (index, lengths, first differing byte, prefix or
not, engine calls, whether the stored chunk object matches) and the faults overlapping
the job's life. Every job's text is its own (each
line names the job), so no chunk is shared between jobs and each one is really synthesized
under the faults (the object store is content-addressed: shared chunks would be reused). Lost = acknowledged jobs that did not;
duplicated = jobs the server lists that no submission was answered with (beyond
submissions whose answer was lost in a crash, counted apart). Processes and RSS of the stack
before the first fault and after the last, and any process of this data dir that is not a
child of the live stack (a leftover).

    python benchmarks/chaos.py --minutes 5 --seed 1 --out benchmarks/reports/chaos.md
    python benchmarks/chaos.py --minutes 30 --seed 1 --out benchmarks/reports/chaos_30min.md   # make bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_infra import PrivatePostgres, PrivateRabbit, PrivateS3, SmallDisk, free_port

from voxmesh.lifeline.parent import preexec_parent_death

ALL_FAULTS = ["worker-kill", "runner-kill", "stack-kill", "worker-500", "worker-hang", "pg-restart",
              "rabbitmq-restart", "s3-stop", "disk-full"]
NEEDS = {"pg-restart": "pg", "rabbitmq-restart": "rabbitmq", "s3-stop": "s3"}
SENTENCES = [
    "The lighthouse keeper climbed the spiral stairs every evening.",
    "Far below, the waves folded over the rocks with a patient sigh.",
    "She had kept the lamp burning for thirty years, through storms and calm.",
    "Ships she would never meet passed safely in the dark.",
    "Is it raining in the harbour tonight?",
    "Nobody answered, so she lit the lamp again.",
]


def job_text(n: int) -> str:
    """The text of the n-th job: 8-16 lines, every one naming the job, so no chunk is shared
    with another job (the store is content-addressed: shared chunks would be reused, not redone)."""
    lines = 8 + (n * 7) % 9
    return " ".join(f"Job {n}, line {i}: {SENTENCES[(n + i * 5) % len(SENTENCES)]}" for i in range(lines))


REPLICAS = 2
QUIET = ("warm-up", "steady", "cool-down")
PROBE_BASE = 100_000  # job_text(n) numbers of the jobs the recovery probe submits


@dataclass
class Sample:
    t: float  # seconds since the soak started
    kind: str  # speech | stream | job-submit
    ok: bool
    latency_s: float
    status: str
    phase: str


@dataclass
class Fault:
    kind: str
    t_inject: float
    t_lifted: float = 0.0
    t_recovered: float | None = None
    note: str = ""

    @property
    def recovery_s(self) -> float | None:
        return None if self.t_recovered is None else self.t_recovered - self.t_lifted


@dataclass
class Job:
    id: str
    n: int  # job_text(n)
    t_submit: float


@dataclass
class ProcSnapshot:
    processes: int
    rss_mb: float
    leftovers: int
    detail: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()
        self.t0_wall = time.time()  # the same instant on the wall clock (job rows keep wall times)
        self.samples: list[Sample] = []
        self.faults: list[Fault] = []
        self.jobs: list[Job] = []
        self.probe_jobs = 0
        self.final_chunks: dict[str, int] = {}  # job id -> chunks done, once the job is final
        self.last_probe_submit = 0.0
        self.lost_answers = 0  # job submission tries whose answer never came (the stack died meanwhile)
        self.abandoned = 0  # submissions given up after a lost answer (retried under their key for 30 s)
        self.replayed_answers = 0  # answers that were replays of an earlier try (Idempotent-Replayed)
        self.phase = "warm-up"
        self.stop_traffic = asyncio.Event()
        self.stack: subprocess.Popen[bytes] | None = None
        self.runner: subprocess.Popen[bytes] | None = None
        self.stack_starts = 0
        self.runner_starts = 0
        self.pg: PrivatePostgres | None = None
        self.rabbit: PrivateRabbit | None = None
        self.s3: PrivateS3 | None = None
        self.disk = SmallDisk(root / "disk", args.disk_mb)
        self.data = self.disk.path / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.session: aiohttp.ClientSession | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ---- setup -------------------------------------------------------------------------
    def start_infra(self) -> None:
        kinds = set(self.args.faults)
        if self.args.pg:
            self.pg = PrivatePostgres(self.root)
            self.pg.start()
        if self.args.rabbitmq:
            self.rabbit = PrivateRabbit(self.root)
            self.rabbit.start()
        if self.args.s3:
            self.s3 = PrivateS3(self.root)
            self.s3.start()
        missing = [k for k in kinds if k in NEEDS and not getattr(self.args, NEEDS[k])]
        if missing:
            raise SystemExit(f"faults {missing} need their service: drop --no-{'/'.join(NEEDS[k] for k in missing)}")
        self.write_config()

    def write_config(self, backends: bool = True) -> None:
        jobs: dict[str, Any] = {
            "runners": 1, "engine": "http", "engine_url": self.url, "lease_s": 10.0, "max_attempts": 10,
            "retry_base_s": 0.5, "retry_max_s": 15.0, "chunk_chars": 120, "sample_rate": 16000,
            "poll_interval_s": 0.2,
        }
        if self.pg is not None and backends:
            jobs["db_url"] = self.pg.url
        if self.rabbit is not None and backends:
            jobs["queue"] = "rabbitmq"
            jobs["rabbitmq_url"] = self.rabbit.url
        storage: dict[str, Any] = {"backend": "fs"}
        if self.s3 is not None and backends:
            storage = {"backend": "s3", "s3_endpoint": self.s3.endpoint, "s3_bucket": "voxmesh-chaos",
                       "s3_access_key": self.s3.access, "s3_secret_key": self.s3.secret}
        cfg = {
            "settings": {
                "data_dir": str(self.data),
                "log_level": "INFO",
                "server": {"host": "127.0.0.1", "port": self.port},
                # a hung worker is given up on after 2 s and the request retried elsewhere
                "gateway": {"first_byte_timeout_s": 2.0, "request_timeout_s": 30.0},
                "jobs": jobs,
                "storage": storage,
            },
            "deployments": [{
                "name": "tone", "engine": "tone", "options": {"delay_s": 0.03, "ms_per_char": 5},
                "replicas": {"min": REPLICAS, "max": REPLICAS, "warm": 0}, "threads": 1,
            }],
            "aliases": {"tts-1": "tone"},
        }
        self.config = self.root / ("chaos.yaml" if backends else "reference.yaml")
        self.config.write_text(yaml.safe_dump(cfg))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")}
        return env

    def start_stack(self) -> None:
        self.stack_starts += 1
        log = (self.logs / f"up.{self.stack_starts}.log").open("wb")
        self.stack = subprocess.Popen(
            [sys.executable, "-m", "voxmesh", "--config", str(self.config), "up"],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=preexec_parent_death)  # if this script dies, the stack (and its workers) go too
        log.close()

    def start_runner(self) -> None:
        self.runner_starts += 1
        log = (self.logs / f"runner.{self.runner_starts}.log").open("wb")
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "voxmesh.jobs.runner_main", "--config", str(self.config), "--runners", "1",
             "--parent-pid", str(os.getpid())], env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.stack is not None
            if self.stack.poll() is not None:
                raise RuntimeError(f"voxmesh up exited {self.stack.returncode}: see {self.logs}")
            if await self._get_status("/readyz") == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"voxmesh up not ready within {timeout:.0f} s: see {self.logs}")
            await asyncio.sleep(0.2)

    # ---- HTTP helpers ------------------------------------------------------------------
    async def _get_status(self, path: str) -> int | None:
        assert self.session is not None
        try:
            async with self.session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=3)) as r:
                await r.read()
                return r.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def _get_json(self, path: str) -> Any:
        assert self.session is not None
        async with self.session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=10)) as r:
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status}")
            return await r.json()

    async def speech(self, text: str, stream: bool) -> tuple[bool, str, int]:
        assert self.session is not None
        body = {"model": "tts-1", "input": text, "voice": "low", "response_format": "pcm", "stream": stream}
        try:
            async with self.session.post(self.url + "/v1/audio/speech", json=body,
                                         timeout=aiohttp.ClientTimeout(total=30)) as r:
                data = await r.read()
                return r.status == 200 and len(data) > 0, str(r.status), len(data)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return False, type(exc).__name__, 0

    def record(self, kind: str, t_start: float, ok: bool, status: str, phase: str) -> None:
        """``phase``: the phase when the request started; a request that started with no fault open
        but was in flight when one was injected belongs to that fault."""
        if phase in QUIET and self.phase not in QUIET:
            phase = self.phase
        self.samples.append(Sample(t_start, kind, ok, self.now() - t_start, status, phase))

    # ---- traffic -----------------------------------------------------------------------
    async def speech_loop(self, i: int, stream: bool) -> None:
        rng = random.Random(self.args.seed * 100 + i)
        while not self.stop_traffic.is_set():
            text = " ".join(rng.sample(SENTENCES, 2 if stream else 1))
            t, phase = self.now(), self.phase
            ok, status, _ = await self.speech(text, stream)
            self.record("stream" if stream else "speech", t, ok, status, phase)
            await asyncio.sleep(rng.uniform(0.05, 0.25))

    async def submit_job(self, n: int, *, patient: bool = True, kind: str = "job-submit") -> Job | None:
        """POST /v1/jobs as a careful client, under one ``Idempotency-Key`` per submission: a
        503 (with Retry-After) or a refused connection is retried for up to 30 s, and so is an
        answer lost after sending (the stack died meanwhile): the retry gets the job the first
        try created (200, ``Idempotent-Replayed``), never a second one. Lost answers and
        replays are counted."""
        assert self.session is not None
        t, phase = self.now(), self.phase
        body = {"text": job_text(n), "voice": "low", "model": "tts-1", "response_format": "wav"}
        headers = {"Idempotency-Key": f"chaos-{self.args.seed}-{n}-{uuid.uuid4().hex}"}
        attempts = 0
        while True:
            attempts += 1
            try:
                async with self.session.post(self.url + "/v1/jobs", json=body, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=30)) as r:
                    data = await r.json(content_type=None)
                    if r.status == 503 and patient and self.now() - t < 30:
                        await asyncio.sleep(min(5.0, float(r.headers.get("Retry-After", "1"))))
                        continue
                    ok = r.status in (200, 201)
                    if r.headers.get("Idempotent-Replayed") == "true":
                        self.replayed_answers += 1
                    self.record(kind, t, ok, f"{r.status}" + (f" after {attempts} tries" if attempts > 1 else ""),
                                phase)
                    if not ok:
                        return None
                    job = Job(str(data["id"]), n, t)
                    self.jobs.append(job)
                    return job
            except aiohttp.ClientConnectorError:
                if patient and self.now() - t < 30:
                    await asyncio.sleep(1.0)
                    continue
                self.record(kind, t, False, "ClientConnectorError", phase)
                return None
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                # sent but not answered: the job may exist; the same key gets it back
                self.lost_answers += 1
                if patient and self.now() - t < 30:
                    await asyncio.sleep(1.0)
                    continue
                self.abandoned += 1  # its job may exist and run: not a duplicate, never acknowledged
                self.record(kind, t, False, type(exc).__name__, phase)
                return None

    async def job_loop(self) -> None:
        n = 0
        while not self.stop_traffic.is_set():
            await self.submit_job(n)
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_traffic.wait(), self.args.job_every)

    async def job_result(self, job_id: str) -> bytes:
        assert self.session is not None
        async with self.session.get(f"{self.url}/v1/jobs/{job_id}/result?stream=1",
                                    timeout=aiohttp.ClientTimeout(total=60)) as r:
            if r.status != 200:
                raise RuntimeError(f"result of {job_id}: {r.status}")
            return await r.read()

    async def wait_jobs(self, jobs: list[Job], timeout: float) -> dict[str, str]:
        """Job id -> final state (or the last seen state when the time ran out).

        ``timeout`` bounds the wait *without progress*: it starts again each time another job
        reaches a final state, so a long queue that keeps moving is waited for (a fixed deadline
        cut the fault-free reference run of the 30-minute soak short: 22 of its 371 jobs had no
        reference result and were counted as differing). States come from the job list (100 a
        page), not one GET per job: polling hundreds of jobs one by one every half second cost
        the 2-core machine as much CPU as the runners it waited for."""
        final = ("succeeded", "failed", "cancelled")
        wanted = {j.id for j in jobs}
        states: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        done_before = 0
        while True:
            with contextlib.suppress(RuntimeError, aiohttp.ClientError, TimeoutError, OSError):
                states.update({i: st for i, st in (await self.list_jobs()).items() if i in wanted})
            for job in jobs:
                states.setdefault(job.id, "unknown")
            done = sum(1 for s in states.values() if s in final)
            if done > done_before:
                done_before, deadline = done, time.monotonic() + timeout
            if done == len(jobs) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.5 if len(jobs) - done < 20 else 2.0)

    async def list_jobs(self) -> dict[str, str]:
        """Every job the server lists: id -> state."""
        listed: dict[str, str] = {}
        cursor: str | None = None
        while True:
            page = await self._get_json("/v1/jobs?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            listed.update({str(j["id"]): str(j["state"]) for j in page["data"]})
            cursor = page.get("next_cursor")
            if not cursor:
                return listed

    async def chunks_done(self) -> int:
        """Chunks done over the submitted jobs (a finished job's count is kept, not asked again)."""
        total = 0
        for job in self.jobs:
            if job.id in self.final_chunks:
                total += self.final_chunks[job.id]
                continue
            with contextlib.suppress(RuntimeError, aiohttp.ClientError, TimeoutError, OSError):
                st = await self._get_json(f"/v1/jobs/{job.id}")
                total += int(st["chunks_done"])
                if st["state"] in ("succeeded", "failed", "cancelled"):
                    self.final_chunks[job.id] = int(st["chunks_done"])
        return total

    async def unfinished(self) -> bool:
        for job in self.jobs[-6:]:
            with contextlib.suppress(RuntimeError, aiohttp.ClientError, TimeoutError, OSError):
                if (await self._get_json(f"/v1/jobs/{job.id}"))["state"] not in ("succeeded", "failed", "cancelled"):
                    return True
        return False

    # ---- workers (mTLS, through the run dir records) -------------------------------------
    def workers(self) -> list[tuple[int, int]]:
        """(pid, port) of the live stack's workers, from ``data_dir/run/children``."""
        return [(pid, port) for _, pid, port in self.worker_records()]

    def worker_records(self) -> list[tuple[str, int, int]]:
        """(replica id, pid, port) of the live stack's workers."""
        out = []
        for path in sorted((self.data / "run" / "children").glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                rec = json.loads(path.read_text())
                cmd = rec["cmdline"]
                out.append((str(rec["name"]), int(rec["pid"]), int(cmd[cmd.index("--port") + 1])))
        return out

    def crash_seen_after(self, replica: str, killed_at: float) -> float | None:
        """Seconds from the kill (wall clock) to the supervisor's ``crash`` line for ``replica``
        (logged right after it sent ``Remove`` to the pool), from the stack's log."""
        import datetime as dt

        log = self.logs / f"up.{self.stack_starts}.log"
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                if f"crash tone replica={replica} " not in line:
                    continue
                stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if stamp >= killed_at - 0.5:
                    return stamp - killed_at
        return None

    def worker_ssl(self) -> Any:
        from voxmesh.mesh import spiffe_id
        from voxmesh.mesh.tls import client_context

        gw = self.data / "mesh" / "gateway"
        return client_context(gw / "identity.pem", (gw / "trust-anchor.pem").read_bytes(),
                              [spiffe_id("voxmesh.local", "worker-tone")])

    async def set_faults(self, port: int, **values: float) -> None:
        assert self.session is not None
        async with self.session.put(f"https://127.0.0.1:{port}/admin/faults", json=values, ssl=self.worker_ssl(),
                                    timeout=aiohttp.ClientTimeout(total=5)) as r:
            if r.status != 200:
                raise RuntimeError(f"PUT /admin/faults on :{port}: {r.status} {await r.text()}")

    async def serving(self) -> int:
        assert self.session is not None
        try:
            async with self.session.get(self.url + "/metrics", timeout=aiohttp.ClientTimeout(total=3)) as r:
                text = await r.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0
        for line in text.splitlines():
            if line.startswith('voxmesh_replicas{deployment="tone",state="serving"}'):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    # ---- faults ------------------------------------------------------------------------
    async def inject(self, kind: str) -> Fault:
        f = Fault(kind, self.now())
        self.phase = kind
        hold = self.args.hold_s
        if kind == "worker-kill":
            name, pid, _ = self.rng.choice(self.worker_records())
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            f.note = f"pid {pid}"
            for _ in range(40):
                await asyncio.sleep(0.05)
                if (seen := self.crash_seen_after(name, killed_at)) is not None:
                    f.note += f"; out of the pool after {1000 * seen:.0f} ms"
                    break
        elif kind == "runner-kill":
            assert self.runner is not None
            os.kill(self.runner.pid, signal.SIGKILL)
            self.runner.wait()
            f.note = f"pid {self.runner.pid}"
            self.start_runner()
        elif kind == "stack-kill":
            assert self.stack is not None
            workers = [p for p, _ in self.workers()]
            os.kill(self.stack.pid, signal.SIGKILL)
            self.stack.wait()
            f.note = f"pid {self.stack.pid} + {len(workers)} workers"
            self.start_stack()
        elif kind in ("worker-500", "worker-hang"):
            _, port = self.rng.choice(self.workers())
            values = {"error_rate": 1.0} if kind == "worker-500" else {"delay_ms": 60_000.0}
            await self.set_faults(port, **values)
            await asyncio.sleep(hold)
            await self.set_faults(port, error_rate=0.0, delay_ms=0.0)
            f.note = f"worker :{port} for {hold:.0f} s"
        elif kind == "pg-restart":
            assert self.pg is not None
            await asyncio.to_thread(self.pg.restart)
            f.note = "pg_ctl -m immediate, start"
        elif kind == "rabbitmq-restart":
            assert self.rabbit is not None
            await asyncio.to_thread(self.rabbit.restart)
            f.note = "kill -9 of the node, start"
        elif kind == "s3-stop":
            assert self.s3 is not None
            await asyncio.to_thread(self.s3.stop)
            await asyncio.sleep(self.args.s3_down_s)
            await asyncio.to_thread(self.s3.start)
            f.note = f"stopped {self.args.s3_down_s:.0f} s"
        elif kind == "disk-full":
            written = await asyncio.to_thread(self.disk.fill, 256 * 1024)
            await asyncio.sleep(hold)
            free = self.disk.free_bytes()
            self.disk.drain()
            f.note = f"{written / 2**20:.0f} MiB ballast, {free // 1024} KiB left" if self.disk.mounted else \
                "skipped: no tmpfs (not root)"
        else:
            raise ValueError(kind)
        f.t_lifted = self.now()
        self.faults.append(f)
        return f

    async def recovered(self, since_done: int) -> bool:
        if await self._get_status("/readyz") != 200:
            return False
        ok, _, _ = await self.speech("Are we back?", False)
        if not ok or await self._get_status("/v1/jobs?limit=1") != 200:
            return False
        if await self.serving() < REPLICAS:
            return False
        if self.runner is None or self.runner.poll() is not None:
            return False
        if not (not await self.unfinished() or await self.chunks_done() > since_done):
            return False
        # last: the jobs API takes a new job (DB and queue both answer); the job joins the checked set.
        # At most one a second: each refused one leaves a failed job behind.
        if time.monotonic() - self.last_probe_submit < 1.0:
            return False
        self.last_probe_submit = time.monotonic()
        self.probe_jobs += 1
        return await self.submit_job(PROBE_BASE + self.probe_jobs, patient=False, kind="probe-submit") is not None

    async def fault_loop(self, deadline: float) -> None:
        kinds = list(self.args.faults)
        order: list[str] = []
        while self.now() < deadline:
            if not order:
                order = kinds[:]
                self.rng.shuffle(order)
            kind = order.pop(0)
            done_before = await self.chunks_done()
            print(f"[{self.now():6.1f}s] fault {kind}", file=sys.stderr, flush=True)
            f = await self.inject(kind)
            if kind == "stack-kill":
                with contextlib.suppress(RuntimeError):
                    await self.wait_ready()
            limit = self.now() + self.args.recover_max_s
            while self.now() < limit:
                if await self.recovered(done_before):
                    f.t_recovered = self.now()
                    break
                await asyncio.sleep(0.25)
            print(f"[{self.now():6.1f}s]   recovered in "
                  f"{'-' if f.recovery_s is None else f'{f.recovery_s:.2f}s'} ({f.note})", file=sys.stderr, flush=True)
            self.phase = "steady"
            await asyncio.sleep(self.rng.uniform(*self.args.gap_s))

    # ---- processes ---------------------------------------------------------------------
    def snapshot(self) -> ProcSnapshot:
        procs: list[psutil.Process] = []
        for p in (self.stack, self.runner):
            if p is not None and p.poll() is None:
                with contextlib.suppress(psutil.Error):
                    top = psutil.Process(p.pid)
                    procs += [top, *top.children(recursive=True)]
        rss = 0.0
        detail = []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
                detail.append(" ".join(p.cmdline()[2:5]))
        ours = {p.pid for p in procs}
        leftovers = 0
        marker = str(self.data)
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if marker in cmd and p.info["pid"] not in ours:
                leftovers += 1
        return ProcSnapshot(len(procs), rss / 2**20, leftovers, sorted(detail))

    # ---- the run -----------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        self.start_infra()
        self.session = aiohttp.ClientSession()
        try:
            self.start_stack()
            await self.wait_ready()
            self.start_runner()
            first = await self.submit_job(-1)  # the pipeline works before anything is measured
            if first is None or set((await self.wait_jobs([first], 120)).values()) != {"succeeded"}:
                raise RuntimeError("a first job did not succeed before any fault: see the logs")
            self.jobs.clear()
            self.samples.clear()
            self.t0, self.t0_wall = time.monotonic(), time.time()
            traffic = [asyncio.ensure_future(self.speech_loop(i, False)) for i in range(2)]
            traffic.append(asyncio.ensure_future(self.speech_loop(2, True)))
            traffic.append(asyncio.ensure_future(self.job_loop()))
            await asyncio.sleep(self.args.warmup_s)
            before = self.snapshot()
            self.phase = "steady"
            end = self.args.minutes * 60 - self.args.cooldown_s
            await self.fault_loop(end)
            self.phase = "cool-down"
            await asyncio.sleep(self.args.cooldown_s)
            self.stop_traffic.set()
            await asyncio.gather(*traffic)
            soak_s = self.now()
            after = self.snapshot()
            return await self.verify(before, after, soak_s, [first])
        finally:
            await self.session.close()

    async def verify(self, before: ProcSnapshot, after: ProcSnapshot, soak_s: float, refs: list[Job]) -> dict[str, Any]:
        states = await self.wait_jobs(self.jobs, self.args.drain_s)
        results: dict[int, bytes] = {}
        for job in self.jobs:
            if states.get(job.id) == "succeeded":
                results[job.n] = await self.job_result(job.id)
        listed = await self.list_jobs()
        acked = {j.id for j in self.jobs} | {j.id for j in refs}
        # a job no answer named: refused at submission (failed at once, the client got a 503 and
        # retried) is fine; one that ran is a duplicate of the retried submission
        extra = {i: st for i, st in listed.items() if i not in acked}
        ran = [i for i, st in extra.items() if st != "failed"]
        chunk_calls = await self.synth_calls()
        by_n = {j.n: j for j in self.jobs}
        soak_rows = await self.chunk_rows([by_n[n].id for n in results])
        soak_times = await self.job_times([by_n[n].id for n in results])
        # the same jobs on a fresh, fault-free stack (SQLite, filesystem, DB queue): the reference
        reference, ref_ids, ref_states = await self.reference_run(sorted(results))
        ref_rows = _sqlite_chunk_rows(self.root / "reference-data" / "voxmesh.db", list(ref_ids.values()))
        identical, mismatched, no_reference = classify_results(results, reference)
        diffs = []
        for n in mismatched:
            data = results[n]
            job = by_n[n]
            got_rows, want_rows = soak_rows.get(job.id, []), ref_rows.get(ref_ids[n], [])
            chunks = compare_chunks(reference[n], data, [r["samples"] for r in want_rows],
                                    [r["samples"] for r in got_rows])
            for c in chunks:
                row = got_rows[c["idx"]] if c["idx"] < len(got_rows) else {}
                c["synth_calls"], c["attempts"] = row.get("synth_calls"), row.get("attempts")
                c["stored"] = await self.stored_chunk_matches(row.get("audio_key"), data, got_rows, c["idx"])
            _started, finished = soak_times.get(job.id, (None, None))
            t_end = (finished - self.t0_wall) if finished is not None else soak_s
            overlap = [f"#{i} {f.kind}@{f.t_inject:.0f}" for i, f in enumerate(self.faults, 1)
                       if f.t_inject <= t_end and (f.t_recovered or f.t_lifted) >= job.t_submit]
            diffs.append({"n": n, "job": job.id, "t_submit": job.t_submit, "t_finished": t_end,
                          "bytes_ref": len(reference[n]), "bytes_got": len(data), "chunks": chunks,
                          "chunks_total": len(got_rows), "faults": overlap})
        return {
            "soak_s": soak_s,
            "jobs": {
                "submitted": len(self.jobs),
                "completed": sum(1 for s in states.values() if s == "succeeded"),
                "lost": sum(1 for j in self.jobs if states.get(j.id) != "succeeded" or j.id not in listed),
                "duplicated": max(0, len(ran) - self.abandoned),
                "created_unacknowledged": len(extra),
                "unacknowledged_states": {st: list(extra.values()).count(st) for st in set(extra.values())},
                "answers_lost": self.lost_answers,
                "answers_replayed": self.replayed_answers,
                "abandoned": self.abandoned,
                "identical": identical,
                "mismatched": len(mismatched),
                "no_reference": len(no_reference),
                "no_reference_states": {st: [ref_states.get(ref_ids.get(n, ""), "not submitted")
                                             for n in no_reference].count(st)
                                        for st in {ref_states.get(ref_ids.get(n, ""), "not submitted")
                                                   for n in no_reference}},
                "states": {s: list(states.values()).count(s) for s in set(states.values())},
                "chunk_synth_calls": chunk_calls,
                "mismatch_detail": diffs,
            },
            "before": before.__dict__,
            "after": after.__dict__,
            "stack_starts": self.stack_starts,
            "runner_starts": self.runner_starts,
        }

    async def reference_run(self, texts: list[int]) -> tuple[dict[int, bytes], dict[int, str], dict[str, str]]:
        """Stop the soaked stack; run every job text once on a fresh stack that sees no fault
        (the same runners: the stack's own and a runner process). The results by job text, the
        reference job ids by job text, and the reference jobs' final states by id."""
        self.stop_processes()
        saved = (self.data, self.port, self.url, self.config, self.jobs, len(self.samples), self.stack_starts,
                 self.runner_starts)
        self.data = self.root / "reference-data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_config(backends=False)
        self.start_stack()
        out: dict[int, bytes] = {}
        ids: dict[int, str] = {}
        states: dict[str, str] = {}
        try:
            await self.wait_ready()
            self.start_runner()
            self.jobs = []
            for n in texts:
                await self.submit_job(n)
            states = await self.wait_jobs(self.jobs, self.args.drain_s)
            for job in self.jobs:
                ids[job.n] = job.id
                if states.get(job.id) == "succeeded":
                    out[job.n] = await self.job_result(job.id)
        finally:
            self.stop_processes()
            (self.data, self.port, self.url, self.config, self.jobs, n_samples, self.stack_starts,
             self.runner_starts) = saved  # the soak's counts, not the reference's starts
            del self.samples[n_samples:]
        return out, ids, states

    async def _pg_fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        import asyncpg

        assert self.pg is not None
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.pg.port}/postgres")
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    async def chunk_rows(self, job_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The soaked stack's chunk rows (idx order) per job id."""
        if self.pg is None:
            return _sqlite_chunk_rows(self.data / "voxmesh.db", job_ids)
        rows = await self._pg_fetch(f"SELECT {_CHUNK_COLS} FROM chunks WHERE job_id = ANY($1) ORDER BY job_id, idx",
                                    job_ids)
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["job_id"], []).append(r)
        return out

    async def job_times(self, job_ids: list[str]) -> dict[str, tuple[float | None, float | None]]:
        """started_at, finished_at (wall clock) per job id, from the soaked stack's DB."""
        query = "SELECT id, started_at, finished_at FROM jobs"
        if self.pg is None:
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.data / "voxmesh.db")) as db:
                rows = [dict(zip(("id", "started_at", "finished_at"), r, strict=True)) for r in db.execute(query)]
        else:
            rows = await self._pg_fetch(query)
        wanted = set(job_ids)
        return {r["id"]: (r["started_at"], r["finished_at"]) for r in rows if r["id"] in wanted}

    async def stored_chunk_matches(self, key: str | None, result: bytes, rows: list[dict[str, Any]],
                                   idx: int) -> str:
        """Whether the soaked store's chunk object holds what the result has at that chunk:
        ``same``, ``differs (N bytes stored)``, or why it could not be read."""
        if not key:
            return "no key"
        try:
            if self.s3 is not None:
                import boto3

                client = boto3.client("s3", endpoint_url=self.s3.endpoint, aws_access_key_id=self.s3.access,
                                      aws_secret_access_key=self.s3.secret, region_name="us-east-1")
                body = await asyncio.to_thread(
                    lambda: client.get_object(Bucket="voxmesh-chaos", Key=key)["Body"].read())
            else:
                body = (self.data / "objects" / key).read_bytes()
        except Exception as exc:  # a diagnosis, never fatal
            return f"unreadable: {type(exc).__name__}"
        stored = _wav_pcm(body)
        pcm = _wav_pcm(result)
        start = 2 * sum(int(r["samples"] or 0) for r in rows[:idx])
        part = pcm[start:start + 2 * int(rows[idx]["samples"] or 0)]
        return "same" if stored == part else f"differs ({len(stored)} bytes stored, {len(part)} in the result)"

    async def synth_calls(self) -> dict[str, int]:
        """How many times each chunk went to the engine (histogram), from the private PostgreSQL."""
        if self.pg is None:
            return {}
        import asyncpg

        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.pg.port}/postgres")
        try:
            rows = await conn.fetch("SELECT synth_calls, count(*) AS n FROM chunks GROUP BY synth_calls")
        finally:
            await conn.close()
        return {str(r["synth_calls"]): int(r["n"]) for r in rows}

    def stop_processes(self) -> None:
        for p in (self.stack, self.runner):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.stack = self.runner = None

    def close(self) -> None:
        self.stop_processes()
        for svc in (self.s3, self.rabbit, self.pg):
            if svc is not None:
                svc.close()
        self.disk.close()


def classify_results(results: dict[int, bytes], reference: dict[int, bytes]) -> tuple[int, list[int], list[int]]:
    """Soaked results against the fault-free reference, by job text: how many are identical,
    which differ, and which have no reference result at all (the reference job did not
    succeed in time). A missing reference is an unfinished check, never a byte mismatch."""
    identical = sum(1 for n, data in results.items() if reference.get(n) == data)
    mismatched = sorted(n for n, data in results.items() if n in reference and reference[n] != data)
    missing = sorted(n for n in results if n not in reference)
    return identical, mismatched, missing


_CHUNK_COLS = "job_id, idx, samples, sample_rate, synth_calls, attempts, audio_key"


def _sqlite_chunk_rows(path: Path, job_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    import sqlite3

    out: dict[str, list[dict[str, Any]]] = {}
    if not path.exists():
        return out
    wanted = set(job_ids)
    with contextlib.closing(sqlite3.connect(path)) as db:
        for r in db.execute(f"SELECT {_CHUNK_COLS} FROM chunks ORDER BY job_id, idx"):
            row = dict(zip(_CHUNK_COLS.split(", "), r, strict=True))
            if row["job_id"] in wanted:
                out.setdefault(row["job_id"], []).append(row)
    return out


def _wav_pcm(data: bytes) -> bytes:
    import io
    import wave

    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            return w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return data


def compare_chunks(ref: bytes, got: bytes, ref_samples: list[Any], got_samples: list[Any]) -> list[dict[str, Any]]:
    """The chunks where two results of one job differ: each result (WAV) is cut at its own
    run's chunk sample counts, and chunk ``i`` of one is compared with chunk ``i`` of the other.
    Per differing chunk: its index, byte lengths (reference, got), the first differing byte
    offset within the chunk, and whether one is a prefix of the other. A header-only difference
    (same PCM) is reported as chunk ``-1``."""
    a, b = _wav_pcm(ref), _wav_pcm(got)
    if a == b:
        return [{"idx": -1, "bytes_ref": len(ref), "bytes_got": len(got), "first_diff": _first_diff(ref, got),
                 "prefix": "header only"}]

    def cut(pcm: bytes, samples: list[Any]) -> list[bytes]:
        parts, at = [], 0
        for s in samples:
            n = 2 * int(s or 0)
            parts.append(pcm[at:at + n])
            at += n
        if at < len(pcm):
            parts.append(pcm[at:])  # bytes past the chunks the DB knows of
        return parts

    ra, rb = cut(a, ref_samples), cut(b, got_samples)
    out = []
    for i in range(max(len(ra), len(rb))):
        x = ra[i] if i < len(ra) else b""
        y = rb[i] if i < len(rb) else b""
        if x == y:
            continue
        if y and x.startswith(y):
            prefix = "got is a prefix of ref"
        elif x and y.startswith(x):
            prefix = "ref is a prefix of got"
        else:
            prefix = "neither"
        out.append({"idx": i, "bytes_ref": len(x), "bytes_got": len(y), "first_diff": _first_diff(x, y),
                    "prefix": prefix})
    return out


def _first_diff(x: bytes, y: bytes) -> int:
    for i, (p, q) in enumerate(zip(x, y, strict=False)):
        if p != q:
            return i
    return min(len(x), len(y))


# ---- the report ----------------------------------------------------------------------------

def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def phase_table(samples: list[Sample]) -> list[dict[str, Any]]:
    rows = []
    phases = list(dict.fromkeys(s.phase for s in samples))
    for phase in phases:
        for kind in ("speech", "stream", "job-submit", "probe-submit"):
            sel = [s for s in samples if s.phase == phase and s.kind == kind]
            if not sel:
                continue
            ok = [s for s in sel if s.ok]
            fails: dict[str, int] = {}
            for s in sel:
                if not s.ok:
                    fails[s.status] = fails.get(s.status, 0) + 1
            rows.append({"phase": phase, "kind": kind, "requests": len(sel), "ok": len(ok),
                         "success": len(ok) / len(sel), "p50_ms": 1000 * _pct([s.latency_s for s in ok], 0.5),
                         "p99_ms": 1000 * _pct([s.latency_s for s in ok], 0.99), "failures": fails})
    return rows


def plot(samples: list[Sample], faults: list[Fault], path: Path, bin_s: float = 5.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max((s.t for s in samples), default=0.0)
    bins = [i * bin_s for i in range(int(end // bin_s) + 1)]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for kind, color in (("speech", "tab:blue"), ("stream", "tab:green")):
        xs, rate, p99 = [], [], []
        for b in bins:
            sel = [s for s in samples if s.kind == kind and b <= s.t < b + bin_s]
            if not sel:
                continue
            xs.append(b + bin_s / 2)
            rate.append(100 * sum(s.ok for s in sel) / len(sel))
            oks = [s.latency_s for s in sel if s.ok]
            p99.append(1000 * _pct(oks, 0.99) if oks else float("nan"))
        ax1.plot(xs, rate, color=color, label=kind)
        ax2.plot(xs, p99, color=color, label=kind)
    for f in faults:
        end_f = f.t_recovered if f.t_recovered is not None else f.t_lifted
        for ax in (ax1, ax2):
            ax.axvspan(f.t_inject, max(end_f, f.t_inject + 0.5), color="tab:red", alpha=0.12)
        ax1.text(f.t_inject, 101, f.kind, rotation=60, fontsize=7, va="bottom")
    ax1.set_ylabel(f"success % ({bin_s:.0f} s bins)")
    ax1.set_ylim(0, 100)
    ax2.set_ylabel("p99 latency (ms)")
    ax2.set_yscale("log")
    ax2.set_xlabel("seconds since the soak started (red: fault open, injection to recovery)")
    ax1.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(soak: Soak, result: dict[str, Any], out: Path, command: str) -> None:
    rows = phase_table(soak.samples)
    jobs = result["jobs"]
    lines = [
        "# Chaos soak",
        "",
        f"Command: `{command}` (seed {soak.args.seed}; {result['soak_s'] / 60:.1f} min of traffic). "
        "`make bench` runs the 30-minute version: `python benchmarks/chaos.py --minutes 30 --seed 1 --out benchmarks/reports/chaos_30min.md`.",
        "",
        f"Stack: `voxmesh up` (tone engine, {REPLICAS} replicas, mTLS), 1 in-process runner + 1 runner process; "
        f"jobs DB: {'private PostgreSQL' if soak.pg else 'SQLite in the data dir'}; queue: "
        f"{'private RabbitMQ node' if soak.rabbit else 'DB'}; objects: {'SeaweedFS S3' if soak.s3 else 'filesystem'}; "
        f"data dir on a {soak.args.disk_mb} MiB tmpfs. Machine: {os.cpu_count()} cores, shared with other work.",
        "",
        "## Faults",
        "",
        "| # | fault | at (s) | what | recovered after (s) |",
        "|---|---|---|---|---|",
    ]
    for i, f in enumerate(soak.faults, 1):
        rec = "not within the limit" if f.recovery_s is None else f"{f.recovery_s:.2f}"
        lines.append(f"| {i} | {f.kind} | {f.t_inject:.1f} | {f.note} | {rec} |")
    lines += [
        "",
        "Recovered: from the moment the fault was lifted (the kill itself, for kills) until `/readyz` 200, a "
        "speech request 200, `GET /v1/jobs` 200, both replicas serving, the runner process alive, with "
        "jobs unfinished job chunks moving again, and a new job accepted (201; checked with the others).",
        "",
        "## Requests per phase",
        "",
        "A request belongs to the fault open when it started (injection to recovery), or, started with none "
        "open, to the fault injected while it was in flight. `probe-submit`: the "
        "job submissions of the recovery probe (one try each, at most one a second, until one is accepted).",
        "",
        "| phase | kind | requests | success | p50 ms | p99 ms | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fails = ", ".join(f"{k}: {v}" for k, v in sorted(r["failures"].items())) or "-"
        lines.append(f"| {r['phase']} | {r['kind']} | {r['requests']} | {100 * r['success']:.2f}% | "
                     f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {fails} |")
    total = {k: [s for s in soak.samples if s.kind == k] for k in ("speech", "stream", "job-submit")}
    lines += ["", "All phases together: " + "; ".join(
        f"{k} {sum(s.ok for s in v)}/{len(v)} ({100 * sum(s.ok for s in v) / max(1, len(v)):.2f}%), "
        f"p99 {1000 * _pct([s.latency_s for s in v if s.ok], 0.99):.0f} ms" for k, v in total.items()), ""]
    lines += [
        "## Jobs",
        "",
        "| submitted | completed | lost | duplicated | byte-identical to the fault-free run | differing "
        "| no reference result |",
        "|---|---|---|---|---|---|---|",
        f"| {jobs['submitted']} | {jobs['completed']} | {jobs['lost']} | {jobs['duplicated']} | "
        f"{jobs['identical']} | {jobs['mismatched']} | {jobs['no_reference']} |",
        "",
        f"Final states: {jobs['states']}. Every submission carries an `Idempotency-Key`; tries whose answer "
        f"never came (the stack died meanwhile) and were sent again under the same key: "
        f"{jobs.get('answers_lost', 0)}, answered as replays of the first try: {jobs.get('answers_replayed', 0)}, "
        f"given up after 30 s: {jobs.get('abandoned', 0)}. Jobs the server lists that no answer "
        f"named: {jobs['created_unacknowledged']} {jobs['unacknowledged_states']} (a submission refused "
        "with 503 leaves a failed job behind and frees its key; the client's retry creates the job; "
        "duplicated = such jobs that ran, beyond the given-up submissions). No reference result: the job's fault-free run (every job again on a fresh "
        f"stack after the soak) did not succeed in time ({jobs['no_reference_states'] or 'none'}); such a job "
        "is unchecked, not differing, and fails the run all the same.",
    ]
    detail = jobs.get("mismatch_detail") or []
    if detail:
        lines += [
            "",
            "Jobs not byte-identical, chunk by chunk (each result cut at its own run's chunk sample counts; "
            "`stored`: whether the soaked store's chunk object equals the result's slice; faults: those whose "
            "window, injection to recovery, overlapped the job's life, submission to finish):",
            "",
            "| job (text n) | life (s) | chunk | bytes ref / got | first diff at | prefix? | engine calls | attempts "
            "| stored | faults overlapping |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for d in detail:
            for c in d["chunks"]:
                lines.append(
                    f"| {d['n']} | {d['t_submit']:.0f}-{d['t_finished']:.0f} | {c['idx']}/{d['chunks_total']} | "
                    f"{c['bytes_ref']} / {c['bytes_got']} | {c['first_diff']} | {c['prefix']} | "
                    f"{c.get('synth_calls', '-')} | {c.get('attempts', '-')} | {c.get('stored', '-')} | "
                    f"{', '.join(d['faults']) or '-'} |")
        lines.append("")
    if jobs["chunk_synth_calls"]:
        lines.append(f"Engine calls per chunk (chunks by count, from the DB): {jobs['chunk_synth_calls']} "
                     "(a chunk redone after its runner or the stack died counts 2).")
    b, a = result["before"], result["after"]
    lines += [
        "",
        "## Processes",
        "",
        "| | processes (stack + runner tree) | RSS MiB | leftovers of this data dir outside them |",
        "|---|---|---|---|",
        f"| before the first fault | {b['processes']} | {b['rss_mb']:.0f} | {b['leftovers']} |",
        f"| after the last fault | {a['processes']} | {a['rss_mb']:.0f} | {a['leftovers']} |",
        "",
        f"`voxmesh up` started {result['stack_starts']} times, the runner process {result['runner_starts']} times.",
        "",
        f"![success rate and p99 over time]({out.with_suffix('.png').name})",
        "",
        "## Reading it",
        "",
        "- `stack-kill` is the one phase where requests fail: the whole gateway is down until `voxmesh up` "
        "is restarted (connection refused), then answers 503 + Retry-After until the workers are ready. "
        "Job submissions in that window are retried by the client on 503 / refused connections.",
        "- `worker-hang`: requests to the hung worker are given up after the 2 s first-byte timeout of this "
        "config and retried on the other replica; that is the p99 of that phase. A streamed request whose "
        "worker dies after the first audio byte cannot be retried (the head is sent); it fails truncated.",
        "- `disk-full` fills the data dir's filesystem; with PostgreSQL and S3 it holds the logs, the mesh "
        "identities and the run records only, so nothing in the request path needs it.",
        "- Not in this soak: translation (the llama.cpp deployment costs about a core-second per sentence on "
        "this shared 2-core machine) and Piper (the tone engine keeps results byte-comparable and cheap).",
        "",
    ]
    out.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", nargs="+", choices=ALL_FAULTS, default=ALL_FAULTS)
    ap.add_argument("--no-pg", dest="pg", action="store_false", help="SQLite in the data dir instead")
    ap.add_argument("--no-rabbitmq", dest="rabbitmq", action="store_false", help="the DB queue instead")
    ap.add_argument("--no-s3", dest="s3", action="store_false", help="filesystem objects instead")
    ap.add_argument("--warmup-s", type=float, default=20.0)
    ap.add_argument("--cooldown-s", type=float, default=20.0)
    ap.add_argument("--hold-s", type=float, default=15.0, help="how long 500/hang/disk-full faults last")
    ap.add_argument("--s3-down-s", type=float, default=30.0)
    ap.add_argument("--gap-s", type=float, nargs=2, default=(5.0, 10.0), help="quiet time between faults")
    ap.add_argument("--recover-max-s", type=float, default=120.0)
    ap.add_argument("--job-every", type=float, default=6.0)
    ap.add_argument("--drain-s", type=float, default=240.0,
                    help="how long the final waits (soaked jobs, then the reference run) go on with no job finishing")
    ap.add_argument("--disk-mb", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None, help="markdown report (+ .png and .json beside it)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="voxmesh-chaos-"))
    soak = Soak(args, root)
    try:
        result = asyncio.run(soak.run())
    except BaseException:
        soak.close()
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        raise
    soak.close()
    result["faults"] = [f.__dict__ for f in soak.faults]
    result["phases"] = phase_table(soak.samples)
    print(json.dumps({k: result[k] for k in ("jobs", "before", "after")}, indent=1, default=str))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
        plot(soak.samples, soak.faults, args.out.with_suffix(".png"))
        write_report(soak, result, args.out, command)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept {root}", file=sys.stderr)
    j = result["jobs"]
    ok = (j["lost"] == 0 and j["duplicated"] == 0 and j["mismatched"] == 0 and j["no_reference"] == 0
          and result["after"]["leftovers"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
