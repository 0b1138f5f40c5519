"""The worker process: one engine behind an internal HTTP API.

Routes
    GET  /healthz            alive (the process answers)
    GET  /readyz             200 once the model is loaded and one warm-up synthesis is done
    GET  /metrics            Prometheus text: in-flight, queue length, requests, audio seconds
    GET  /info               engine, model, capabilities, voices, thread classes as measured (JSON)
    GET|PUT /admin/faults    fault injection for resilience tests (loopback only; worker/faults.py)
    GET  /v1/models          OpenAI-style model list (this worker's one model)
    GET  /v1/audio/voices    voices of the engine
    POST /v1/audio/speech    the OpenAI-compatible speech body (see api/schemas.py)

The speech body is validated and planned *before* admission, so bad input costs no queue
slot. Admission is the fair FIFO core scheduler; each segment runs in a dedicated thread pool
of ``cores`` threads (no pool overlap), with the thread count the scheduler grants for it.
Audio leaves per segment when ``stream`` is true.

Every speech answer carries a ``Server-Timing`` header (milliseconds): ``queue`` is the time
from the parsed request to its core grant, ``normalize`` the planning of the text; a
non-streamed answer adds ``g2p``, ``inference``, ``prosody``, ``encode`` (the stages of
:mod:`voxmesh.observability.stages`) and ``synth`` (all of synthesis and encoding). A streamed
answer's headers leave before synthesis, so it has ``queue`` and ``normalize`` only; its
later stages reach ``voxmesh_worker_stage_seconds{deployment,stage}`` on ``/metrics`` all
the same (every answered request, both kinds).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voxmesh.api.errors import error_middleware
from voxmesh.api.schemas import SpeechRequest, parse_body
from voxmesh.engines.base import SegmentInterrupted
from voxmesh.errors import EngineError, Overloaded
from voxmesh.hostcores.broker import CoreBroker
from voxmesh.observability.metrics import Registry
from voxmesh.observability.stages import STAGES, StageFault, StageTimes
from voxmesh.settings import WorkerSettings
from voxmesh.worker.admission import Admission, Slot
from voxmesh.worker.faults import Faults
from voxmesh.worker.hostseat import HostSeat
from voxmesh.worker.scheduler import thread_classes
from voxmesh.worker.speedup import SpeedProfile

__all__ = ["WorkerApp", "build_worker_app"]

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    requests: dict[int, int] = field(default_factory=dict)
    audio_seconds: float = 0.0
    synth_seconds: float = 0.0
    started_at: float = field(default_factory=time.time)

    def count(self, status: int) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1


class WorkerApp:
    """State of one worker: the engine, admission, stats, readiness."""

    def __init__(
        self,
        engine: Any,
        *,
        model: str,
        engine_name: str,
        settings: WorkerSettings,
        cores: int,
        dictionary: Any = None,
        rng: random.Random | None = None,
        preloaded: Future[None] | None = None,
        host_cores: tuple[CoreBroker, str] | None = None,
    ) -> None:
        self.engine = engine
        self.preloaded = preloaded  # engine.load already running elsewhere (worker/preload.py)
        self.model = model
        self.engine_name = engine_name
        self.settings = settings
        self.cores = cores
        self.dictionary = dictionary
        #: measured speed-up per thread class, for engines whose thread count picks a session
        #: (the others ignore it: nothing to measure); see voxmesh.worker.speedup
        self.profile = (SpeedProfile(thread_classes(cores), min_speedup=settings.speedup_min,
                                     refresh_s=settings.speedup_refresh_s,
                                     min_samples=settings.speedup_min_samples)
                        if hasattr(engine, "session_classes") else None)
        self.calibration_s: float | None = None  # the warm-up calibration's cost, once run
        self.calibration_wait_s: float | None = None  # of which waiting for the background sessions
        self.admission = Admission(cores, settings.max_queue, calm_s=settings.calm_s,
                                   preempt_frac=settings.preempt_frac,
                                   max_useful_threads=getattr(engine, "max_useful_threads", None),
                                   profile=self.profile)
        self.pool = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="infer")
        #: the host core budget shared by every worker on this host and our deployment in it
        #: (voxmesh.hostcores; settings.hostcores, handed down by voxmesh up); None: we own our cores
        self.host_cores = host_cores
        if host_cores is not None and hasattr(engine, "core_lease"):  # a decode loop, not segments (llama.cpp)
            from voxmesh.hostcores.busy import BusyLease

            engine.core_lease = BusyLease(host_cores[0], host_cores[1], cores)
        self.ready = False
        self.stats = WorkerStats()
        self.rng = rng or random.Random()
        self.registry = Registry()
        self.stage_seconds = self.registry.histogram(
            "voxmesh_worker_stage_seconds",
            "seconds one answered speech request spent in each stage (queue, normalize, g2p, inference, "
            "prosody, encode)", ("deployment", "stage"))
        self.fault = (StageFault(settings.fault_stage, settings.fault_stage_delay_ms / 1000.0)
                      if settings.fault_stage is not None and settings.fault_stage_delay_ms > 0 else None)
        self.faults = Faults(settings.fault_error_rate, settings.fault_delay_ms, self.rng)

    # ---- lifecycle -------------------------------------------------------------------
    async def load(self) -> None:
        """Load and warm the engine off the event loop; /healthz answers meanwhile."""
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        # engines that front a remote server (engines/remote.py) have nothing to load
        if self.preloaded is not None:
            await asyncio.wrap_future(self.preloaded)
        elif hasattr(self.engine, "load"):
            await loop.run_in_executor(self.pool, self.engine.load, self.cores)
        if hasattr(self.engine, "warm_up"):
            await loop.run_in_executor(self.pool, self.engine.warm_up)
        await self._calibrate(loop)
        self.ready = True
        log.info("worker %s ready (%s) in %.2fs", self.model, self.engine_name, time.monotonic() - t0)

    async def _calibrate(self, loop: asyncio.AbstractEventLoop) -> None:
        """Seed the speed profile before the worker is ready (voxmesh.worker.calibrate); a
        failure is logged and leaves the profile to the served segments."""
        from voxmesh.worker.calibrate import CALIBRATION_TEXT, calibrate, engine_runner

        rounds = self.settings.calibration_rounds
        if (self.profile is None or rounds == 0 or not getattr(self.engine, "calibrate_at_start", False)
                or "en" not in self.engine.capabilities().languages):
            return
        t0 = time.monotonic()
        try:
            classes = await loop.run_in_executor(self.pool, self.engine.session_classes, 60.0)
            if len(classes) < 2:
                return  # one class: nothing to compare
            self.calibration_wait_s = time.monotonic() - t0
            seconds = await loop.run_in_executor(
                self.pool, lambda: calibrate(engine_runner(self.engine), classes, rounds=rounds,
                                             discard=self.settings.calibration_discard))
        except Exception:
            log.exception("worker %s: thread calibration failed; speed-ups come from served segments", self.model)
            return
        for k, s in seconds.items():
            self.profile.seed(k, s / len(CALIBRATION_TEXT))
        self.admission.refresh_cap()
        self.calibration_s = time.monotonic() - t0
        log.info("worker %s: thread calibration in %.2fs (%.2fs waiting for sessions): seconds per run %s, "
                 "speed-ups %s, max useful threads %d", self.model, self.calibration_s, self.calibration_wait_s,
                 {k: round(s, 4) for k, s in seconds.items()},
                 {k: round(x, 2) for k, x in self.profile.speedups().items()},
                 self.admission.scheduler.max_useful_threads)

    def threads_info(self) -> dict[str, Any]:
        """The thread classes as measured (``/info``): seconds per character, speed-up over the
        next smaller class, and the cap in use."""
        sched = self.admission.scheduler
        profile = self.profile
        return {
            "cores": self.cores,
            "classes": list(sched.classes),
            "max_useful_threads": sched.max_useful_threads,
            "configured_max_useful_threads": sched.configured_useful_threads,
            "measured_max_useful_threads": profile.useful_max() if profile is not None else None,
            "seconds_per_char": ({str(k): v for k, v in profile.seconds_per_unit().items()}
                                 if profile is not None else {}),
            "speedup": {str(k): v for k, v in profile.speedups().items()} if profile is not None else {},
            "min_speedup": profile.min_speedup if profile is not None else None,
            "calibration_s": self.calibration_s,
            "calibration_wait_s": self.calibration_wait_s,
        }

    # ---- handlers --------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.ready:
            return web.json_response({"status": "loading"}, status=503)
        return web.json_response({"status": "ready"})

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(self._info())

    def _info(self) -> dict[str, Any]:
        notes = getattr(self.engine, "info_notes", None)  # e.g. kokoro: is the 54-voice pack in use
        return {**self._base_info(), **(notes() if notes is not None and self.ready else {})}

    def _base_info(self) -> dict[str, Any]:
        caps = self.engine.capabilities()
        voices = self.engine.voices() if self.ready and hasattr(self.engine, "voices") else []
        return {
            "model": self.model,
            "engine": self.engine_name,
            "ready": self.ready,
            "capabilities": {
                "kind": caps.kind,
                "sample_rate": caps.sample_rate,
                "languages": list(caps.languages),
                "streaming": caps.streaming,
                "phoneme_input": caps.phoneme_input,
                "voice_blending": caps.voice_blending,
            },
            "voices": [
                {"id": v.id, "name": v.name, "languages": list(v.languages), "gender": v.gender}
                for v in voices
            ],
            "threads": self.threads_info(),
        }

    async def models(self, request: web.Request) -> web.Response:
        body = {
            "object": "list",
            "data": [{"id": self.model, "object": "model", "created": int(self.stats.started_at),
                      "owned_by": "voxmesh"}],
        }
        return web.json_response(body)

    async def voices(self, request: web.Request) -> web.Response:
        info = self._info()
        return web.json_response({"model": self.model, "voices": info["voices"]})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.render_metrics(), content_type="text/plain")

    def render_metrics(self) -> str:
        m = self.model
        lines = [
            "# HELP voxmesh_worker_ready 1 once the model is loaded and warmed",
            "# TYPE voxmesh_worker_ready gauge",
            f'voxmesh_worker_ready{{model="{m}"}} {int(self.ready)}',
            "# HELP voxmesh_worker_in_flight requests running an inference now",
            "# TYPE voxmesh_worker_in_flight gauge",
            f'voxmesh_worker_in_flight{{model="{m}"}} {self.admission.in_flight}',
            "# HELP voxmesh_worker_queue_length requests admitted and waiting for a core",
            "# TYPE voxmesh_worker_queue_length gauge",
            f'voxmesh_worker_queue_length{{model="{m}"}} {self.admission.queued}',
            "# HELP voxmesh_worker_rejected_total requests refused with 503 because the queue was full",
            "# TYPE voxmesh_worker_rejected_total counter",
            f'voxmesh_worker_rejected_total{{model="{m}"}} {self.admission.rejected}',
            "# HELP voxmesh_worker_segment_grants_total segments started, by thread count (all cores or one)",
            "# TYPE voxmesh_worker_segment_grants_total counter",
            f'voxmesh_worker_segment_grants_total{{model="{m}",threads="all"}} {self.admission.scheduler.wide_grants}',
            f'voxmesh_worker_segment_grants_total{{model="{m}",threads="1"}} {self.admission.scheduler.narrow_grants}',
            "# HELP voxmesh_worker_segment_threads_total segments started, by granted thread class (1, 2, 4, ...)",
            "# TYPE voxmesh_worker_segment_threads_total counter",
            *(f'voxmesh_worker_segment_threads_total{{model="{m}",threads="{k}"}} {n}'
              for k, n in sorted(self.admission.scheduler.grants_by_threads.items())),
            "# HELP voxmesh_worker_max_useful_threads the largest thread class granted now (the engine option, "
            "lowered by the measured speed-ups)",
            "# TYPE voxmesh_worker_max_useful_threads gauge",
            f'voxmesh_worker_max_useful_threads{{model="{m}"}} {self.admission.scheduler.max_useful_threads}',
            "# HELP voxmesh_worker_thread_speedup measured speed-up of a thread class over the next smaller one "
            "(its seconds per character / this class's)",
            "# TYPE voxmesh_worker_thread_speedup gauge",
            *(f'voxmesh_worker_thread_speedup{{model="{m}",threads="{k}"}} {x:.4f}'
              for k, x in (self.profile.speedups().items() if self.profile is not None else ())),
            "# HELP voxmesh_worker_thread_seconds_per_char measured inference seconds per character, by thread class",
            "# TYPE voxmesh_worker_thread_seconds_per_char gauge",
            *(f'voxmesh_worker_thread_seconds_per_char{{model="{m}",threads="{k}"}} {x:.6g}'
              for k, x in (self.profile.seconds_per_unit().items() if self.profile is not None else ())),
            "# HELP voxmesh_worker_segment_preemptions_total all-core segments taken back for a newcomer and rerun",
            "# TYPE voxmesh_worker_segment_preemptions_total counter",
            f'voxmesh_worker_segment_preemptions_total{{model="{m}"}} {self.admission.scheduler.preemptions}',
            "# HELP voxmesh_worker_requests_total requests answered, by status",
            "# TYPE voxmesh_worker_requests_total counter",
        ]
        for status, n in sorted(self.stats.requests.items()):
            lines.append(f'voxmesh_worker_requests_total{{model="{m}",code="{status}"}} {n}')
        lines += [
            "# HELP voxmesh_worker_audio_seconds_total audio produced",
            "# TYPE voxmesh_worker_audio_seconds_total counter",
            f'voxmesh_worker_audio_seconds_total{{model="{m}"}} {self.stats.audio_seconds:.3f}',
            "# HELP voxmesh_worker_synth_seconds_total wall time spent in inference",
            "# TYPE voxmesh_worker_synth_seconds_total counter",
            f'voxmesh_worker_synth_seconds_total{{model="{m}"}} {self.stats.synth_seconds:.3f}',
        ]
        host = self.host_cores[0].process_metrics() if self.host_cores is not None else ""
        return "\n".join(lines) + "\n" + self.registry.render() + host

    def _observe(self, times: StageTimes) -> None:
        for name in STAGES:
            self.stage_seconds.labels(self.model, name).observe(times.seconds[name])

    async def speech(self, request: web.Request) -> web.StreamResponse:
        from voxmesh.worker.synthesis import plan_speech

        if not self.ready:
            raise Overloaded("model is still loading: retry when /readyz answers 200", retry_after=1.0)
        req: SpeechRequest = parse_body(await request.read(), SpeechRequest)
        times = StageTimes(fault=self.fault)
        # ``model`` is not checked: the gateway resolved it (aliases, splits) before routing here.
        with times.time("normalize"):
            plan = plan_speech(req, self.engine, self.dictionary, max_input_chars=self.settings.max_input_chars)
        await self._inject_faults()
        loop = asyncio.get_running_loop()
        encoder = plan.encoder()
        headers = {"X-Sample-Rate": str(plan.sample_rate), "X-Voxmesh-Model": self.model}
        t_arrived = time.monotonic()
        # cost = characters to speak: the scheduler orders waiters by latest start time
        broker, deployment = self.host_cores or (None, self.model)
        seat = HostSeat(broker, deployment, self.admission.scheduler.classes)
        async with self.admission.slot(cost=sum(len(seg.text) for seg in plan.segments)) as slot, seat:
            times.add("queue", time.monotonic() - t_arrived)
            if req.stream:
                headers["Server-Timing"] = times.server_timing(("queue", "normalize"))
                resp = web.StreamResponse(headers={**headers, "Content-Type": encoder.content_type})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                for segment in plan.segments:
                    pcm = await self._render(loop, plan, segment, slot, seat, times)
                    with times.time("encode"):
                        chunk = encoder.feed(pcm)
                    if chunk:
                        await resp.write(chunk)
                with times.time("encode"):
                    tail = encoder.close()
                if tail:
                    await resp.write(tail)
                await resp.write_eof()
                self.stats.count(200)
                self._observe(times)
                return resp
            parts: list[bytes] = []
            t_synth = time.monotonic()
            for segment in plan.segments:
                pcm = await self._render(loop, plan, segment, slot, seat, times)
                with times.time("encode"):
                    parts.append(encoder.feed(pcm))
            with times.time("encode"):
                parts.append(encoder.close())
            synth_ms = 1000 * (time.monotonic() - t_synth)
        headers["Server-Timing"] = f"{times.server_timing()}, synth;dur={synth_ms:.1f}"
        # metered by the gateway (voxmesh.tenancy.usage.audio_seconds)
        headers["X-Audio-Seconds"] = f"{encoder.samples_in / float(plan.sample_rate):.3f}"
        self.stats.count(200)
        self._observe(times)
        return web.Response(body=b"".join(parts), headers={**headers, "Content-Type": encoder.content_type})

    async def _render(self, loop: asyncio.AbstractEventLoop, plan: Any, segment: Any, slot: Slot, seat: HostSeat,
                      times: StageTimes | None = None) -> Any:
        """One segment on the scheduler's grant, within the host budget's lease (``seat``).
        If the scheduler takes the cores of a segment that has just started back for a
        newcomer, the engine stops and the segment runs again (on one core: the next grant)."""
        from voxmesh.worker.synthesis import render_segment

        t0 = time.monotonic()
        while True:
            threads = slot.threads(cost=len(segment.text))
            if seat.broker is not None:  # the host budget may give fewer (a smaller thread class)
                threads = await seat.lease(loop, threads)
            inference_before = times.seconds["inference"] if times is not None else 0.0
            t_segment = time.monotonic()
            try:
                pcm = await loop.run_in_executor(self.pool, render_segment, self.engine, plan, segment, threads,
                                                 slot.interrupt, times)
                seat.segment_done(loop)
                seconds = (times.seconds["inference"] - inference_before if times is not None
                           else time.monotonic() - t_segment)
                if self.profile is not None and threads in self.engine.session_classes(0):
                    # the speed profile, on a steady worker; not while the class's session is still
                    # being made (the engine then runs it on another session: a wrong label)
                    slot.observe(threads, len(segment.text), seconds)
                break
            except SegmentInterrupted:
                continue
            except Exception as exc:
                self.stats.count(500)
                raise EngineError(f"synthesis failed: {type(exc).__name__}: {exc}") from exc
        self.stats.synth_seconds += time.monotonic() - t0
        self.stats.audio_seconds += len(pcm) / float(plan.sample_rate)
        return pcm

    async def _inject_faults(self) -> None:
        try:
            await self.faults.inject()  # worker/faults.py: settings, or PUT /admin/faults
        except EngineError:
            self.stats.count(500)
            raise


WORKER_KEY = web.AppKey("worker", WorkerApp)
LOAD_TASK_KEY = web.AppKey("load_task", asyncio.Task)


def build_worker_app(worker: WorkerApp) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=4 * 1024 * 1024)
    app[WORKER_KEY] = worker
    from voxmesh.api.request_id import install

    install(app)  # the gateway's X-Request-Id in the worker's log lines and answers
    app.router.add_get("/healthz", worker.healthz)
    app.router.add_get("/readyz", worker.readyz)
    app.router.add_get("/metrics", worker.metrics)
    app.router.add_get("/info", worker.info)
    worker.faults.setup_routes(app)
    caps = worker.engine.capabilities()
    app.router.add_get("/v1/models", worker.models)
    if caps.kind == "tts":
        app.router.add_get("/v1/audio/voices", worker.voices)
        app.router.add_post("/v1/audio/speech", worker.speech)
    elif caps.kind == "mt":
        from voxmesh.api.translate import setup_translate_routes
        from voxmesh.mt.service import InProcessTranslator

        setup_translate_routes(app, InProcessTranslator(worker.engine, max_input_chars=worker.settings.max_input_chars))

    async def _on_startup(app: web.Application) -> None:
        app[LOAD_TASK_KEY] = asyncio.create_task(_load_or_exit(worker))

    async def _on_cleanup(app: web.Application) -> None:
        worker.pool.shutdown(wait=False, cancel_futures=True)

    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _load_or_exit(worker: WorkerApp) -> None:
    try:
        await worker.load()
    except Exception as exc:
        log.error("worker %s failed to load its model: %s", worker.model, exc)
        # a worker that cannot load is useless: exit non-zero so the supervisor sees it
        os._exit(3)
