"""The supervisor: declared deployments -> running worker processes, kept warm and scaled.

Each replica is a ``voxmesh worker`` subprocess on a loopback port. Its lifecycle follows the
transition table in :mod:`voxmesh.autoscale.lifecycle`:

    STARTING -> LOADING (process up, /healthz answers) -> WARM (/readyz 200, not routed)
    -> SERVING (routed: the gateway got ``Add``) -> DRAINING (``Remove`` sent, in-flight
    finishing) -> STOPPED;  any live state -> CRASHED -> restart after backoff.

Scale-up promotes a WARM replica (one ``Add`` event: routable at once, no model load) and
refills the warm pool in the background; only when no warm replica exists does it start a
cold one. Scale-down first moves serving replicas back to the warm pool (up to its size),
and stops the rest only after their in-flight requests finished: no request is lost.

The scaling decision itself is the pure policy (:func:`voxmesh.autoscale.policy.decide`),
fed every ``sync_period_s`` with a snapshot built from the workers' ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from voxmesh.autoscale.lifecycle import ReplicaState, RestartBackoff, transition
from voxmesh.deployments import Deployment
from voxmesh.gateway.balancer.pool import Add, Endpoint, Remove
from voxmesh.lifeline import RunDir
from voxmesh.lifeline.parent import preexec_parent_death

__all__ = ["Replica", "Supervisor", "WorkerLaunch", "free_port", "parse_worker_metrics"]

log = logging.getLogger(__name__)

Discovery = Callable[[str, Any], None]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_worker_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {metric name: value} for the unlabeled-by-code worker gauges."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base == "voxmesh_worker_requests_total":
            out[base] = out.get(base, 0.0) + float(value)
        else:
            out[base] = float(value)
    return out


@dataclass
class WorkerLaunch:
    """How to start a worker process: command, environment, TLS material."""

    python: str = sys.executable
    data_dir: Path = Path(".voxmesh")
    tls_args: Callable[[Deployment, int], list[str]] | None = None
    scheme: str = "http"
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the host core budget's settings
    # where children are recorded (voxmesh.lifeline); None: no records, no leftover reaping
    run_dir: RunDir | None = None

    def command(self, dep: Deployment, index: int, port: int) -> list[str]:
        cmd = [
            self.python, "-m", "voxmesh", "worker",
            "--engine", str(dep.engine), "--model", dep.name,
            "--host", "127.0.0.1", "--port", str(port),
            "--threads", str(dep.threads_per_replica()),
        ]
        if dep.options:
            import json

            cmd += ["--options", json.dumps(dep.options)]
        if dep.pronunciation_dictionary is not None:
            cmd += ["--dictionary", str(dep.pronunciation_dictionary)]
        if self.tls_args is not None:
            cmd += self.tls_args(dep, index)
        # the worker dies with us (voxmesh.lifeline.parent); --run-dir marks it as ours
        cmd += ["--parent-pid", str(os.getpid())]
        if self.run_dir is not None:
            cmd += ["--run-dir", str(self.run_dir.path)]
        return cmd


@dataclass
class Replica:
    deployment: str
    index: int
    port: int
    state: ReplicaState = ReplicaState.STARTING
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    ready_at: float | None = None
    restarts: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_text: str = ""  # the last /metrics read (relayed on the gateway's /metrics)

    @property
    def id(self) -> str:
        return f"{self.deployment}-{self.index}"

    def move(self, to: ReplicaState) -> None:
        self.state = transition(self.state, to)


class Supervisor:
    def __init__(
        self,
        deployments: list[Deployment],
        discovery: Discovery,
        *,
        launch: WorkerLaunch | None = None,
        clock: Callable[[], float] = time.monotonic,
        ssl: Any = None,
    ) -> None:
        self.deployments = {d.name: d for d in deployments if d.engine is not None}
        self.discovery = discovery
        self.launch = launch or WorkerLaunch()
        self.clock = clock
        self.ssl = ssl
        self.replicas: dict[str, list[Replica]] = {name: [] for name in self.deployments}
        self.desired: dict[str, int] = {d.name: d.replicas.min for d in self.deployments.values()}
        self._next_index: dict[str, int] = dict.fromkeys(self.deployments, 0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False
        self.events: list[dict[str, Any]] = []  # decisions and lifecycle changes, newest last

    # ---- public ----------------------------------------------------------------------
    async def start(self) -> None:
        run_dir = self.launch.run_dir
        if run_dir is not None:
            run_dir.acquire()  # RunDirBusy when a live supervisor has this data dir
            for rec in run_dir.reap_leftovers():
                self._record("leftover-ended", "-", name=rec.name, pid=rec.pid)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        for dep in self.deployments.values():
            for _ in range(dep.replicas.min + dep.replicas.warm):
                self._spawn(dep)

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for reps in self.replicas.values():
            for rep in reps:
                await self._terminate(rep)
        if self._session is not None:
            await self._session.close()
        if self.launch.run_dir is not None:
            self.launch.run_dir.release()

    def serving(self, name: str) -> list[Replica]:
        return [r for r in self.replicas[name] if r.state is ReplicaState.SERVING]

    def warm(self, name: str) -> list[Replica]:
        return [r for r in self.replicas[name] if r.state is ReplicaState.WARM]

    def is_ready(self) -> bool:
        return all(len(self.serving(n)) >= min(1, d.replicas.min) for n, d in self.deployments.items())

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = self.clock() + timeout
        while not self.is_ready():
            if self.clock() > deadline:
                raise TimeoutError("deployments did not become ready in time: see the worker logs")
            await asyncio.sleep(0.1)

    def scale(self, name: str, desired: int, reason: str = "manual") -> None:
        """Set the desired serving replicas; promotion and draining follow at once."""
        dep = self.deployments[name]
        desired = max(dep.replicas.min, min(dep.replicas.max, desired))
        self._record("scale", name, desired=desired, reason=reason, serving=len(self.serving(name)))
        self.desired[name] = desired
        self._reconcile(name)

    # ---- reconcile -------------------------------------------------------------------
    def _reconcile(self, name: str) -> None:
        if self._stopping:
            return
        dep = self.deployments[name]
        serving = self.serving(name)
        want = self.desired[name]
        if len(serving) < want:
            for rep in self.warm(name)[: want - len(serving)]:
                self._promote(rep)
            serving = self.serving(name)
        elif len(serving) > want:
            for rep in sorted(serving, key=lambda r: r.metrics.get("voxmesh_worker_in_flight", 0))[: len(serving) - want]:
                self._task(self._drain(rep, keep_warm=len(self.warm(name)) < dep.replicas.warm))
            serving = self.serving(name)
        # a CRASHED replica restarts after its backoff: it is coming back, so it counts as pending
        # (else every crash would spawn a fresh replica beside the one that restarts)
        coming = (ReplicaState.STARTING, ReplicaState.LOADING, ReplicaState.CRASHED)
        pending = [r for r in self.replicas[name] if r.state in coming]
        deficit = want - len(serving) + dep.replicas.warm - len(self.warm(name)) - len(pending)
        live = [r for r in self.replicas[name] if r.state is not ReplicaState.STOPPED]
        cap = dep.replicas.max + dep.replicas.warm - len(live)
        for _ in range(max(0, min(deficit, cap))):
            self._spawn(dep)

    def _promote(self, rep: Replica) -> None:
        rep.move(ReplicaState.SERVING)
        self.discovery(rep.deployment, Add(self._endpoint(rep)))
        self._record("promote", rep.deployment, replica=rep.id)

    def _endpoint(self, rep: Replica) -> Endpoint:
        return Endpoint(id=rep.id, url=f"{self.launch.scheme}://127.0.0.1:{rep.port}")

    # ---- process management ----------------------------------------------------------
    def _spawn(self, dep: Deployment) -> Replica:
        index = self._next_index[dep.name]
        self._next_index[dep.name] += 1
        rep = Replica(dep.name, index, free_port())
        self.replicas[dep.name].append(rep)
        self._task(self._run_replica(dep, rep))
        return rep

    async def _run_replica(self, dep: Deployment, rep: Replica) -> None:
        backoff = RestartBackoff(clock=self.clock)
        while not self._stopping:
            rep.started_at = self.clock()
            backoff.started()
            env = {**os.environ, **self.launch.extra_env, **dep.env}
            log_path = self.launch.data_dir / "logs" / f"{rep.id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as logf:
                rep.proc = await asyncio.create_subprocess_exec(
                    *self.launch.command(dep, rep.index, rep.port), env=env, stdout=logf, stderr=logf,
                    start_new_session=True, preexec_fn=preexec_parent_death,
                )
            pid = rep.proc.pid
            if self.launch.run_dir is not None:
                self.launch.run_dir.record(rep.id, pid)
            self._record("spawn", dep.name, replica=rep.id, pid=pid, port=rep.port)
            watcher = asyncio.ensure_future(self._await_ready(dep, rep))
            # woken by the child's exit itself (SIGCHLD), not by a poll: a kill -9 is seen at once
            code = await rep.proc.wait()
            watcher.cancel()
            if self.launch.run_dir is not None:
                self.launch.run_dir.forget(rep.id, pid)
            if self._stopping or rep.state in (ReplicaState.DRAINING, ReplicaState.STOPPED):
                if rep.state is not ReplicaState.STOPPED:
                    rep.move(ReplicaState.STOPPED)
                return
            was_serving = rep.state is ReplicaState.SERVING
            rep.move(ReplicaState.CRASHED)
            if was_serving:
                self.discovery(dep.name, Remove(rep.id))
            rep.restarts += 1
            delay = backoff.crashed()
            self._record("crash", dep.name, replica=rep.id, exit_code=code, restart_in_s=delay)
            await asyncio.sleep(delay)
            rep.move(ReplicaState.STARTING)

    async def _await_ready(self, dep: Deployment, rep: Replica) -> None:
        assert self._session is not None
        base = f"{self.launch.scheme}://127.0.0.1:{rep.port}"
        while True:
            await asyncio.sleep(0.1)
            try:
                async with self._session.get(base + "/readyz", ssl=self.ssl) as resp:
                    if rep.state is ReplicaState.STARTING:
                        rep.move(ReplicaState.LOADING)
                    if resp.status == 200:
                        break
            except (TimeoutError, aiohttp.ClientError, OSError):
                continue
        rep.ready_at = self.clock()
        rep.move(ReplicaState.WARM)
        self._record("ready", dep.name, replica=rep.id, load_s=round(rep.ready_at - rep.started_at, 3))
        if len(self.serving(dep.name)) < self.desired[dep.name]:
            self._promote(rep)

    async def _drain(self, rep: Replica, *, keep_warm: bool) -> None:
        self.discovery(rep.deployment, Remove(rep.id))
        if keep_warm:
            rep.move(ReplicaState.WARM)
            self._record("to-warm", rep.deployment, replica=rep.id)
            return
        rep.move(ReplicaState.DRAINING)
        self._record("drain", rep.deployment, replica=rep.id)
        deadline = self.clock() + 120
        while self.clock() < deadline:
            m = await self._scrape(rep)
            if m is not None and m.get("voxmesh_worker_in_flight", 0) + m.get("voxmesh_worker_queue_length", 0) == 0:
                break
            await asyncio.sleep(0.1)
        await self._terminate(rep)
        if rep.state is ReplicaState.DRAINING:
            rep.move(ReplicaState.STOPPED)
        self.replicas[rep.deployment] = [r for r in self.replicas[rep.deployment] if r is not rep]

    async def _terminate(self, rep: Replica) -> None:
        proc = rep.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self.launch.run_dir is not None:
            self.launch.run_dir.forget(rep.id, proc.pid)

    async def _scrape(self, rep: Replica) -> dict[str, float] | None:
        assert self._session is not None
        try:
            async with self._session.get(f"{self.launch.scheme}://127.0.0.1:{rep.port}/metrics", ssl=self.ssl) as resp:
                rep.metrics_text = await resp.text()
                rep.metrics = parse_worker_metrics(rep.metrics_text)
                return rep.metrics
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None

    async def worker_info(self, rep: Replica) -> dict[str, Any] | None:
        assert self._session is not None
        try:
            async with self._session.get(f"{self.launch.scheme}://127.0.0.1:{rep.port}/info", ssl=self.ssl) as resp:
                data: dict[str, Any] = await resp.json()
                return data
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None

    async def scrape_all(self, name: str) -> list[dict[str, float]]:
        reps = self.serving(name)
        results = await asyncio.gather(*(self._scrape(r) for r in reps))
        return [m for m in results if m is not None]

    # ---- bookkeeping -----------------------------------------------------------------
    def _task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor task failed: %r", task.exception())

    def _record(self, event: str, deployment: str, **fields: Any) -> None:
        entry = {"t": round(time.time(), 3), "event": event, "deployment": deployment, **fields}
        self.events.append(entry)
        del self.events[:-1000]
        log.info("%s %s %s", event, deployment, " ".join(f"{k}={v}" for k, v in fields.items()))

    def metric_texts(self) -> list[tuple[dict[str, str], str]]:
        """The last ``/metrics`` text of every routed or draining replica, with its labels."""
        live = (ReplicaState.SERVING, ReplicaState.DRAINING)
        return [({"deployment": r.deployment, "replica": r.id}, r.metrics_text)
                for reps in self.replicas.values() for r in reps if r.state in live and r.metrics_text]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name, reps in self.replicas.items():
            per: dict[str, int] = {}
            for r in reps:
                per[r.state.value] = per.get(r.state.value, 0) + 1
            out[name] = per
        return out
