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

Memory
    Both sessions allocate from one CPU arena shared by every session this module makes
    (onnxruntime's environment allocator, ``session.use_env_allocators``), not one arena
    each: the peak is the larger of one wide run and ``threads`` concurrent narrow runs,
    not their sum. The narrow session keeps an arena (without one each run goes to malloc:
    6 % fewer requests per second at concurrency 2, measured side by side with the peers
    harness's raw 2x1 engine). Weights are held twice (Piper ~60 MB, Kokoro int8 ~90 MB).

Start-up
    The wide session is created at load; the narrow one in a background thread, so a
    worker is ready after one session creation, and until the narrow one exists one-core
    grants run on the wide session. Given a ``warm_feed`` (the engine's inputs for one
    sentence), the background thread runs it once on the new narrow session before
    publishing it, so no request pays a first run. With ``threads == 1`` both roles share
    one session. The background thread runs at normal priority: until the narrow session
    exists, two one-core grants both run on the wide session (four threads on two cores), so
    it must not wait for idle CPU. At nice 19 it did: a worker loaded straight into
    concurrency 8 ran ~70 s with 25 % slower inferences until the starved thread finished
    (``benchmarks/tail.py``: p50 1877 ms before, 1587 ms after, on one machine). Start
    time did not change (1.1-1.4 s either way, Piper, 4 alternating starts each).

Releasing memory (``release_memory=True``, the engines' ``release_memory`` option)
    Every run then ends with onnxruntime's arena shrinkage (run option
    ``memory.enable_memory_arena_shrinkage``): the arena hands the regions no tensor uses
    back to the system, so between bursts RSS returns near its idle level instead of
    keeping the high-water mark. It does not lower the peak: while runs are in flight their
    memory is fresh pages, and the sampled peak at concurrency 2 was higher (Piper, 2-core
    Xeon VM, ``benchmarks/reports/arena.md``: after load 379 vs 605 MB, peak 706 vs 605 MB),
    and each run pays the page faults: ~11 % fewer runs per second. Use it where memory
    held by idle replicas matters (a warm pool, many deployments on one host), not to fit
    a tighter limit. Off by default. Growing the arena by exactly what is asked (extend strategy
    ``kSameAsRequested``) instead of doubling did not lower the peak either.

More than 2 cores: middle classes
    The core scheduler grants from the classes ``1, 2, 4, ...`` up to ``threads``. For each
    class strictly between 1 and ``threads`` (none on 2 cores) the background thread makes
    one more session after the narrow one (``intra_op_num_threads`` = the class, sharing the
    arena, warmed like the narrow one). ``pick(k)`` answers the session with the most threads
    not above ``k`` that exists yet (never more threads than granted), and the wide one
    while nothing smaller exists (as before the narrow one is ready). Cost: one more copy of
    the weights per class (16 cores: 5 sessions).

Limits
    The arena keeps its high-water mark (unless ``release_memory``). Concurrent runs of
    sentences of different lengths fragment it, so RSS grows under the first minutes of
    concurrent load and then levels off (Piper: ~480 MB after a minute of one request at a
    time, ~740 MB after concurrency 2-8; bounded by the cores, since at most ``threads``
    runs are in flight, not by the number of requests). Pre-growing the arena at start moved
    the growth to idle memory without removing it, and ``malloc_trim`` returns almost
    nothing (the memory is held by the arena, not freed). Turning the narrow arena off did
    not stop the growth either (malloc keeps the blocks: 434 -> 691 MB) and cost 6 %
    throughput.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort

from voxmesh.background import start_background
from voxmesh.engines.base import Interrupt, SegmentInterrupted

__all__ = ["SessionPair", "make_session", "middle_classes"]

log = logging.getLogger(__name__)

_shared_arena = threading.Lock()
_shared_arena_ready = False


def _use_shared_arena(opts: ort.SessionOptions) -> None:
    """Register the process-wide CPU arena once; ``opts`` then allocates from it."""
    global _shared_arena_ready
    with _shared_arena:
        if not _shared_arena_ready:
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            # (max_mem 0 = unbounded, extend strategy -1 = default, initial chunk -1, max dead bytes -1)
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
            _shared_arena_ready = True
    opts.add_session_config_entry("session.use_env_allocators", "1")


def make_session(model: Path | str | bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No static buffer-reuse plan: on these graphs (thousands of small nodes) the planner is
    # most of the session creation (Piper on a 2-core Xeon VM: 2.60 s with it, 0.66 s without),
    # and the arena reuses freed tensors anyway: same throughput side by side
    # (benchmarks/reports/arena.md).
    opts.enable_mem_reuse = False
    if threads <= 1:
        # One thread runs on the caller: nothing to spin for, and spinning threads of an idle
        # pool would steal the core another request is using.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    _use_shared_arena(opts)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


def middle_classes(threads: int) -> tuple[int, ...]:
    """The thread classes strictly between 1 and ``threads``: 2, 4, 8, ..."""
    out = []
    k = 2
    while k < threads:
        out.append(k)
        k *= 2
    return tuple(out)


def _run_options() -> ort.RunOptions:
    """Run options of ``release_memory``: the arena hands unused regions back after the run."""
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


class SessionPair:
    """The wide session is created at load; the narrow one in a background thread, so a
    worker is ready (and serving lone requests at full speed) after one session creation,
    not two. Until the narrow session exists, ``pick(1)`` answers the wide one."""

    def __init__(self, wide: ort.InferenceSession, threads: int, release_memory: bool = False) -> None:
        self.wide = wide
        self.threads = threads
        #: pass to every ``run`` (``None`` unless ``release_memory``: see the module doc)
        self.run_options = _run_options() if release_memory else None
        self._narrow: ort.InferenceSession | None = wide if threads <= 1 else None
        #: sessions of the classes 2, 4, ... below ``threads``, added by the background thread
        self._middle: dict[int, ort.InferenceSession] = {}
        self._narrow_ready = threading.Event()
        self._all_ready = threading.Event()  # the background thread is done (every class tried)
        if self._narrow is not None:
            self._narrow_ready.set()
            self._all_ready.set()

    @classmethod
    def load(cls, model: Path | str, threads: int, warm_feed: Callable[[], dict[str, Any]] | None = None,
             *, release_memory: bool = False) -> SessionPair:
        """``warm_feed``: the inputs of one sentence, built in the background thread and run
        once on the narrow session before it serves."""
        threads = max(1, threads)
        pair = cls(make_session(model, threads), threads, release_memory)
        if threads > 1:
            # normal priority: at nice 19 a loaded worker starved it (module doc, Start-up)
            start_background(lambda: pair._make_narrow(model, warm_feed), name="ort-narrow", low_priority=False,
                             join_at_exit_s=30.0)
        return pair

    def _make_narrow(self, model: Path | str, warm_feed: Callable[[], dict[str, Any]] | None) -> None:
        try:
            self._make_sessions(model, warm_feed)
        finally:
            self._all_ready.set()

    def _make_sessions(self, model: Path | str, warm_feed: Callable[[], dict[str, Any]] | None) -> None:
        try:
            narrow = make_session(model, 1)
            if warm_feed is not None:
                narrow.run(None, warm_feed(), self.run_options)
            self._narrow = narrow
        except Exception:  # the wide session keeps serving; log and carry on
            log.exception("could not create the one-thread session; every request uses the wide one")
            return
        finally:
            self._narrow_ready.set()
        for k in middle_classes(self.threads):
            try:
                session = make_session(model, k)
                if warm_feed is not None:
                    session.run(None, warm_feed(), self.run_options)
            except Exception:
                log.exception("could not create the %d-thread session; such grants use a smaller one", k)
                return
            self._middle = {**self._middle, k: session}  # replaced whole: readers never see it half-built

    def wait_narrow(self, timeout: float | None = None) -> bool:
        return self._narrow_ready.wait(timeout)

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait for the background thread to have made every class's session (or given up)."""
        return self._all_ready.wait(timeout)

    @property
    def narrow(self) -> ort.InferenceSession:
        return self._narrow if self._narrow is not None else self.wide

    def run(self, session: ort.InferenceSession, feed: dict[str, Any],
            interrupt: Interrupt | None = None) -> list[Any]:
        """``session.run`` with this pair's run options; an ``interrupt`` fired before or during
        the run stops it between two graph nodes (onnxruntime's ``RunOptions.terminate``,
        checked by the executor) and raises :class:`SegmentInterrupted`."""
        options = self.run_options
        if interrupt is not None:  # one per run: terminate must not leak into the next
            options = _run_options() if self.run_options is not None else ort.RunOptions()
            interrupt.on_fire(lambda: setattr(options, "terminate", True))
        try:
            return session.run(None, feed, options)  # type: ignore[no-any-return]
        except Exception:
            if interrupt is not None and interrupt.fired:
                raise SegmentInterrupted() from None
            raise

    @property
    def classes(self) -> tuple[int, ...]:
        """Thread counts with a session now (1 once the narrow one exists)."""
        have = [1] if self._narrow is not None else []
        return (*have, *sorted(self._middle), self.threads) if self.threads > 1 else (1,)

    def pick(self, threads: int | None) -> ort.InferenceSession:
        """``None`` means "the engine's default": all the threads it was loaded with.
        Otherwise the session with the most threads not above ``threads`` that exists."""
        if threads is None or threads >= self.threads:
            return self.wide
        middle = self._middle
        fits = [k for k in middle if k <= threads]
        if fits:
            return middle[max(fits)]
        if threads > 1 and self._narrow is None:
            return self.wide
        return self.narrow
