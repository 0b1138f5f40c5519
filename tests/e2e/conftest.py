"""One real stack (``voxmesh up`` as a subprocess, real workers over mTLS) for the e2e tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

E2E_CONFIG = """
settings:
  log_level: INFO
deployments:
  - name: tts-en
    engine: piper
    replicas: {min: 1, max: 2, warm: 0}
    threads: 2
  - name: tts-multi
    engine: kokoro
    replicas: {min: 1, max: 1, warm: 0}
    threads: 2
  - name: mt
    engine: llamacpp
    replicas: {min: 1, max: 1, warm: 0}
    threads: 2
  - name: tone
    engine: tone
    replicas: {min: 2, max: 3, warm: 1}
    threads: 1
aliases:
  tts-1: tts-en
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningStack:
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log: Path


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voxmesh up exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"stack not ready after {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def run_stack(root: Path, config: str) -> Iterator[RunningStack]:
    """``voxmesh up`` with ``config`` in ``root`` (its own data dir and log), as a user runs it;
    stopped (SIGTERM, then SIGKILL after 30 s) on exit."""
    cfg = root / "voxmesh.yaml"
    cfg.write_text(config)
    port = free_port()
    log = root / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMESH_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voxmesh", "--config", str(cfg), "up", "--port", str(port),
             "--data-dir", str(root / "data")],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log)
        yield RunningStack(url, proc, root / "data", log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with run_stack(tmp_path_factory.mktemp("stack"), E2E_CONFIG) as running:
        yield running
