"""Two onnxruntime sessions of one model: a wide one and a narrow one.

Algorithm
    The core scheduler (:mod:`voxmesh.worker.scheduler`) gives a lone request every core and
    concurrent requests one core each, re-decided per segment. One session cannot serve both:
    its intra-op thread pool is fixed when it is created. So an engine keeps two sessions of
    the same model:

    * ``wide``: ``intra_op_num_threads = threads``; a lone request runs on it with all cores.
    * ``narrow``: ``intra_op_num_threads = 1``; the kernels run on the *calling* thread, so
      N threads calling it at once run N inferences in parallel, one core each, with no
      thread pools fighting over the cores.

    ``pick(threads)`` returns the wide session for ``threads > 1`` and the narrow one
    otherwise. Both sessions are thread-safe for concurrent ``run`` calls (onnxruntime
    guarantees this and releases the GIL while running).

Limits
    Memory: the weights are held twice (Piper ~60 MB, Kokoro int8 ~90 MB, so it is cheap).
    With ``threads == 1`` both roles share one session. The narrow session is created in
    the background after the wide one (start-up pays for one session creation), and until
    it exists one-core grants run on the wide session.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import onnxruntime as ort

__all__ = ["SessionPair", "make_session"]

log = logging.getLogger(__name__)


def make_session(model: Path | str | bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads <= 1:
        # One thread runs on the caller: nothing to spin for, and spinning threads of an idle
        # pool would steal the core another request is using.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Concurrent runs on this session each grow the arena to their peak and keep it
        # (RSS 0.5 -> 1 GB under load); without the arena memory stays flat.
        opts.enable_cpu_mem_arena = False
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


class SessionPair:
    """The wide session is created at load; the narrow one in a background thread, so a
    worker is ready (and serving lone requests at full speed) after one session creation,
    not two. Until the narrow session exists, ``pick(1)`` answers the wide one."""

    def __init__(self, wide: ort.InferenceSession, threads: int) -> None:
        self.wide = wide
        self.threads = threads
        self._narrow: ort.InferenceSession | None = wide if threads <= 1 else None
        self._narrow_ready = threading.Event()
        if self._narrow is not None:
            self._narrow_ready.set()

    @classmethod
    def load(cls, model: Path | str, threads: int) -> SessionPair:
        threads = max(1, threads)
        pair = cls(make_session(model, threads), threads)
        if threads > 1:
            threading.Thread(target=pair._make_narrow, args=(model,), name="ort-narrow", daemon=True).start()
        return pair

    def _make_narrow(self, model: Path | str) -> None:
        try:
            self._narrow = make_session(model, 1)
        except Exception:  # the wide session keeps serving; log and carry on
            log.exception("could not create the one-thread session; every request uses the wide one")
        finally:
            self._narrow_ready.set()

    def wait_narrow(self, timeout: float | None = None) -> bool:
        return self._narrow_ready.wait(timeout)

    @property
    def narrow(self) -> ort.InferenceSession:
        return self._narrow if self._narrow is not None else self.wide

    def pick(self, threads: int | None) -> ort.InferenceSession:
        """``None`` means "the engine's default": all the threads it was loaded with."""
        if threads is None or threads > 1:
            return self.wide
        return self.narrow
