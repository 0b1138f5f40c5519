from __future__ import annotations

from pathlib import Path

import pytest

from voxmesh.cpu_budget import cpu_budget, online_cores, parse_cfs_quota, parse_cpu_max, quota_cores


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(("text", "cores"), [
    ("max 100000\n", None), ("200000 100000\n", 2.0), ("150000 100000", 1.5), ("50000 100000", 0.5),
    ("400000", 4.0), ("", None), ("garbage 1", None), ("0 100000", None),
])
def test_parse_cpu_max(text: str, cores: float | None) -> None:
    assert parse_cpu_max(text) == cores


@pytest.mark.parametrize(("quota", "period", "cores"), [
    ("-1\n", "100000\n", None), ("300000\n", "100000\n", 3.0), ("50000", "100000", 0.5), ("x", "100000", None),
])
def test_parse_cfs_quota(quota: str, period: str, cores: float | None) -> None:
    assert parse_cfs_quota(quota, period) == cores


def test_v2_limit_rounds_down_and_is_capped_by_the_cores(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "250000 100000\n")
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 64) == 2
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 1) == 1


def test_v2_unlimited_falls_back_to_the_cores(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "max 100000\n")
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 16) == 16


def test_fraction_of_a_core_is_one(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "50000 100000\n")
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 8) == 1


def test_v2_own_cgroup_path_from_proc(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "max 100000\n")
    _write(tmp_path, "kubepods/pod1/cpu.max", "400000 100000\n")
    assert quota_cores(tmp_path, "0::/kubepods/pod1\n") == 4.0
    assert cpu_budget(tmp_path, proc_cgroup="0::/kubepods/pod1\n", cores=lambda: 32) == 4


def test_v1_quota(tmp_path: Path) -> None:
    _write(tmp_path, "cpu,cpuacct/cpu.cfs_quota_us", "300000\n")
    _write(tmp_path, "cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 16) == 3


def test_v1_unlimited(tmp_path: Path) -> None:
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 6) == 6


def test_no_cgroup_files_uses_affinity(tmp_path: Path) -> None:
    assert cpu_budget(tmp_path / "absent", proc_cgroup="") == online_cores() >= 1


def test_smallest_of_several_limits_wins(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "800000 100000\n")
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "200000\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cpu_budget(tmp_path, proc_cgroup="", cores=lambda: 16) == 2


def test_deployment_threads_default_to_the_budget() -> None:
    from voxmesh.deployments import Deployment

    dep = Deployment.model_validate({"name": "d", "engine": "piper"})
    assert dep.threads_per_replica() == cpu_budget()
    assert Deployment.model_validate({"name": "d", "engine": "piper", "threads": 3}).threads_per_replica() == 3
