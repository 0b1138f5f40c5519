"""Start loading the engine before the rest of the worker is imported.

A worker spends ~0.85 s importing its web stack and building the app, and ~0.7-1.1 s creating
the model's onnxruntime session (C++ that releases the GIL; Piper on a 2-core Xeon VM, see
:func:`voxmesh.engines.onnx_sessions.make_session`). Done one after the other they
add up; :func:`start_preload` runs ``engine.load(threads)`` in a thread from the first
lines of ``voxmesh worker``, so the imports run on one core while the session is created on
the other. The worker then awaits :attr:`Preload.loaded` instead of loading
(:meth:`voxmesh.worker.server.WorkerApp.load`).

Deliberately light: only the engine registry is imported here (each engine module imports
its runtime inside ``load``).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from voxmesh.background import start_background
from voxmesh.engines.registry import create_engine

__all__ = ["Preload", "start_preload"]


@dataclass(frozen=True)
class Preload:
    engine: Any
    loaded: Future[None]


def start_preload(engine_name: str, options: dict[str, Any], threads: int) -> Preload:
    """Build the engine now (bad names and options fail here, in the caller) and load it in
    a background thread; ``loaded`` resolves when the load is done or carries its error."""
    engine = create_engine(engine_name, options)
    loaded: Future[None] = Future()
    if not hasattr(engine, "load"):  # engines fronting a remote server have nothing to load
        loaded.set_result(None)
        return Preload(engine, loaded)

    def run() -> None:
        if not loaded.set_running_or_notify_cancel():
            return
        try:
            engine.load(threads)
        except BaseException as exc:
            loaded.set_exception(exc)
        else:
            loaded.set_result(None)

    # normal priority: this load is what the first request waits for
    start_background(run, name="engine-preload", low_priority=False)
    return Preload(engine, loaded)
