"""Several full peers runs side by side: the goals met in each run, the spread, CPU per request.

One run of ``benchmarks/peers.py`` is one 30 s window per (config, concurrency); windows
minutes apart differ by several per cent on these VMs, so a goal counts as met only when it
holds in every run. This renders ``results/peers_<tag>.jsonl`` of each tag (through
``report.load_run``, the same selection rules as a single-run report) into one markdown
table per measure with the value of each run, the min-max and how many runs met the goal,
plus a PNG of req/s against concurrency with the spread as error bars.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from report import RAW_REF, goal_metrics, load_run  # type: ignore[import-not-found]

__all__ = ["write_runs_report"]

SERVED = ["vox-piper", "vox-gw-piper", "litserve-w2"]
RAWS = ["raw-piper-1x2", "raw-piper-2x1"]


def _span(xs: list[float], nd: int) -> str:
    return f"{min(xs):.{nd}f}-{max(xs):.{nd}f}" if xs else "-"


def _goal_rows(runs: list[tuple[dict[str, Any], dict[str, Any]]], cfg: str) -> list[str]:
    per_run = [{g["name"]: g for g in goal_metrics(cfg, raws, levels)} for raws, levels in runs]
    names = list(dict.fromkeys(n for gs in per_run for n in gs))
    rows: list[str] = []
    for name in names:
        gs = [gs.get(name) for gs in per_run]
        vals = [g["value"] for g in gs if g]
        oks = [g["ok"] for g in gs if g and g["ok"] is not None]
        cells = " | ".join(f"{g['value']:.3f}" + ("" if g["ok"] is None else (" ✓" if g["ok"] else " ✗")) if g else "-"
                           for g in gs)
        met = f"{sum(oks)}/{len(gs)}" + (f" ({len(gs) - len(oks)} n/a)" if len(oks) < len(gs) else "")
        rows.append(f"| {cfg} | {name} | {gs[0]['goal'] if gs[0] else '-'} | {cells} | {_span(vals, 3)} | {met} |")
    return rows


def _plot(runs: list[tuple[dict[str, Any], dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for i, cfg in enumerate(SERVED):
        concs = sorted({c for _, lv in runs for c in lv.get(cfg, {})})
        if not concs:
            continue
        for ax, key in ((ax1, "rps"), (ax2, "cpu_per_req")):
            got = {c: [lv[cfg][c][key] for _, lv in runs if c in lv.get(cfg, {}) and lv[cfg][c].get(key)] for c in concs}
            xs = [c for c in concs if got[c]]
            med = [statistics.median(got[c]) for c in xs]
            err = [[m - min(got[c]) for m, c in zip(med, xs, strict=True)],
                   [max(got[c]) - m for m, c in zip(med, xs, strict=True)]]
            style = dict(lw=2.4, marker="o") if cfg.startswith("vox") else dict(lw=1.4, marker=".")
            ax.errorbar(xs, med, yerr=err, capsize=4, label=cfg, color=f"C{i}", **style)  # type: ignore[arg-type]
    for j, rn in enumerate(RAWS):
        ups = [raws[rn]["utt_per_s"] for raws, _ in runs if "utt_per_s" in raws.get(rn, {})]
        cpu = [raws[rn]["cpu_per_utt"] for raws, _ in runs if "cpu_per_utt" in raws.get(rn, {})]
        if ups:
            ax1.axhspan(min(ups), max(ups), color=f"C{7 + j}", alpha=0.25, label=f"{rn} (in-process, min-max)")
        if cpu:
            ax2.axhspan(min(cpu), max(cpu), color=f"C{7 + j}", alpha=0.25, label=f"{rn} (in-process, min-max)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
        ax.set_xlabel("concurrency (closed loop)")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="lower right")
    ax1.set_ylabel("requests (sentences) per second: median, min-max over runs")
    ax2.set_ylabel("server CPU-seconds per request")
    fig.suptitle(f"Piper joe on 2 cores: {len(runs)} full peers runs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_runs_report(work: Path, tags: list[str], out: Path, command: str, run_reports: dict[str, str]) -> None:
    runs = [load_run(work, t)[:2] for t in tags]
    L: list[str] = [f"# TTS serving on 2 cores: {len(tags)} full peers runs\n"]
    L.append(f"Command: `{command}`; runs `{'`, `'.join(tags)}`, one after another on a quiet machine. "
             "Each run's own report (every window, its foreign CPU, memory, startup): "
             + ", ".join(f"[{t}]({run_reports[t]})" for t in tags) + ".\n")
    L.append("A goal counts as met when it holds in every run. ✓/✗: met or missed in that run. "
             f"Throughput is compared in requests per second against the best of {' / '.join(RAWS)} of the same run.\n")
    L.append("## Goals, per run\n")
    L.append("| config | measure | goal | " + " | ".join(tags) + " | min-max | met |")
    L.append("|---|---|---|" + "---|" * len(tags) + "---|---|")
    for cfg in SERVED:
        if cfg in RAW_REF:
            L.extend(_goal_rows(runs, cfg))
    concs = sorted({c for _, lv in runs for cfg in SERVED for c in lv.get(cfg, {})})
    for title, key, nd in (("Requests per second", "rps", 2), ("p50 latency, ms", "p50_ms", 0),
                           ("Server CPU-seconds per request", "cpu_per_req", 3)):
        L.append(f"\n## {title}: median (min-max over runs)\n")
        L.append("| config | " + " | ".join(f"conc {c}" for c in concs) + " |")
        L.append("|---|" + "---|" * len(concs))
        raw_key = {"rps": "utt_per_s", "p50_ms": "lat_p50_s", "cpu_per_req": "cpu_per_utt"}[key]
        for rn in RAWS:
            xs = [raws[rn][raw_key] * (1000 if key == "p50_ms" else 1) for raws, _ in runs if raw_key in raws.get(rn, {})]
            if xs:
                L.append(f"| {rn} (in-process, all sentences) | {statistics.median(xs):.{nd}f} ({_span(xs, nd)}) |"
                         + " |" * (len(concs) - 1))
        for cfg in SERVED:
            cells = []
            for c in concs:
                xs = [lv[cfg][c][key] for _, lv in runs if c in lv.get(cfg, {}) and lv[cfg][c].get(key) is not None]
                cells.append(f"{statistics.median(xs):.{nd}f} ({_span(xs, nd)})" if xs else "-")
            L.append(f"| {cfg} | " + " | ".join(cells) + " |")
    png = out.with_suffix(".png")
    _plot(runs, png)
    L.append(f"\n![req/s and CPU per request over {len(tags)} runs]({png.name})\n")
    extra = Path(__file__).with_name("runs_analysis.md")
    if extra.exists() and out.name == "peers_runs.md":
        L.append(extra.read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(L) + "\n")
    print(f"wrote {out} and {png}")
