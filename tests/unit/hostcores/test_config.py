"""The ``hostcores`` settings: resolved by ``voxmesh up``, handed to its workers through the
settings' own ``VOXMESH_HOSTCORES__*`` variables, read back into a broker by the worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from voxmesh.deployments import Deployment
from voxmesh.hostcores.budget import Share
from voxmesh.hostcores.config import broker_for, default_file, resolve, worker_env
from voxmesh.settings import HostCoreShare, HostCoresSettings, Settings

DEPS = [Deployment(name="piper", engine="piper", cores={"weight": 3}),
        Deployment(name="llm", engine="tone", cores={"weight": 1, "min": 2})]


def test_voxmesh_up_hands_its_budget_to_the_workers_through_the_settings(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = resolve(HostCoresSettings(total=6), tmp_path, DEPS)
    assert resolved.file == default_file(tmp_path) and resolved.file is not None and resolved.file.is_absolute()
    assert resolved.shares == {"piper": HostCoreShare(weight=3), "llm": HostCoreShare(weight=1, min=2)}
    env = worker_env(resolved)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    worker = Settings().hostcores  # what the worker's load_settings reads
    assert worker == resolved
    got = broker_for(worker, "llm")
    assert got is not None
    broker, deployment = got
    assert (broker.path, broker.total, deployment) == (resolved.file, 6, "llm")
    assert broker.shares == {"piper": Share(3.0, 0), "llm": Share(1.0, 2)}


def test_off_or_without_a_file_a_worker_owns_its_cores(tmp_path: Path) -> None:
    assert broker_for(HostCoresSettings(), "piper") is None  # a worker started by hand
    off = resolve(HostCoresSettings(enabled=False), tmp_path, DEPS)
    assert worker_env(off) == {"VOXMESH_HOSTCORES__ENABLED": "false"}
    assert broker_for(off, "piper") is None


def test_default_file_is_in_memory_and_one_per_data_dir(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    a, b = default_file(tmp_path / "a", shm), default_file(tmp_path / "b", shm)
    assert a.parent == shm and a != b
    assert default_file(tmp_path / "a", tmp_path / "absent") == (tmp_path / "a" / "run" / "host-cores.json")


def test_bad_share_is_refused_with_the_field() -> None:
    with pytest.raises(ValidationError, match="weight"):
        Deployment(name="piper", engine="piper", cores={"weight": 0})
    with pytest.raises(ValidationError, match="total"):
        HostCoresSettings(total=0)
