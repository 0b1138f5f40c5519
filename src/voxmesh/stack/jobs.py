"""Jobs wiring for ``voxmesh up``: the job service on the gateway and in-process runners.

Runners synthesize chunk by chunk through the gateway's own data plane (HTTP to the
stack's public URL), so jobs get the same balancing, retries and breakers as live traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from voxmesh.errors import UnknownVoice
from voxmesh.settings import Settings

__all__ = ["GatewayVoiceCatalog", "JobsWiring"]

log = logging.getLogger(__name__)

WATCH_BUSY_S = 1.0  # the queue gauges' refresh while jobs are queued or running
WATCH_IDLE_S = 5.0  # ... and at most this while none are (a publish here wakes it sooner)


class GatewayVoiceCatalog:
    """Checks a job's model and voice against what the gateway serves, before storing it."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def check(self, model: str, voice: str) -> None:
        routed = self.catalog.resolve(model)
        deps = list(self.catalog.splits.get(routed, {routed: 1.0}))
        known = {v["id"] for d in deps for v in self.catalog.voices.get(d, [])}
        from voxmesh.voices.ids import is_enrolled_id

        if known and voice not in known and not is_enrolled_id(voice):  # enrolled: resolved per request
            raise UnknownVoice(f"unknown voice {voice!r} for model {model!r}: use one of {sorted(known)}",
                               param="voice")


class JobsWiring:
    def __init__(self, settings: Settings, stack: Any) -> None:
        self.settings = settings
        self.stack = stack
        self.jobs: Any = None
        self._runners: list[asyncio.Task[None]] = []
        self._queue_length = 0
        self._synth: Any = None
        self._job_counts: dict[str, int] = {}

    async def start(self) -> None:
        from voxmesh.jobs.wiring import open_jobs

        self.jobs = await open_jobs(self.settings, catalog=GatewayVoiceCatalog(self.stack.catalog))

    def setup_routes(self, app: web.Application) -> None:
        from voxmesh.jobs.routes import setup_job_routes

        setup_job_routes(app, self.jobs.service)

    async def start_runners(self) -> None:
        from voxmesh.jobs.synth import HttpSynthesizer
        from voxmesh.jobs.wiring import build_synthesizer, internal_auth, make_runner

        cfg = self.settings.jobs
        if cfg.engine == "http":
            synth: Any = HttpSynthesizer(self.stack.url, sample_rate=cfg.sample_rate,
                                         headers={"X-Voxmesh-Caller": "jobs-runner", **internal_auth(self.settings)})
        else:
            synth = build_synthesizer(self.settings)
        self._synth = synth
        for i in range(cfg.runners):
            runner = make_runner(self.jobs, synth, owner=f"gateway-runner-{i}")
            self._runners.append(asyncio.ensure_future(runner.run()))
        self._runners.append(asyncio.ensure_future(self._watch_queue()))

    async def _watch_queue(self) -> None:
        """Refresh the queue gauges every second while jobs are queued or running; when there
        are none, every 5 s or as soon as this process publishes a chunk (the DB queue's
        doorbell), so an idle stack does not query its database twice a second."""
        from voxmesh.jobs.lifecycle import ACTIVE_JOB_STATES
        from voxmesh.jobs.queue import Doorbell, idle_wait

        wait_s = WATCH_BUSY_S
        doorbell: Doorbell | None = getattr(self.jobs.queue, "doorbell", None)  # the DB queue's
        never = asyncio.Event()  # other queues: the timed wait alone
        while True:
            rang = doorbell.current() if doorbell is not None else never
            with contextlib.suppress(Exception):
                self._queue_length = await self.jobs.queue.length()
            with contextlib.suppress(Exception):
                self._job_counts = await self.jobs.db.job_counts()
            busy = self._queue_length > 0 or any(self._job_counts.get(s, 0) for s in ACTIVE_JOB_STATES)
            wait_s = idle_wait(wait_s, busy, WATCH_BUSY_S, WATCH_IDLE_S)
            await Doorbell.wait(rang, wait_s)

    @property
    def queue_length(self) -> int:
        return self._queue_length

    def metrics_text(self) -> str:
        return (
            "# HELP voxmesh_jobs_queue_length job chunks waiting for a runner\n"
            "# TYPE voxmesh_jobs_queue_length gauge\n"
            f"voxmesh_jobs_queue_length {self._queue_length}\n"
            "# HELP voxmesh_jobs jobs in the metadata DB by state (failed: a chunk was dead-lettered)\n"
            "# TYPE voxmesh_jobs gauge\n"
            + "".join(f'voxmesh_jobs{{state="{s}"}} {n}\n' for s, n in sorted(self._job_counts.items()))
        ).rstrip("\n")

    async def stop(self) -> None:
        for task in self._runners:
            task.cancel()
        for task in self._runners:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        close = getattr(self._synth, "close", None)
        if close is not None:  # the runners' HTTP session to the gateway
            await close()
        if self.jobs is not None:
            await self.jobs.close()
