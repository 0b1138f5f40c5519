"""``voxmesh up`` with ``VOXMESH_LOG_FORMAT=json``: log lines are JSON objects, and a line
written while handling a request carries that request's id."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from tests.support.stacks import run_up

pytestmark = pytest.mark.slow

CONFIG = """
deployments:
  - {name: voice-v1, engine: tone, threads: 1, replicas: {min: 1, max: 1, warm: 0}}
  - {name: voice-v2, engine: tone, threads: 1, replicas: {min: 1, max: 1, warm: 0}}
"""


def test_json_log_lines_carry_the_request_id(tmp_path: Path) -> None:
    with run_up(tmp_path, CONFIG, env={"VOXMESH_LOG_FORMAT": "json"}, timeout=90) as up:
        req = urllib.request.Request(up.url + "/admin/splits/voice", method="PUT", data=b'{"weights": {"voice-v1": 90, '
                                     b'"voice-v2": 10}}', headers={"X-Request-Id": "ops-change-17"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.headers["X-Request-Id"] == "ops-change-17"
    lines = [line for line in up.log.read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert len(records) >= 3 and all({"ts", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    split = [r for r in records if r["message"].startswith("split voice set to")]
    assert split and split[0]["request_id"] == "ops-change-17"
    assert any(r["request_id"] == "-" for r in records)  # outside a request
