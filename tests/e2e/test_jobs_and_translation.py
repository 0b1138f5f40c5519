"""Long-text jobs and translation through the public API of the real stack, as a user would:
the jobs CLI with its progress bar, the REST endpoints, and the libretranslatepy client."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path
from typing import Any

import pytest
from libretranslatepy import LibreTranslateAPI
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.slow


def call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_job_via_rest_then_download(stack: RunningStack) -> None:
    text = " ".join(f"Paragraph {i} of a small book, read aloud by the job runner." for i in range(12))
    status, job = call("POST", stack.url + "/v1/jobs",
                       {"text": text, "model": "tts-1", "voice": "joe", "response_format": "wav"})
    assert status in (200, 201, 202), job
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        _, st = call("GET", f"{stack.url}/v1/jobs/{job['id']}")
        if st["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert st["state"] == "succeeded", st
    assert st["chunks_done"] == st["chunks_total"] >= 2
    with urllib.request.urlopen(f"{stack.url}/v1/jobs/{job['id']}/result", timeout=60) as r:
        audio = r.read()
    with wave.open(io.BytesIO(audio)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert abs(seconds - st["audio_seconds"]) < 0.1 and seconds > 20


def test_job_bad_input_is_a_clear_4xx(stack: RunningStack) -> None:
    status, err = call("POST", stack.url + "/v1/jobs", {"text": "", "model": "tts-1", "voice": "joe"})
    assert status == 400 and "text" in err["error"]["message"]
    status, err = call("POST", stack.url + "/v1/jobs", {"text": "Hello.", "model": "tts-1", "voice": "nobody"})
    assert status == 404 and "joe" in err["error"]["message"]


def test_jobs_cli_submit_with_progress(stack: RunningStack, tmp_path: Path) -> None:
    book = tmp_path / "book.md"
    book.write_text("# Chapter one\n\nIt was a quiet night. The sea was calm.\n\n"
                    "# Chapter two\n\nMorning came early. Gulls called over the harbour.\n")
    out = tmp_path / "book.wav"
    proc = subprocess.run(
        [sys.executable, "-m", "voxmesh", "jobs", "submit", str(book), "--url", stack.url, "--voice", "joe",
         "--model", "tts-1", "--format", "wav", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with wave.open(str(out)) as w:
        assert w.getnframes() / w.getframerate() > 3


def test_translate_with_libretranslate_client(stack: RunningStack) -> None:
    lt = LibreTranslateAPI(stack.url + "/")
    codes = {lang["code"] for lang in lt.languages()}
    assert {"en", "zh"} <= codes
    out = lt.translate("Good morning, how are you?", "en", "zh")
    assert out and any("\u4e00" <= ch <= "\u9fff" for ch in out)
    status, err = call("POST", stack.url + "/translate", {"q": "hello", "source": "en", "target": "xx"})
    assert status == 400 and "en" in err["error"]["message"]
