"""``voxmesh worker`` as a process: the model preloads while the web stack imports; a port
already taken is a clear error with exit code 2, not a traceback or an abort."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from voxmesh.errors import UnknownModel
from voxmesh.worker.preload import start_preload


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_preload_loads_in_the_background() -> None:
    pre = start_preload("tone", {}, 1)
    assert pre.loaded.result(timeout=10) is None
    assert pre.engine.loaded


def test_preload_rejects_an_unknown_engine_at_once() -> None:
    with pytest.raises(UnknownModel, match="unknown engine 'nope'"):
        start_preload("nope", {}, 1)


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "voxmesh", "worker", "--engine", "piper", "--model", "tts-en",
             "--port", str(port), "--threads", "2"],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "pick another --port" in proc.stderr
    assert "Traceback" not in proc.stderr and "terminate called" not in proc.stderr


def test_sigterm_while_loading_and_after_ready_exits_cleanly() -> None:
    for wait_ready in (False, True):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "voxmesh", "worker", "--engine", "piper", "--model", "tts-en",
             "--port", str(port), "--threads", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if json.load(r)["status"] == "ready":
                        break
            except urllib.error.HTTPError:  # 503 while the model loads: listening, not ready
                if not wait_ready:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            proc.kill()
            pytest.fail("worker never answered /readyz")
        proc.terminate()
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err[-2000:]
        assert "terminate called" not in err and "Traceback" not in err
