"""deploy/prometheus/rules.yaml: valid for Prometheus (``promtool check rules``), correct on
known series (``promtool test rules deploy/prometheus/tests/*.yaml``), every alert unit-tested,
and every metric it reads is one voxmesh exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yaml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is missing: install the Debian package 'prometheus' (make system-deps)"
)


def _rules() -> list[dict[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_check_rules() -> None:
    proc = _promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


@needs_promtool
def test_promtool_test_rules() -> None:
    assert len(TESTS) >= 3
    proc = _promtool("test", "rules", *map(str, TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(TESTS)


@needs_promtool
def test_the_unit_tests_catch_a_wrong_burn_rate(tmp_path: Path) -> None:
    """The promtool tests can fail: a page threshold of 1.44x instead of 14.4x is caught."""
    bad = tmp_path / "deploy" / "prometheus"
    (bad / "tests").mkdir(parents=True)
    text = RULES.read_text()
    assert text.count("(14.4 * 0.001)") == 2
    (bad / "rules.yaml").write_text(text.replace("(14.4 * 0.001)", "(1.44 * 0.001)"))
    shutil.copy(ROOT / "deploy" / "prometheus" / "tests" / "slo_alerts.yaml", bad / "tests")
    proc = _promtool("test", "rules", "tests/slo_alerts.yaml", cwd=bad)
    assert proc.returncode != 0
    assert "VoxmeshErrorBudgetBurnFast" in proc.stdout + proc.stderr


def test_every_alert_is_unit_tested() -> None:
    tested = {m for t in TESTS for m in re.findall(r"alertname: (\w+)", t.read_text())}
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts - tested == set()
    assert {"VoxmeshErrorBudgetBurnFast", "VoxmeshLatencyBudgetBurnFast", "VoxmeshNoReadyReplica",
            "VoxmeshBreakerOpen", "VoxmeshWorkerQueueGrowing", "VoxmeshJobsFailing"} <= alerts  # fmt: skip


def test_rules_read_only_metrics_voxmesh_exports() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "voxmesh").rglob("*.py"))
    recorded = {r["record"] for r in _rules() if "record" in r}
    read: set[str] = set()
    for rule in _rules():
        for name in re.findall(r"(?<![:\w])(voxmesh_[a-z_]+)", rule["expr"]):
            read.add(re.sub(r"_(bucket|count|sum)$", "", name))
    assert read, "no voxmesh metric read?"
    missing = sorted(n for n in read if n not in source)
    assert missing == [], f"rules read metrics no code exports: {missing}"
    for name in recorded:  # level:metric:operations (Prometheus naming practice)
        assert re.fullmatch(r"[a-z_]*:voxmesh_[a-z_]+:[a-z0-9_]+", name), name
