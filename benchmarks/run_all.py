"""``make bench``: every benchmark with the command its report names, one after another.

Benchmarks want a quiet machine: this waits (up to --wait-max seconds) for the 1-minute load
average to fall below --load before each one, and says so when it gives up waiting.

    .venv/bin/python benchmarks/run_all.py [--only tts gateway ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BENCHES: dict[str, list[str]] = {
    "tts": [PY, "benchmarks/tts.py", "--engines", "piper", "--reps", "6", "--rounds", "1", "--out", "benchmarks/reports/tts.md"],
    "tts_kokoro": [PY, "benchmarks/tts.py", "--engines", "kokoro", "--reps", "6", "--sentences", "10",
                   "--out", "benchmarks/reports/tts_kokoro.md"],
    "burst": [PY, "benchmarks/burst.py", "--engines", "piper", "kokoro", "--bursts", "20", "--out", "benchmarks/reports/burst.md"],
    "arena": [PY, "benchmarks/arena.py", "--reps", "3", "--seconds", "15"],
    "gateway": [PY, "benchmarks/gateway.py", "--report", "benchmarks/reports/gateway.md"],
    "autoscale": [PY, "benchmarks/autoscale.py", "--engines", "piper", "kokoro", "llamacpp", "--repeats", "2"],
    "autoscale_sim": [PY, "benchmarks/autoscale_sim.py", "--scale", "100", "--seed", "1"],
    "jobs": [PY, "benchmarks/jobs.py", "--engine", "piper", "--chunks", "24", "--rounds", "3"],
    "mt": [PY, "benchmarks/mt.py", "quality", "speed", "http", "gateway", "--threads", "1", "--batch-sizes", "1,8"],
    "tail": [PY, "benchmarks/tail.py", "--seconds", "120", "--windows", "200"],
    "peers": [PY, "benchmarks/peers.py", "--wait-load", "0.5"],
    # the 2-core goals of issue 18, three full runs of the Piper rows with LitServe (~35 min each)
    "peers_runs": [PY, "benchmarks/peers.py", "--runs", "3", "--configs", "raw-piper-1x2", "raw-piper-2x1", "vox-piper",
                   "vox-gw-piper", "litserve-w2", "--raw-rounds", "2", "--raw-reps", "2", "--max-attempts", "2",
                   "--wait-load", "0.8", "--wait-max", "600"],
    "scale": [PY, "benchmarks/scale.py", "--duration", "6", "--conc", "1,2,3,4", "--out", "benchmarks/reports/scale.md"],
    "dashboard": [PY, "benchmarks/dashboard_cost.py", "--seconds", "60", "--rounds", "2"],
    "auth_guard": [PY, "benchmarks/auth_guard.py", "--n", "3000", "--out", "benchmarks/reports/auth_guard.md"],
    "tenants": [PY, "benchmarks/tenants.py", "--report", "benchmarks/reports/tenants.md"],
    "hostcores_wait": [PY, "benchmarks/hostcores_wait.py", "--rounds", "40", "--hold-s", "0.5", "--overhead"],
    "cpu_probe": [PY, "benchmarks/cpu_probe.py", "--conc", "1,2,4,8", "--window", "20", "--rounds", "2"],
    # voices.py and voices_ceiling.py judge with resemblyzer (torch), not a project dependency: see their docs
    # 30 minutes of faults on the local stack (private PostgreSQL, RabbitMQ, S3; root for the tmpfs)
    "chaos": [PY, "benchmarks/chaos.py", "--minutes", "30", "--seed", "1", "--out", "benchmarks/reports/chaos_30min.md"],
}


def wait_quiet(limit: float, wait_max: float) -> None:
    t0 = time.monotonic()
    while os.getloadavg()[0] > limit:
        if time.monotonic() - t0 > wait_max:
            print(f"load average still {os.getloadavg()[0]:.2f} > {limit}: running anyway", file=sys.stderr)
            return
        time.sleep(15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=list(BENCHES))
    ap.add_argument("--load", type=float, default=1.0)
    ap.add_argument("--wait-max", type=float, default=600.0)
    args = ap.parse_args()
    failed = []
    for name in args.only:
        wait_quiet(args.load, args.wait_max)
        print(f"== {name}: {' '.join(BENCHES[name][1:])}", file=sys.stderr, flush=True)
        if subprocess.run(BENCHES[name], cwd=ROOT).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
