"""Issue 18's host test with real worker processes: two deployments (``voxmesh worker``, tone
engine, 4 threads each) busy at once on one host budget of 4 cores, weights 3:1.

Each worker joins the budget through the settings ``voxmesh up`` hands it
(``VOXMESH_HOSTCORES__*``, :func:`voxmesh.hostcores.config.worker_env`). Both are kept busy
with more requests than they have threads; the tone engine's segments are short (30 ms), so
leases are returned and retaken all the time, which is what made the shares come out even
before waiting demand counted in the rule. Asserted from the workers' ``/metrics``: the
host-wide high-water mark of leased cores never passes 4, no sampled gauge of a worker
passes 4, and the cores leased over the busy window (``voxmesh_host_core_seconds_total``,
and the mean of the sampled ``voxmesh_host_cores_granted`` gauges) split about 3:1. The
consistent host-wide view (the lease file, sampled under its lock) never passes 4 either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from voxmesh.deployments import Deployment
from voxmesh.hostcores.broker import CoreBroker
from voxmesh.hostcores.config import resolve, worker_env
from voxmesh.settings import HostCoresSettings

pytestmark = pytest.mark.slow

TOTAL = 4
DEPS = [Deployment(name="a", engine="tone", cores={"weight": 3}),
        Deployment(name="b", engine="tone", cores={"weight": 1})]
TEXT = " ".join(f"Sentence number {i} is here." for i in range(8))  # 8 segments per request
CLIENTS = 6  # per deployment: more than its 4 threads, so it always wants cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(text: str, name: str, deployment: str | None = None) -> float:
    label = rf'\{{deployment="{deployment}"\}}' if deployment else ""
    m = re.search(rf"^{name}{label} (\S+)$", text, re.M)
    return float(m[1]) if m else 0.0


async def test_two_busy_deployments_keep_their_shares_and_the_budget(tmp_path: Path) -> None:
    hostcores = resolve(HostCoresSettings(file=tmp_path / "cores.json", total=TOTAL), tmp_path, DEPS)
    assert hostcores.file is not None
    env = {**os.environ, **worker_env(hostcores)}
    ports = {d.name: _free_port() for d in DEPS}
    procs = {
        d.name: subprocess.Popen(
            [sys.executable, "-m", "voxmesh", "worker", "--engine", "tone", "--model", d.name,
             "--port", str(ports[d.name]), "--threads", str(TOTAL),
             "--options", json.dumps({"delay_s": 0.03, "ms_per_char": 1.0})],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for d in DEPS}
    broker = CoreBroker(hostcores.file, TOTAL)
    try:
        async with aiohttp.ClientSession() as http:
            url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

            async def get(name: str, path: str) -> str:
                async with http.get(url[name] + path) as resp:
                    return await resp.text()

            deadline = time.monotonic() + 120
            for name in url:
                while True:
                    assert time.monotonic() < deadline, "worker never ready"
                    assert procs[name].poll() is None, procs[name].stderr.read()[-2000:]  # type: ignore[union-attr]
                    with contextlib.suppress(aiohttp.ClientError):
                        if json.loads(await get(name, "/readyz")).get("status") == "ready":
                            break
                    await asyncio.sleep(0.1)

            stop = asyncio.Event()
            statuses: list[int] = []

            async def client(name: str) -> None:
                body = {"model": name, "input": TEXT, "voice": "low", "response_format": "pcm"}
                while not stop.is_set():
                    async with http.post(url[name] + "/v1/audio/speech", json=body) as resp:
                        await resp.read()
                        statuses.append(resp.status)

            gauges: list[tuple[float, float]] = []
            host: list[int] = []

            async def sample() -> None:
                while not stop.is_set():
                    ta, tb = await asyncio.gather(get("a", "/metrics"), get("b", "/metrics"))
                    gauges.append((_metric(ta, "voxmesh_host_cores_granted", "a"),
                                   _metric(tb, "voxmesh_host_cores_granted", "b")))
                    text = await asyncio.to_thread(broker.metrics_text)  # the lease file, one locked read
                    host.append(sum(int(v) for v in re.findall(r"voxmesh_host_cores_granted\{[^}]*\} (\d+)", text)))
                    await asyncio.sleep(0.02)

            clients = [asyncio.create_task(client(name)) for name in url for _ in range(CLIENTS)]
            await asyncio.sleep(1.0)  # both busy
            before = {name: await get(name, "/metrics") for name in url}
            sampler = asyncio.create_task(sample())
            await asyncio.sleep(4.0)
            after = {name: await get(name, "/metrics") for name in url}
            stop.set()
            await asyncio.gather(sampler, *clients)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.communicate(timeout=30)

    assert statuses and set(statuses) == {200}
    # never more threads than cores: the host-wide high-water mark, every gauge, the lease file
    for name in ("a", "b"):
        assert 0 < _metric(after[name], "voxmesh_host_cores_granted_max") <= TOTAL
        assert _metric(after[name], "voxmesh_host_cores_total") == TOTAL
    assert len(gauges) > 20 and all(a <= TOTAL and b <= TOTAL for a, b in gauges)
    assert len(host) > 20 and max(host) <= TOTAL
    # each keeps its configured share: 3:1 -> a has 0.75 of the cores leased
    core_s = {name: _metric(after[name], "voxmesh_host_core_seconds_total", name)
              - _metric(before[name], "voxmesh_host_core_seconds_total", name) for name in ("a", "b")}
    frac = core_s["a"] / (core_s["a"] + core_s["b"])
    mean_a = sum(a for a, _ in gauges) / len(gauges)
    mean_b = sum(b for _, b in gauges) / len(gauges)
    print(f"core-seconds {core_s}, a's fraction {frac:.3f}; mean gauges a {mean_a:.2f} b {mean_b:.2f}")
    assert 0.65 <= frac <= 0.85, core_s
    assert 0.65 <= mean_a / (mean_a + mean_b) <= 0.85, (mean_a, mean_b)
    assert core_s["a"] + core_s["b"] >= 0.5 * TOTAL * 4.0  # the budget was used, not just split
    assert _metric(after["b"], "voxmesh_host_core_waits_total", "b") > 0



async def test_voxmesh_up_puts_its_workers_on_one_budget_by_default(tmp_path: Path) -> None:
    """No setting at all: the stack's workers lease from one budget (a lease file in memory,
    gone when the stack stops) and show it on /metrics."""
    from voxmesh.deployments import DeploymentsConfig
    from voxmesh.settings import load_settings
    from voxmesh.stack import Stack

    config = {"deployments": [
        {"name": "a", "engine": "tone", "options": {"delay_s": 0.01}, "threads": 2, "cores": {"weight": 3}},
        {"name": "b", "engine": "tone", "options": {"delay_s": 0.01}, "threads": 2}]}
    settings = load_settings(None, data_dir=tmp_path / "data", server={"port": 0}, mesh={"enabled": False})
    st = Stack(settings, DeploymentsConfig.model_validate(config))
    try:
        await st.start()
        assert st.host_cores_file is not None and st.host_cores_file.exists()
        async with aiohttp.ClientSession() as http:
            for name in ("a", "b"):
                body = {"model": name, "input": "One. Two.", "voice": "low", "response_format": "pcm"}
                async with http.post(st.url + "/v1/audio/speech", json=body) as resp:
                    assert resp.status == 200, await resp.text()
                port = st.supervisor.replicas[name][0].port
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
                assert _metric(text, "voxmesh_host_cores_total") >= 1
                assert _metric(text, "voxmesh_host_core_seconds_total", name) > 0
        snap = CoreBroker(st.host_cores_file, 1).snapshot()
        assert snap["grants"]["a"] >= 2 and snap["grants"]["b"] >= 2 and snap["leases"] == []
    finally:
        await st.stop()
    assert not st.host_cores_file.exists()
