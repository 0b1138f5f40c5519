"""The short chaos soak of ``make test``: ``benchmarks/chaos.py`` for about a minute and a half
with three faults (kill -9 of a worker, of the whole stack mid-job then a restart, of the
job-runner process) on SQLite + filesystem + DB queue (the long soak, ``make bench``, adds
the private PostgreSQL, RabbitMQ and S3 and their faults).

It must end with nothing lost: every job done, byte-identical to a fault-free run of the
same job, no duplicate, no leftover process, no process or memory growth across the
crashes, every fault recovered from, and no non-streaming speech request failed outside the
window where the whole stack was down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux-only")
def test_short_chaos_soak_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--minutes", "1.5", "--seed", "3",
           "--faults", "worker-kill", "stack-kill", "runner-kill", "--no-pg", "--no-rabbitmq", "--no-s3",
           "--warmup-s", "10", "--cooldown-s", "10", "--job-every", "4", "--drain-s", "120", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert out.with_suffix(".json").exists(), res.stderr[-3000:]
    result = json.loads(out.with_suffix(".json").read_text())
    jobs = result["jobs"]
    assert jobs["submitted"] >= 10
    assert jobs["lost"] == 0 and jobs["duplicated"] == 0 and jobs["abandoned"] == 0, jobs
    assert jobs["identical"] == jobs["completed"] == jobs["submitted"], jobs
    kinds = [f["kind"] for f in result["faults"]]
    assert {"worker-kill", "stack-kill", "runner-kill"} <= set(kinds), kinds
    assert all(f["t_recovered"] is not None for f in result["faults"]), result["faults"]
    before, after = result["before"], result["after"]
    assert after["leftovers"] == 0 and before["leftovers"] == 0
    assert after["processes"] == before["processes"], (before["detail"], after["detail"])
    assert after["rss_mb"] < before["rss_mb"] * 1.3 + 50, (before["rss_mb"], after["rss_mb"])
    for row in result["phases"]:
        if row["kind"] == "speech" and row["phase"] != "stack-kill":
            assert row["success"] == 1.0, row
    assert res.returncode == 0, res.stderr[-3000:]
