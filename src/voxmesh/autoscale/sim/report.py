"""Summaries, the comparison table, and the PNG plots of simulator runs.

Definitions used in the table:
- p50/p99: over requests that were served (dropped ones are reported apart);
- over SLO: served slower than the SLO, or dropped after the request timeout;
- replica-s: integral of live replicas (booting, warm, serving, draining) over the trace,
  the cost a cluster pays for them; warm replica-s shown apart;
- absorb: from the spike's start to the end of the last 10 s window (by arrival) inside the
  spike whose p99 was over the SLO; "never" if the spike ended still over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxmesh.autoscale.sim.engine import SimResult

__all__ = ["Summary", "format_table", "p99_series", "plot", "summarize"]

WINDOW_S = 10.0


@dataclass(frozen=True)
class Summary:
    autoscaler: str
    requests: int
    p50_s: float
    p99_s: float
    over_slo_pct: float
    dropped_pct: float
    replica_s: float
    warm_replica_s: float
    peak_replicas: int
    absorb_s: float | None  # None: never absorbed; nan: scenario without a spike
    decisions: int
    wall_s: float


def p99_series(result: SimResult, window_s: float = WINDOW_S, cap_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(window start times, p99 latency per window by arrival time); dropped count as ``cap_s``."""
    edges = np.arange(0.0, result.duration_s + window_s, window_s)
    lat = result.latency
    if cap_s is not None:
        lat = np.minimum(lat, cap_s)
    idx = np.searchsorted(result.arrival_times, edges)
    out = np.full(len(edges) - 1, np.nan)
    for k in range(len(edges) - 1):
        chunk = lat[idx[k]:idx[k + 1]]
        if chunk.size:
            out[k] = np.quantile(chunk, 0.99, method="higher")  # inf stays inf
    return edges[:-1], out


def _absorb(result: SimResult, spike: tuple[float, float] | None, slo_s: float) -> float | None:
    if spike is None:
        return float("nan")
    start, end = spike
    times, p99 = p99_series(result)
    inside = (times >= start) & (times + WINDOW_S <= end)
    bad = inside & ~(p99 <= slo_s)  # nan (no traffic) is not bad; inf is
    bad &= ~np.isnan(p99)
    if not bad.any():
        return 0.0
    last_bad = float(times[bad].max() + WINDOW_S)
    last_window_end = float(times[inside].max() + WINDOW_S)
    return None if last_bad >= last_window_end else last_bad - start


def summarize(result: SimResult, slo_s: float, spike: tuple[float, float] | None = None) -> Summary:
    lat = result.latency
    served = lat[np.isfinite(lat)]
    n = int(lat.size)
    end = int(result.duration_s)
    s = result.series
    return Summary(
        autoscaler=result.autoscaler,
        requests=n,
        p50_s=float(np.quantile(served, 0.5)) if served.size else float("nan"),
        p99_s=float(np.quantile(served, 0.99)) if served.size else float("nan"),
        over_slo_pct=100.0 * float(np.count_nonzero(~(lat <= slo_s))) / max(n, 1),
        dropped_pct=100.0 * float(n - served.size) / max(n, 1),
        replica_s=float(s["live_int"][min(end, len(s["live_int"]) - 1)]),
        warm_replica_s=float(s["warm_int"][min(end, len(s["warm_int"]) - 1)]),
        peak_replicas=int(s["live"].max()),
        absorb_s=_absorb(result, spike, slo_s),
        decisions=result.decisions,
        wall_s=result.wall_s,
    )


def _fmt_absorb(v: float | None) -> str:
    if v is None:
        return "never"
    if np.isnan(v):
        return "n/a"
    return f"{v:.0f} s"


def format_table(summaries: list[Summary], markdown: bool = True) -> str:
    head = ["autoscaler", "requests", "p50 s", "p99 s", "over SLO %", "dropped %", "replica-s",
            "of which warm", "peak replicas", "time to absorb", "decisions", "sim wall s"]
    rows = [[
        x.autoscaler, f"{x.requests:,}", f"{x.p50_s:.2f}", f"{x.p99_s:.2f}", f"{x.over_slo_pct:.2f}",
        f"{x.dropped_pct:.2f}", f"{x.replica_s:,.0f}", f"{x.warm_replica_s:,.0f}", str(x.peak_replicas),
        _fmt_absorb(x.absorb_s), str(x.decisions), f"{x.wall_s:.1f}",
    ] for x in summaries]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


_COLORS = {"voxmesh": "tab:green", "hpa-cpu": "tab:red", "keda-qps": "tab:blue"}


_WIDTHS = {"voxmesh": 3.0, "hpa-cpu": 2.0, "keda-qps": 1.2}  # overlapping lines stay visible


def plot(results: list[SimResult], out_dir: Path, scenario: str, slo_s: float,
         needed: np.ndarray | None = None, timeout_s: float = 60.0,
         spike: tuple[float, float] | None = None) -> list[Path]:
    """Two PNGs: routable replicas over time, and p99 latency over time (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    if spike is not None:
        ax.axvspan(*spike, color="0.93", label="spike")
    if needed is not None:
        ax.plot(np.arange(needed.size), needed, color="0.55", lw=1.2, ls="--",
                label="needed at 70 % utilization (offered load)")
    for r in results:
        t = np.arange(r.series["ready"].size)
        color = _COLORS.get(r.autoscaler)
        ax.plot(t, r.series["ready"], color=color, lw=_WIDTHS.get(r.autoscaler, 1.5) * 0.7,
                label=f"{r.autoscaler}: serving")
        ax.plot(t, r.series["live"], color=color, lw=0.8, alpha=0.6, ls=":", label=f"{r.autoscaler}: all live")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("replicas")
    ax.set_title(f"{scenario}: replicas over time (serving solid, all live incl. booting/warm dotted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    path = out_dir / f"autoscale_sim_{scenario}_replicas.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    if spike is not None:
        ax.axvspan(*spike, color="0.93", label="spike")
    for r in results:
        times, p99 = p99_series(r, cap_s=timeout_s)
        ax.plot(times + WINDOW_S / 2, p99, color=_COLORS.get(r.autoscaler), lw=_WIDTHS.get(r.autoscaler, 1.5),
                alpha=0.85, label=r.autoscaler)
    ax.axhline(slo_s, color="black", lw=1, ls="--", label=f"SLO {slo_s:g} s")
    ax.axhline(timeout_s, color="0.5", lw=0.8, ls=":", label=f"timeout {timeout_s:g} s (dropped)")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"p99 latency per {WINDOW_S:.0f} s window (s, log)")
    ax.set_title(f"{scenario}: p99 latency over time")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    path = out_dir / f"autoscale_sim_{scenario}_p99.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    paths.append(path)
    return paths
