"""``voxmesh up`` with ``VOXMESH_LOG_FORMAT=json``: log lines are JSON objects, and a line
written while handling a request carries that request's id."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CONFIG = """
deployments:
  - {name: voice-v1, engine: tone, threads: 1, replicas: {min: 1, max: 1, warm: 0}}
  - {name: voice-v2, engine: tone, threads: 1, replicas: {min: 1, max: 1, warm: 0}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_json_log_lines_carry_the_request_id(tmp_path: Path) -> None:
    cfg = tmp_path / "voxmesh.yaml"
    cfg.write_text(CONFIG)
    port = _free_port()
    env = {**os.environ, "VOXMESH_LOG_FORMAT": "json"}
    err = open(tmp_path / "stderr.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "voxmesh", "--config", str(cfg), "up", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the stack did not get ready"
            time.sleep(0.3)
        req = urllib.request.Request(url + "/admin/splits/voice", method="PUT", data=b'{"weights": {"voice-v1": 90, '
                                     b'"voice-v2": 10}}', headers={"X-Request-Id": "ops-change-17"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.headers["X-Request-Id"] == "ops-change-17"
    finally:
        proc.terminate()
        proc.wait(60)
        err.close()
    lines = [line for line in (tmp_path / "stderr.log").read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert len(records) >= 3 and all({"ts", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    split = [r for r in records if r["message"].startswith("split voice set to")]
    assert split and split[0]["request_id"] == "ops-change-17"
    assert any(r["request_id"] == "-" for r in records)  # outside a request
