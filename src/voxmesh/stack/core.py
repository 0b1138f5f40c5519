"""``voxmesh up``: the whole stack in one command on one machine.

One process runs the gateway (public API + data plane), the controller (supervisor and
autoscaler) and the job runners; workers run as child processes on loopback ports, reached
over mTLS with certificates from the built-in CA in the data dir. Embedded defaults: SQLite
and local files in ``data_dir``; PostgreSQL, RabbitMQ and S3 through settings.
With ``gateway.mesh: linkerd`` the same process is the cluster's gateway: no CA, no workers,
every deployment a Service (see :mod:`voxmesh.gateway.meshmode`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from voxmesh.deployments import Deployment, DeploymentsConfig, load_deployments
from voxmesh.errors import ConfigError
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.settings import Settings

__all__ = ["Stack", "run_stack"]

log = logging.getLogger(__name__)

ENGINE_KINDS = {"piper": "tts", "kokoro": "tts", "llamacpp": "mt", "remote": "mt", "tone": "tts"}


def deployment_kind(dep: Deployment) -> str:
    if dep.external is not None:
        return dep.external.kind
    return ENGINE_KINDS.get(str(dep.engine), "tts")


class Stack:
    """Everything ``voxmesh up`` runs, startable and stoppable from tests."""

    def __init__(self, settings: Settings, config: DeploymentsConfig) -> None:
        self.settings = settings
        self.config = config
        self.runner: web.AppRunner | None = None
        self.supervisor: Any = None
        self.dataplane: Any = None
        self.autoscaler: Any = None
        self.jobs: Any = None
        self.voices: Any = None
        self.mesh: Any = None
        self.policy: Any = None  # gateway.meshmode.DataPlanePolicy, chosen from gateway.mesh at start
        self._voices_task = False  # linkerd: voices re-read from the Services in the background
        self.gateway: Gateway | None = None
        self.fast: Any = None  # the fast-path server, when gateway.server == "fast"
        self.auth: Any = None  # voxmesh.auth.wiring.AuthWiring
        self.port: int = settings.server.port
        self._tasks: list[asyncio.Task[Any]] = []
        self.ready = False  # set once every deployment serves and the catalog is filled
        self.host_cores_file: Path | None = None  # our workers' lease file (voxmesh.hostcores)

    @property
    def url(self) -> str:
        return f"http://{self.settings.server.host}:{self.port}"

    async def start(self, *, wait_ready: bool = True) -> None:
        from voxmesh.autoscale.supervisor import Supervisor, WorkerLaunch
        from voxmesh.gateway.dataplane import DataPlane
        from voxmesh.gateway.meshmode import DataPlanePolicy, check_deployments
        from voxmesh.lifeline import RunDir
        from voxmesh.observability.tracing import start_tracing
        from voxmesh.stack.mesh import MeshWiring

        s = self.settings
        start_tracing(s.otlp, "voxmesh-gateway")  # OTLP trace export, when otlp.endpoint is set
        self.policy = policy = DataPlanePolicy.from_settings(s.gateway)
        check_deployments(policy, self.config.deployments)  # gateway.mesh=linkerd: Services only
        s.data_dir.mkdir(parents=True, exist_ok=True)
        from voxmesh.auth.wiring import open_auth

        self.auth = await open_auth(s)  # first: mode none on a public address refuses to start
        managed = [d for d in self.config.deployments if d.engine is not None]
        mesh = MeshWiring(s) if s.mesh.enabled and policy.builtin_mtls else None
        if mesh is not None:
            await mesh.start(managed)
        self.mesh = mesh
        client_ssl = mesh.client_ssl() if mesh else None
        self.dataplane = DataPlane(s.gateway, ssl=client_ssl)
        await self.dataplane.start()
        self._add_external()
        launch = WorkerLaunch(
            data_dir=s.data_dir,
            extra_env=self._host_cores(managed),
            tls_args=mesh.worker_tls_args if mesh else None,
            scheme="https" if mesh else "http",
            run_dir=RunDir(s.data_dir / "run"),  # workers recorded; leftovers of a crash ended
        )
        self.supervisor = Supervisor(managed, self.dataplane.update, launch=launch, ssl=client_ssl)
        kinds = {d.name: deployment_kind(d) for d in self.config.deployments}
        self.catalog = Catalog.from_config(self.config, kinds)
        from voxmesh.stack.activation import Activator

        self.activator = Activator(self.supervisor)
        self.gateway = gateway = Gateway(s, self.dataplane, self.catalog, extra_metrics=self._extra_metrics,
                          is_ready=lambda: self.ready and self.supervisor.is_ready(),
                                         activate=self.activator.ensure, guard=self.auth.guard)
        setup = [self.auth.setup_routes]
        from voxmesh.tenancy.hook import LimitsHook

        # rate limits, quotas and usage per tenant, behind the guard on both servers
        limits = LimitsHook(gateway.admission, self.auth.tenant_limits)
        self.auth.guard.hooks.append(limits)
        self.auth.guard.settle_hooks.append(limits.settle)
        from voxmesh.stack.jobs import JobsWiring

        self.jobs = JobsWiring(s, self)
        await self.jobs.start()
        setup.append(self.jobs.setup_routes)
        from functools import partial

        from voxmesh.observability.dashboard import setup_dashboard

        setup.append(partial(setup_dashboard, supervisor=lambda: self.supervisor, autoscaler=lambda: self.autoscaler))
        from voxmesh.stack.voices import VoicesWiring

        self.voices = VoicesWiring(self)
        await self.voices.start()
        setup.append(self.voices.setup_routes)
        app = build_gateway_app(gateway, setup=setup)
        if s.gateway.server == "fast":
            # the hot routes on a protocol-level server, everything else relayed to the app
            from voxmesh.gateway.fastpath import start_fast_gateway

            self.fast = await start_fast_gateway(gateway, app, s.server.host, s.server.port)
            self.port = self.fast.port
        else:
            hard = s.hardening  # the fast server enforces these itself (fastpath/server.py HeadLimits)
            self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=30, max_headers=hard.max_header_count,
                                        keepalive_timeout=hard.keepalive_timeout_s)
            await self.runner.setup()
            site = web.TCPSite(self.runner, s.server.host, s.server.port)
            await site.start()
            sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined]
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
        self._route_via_gateway(managed)
        await self.supervisor.start()
        from voxmesh.stack.autoscale import AutoscaleLoop

        self.autoscaler = AutoscaleLoop(self.supervisor, managed, held=self.activator.held)
        self._tasks.append(asyncio.ensure_future(self.autoscaler.run()))
        if wait_ready:
            await self.wait_ready()

    async def wait_ready(self, timeout: float = 180.0) -> None:
        await self.supervisor.wait_ready(timeout)
        await self.refresh_catalog()
        await self.jobs.start_runners()
        self.ready = True

    async def refresh_catalog(self) -> None:
        """Voices per deployment, read from one serving worker of each."""
        for name in self.supervisor.deployments:
            reps = self.supervisor.serving(name)
            if not reps:
                continue
            info = await self.supervisor.worker_info(reps[0])
            if info is not None:
                self.catalog.voices[name] = info.get("voices", [])
        if not self.policy.manages_workers and not self._voices_task:  # linkerd: workers sit behind Services
            import aiohttp

            from voxmesh.stack.services import keep_voices_fresh, refresh_voices

            async with aiohttp.ClientSession() as session:
                await refresh_voices(session, self.config.deployments, self.catalog.voices)
            self._voices_task = True
            self._tasks.append(asyncio.ensure_future(keep_voices_fresh(self.config.deployments, self.catalog.voices)))

    def _host_cores(self, managed: list[Deployment]) -> dict[str, str]:
        """One core budget for all our workers (voxmesh.hostcores): a fresh lease file (a past
        run's pids may be reused), and the settings every worker gets to join it."""
        from voxmesh.cpu_budget import cpu_budget
        from voxmesh.hostcores.config import resolve, worker_env

        hostcores = resolve(self.settings.hostcores, self.settings.data_dir, managed)
        if hostcores.enabled and hostcores.file is not None:
            hostcores.file.parent.mkdir(parents=True, exist_ok=True)
            hostcores.file.write_text("{}")
            self.host_cores_file = hostcores.file
            log.info("host core budget: %d cores shared by every worker (%s)",
                     hostcores.total or cpu_budget(), hostcores.file)
        return worker_env(hostcores)

    def _route_via_gateway(self, managed: list[Deployment]) -> None:
        """``engine: remote`` with ``options.via: <external chat deployment>``: the worker reaches
        that server through this gateway, so it gets the same balancing, retries and breakers."""
        for dep in managed:
            via = dep.options.get("via")
            if dep.engine == "remote" and via is not None:
                if via not in {d.name for d in self.config.deployments if d.external is not None}:
                    raise ConfigError(f"deployment {dep.name!r}: options.via must name an external deployment")
                opts = {k: v for k, v in dep.options.items() if k != "via"}
                dep.options = {**opts, "base_url": self.url, "model": via}
                if self.settings.auth.mode != "none":  # the worker calls the gateway with the internal key
                    dep.options["internal_key_file"] = str((self.settings.data_dir / "internal.key").resolve())

    def _add_external(self) -> None:
        from voxmesh.gateway.balancer.pool import Endpoint, Reset
        from voxmesh.gateway.meshmode import endpoint_urls

        for dep in self.config.deployments:
            if dep.external is None:
                continue
            urls = endpoint_urls(self.policy, dep)
            eps = [Endpoint(id=f"{dep.name}-{i}", url=u) for i, u in enumerate(urls)]
            self.dataplane.update(dep.name, Reset(eps))

    def _extra_metrics(self) -> str:
        lines = ["# HELP voxmesh_replicas replicas per deployment and lifecycle state",
                 "# TYPE voxmesh_replicas gauge"]
        for dep, per in self.supervisor.counts().items():
            for state, n in sorted(per.items()):
                lines.append(f'voxmesh_replicas{{deployment="{dep}",state="{state}"}} {n}')
        if self.autoscaler is not None:
            lines.append(self.autoscaler.metrics_text())
        if self.jobs is not None:
            lines.append(self.jobs.metrics_text())
        from voxmesh.observability.relay import relay

        lines.append(relay(self.supervisor.metric_texts()))  # the workers', as last scraped
        return "\n".join(line for line in lines if line) + "\n"

    async def stop(self) -> None:
        """Stop every part, in order. Each step is bounded (``STOP_STEP_S``): a step that hangs
        is logged with what the event loop was still waiting on, and the next steps (the
        workers' end among them) still run, so a stop never leaves workers behind."""
        for task in self._tasks:
            task.cancel()
        steps: list[tuple[str, Any]] = [
            ("voices", getattr(self, "voices", None) and self.voices.stop),
            ("jobs", self.jobs is not None and self.jobs.stop),
            ("gateway", self.gateway is not None and self.gateway.close),
            ("fast server", self.fast is not None and self.fast.close),
            ("http server", self.runner is not None and self.runner.cleanup),
            ("supervisor", self.supervisor is not None and self.supervisor.stop),
            ("host core file", self._forget_host_cores),
            ("dataplane", self.dataplane is not None and self.dataplane.close),
            ("mesh", self.mesh is not None and self.mesh.stop),
            ("auth", self.auth is not None and self.auth.close),
        ]
        for name, stop in steps:
            if stop:
                await _bounded(name, stop())
        from voxmesh.observability.tracing import stop_tracing

        await _bounded("tracing", asyncio.to_thread(stop_tracing))  # flush the last spans, off the loop

    async def _forget_host_cores(self) -> None:
        if self.host_cores_file is not None:
            self.host_cores_file.unlink(missing_ok=True)  # in /dev/shm: memory, not a log to keep


STOP_STEP_S = 30.0


async def _bounded(name: str, step: Any, timeout: float | None = None) -> None:
    """Await one stop step for at most ``timeout`` s (``STOP_STEP_S``); past it, log which
    step hung and the tasks still pending, and go on."""
    limit = STOP_STEP_S if timeout is None else timeout
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait_for(asyncio.shield(task), limit)
    except TimeoutError:
        pending = [t for t in asyncio.all_tasks() if not t.done() and t is not asyncio.current_task()]
        log.error("stop: %s did not finish within %g s; going on. Pending tasks:\n%s", name, limit,
                  "\n".join(f"  {t.get_name()}: {t.get_coro()!r} at {_where(t)}" for t in pending[:30]))
        task.cancel()


def _where(task: asyncio.Task[Any]) -> str:
    frames = task.get_stack(limit=3)
    return " <- ".join(f"{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno} {f.f_code.co_name}" for f in frames) or "?"


def run_stack(settings: Settings, config_path: Path | None) -> int:
    import uvloop

    config = load_deployments(config_path)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(_main(settings, config))


async def _main(settings: Settings, config: DeploymentsConfig) -> int:
    stack = Stack(settings, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    try:
        await stack.start(wait_ready=False)
    except OSError as exc:
        print(f"voxmesh: cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}",
              file=sys.stderr)
        await stack.stop()
        return 2
    print(f"voxmesh: gateway on {stack.url} - loading models...", file=sys.stderr, flush=True)
    ready = asyncio.ensure_future(stack.wait_ready())
    done, _ = await asyncio.wait({ready, asyncio.ensure_future(stop.wait())},
                                 return_when=asyncio.FIRST_COMPLETED)
    if ready in done and ready.exception() is None:
        models = ", ".join(stack.catalog.public_models())
        print(f"voxmesh: ready in {time.monotonic() - t0:.1f}s at {stack.url} (models: {models})\n"
              f"  try: curl -s {stack.url}/v1/audio/speech -H 'Content-Type: application/json' "
              f"-d '{{\"model\":\"tts-1\",\"input\":\"Hello from voxmesh.\",\"voice\":\"joe\",\"response_format\":\"wav\"}}' -o hello.wav",
              file=sys.stderr, flush=True)
        await stop.wait()
    elif ready in done:
        print(f"voxmesh: {ready.exception()}", file=sys.stderr)
    print("voxmesh: shutting down (draining in-flight requests)...", file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        ready.cancel()
    await stack.stop()
    return 0
