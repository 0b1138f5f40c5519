"""Start one worker process: build the engine and the app, take a mesh identity, serve.

Identity (mTLS), one of:
* ``mesh_dir``: a local worker; it signs its own short-lived certificate with the CA in
  ``mesh_dir/ca`` (same machine and data dir as the gateway) and rotates it at 2/3 of life.
* ``key_dir`` + ``gateway_url`` (+ ``token`` and ``ca_fingerprint`` the first time): a worker
  on another host; it joins with the one-time token and renews through the gateway.
* neither: plain HTTP (tests of the worker alone, or a mesh such as Linkerd doing mTLS).

Only the gateway identity may call an mTLS worker; everything else is refused in the TLS
handshake. SIGTERM drains: the listener closes, in-flight requests finish (up to 60 s).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from voxmesh.errors import ConfigError
from voxmesh.settings import Settings
from voxmesh.worker.preload import Preload
from voxmesh.worker.server import WorkerApp, build_worker_app

__all__ = ["MeshArgs", "run_worker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeshArgs:
    mesh_dir: Path | None = None
    key_dir: Path | None = None
    gateway_url: str | None = None
    token: str | None = None
    ca_fingerprint: str | None = None
    trust_domain: str = "voxmesh.local"


def _load_dictionary(path: Path | None) -> Any:
    from voxmesh.text.pronunciation import PronunciationDictionary

    if path is None:
        return PronunciationDictionary.default()
    try:
        return PronunciationDictionary.load(path)
    except OSError as exc:
        raise ConfigError(f"cannot read pronunciation dictionary {path}: {exc}") from exc


async def _identity(model: str, mesh: MeshArgs, settings: Settings) -> Any:
    from voxmesh.mesh import (
        CertificateAuthority,
        ReloadableIdentity,
        join,
        local_renewer,
        read_identity,
        remote_renewer,
    )

    name = f"worker-{model}"
    if mesh.mesh_dir is not None:
        ca = CertificateAuthority.load_or_create(mesh.mesh_dir / "ca", mesh.trust_domain)
        renew = local_renewer(ca, name, ttl_s=settings.mesh.cert_ttl_s)
        key_dir = mesh.mesh_dir / "workers" / name
        key_dir.mkdir(parents=True, exist_ok=True)
        return await ReloadableIdentity.load_or_issue(key_dir, renew, rotate_fraction=settings.mesh.rotate_fraction)
    if mesh.key_dir is not None:
        if mesh.gateway_url is None:
            raise ConfigError("--key-dir needs --gateway-url (where to join and renew)")
        if read_identity(mesh.key_dir) is None:
            if mesh.token is None or mesh.ca_fingerprint is None:
                raise ConfigError("first start on this host: give --token and --ca-fingerprint to join")
            await join(mesh.gateway_url, mesh.token, mesh.ca_fingerprint, name, mesh.key_dir)
        return await ReloadableIdentity.load_or_issue(
            mesh.key_dir, remote_renewer(mesh.gateway_url, mesh.key_dir),
            rotate_fraction=settings.mesh.rotate_fraction,
        )
    return None


async def serve_worker(worker: WorkerApp, host: str, port: int, mesh: MeshArgs, settings: Settings) -> None:
    from voxmesh.mesh import spiffe_id
    from voxmesh.observability.tracing import start_tracing, stop_tracing

    ident = await _identity(worker.model, mesh, settings)
    ssl_ctx = None
    if ident is not None:
        ssl_ctx = ident.server_context([spiffe_id(mesh.trust_domain, "gateway")])
        ident.start()
    start_tracing(settings.otlp, "voxmesh-worker", {"voxmesh.model": worker.model})  # OTLP export, when set
    app = build_worker_app(worker)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=60)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "stop what holds the port or pick another --port") from exc
    log.info("worker %s (%s) listening on %s://%s:%d", worker.model, worker.engine_name,
             "https" if ssl_ctx else "http", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("worker %s draining", worker.model)
    await runner.cleanup()
    await asyncio.to_thread(stop_tracing)  # flush the last spans, off the event loop
    if ident is not None:
        await ident.stop()


def run_worker(
    settings: Settings,
    *,
    preload: Preload,
    engine: str,
    model: str,
    host: str,
    port: int,
    threads: int,
    dictionary: Path | None,
    mesh: MeshArgs,
) -> None:
    """``preload``: the engine, already loading (see :mod:`voxmesh.worker.preload`)."""
    import uvloop

    from voxmesh.hostcores.config import broker_for

    worker = WorkerApp(
        preload.engine, model=model, engine_name=engine, settings=settings.worker, cores=threads,
        dictionary=_load_dictionary(dictionary), preloaded=preload.loaded,
        # voxmesh up's host core budget, when one is set and the engine computes here
        host_cores=broker_for(settings.hostcores, model) if getattr(preload.engine, "uses_local_cores", True) else None,
    )
    uvloop.run(serve_worker(worker, host, port, mesh, settings))
