"""Start one worker process: build the engine, the app, the (m)TLS context, and serve."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from voxmesh.errors import ConfigError
from voxmesh.settings import Settings
from voxmesh.worker.server import WorkerApp, build_worker_app

__all__ = ["build_engine", "run_worker"]

log = logging.getLogger(__name__)


def build_engine(engine: str, options: dict[str, Any]) -> Any:
    if engine == "tone":
        from voxmesh.engines.tone import ToneEngine

        return ToneEngine(**options)
    if engine == "llamacpp":
        from voxmesh.engines.llamacpp import LlamaCppEngine

        return LlamaCppEngine(**options)
    from voxmesh.engines.registry import create_engine

    try:
        return create_engine(engine, options)
    except KeyError as exc:
        raise ConfigError(f"unknown engine {engine!r}: use piper, kokoro or llamacpp") from exc


def _load_dictionary(path: Path | None) -> Any:
    if path is None:
        return None
    from voxmesh.text.pronunciation import PronunciationDictionary

    try:
        return PronunciationDictionary.load(path)
    except OSError as exc:
        raise ConfigError(f"cannot read pronunciation dictionary {path}: {exc}") from exc


def _server_ssl(tls: tuple[Path | None, Path | None, Path | None], allow: list[str]) -> ssl.SSLContext | None:
    cert, key, ca = tls
    if cert is None:
        return None
    if key is None or ca is None:
        raise ConfigError("--tls-cert needs --tls-key and --tls-ca")
    from voxmesh.mesh import server_context

    return server_context(cert, key, ca)


def run_worker(
    settings: Settings,
    *,
    engine: str,
    model: str,
    host: str,
    port: int,
    threads: int,
    options: dict[str, Any],
    dictionary: Path | None,
    tls: tuple[Path | None, Path | None, Path | None],
    allow: list[str],
) -> None:
    import uvloop

    eng = build_engine(engine, options)
    worker = WorkerApp(
        eng, model=model, engine_name=engine, settings=settings.worker, cores=threads,
        dictionary=_load_dictionary(dictionary),
    )
    ssl_ctx = _server_ssl(tls, allow)
    app = build_worker_app(worker)
    if ssl_ctx is not None and allow:
        from voxmesh.mesh import identity_middleware

        app.middlewares.insert(0, identity_middleware(allow))
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host=host, port=port, ssl_context=ssl_ctx, access_log=None, print=None,
                shutdown_timeout=60, handle_signals=True)
