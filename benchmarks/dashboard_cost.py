"""What an open dashboard costs the gateway: CPU seconds of the gateway process over a window
at idle, without and with a page refreshing once a second (Debian's chromium via Playwright).

    PYTHONPATH=src .venv/bin/python benchmarks/dashboard_cost.py --seconds 60 --rounds 1

Starts ``voxmesh up`` (one process: gateway, supervisor, autoscaler, job runners; the workers
are its children and are not counted) with three tone deployments (four replicas), waits
until ready and a settling pause, then alternates windows without and with the page. The
browser runs in its own processes, so only the gateway's own work for the page counts:
serving /dashboard's assets once and ~5 small JSON answers per refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

CONFIG = """
deployments:
  - {name: voice-v1, engine: tone, threads: 1, replicas: {min: 2, max: 3, warm: 0}}
  - {name: voice-v2, engine: tone, threads: 1, replicas: {min: 1, max: 1, warm: 0}}
  - {name: tts-en, engine: tone, threads: 1, replicas: {min: 1, max: 1, warm: 0}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


async def window(proc: psutil.Process, seconds: float, url: str | None) -> tuple[float, int]:
    """CPU seconds of ``proc`` over ``seconds``; with ``url``, a page polls meanwhile (its ticks)."""
    if url is None:
        c0 = cpu_s(proc)
        await asyncio.sleep(seconds)
        return cpu_s(proc) - c0, 0
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
        page = await browser.new_page()
        await page.goto(url + "/dashboard")
        while int(await page.evaluate("Number(document.body.dataset.ticks || 0)")) < 2:
            await asyncio.sleep(0.2)  # (wait_for_function evaluates a string: the page's CSP forbids it)
        t0 = int(await page.evaluate("Number(document.body.dataset.ticks)"))
        c0 = cpu_s(proc)
        await asyncio.sleep(seconds)
        used = cpu_s(proc) - c0
        ticks = int(await page.evaluate("Number(document.body.dataset.ticks)")) - t0
        await browser.close()
    return used, ticks


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--settle", type=float, default=10.0)
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "voxmesh.yaml"
        cfg.write_text(CONFIG)
        env = {**os.environ, "VOXMESH_LOG_LEVEL": "WARNING"}
        gw = subprocess.Popen([sys.executable, "-m", "voxmesh", "--config", str(cfg), "up", "--port", str(port),
                               "--data-dir", str(Path(tmp) / "data")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the stack did not get ready in 120 s")
                await asyncio.sleep(0.5)
            await asyncio.sleep(args.settle)
            proc = psutil.Process(gw.pid)
            rows = []
            for r in range(args.rounds):
                idle, _ = await window(proc, args.seconds, None)
                polled, ticks = await window(proc, args.seconds, url)
                rows.append((r + 1, idle, polled, ticks))
        finally:
            gw.terminate()
            gw.wait(60)
    s = args.seconds
    print(f"gateway process CPU over {s:.0f} s windows (percent of one core); load average {os.getloadavg()[0]:.2f}")
    print("| round | idle CPU-s | with page CPU-s | page refreshes | added CPU-s | added % of one core |")
    print("|---|---|---|---|---|---|")
    for r, idle, polled, ticks in rows:
        print(f"| {r} | {idle:.3f} ({100 * idle / s:.2f} %) | {polled:.3f} ({100 * polled / s:.2f} %) | {ticks} | "
              f"{polled - idle:+.3f} | {100 * (polled - idle) / s:+.2f} % |")


if __name__ == "__main__":
    asyncio.run(main())
