"""One benchmark run over raw and served configs, in the peers' client venv (v_fastapi).

Runs from the work folder (``$PEERS_WORK``), where the shared harness was copied. For served
configs it does what the harness's ``run_server_bench.run_config`` does, step for step and
with the harness's own helpers (``wait_machine_quiet``, ``tree``, ``mem``, ``cpu_by_proc``,
``stop``): wait for a quiet machine, start the server, POST the first sentence every 0.25 s
until a 200 WAV answers (startup), idle 5 s, idle CPU over 10 s, idle memory (RSS/PSS of the
process tree), the load generator (the harness's ``loadgen.py`` through ``loadgen_body.py``),
CPU by process, after-load memory, stop by PID. What it adds:

* a config says its URL path, request body and environment, so voxmesh gets its own body;
* memory *under load*: the RSS of the server tree every second while the load runs, and
  the full RSS/PSS after each level (to show whether memory stays flat);
* placement: the CPU affinity of the server's processes and of the client;
* raw rows: the harness's ``raw_bench.py`` (piper-tts) and ``raw_engine.py`` (voxmesh's
  engines) with report.raw_rep_clean's clean-repetition rule (else retry).

usage: v_fastapi/bin/python vox/driver.py --plan plan.json --tag TAG
Results: results/peers_<tag>.jsonl (kinds: raw, level, meta); logs/<config>_<tag>.log
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import psutil

HERE = os.getcwd()
sys.path.insert(0, HERE)
import run_server_bench as rsb  # noqa: E402  (the harness copy)
from common import SENTENCES  # noqa: E402
from report import raw_rep_clean  # noqa: E402  (this folder's report.py: the one clean rule)

VOX = os.path.dirname(os.path.abspath(__file__))


def post(url, body, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def first_body(spec, text):
    if spec == "text":
        return {"text": text}
    _, model, voice = spec.split(":")
    return {"model": model, "input": text, "voice": voice, "response_format": "wav"}


def affinity(procs):
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            out[p.pid] = ",".join(str(c) for c in sorted(p.cpu_affinity()))
    return sorted(set(out.values()))


def emit(out, rec):
    print(json.dumps(rec), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")


class RssSampler(threading.Thread):
    """RSS of the server tree once a second (cheap: /proc/PID/statm), while the load runs."""

    def __init__(self, root_pid):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        t0 = time.time()
        while not self.halt.wait(1.0):
            rss = 0
            for p in rsb.tree(self.root_pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += p.memory_info().rss
            self.samples.append((round(time.time() - t0, 1), round(rss / 2**20, 1)))


def run_raw(spec, a, out):
    clean = 0
    tries = 0
    while clean < a.raw_reps and tries < a.raw_reps + a.raw_extra:
        tries += 1
        quiet = rsb.wait_machine_quiet(max_wait=a.quiet_max)
        r = subprocess.run(spec["cmd"] + ["--rounds", str(a.raw_rounds)], capture_output=True, text=True,
                           cwd=HERE, env={**os.environ, **spec.get("env", {})})
        if r.returncode != 0:
            emit(out, dict(kind="raw", config=spec["name"], error=r.stderr[-400:], tag=a.tag))
            return
        rec = json.loads(r.stdout.strip().splitlines()[-1])
        rec.update(kind="raw", config=spec["name"], tag=a.tag, attempt=tries, quiet_before=quiet,
                   clean=raw_rep_clean(rec))
        emit(out, rec)
        clean += rec["clean"]


def from_harness(spec):
    """A harness server config, exactly as run_server_bench.CONFIGS defines it."""
    cmd, port, intra = rsb.CONFIGS[spec["harness"]]
    return dict(spec, cmd=cmd, url=f"http://127.0.0.1:{port}/speech", cwd=rsb.SRV,
                env={"PIPER_INTRA": intra} if intra else {}, note=f"PIPER_INTRA={intra or 'default'}")


def run_served(spec, a, out):
    if "harness" in spec:
        spec = from_harness(spec)
    name = spec["name"]
    url = spec["url"]
    env = dict(os.environ)
    for k in ("PIPER_INTRA", "PIPER_SPIN"):
        env.pop(k, None)
    env.update(spec.get("env", {}))
    logf = open(os.path.join(HERE, "logs", f"{name}_{a.tag}.log"), "w")  # noqa: SIM115 (closed after stop)
    quiet = rsb.wait_machine_quiet(max_wait=a.quiet_max)
    t0 = time.perf_counter()
    proc = subprocess.Popen(spec["cmd"], cwd=spec.get("cwd", rsb.SRV), env=env, stdout=logf,
                            stderr=subprocess.STDOUT, start_new_session=True)
    root = psutil.Process(proc.pid)
    seen = {}

    def remember():
        for p in rsb.tree(proc.pid):
            seen.setdefault(p.pid, p)

    startup = None
    first_err = None
    body0 = first_body(spec["body"], SENTENCES[0])
    while time.perf_counter() - t0 < spec.get("start_timeout", 600):
        remember()
        if proc.poll() is not None:
            first_err = f"server exited rc={proc.returncode}"
            break
        try:
            st, data = post(url, body0)
            if st == 200 and data[:4] == b"RIFF":
                startup = time.perf_counter() - t0
                break
        except Exception as e:
            first_err = repr(e)[:200]
        time.sleep(0.25)
    meta = dict(kind="meta", config=name, tag=a.tag, cmd=" ".join(spec["cmd"]), env=spec.get("env", {}),
                note=spec.get("note", ""), startup_s=round(startup, 2) if startup else None,
                quiet_before=quiet, client_affinity=affinity([psutil.Process()]))
    if startup is None:
        meta["error"] = first_err
    else:
        time.sleep(5)
        remember()
        idle_procs = rsb.tree(proc.pid)
        c0 = rsb.cpu_by_proc(idle_procs)
        time.sleep(10)
        c1 = rsb.cpu_by_proc(idle_procs)
        meta["idle_cpu_cores"] = round(sum(c1.get(k, v)[0] - v[0] for k, v in c0.items()) / 10, 3)
        meta["idle_mem"] = rsb.mem(rsb.tree(proc.pid))
        meta["server_affinity"] = affinity(rsb.tree(proc.pid))
        load_procs = rsb.tree(proc.pid)
        l0 = rsb.cpu_by_proc(load_procs)
        tl0 = time.time()
        lg = [sys.executable, os.path.join(VOX, "loadgen_body.py"), "--body", spec["body"], "--url", url,
              "--conc", a.conc, "--duration", str(a.duration), "--warmup", str(a.warmup),
              "--server-pid", str(proc.pid), "--label", name, "--quiet-max", str(a.quiet_max),
              "--retry-foreign", str(a.retry_foreign), "--max-attempts", str(a.max_attempts)]
        sampler = RssSampler(proc.pid)
        sampler.start()
        lgp = subprocess.Popen(lg, cwd=HERE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PEERS_HARNESS": HERE})
        meta["loadgen_affinity"] = affinity([psutil.Process(lgp.pid)])
        for line in lgp.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            rec.update(kind="level", config=name, tag=a.tag, mem_after=rsb.mem(rsb.tree(proc.pid)))
            rec["mem_after"].pop("procs", None)
            emit(out, rec)
        lgp.wait()
        sampler.halt.set()
        sampler.join()
        l1 = rsb.cpu_by_proc(load_procs)
        meta["load_run_s"] = round(time.time() - tl0, 1)
        meta["load_cpu_s_by_proc"] = {f"{k}:{v[1]}": round(l1.get(k, v)[0] - v[0], 1) for k, v in l0.items()}
        meta["rss_under_load"] = sampler.samples
        remember()
        meta["after_load_mem"] = rsb.mem(rsb.tree(proc.pid))
    meta["stop"] = rsb.stop(root, seen, logf)
    time.sleep(2)
    meta["leftover_alive"] = [p.pid for p in seen.values() if p.is_running()]
    logf.close()
    emit(out, meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--conc", default="1,2,4,8")
    ap.add_argument("--raw-rounds", type=int, default=3)
    ap.add_argument("--raw-reps", type=int, default=3)
    ap.add_argument("--raw-extra", type=int, default=4)
    ap.add_argument("--quiet-max", type=float, default=300)
    ap.add_argument("--retry-foreign", type=float, default=1.5)
    ap.add_argument("--max-attempts", type=int, default=3)
    a = ap.parse_args()
    with open(a.plan) as f:
        plan = json.load(f)
    os.makedirs(os.path.join(HERE, "logs"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", f"peers_{a.tag}.jsonl")
    for spec in plan:
        if spec["kind"] == "raw":
            run_raw(spec, a, out)
        else:
            run_served(spec, a, out)


if __name__ == "__main__":
    main()
