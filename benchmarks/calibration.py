"""What the warm-up thread calibration costs a worker's start, and what it measures.

Starts ``voxmesh worker`` (one engine, all cores) again and again, alternating between
calibration settings (``VOXMESH_WORKER__CALIBRATION_ROUNDS`` / ``..._DISCARD``; rounds 0 is no
calibration), and per start records:

* start to first response: from ``Popen`` to the first 200 of ``POST /v1/audio/speech``
  (one harness sentence), polled every 50 ms (what ``benchmarks/peers`` calls start);
* from ``/info``: the calibration's own time, seconds per character per class, the speed-up
  of each class over the next smaller one, and the cap in use;
* the 1-minute load average before the start (the machine is shared: foreign load slows
  starts and disturbs the calibration).

Then, as a reference for what the calibration should find, the engine in this process runs
the calibration sentence and a harness sentence ``--ab-runs`` times on 1 and 2 threads,
alternating (after one discarded run each): the median speed-up of 2 threads over 1 in the
same minutes.

    .venv/bin/python benchmarks/calibration.py --engine piper --starts 5 --out benchmarks/reports/calibration.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from sentences import HARNESS_SENTENCES  # noqa: E402
from tts import free_port, start, stop  # noqa: E402

SETTINGS = {"off": (0, 0), "1 discarded + 1 kept (default)": (1, 1), "1 kept": (1, 0), "2 kept": (2, 0)}


def _post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        return int(r.status)


def one_start(engine: str, rounds: int, discard: int, tmp: Path) -> dict[str, Any]:
    port = free_port()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = start([sys.executable, "-m", "voxmesh", "worker", "--engine", engine, "--model", engine,
                  "--port", str(port)], tmp / f"{engine}-{port}.log",
                 {"VOXMESH_WORKER__CALIBRATION_ROUNDS": str(rounds),
                  "VOXMESH_WORKER__CALIBRATION_DISCARD": str(discard)})
    body = {"model": engine, "input": HARNESS_SENTENCES[0], "voice": "default", "response_format": "wav"}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited rc={proc.returncode}; see {tmp}")
            try:
                if _post(f"http://127.0.0.1:{port}/v1/audio/speech", body) == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        startup = time.perf_counter() - t0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=5) as r:
            threads = json.loads(r.read())["threads"]
    finally:
        stop(proc)
    return {"startup_s": startup, "load1": load, **threads}


def reference(engine_name: str, runs: int) -> list[str]:
    """Median speed-up of 2 threads over 1, alternating runs in this process."""
    from voxmesh.engines.registry import create_engine
    from voxmesh.worker.calibrate import CALIBRATION_TEXT, engine_runner

    engine = create_engine(engine_name, {})
    engine.load(2)
    engine.warm_up()
    engine.session_classes(60.0)
    out = []
    for text in (CALIBRATION_TEXT, HARNESS_SENTENCES[0]):
        run = engine_runner(engine, text)
        run(1)
        run(2)
        times: dict[int, list[float]] = {1: [], 2: []}
        load = os.getloadavg()[0]
        for _ in range(runs):
            for k in (1, 2):
                times[k].append(run(k))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        out.append(f"| {len(text)} | {one * 1000:.0f} ms | {two * 1000:.0f} ms | {one / two:.2f} | {load:.1f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="piper")
    ap.add_argument("--starts", type=int, default=5, help="starts per setting, alternating")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--ab-runs", type=int, default=8, help="reference runs per class and sentence (0: none)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in a.settings}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.starts):
            for name in a.settings:
                rec = one_start(a.engine, *SETTINGS[name], Path(tmp))
                runs[name].append(rec)
                print(i, name, json.dumps(rec), flush=True)
    cmd = "python benchmarks/calibration.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    lines = [f"# Warm-up thread calibration: start cost and what it measures ({a.engine})", "",
             f"    {cmd}", "",
             f"{os.cpu_count()} cores; {a.starts} starts per setting, alternating; medians (min-max).", "",
             "| calibration | start to first response | calibration itself | of which waiting for sessions "
             "| speed-up 2 over 1 (each start) | cap in use (each start) | load avg before |",
             "|---|---|---|---|---|---|---|"]

    def span(xs: list[float], fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})" if xs else "-"

    for name, recs in runs.items():
        cal = [r["calibration_s"] for r in recs if r["calibration_s"] is not None]
        wait = [r["calibration_wait_s"] for r in recs if r["calibration_wait_s"] is not None]
        speed = " ".join(f"{r['speedup'].get('2', 0):.2f}" for r in recs) if cal else "-"
        caps = " ".join(str(r["max_useful_threads"]) for r in recs)
        lines.append(f"| {name} | {span([r['startup_s'] for r in recs])} s | {span(cal)} s | {span(wait)} s "
                     f"| {speed} | {caps} "
                     f"| {span([r['load1'] for r in recs], '{:.1f}')} |")
    if a.ab_runs:
        lines += ["", f"Reference, in process right after: {a.ab_runs} alternating runs per class (medians)", "",
                  "| characters | 1 thread | 2 threads | speed-up 2 over 1 | load avg |", "|---|---|---|---|---|",
                  *reference(a.engine, a.ab_runs)]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
