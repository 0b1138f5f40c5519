"""One way to start each thing the tests run on loopback, so that a test differs from the next
only in its configuration and what it asserts:

* :func:`run_up`: ``voxmesh up`` as a subprocess, as a user runs it, until it is ready
  (:func:`spawn_up` and :func:`wait_up` for a test that kills and restarts it).
* :func:`start_stack`: an in-process :class:`~voxmesh.stack.Stack` (gateway, supervisor,
  autoscaler, job runners; workers as child processes) on a free port, its data in the test's
  temp dir. :func:`tone_config` is the cheap stack of the observability tests (tone
  deployments, Piper or the bundled LLM where stages matter).
* :func:`start_prometheus`: Debian's Prometheus on a free loopback port scraping the targets given,
  with its config, TSDB and log in the temp dir; :func:`scrape_job` writes one job,
  :func:`prom_query` asks it.
* :func:`closed_loop`: closed-loop speech clients (each waits for its answer before the next
  request) for a time or until told to stop, recording every status as it arrives;
  :func:`load` is the observability tests' mix over two models.

Processes are started on :func:`~tests.support.procs.free_port` and ended with
:func:`~tests.support.procs.stop_process`.

Tests only: a benchmark may not import ``tests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tests.support.procs import free_port, stop_process

from voxmesh.deployments import DeploymentsConfig
from voxmesh.settings import load_settings
from voxmesh.stack import Stack

__all__ = [
    "PROMETHEUS",
    "RunningUp",
    "closed_loop",
    "load",
    "prom_query",
    "run_up",
    "scrape_job",
    "spawn_up",
    "start_prometheus",
    "start_stack",
    "tone_config",
    "wait_up",
]

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


# ---- voxmesh up as a subprocess -----------------------------------------------------------

@dataclass(frozen=True)
class RunningUp:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log: Path  # its stdout and stderr


def spawn_up(root: Path, config: str, *, data_dir: Path | None = None,
             env: Mapping[str, str] | None = None) -> RunningUp:
    """Start ``voxmesh --config root/voxmesh.yaml up`` on a free port with its data in
    ``data_dir`` (``root/data``) and its output in ``root/up-<port>.log``; the environment
    is ours without any ``VOXMESH_*`` variable, plus ``env``. Does not wait."""
    cfg = root / "voxmesh.yaml"
    cfg.write_text(config)
    port = free_port()
    data = root / "data" if data_dir is None else data_dir
    log = root / f"up-{port}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")} | dict(env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voxmesh", "--config", str(cfg), "up", "--port", str(port), "--data-dir", str(data)],
            stdout=out, stderr=subprocess.STDOUT, env=environ)  # fmt: skip
    return RunningUp(f"http://127.0.0.1:{port}", port, proc, data, log)


def wait_up(up: RunningUp, timeout: float = 240.0) -> None:
    """Until ``/readyz`` answers 200; fails with the log's tail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up.proc.poll() is not None:
            raise AssertionError(f"voxmesh up exited with {up.proc.returncode}:\n{up.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(up.url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"voxmesh up not ready after {timeout:.0f} s:\n{up.log.read_text()[-3000:]}")


@contextlib.contextmanager
def run_up(root: Path, config: str, *, env: Mapping[str, str] | None = None,
           timeout: float = 240.0) -> Iterator[RunningUp]:
    """:func:`spawn_up`, ready (:func:`wait_up`); stopped on exit (SIGTERM, SIGKILL after 30 s)."""
    up = spawn_up(root, config, env=env)
    try:
        wait_up(up, timeout)
        yield up
    finally:
        stop_process(up.proc, 30)


# ---- an in-process stack -----------------------------------------------------------------

@contextlib.asynccontextmanager
async def start_stack(tmp: Path, config: DeploymentsConfig | Mapping[str, Any], **settings: Any) -> AsyncIterator[Stack]:
    """A started :class:`Stack` with ``config`` (a model or its dict), data in ``tmp/data``, on
    a free port; ``settings`` are more sections for ``load_settings`` (``gateway={...}``);
    stopped on exit, also when the start fails half-way."""
    if not isinstance(config, DeploymentsConfig):
        config = DeploymentsConfig.model_validate(config)
    st = Stack(load_settings(None, data_dir=tmp / "data", server={"port": 0}, **settings), config)
    try:
        await st.start()
        yield st
    finally:
        await st.stop()


def tone_config(*, piper_fault: str | None = None, fault_ms: float = 0.0, mt: bool = False) -> DeploymentsConfig:
    """The observability tests' stack: ``voice-v1`` (1-3 replicas, one warm) and ``voice-v2``
    (one) on the tone engine; with ``piper_fault`` a Piper ``tts-en`` slowed at that stage by
    ``fault_ms``; with ``mt`` the bundled Gemma-3-270M through llama.cpp (loads in seconds)."""
    def tone(name: str, rmin: int, rmax: int, warm: int) -> dict[str, Any]:
        return {"name": name, "engine": "tone", "options": {"ms_per_char": 2, "delay_s": 0.02}, "threads": 1,
                "replicas": {"min": rmin, "max": rmax, "warm": warm},
                "scaling": {"in_flight_per_replica": 1, "scale_down_window_s": 5}}
    deps = [tone("voice-v1", 1, 3, 1), tone("voice-v2", 1, 1, 0)]
    if piper_fault is not None:
        deps.append({"name": "tts-en", "engine": "piper", "threads": 1, "replicas": {"min": 1, "max": 1, "warm": 0},
                     "env": {"VOXMESH_WORKER__FAULT_STAGE": piper_fault,
                             "VOXMESH_WORKER__FAULT_STAGE_DELAY_MS": str(fault_ms)}})
    if mt:
        deps.append({"name": "mt", "engine": "llamacpp", "threads": 1, "replicas": {"min": 1, "max": 1, "warm": 0}})
    return DeploymentsConfig.model_validate({"deployments": deps, "aliases": {"tts-1": "voice-v1"}})


# ---- a loopback Prometheus ----------------------------------------------------------------

def scrape_job(name: str, targets: Iterable[str], **labels: str) -> dict[str, Any]:
    """One static scrape job of ``targets`` (``host:port``), each series labelled ``labels``."""
    static: dict[str, Any] = {"targets": list(targets)}
    if labels:
        static["labels"] = labels
    return {"job_name": name, "static_configs": [static]}


@contextlib.asynccontextmanager
async def start_prometheus(tmp: Path, scrape_configs: Sequence[Mapping[str, Any]], *, rule_files: Sequence[Path] = (),
                     scrape_timeout: str | None = None, ready_s: float = 30.0) -> AsyncIterator[str]:
    """Prometheus on a free loopback port scraping ``scrape_configs`` and evaluating
    ``rule_files`` once a second; yields its URL once ``/-/ready`` answers 200 (fails after
    ``ready_s``). Skips the test when the Debian package is not installed. The wait is async:
    an in-process stack keeps serving while Prometheus starts."""
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus is not installed: the Debian package 'prometheus' (packages.apt, make system-deps)")
    interval: dict[str, Any] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    if scrape_timeout is not None:
        interval["scrape_timeout"] = scrape_timeout
    config: dict[str, Any] = {"global": interval, "scrape_configs": [dict(c) for c in scrape_configs]}
    if rule_files:
        config["rule_files"] = [str(f) for f in rule_files]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)  # fmt: skip
        try:
            await _until_ready(url, proc, ready_s, tmp / "prometheus.log")
            yield url
        finally:
            stop_process(proc, 10)


async def _until_ready(url: str, proc: subprocess.Popen[bytes], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            assert proc.poll() is None, f"prometheus exited {proc.returncode}: {log.read_text()[-2000:]}"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/-/ready") as r:
                    if r.status == 200:
                        return
            assert time.monotonic() < deadline, f"prometheus not ready after {seconds:.0f} s"
            await asyncio.sleep(0.2)


async def prom_query(session: aiohttp.ClientSession, base: str, expr: str) -> dict[str, Any]:
    """Prometheus's whole answer to an instant query: ``status`` and ``data``, or ``error``
    (a query that does not parse is a 400 with a JSON body too)."""
    async with session.get(base + "/api/v1/query", params={"query": expr}) as resp:
        body: dict[str, Any] = await resp.json()
    return body


# ---- clients ---------------------------------------------------------------------------

async def closed_loop(url: str, body: Callable[[int, int], Mapping[str, Any]], *, clients: int,
                      seconds: float | None = None, stop: Callable[[], bool] | None = None,
                      pause_s: float = 0.0, statuses: list[int] | None = None,
                      session: aiohttp.ClientSession | None = None) -> list[int]:
    """``clients`` closed-loop clients of ``url``'s speech route: client ``i`` posts
    ``body(i, n)`` for n = 1, 2, ..., reads the whole answer, pauses ``pause_s`` and goes on
    while fewer than ``seconds`` have passed and ``stop()`` is false (checked before each
    request). Each status is appended to ``statuses`` as it arrives (pass a list to watch it
    from outside); returns that list."""
    statuses = [] if statuses is None else statuses
    deadline = None if seconds is None else time.monotonic() + seconds

    def going() -> bool:
        return (deadline is None or time.monotonic() < deadline) and not (stop is not None and stop())

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        n = 0
        while going():
            n += 1
            async with http.post(url + "/v1/audio/speech", json=body(i, n)) as resp:
                await resp.read()
                statuses.append(resp.status)
            if pause_s:
                await asyncio.sleep(pause_s)

    async with contextlib.AsyncExitStack() as exits:
        http = session if session is not None else await exits.enter_async_context(aiohttp.ClientSession())
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    return statuses


async def load(url: str, seconds: float, *, clients: int = 3, models: tuple[str, ...] = ("voice-v1", "voice-v2"),
               text: str = "Load for the dashboard, one sentence.", stop: asyncio.Event | None = None) -> int:
    """Closed-loop clients over ``models`` in turn (client ``i`` starts at model ``i``) for
    ``seconds`` (or until ``stop``); returns how many were answered 200."""
    def body(i: int, n: int) -> dict[str, Any]:
        return {"model": models[(i + n - 1) % len(models)], "input": text, "voice": "low", "response_format": "wav"}

    statuses = await closed_loop(url, body, clients=clients, seconds=seconds,
                                 stop=None if stop is None else stop.is_set)
    return statuses.count(200)
