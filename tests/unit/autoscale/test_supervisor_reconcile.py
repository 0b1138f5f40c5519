"""Supervisor reconcile: a crashed replica is coming back (it restarts after its backoff), so
it must not make the supervisor spawn a fresh one beside it; every kill -9 would otherwise
leave one more worker process behind (found by benchmarks/chaos.py)."""

from __future__ import annotations

from typing import Any

from voxmesh.autoscale.lifecycle import ReplicaState
from voxmesh.autoscale.supervisor import Replica, Supervisor
from voxmesh.deployments import Deployment


class CountingSupervisor(Supervisor):
    def __init__(self, dep: Deployment) -> None:
        super().__init__([dep], lambda name, event: None)
        self.spawned = 0

    def _spawn(self, dep: Deployment) -> Replica:
        self.spawned += 1
        rep = Replica(dep.name, 100 + self.spawned, 0)
        self.replicas[dep.name].append(rep)
        return rep


def _dep(**replicas: Any) -> Deployment:
    return Deployment.model_validate({"name": "tone", "engine": "tone", "replicas": replicas})


def _replica(index: int, state: ReplicaState) -> Replica:
    rep = Replica("tone", index, 0)
    rep.state = state
    return rep


def test_a_crashed_replica_is_not_replaced_while_it_restarts() -> None:
    sup = CountingSupervisor(_dep(min=2, max=2, warm=0))
    sup.replicas["tone"] = [_replica(0, ReplicaState.SERVING), _replica(1, ReplicaState.CRASHED)]
    sup.scale("tone", 2, reason="test")
    assert sup.spawned == 0


def test_a_missing_replica_is_still_spawned() -> None:
    sup = CountingSupervisor(_dep(min=2, max=2, warm=1))
    sup.replicas["tone"] = [_replica(0, ReplicaState.SERVING), _replica(1, ReplicaState.CRASHED)]
    sup.scale("tone", 2, reason="test")
    assert sup.spawned == 1  # the warm slot: nothing else is on its way
    sup.scale("tone", 2, reason="again")
    assert sup.spawned == 1
