"""The house rules that a tool can check: ruff on everything, mypy strict on src/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    proc = run("ruff", "check", "src", "tests", "benchmarks")
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.mark.slow
def test_mypy_strict() -> None:
    proc = run("mypy", "src")
    assert proc.returncode == 0, proc.stdout[-4000:]
