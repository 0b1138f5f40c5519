"""Deployments' core shares become the workers' host-budget environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxmesh.deployments import Deployment
from voxmesh.hostcores.broker import parse_shares
from voxmesh.hostcores.budget import Share
from voxmesh.hostcores.config import shares_text, worker_env


def test_shares_round_trip_through_the_worker_env() -> None:
    deps = [Deployment(name="piper", engine="piper", cores={"weight": 3}),
            Deployment(name="llm", engine="tone", cores={"weight": 1, "min": 2})]
    assert shares_text(deps) == "piper=3:0,llm=1:2"
    assert parse_shares(shares_text(deps)) == {"piper": Share(3.0, 0), "llm": Share(1.0, 2)}
    assert worker_env({}, deps, "piper") == {}  # no budget file: workers own their threads as before
    env = worker_env({"VOXMESH_HOST_CORES_FILE": "/dev/shm/x.json"}, deps, "llm")
    assert env == {"VOXMESH_HOST_CORE_SHARES": "piper=3:0,llm=1:2", "VOXMESH_DEPLOYMENT": "llm"}


def test_bad_share_is_refused_with_the_field() -> None:
    with pytest.raises(ValidationError, match="weight"):
        Deployment(name="piper", engine="piper", cores={"weight": 0})
