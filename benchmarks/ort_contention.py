"""CPU per run of the raw Piper model under the settings issue 18 suspects (short experiment).

* ``2t spin on`` / ``2t spin off``: one 2-thread session, runs one after another with 50 ms
  gaps, onnxruntime's intra-op spinning on (default) or off;
* ``1 session x2``: one 1-thread session run from two threads at once (as the worker's narrow
  session is at concurrency >= 2);
* ``2 sessions``: two 1-thread sessions, one per thread.

CPU-s per run is the process CPU time over the runs (``time.process_time``), wall ms the
median run. Same harness sentence feeds for all.

    .venv/bin/python benchmarks/ort_contention.py --runs 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from voxmesh.engines.onnx_sessions import make_session  # noqa: E402
from voxmesh.engines.piper import PiperEngine  # noqa: E402


def session(model: str, threads: int, spin: bool) -> ort.InferenceSession:
    if threads > 1 and not spin:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    return make_session(model, threads)


def sequential(s: ort.InferenceSession, feed: dict[str, Any], runs: int) -> tuple[float, float]:
    walls = []
    c0 = time.process_time()
    for _ in range(runs):
        t0 = time.monotonic()
        s.run(None, feed)
        walls.append(time.monotonic() - t0)
        time.sleep(0.05)
    return (time.process_time() - c0) / runs, 1000 * statistics.median(walls)


def parallel(sessions: list[ort.InferenceSession], feed: dict[str, Any], runs: int) -> tuple[float, float]:
    walls: list[float] = []
    lock = threading.Lock()

    def loop(s: ort.InferenceSession) -> None:
        for _ in range(runs // 2):
            t0 = time.monotonic()
            s.run(None, feed)
            with lock:
                walls.append(time.monotonic() - t0)

    c0 = time.process_time()
    ts = [threading.Thread(target=loop, args=(s,)) for s in sessions]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return (time.process_time() - c0) / len(walls), 1000 * statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=16)
    args = ap.parse_args()
    engine = PiperEngine()
    engine.load(1)
    feed = engine._warm_feed()
    model = str(engine.model_path)
    one = make_session(model, 1)
    rows = {
        "2t spin on": sequential(session(model, 2, True), feed, args.runs),
        "2t spin off": sequential(session(model, 2, False), feed, args.runs),
        "1 session x2": parallel([one, one], feed, args.runs),
        "2 sessions": parallel([one, make_session(model, 1)], feed, args.runs),
    }
    print(f"load average {os.getloadavg()[0]:.2f}, {args.runs} runs each")
    print("| setting | CPU-s per run | median wall ms |\n|---|---|---|")
    for name, (cpu, wall) in rows.items():
        print(f"| {name} | {cpu:.3f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
