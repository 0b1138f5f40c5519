"""gateway.mesh chooses what the data plane runs itself; linkerd mode refuses what it cannot run."""

from __future__ import annotations

import random

import pytest

from voxmesh.deployments import DeploymentsConfig
from voxmesh.errors import ConfigError
from voxmesh.gateway.balancer.pool import Endpoint, Reset
from voxmesh.gateway.golden import GoldenMetrics
from voxmesh.gateway.meshmode import DataPlanePolicy, MeshMode, check_deployments, endpoint_urls
from voxmesh.gateway.resilience.breaker import Breaker, BreakerState
from voxmesh.gateway.resilience.classify import Outcome
from voxmesh.gateway.resilience.no_ejection import NoEjection
from voxmesh.gateway.upstreams import Deployment
from voxmesh.observability.metrics import Registry
from voxmesh.settings import GatewaySettings

SVC = "http://tts-en.voxmesh.svc.cluster.local:9000"


def _cfg(*deps: dict[str, object]) -> DeploymentsConfig:
    return DeploymentsConfig.model_validate({"deployments": list(deps)})


def test_builtin_runs_everything_itself() -> None:
    p = DataPlanePolicy.from_settings(GatewaySettings(retry_max_attempts=4))
    assert p == DataPlanePolicy(MeshMode.BUILTIN, max_attempts=4, ejection=True, builtin_mtls=True,
                                manages_workers=True)  # fmt: skip
    assert isinstance(p.new_breaker(GatewaySettings(), random.Random(0)), Breaker)


def test_linkerd_leaves_retries_breaking_mtls_and_workers_to_the_cluster() -> None:
    p = DataPlanePolicy.from_settings(GatewaySettings(mesh="linkerd", retry_max_attempts=4))
    assert p == DataPlanePolicy(MeshMode.LINKERD, max_attempts=1, ejection=False, builtin_mtls=False,
                                manages_workers=False)  # fmt: skip
    assert isinstance(p.new_breaker(GatewaySettings(), random.Random(0)), NoEjection)


def test_no_ejection_walks_its_transitions_and_never_opens() -> None:
    b = NoEjection()
    for i in range(1, 50):  # CLOSED --FAILURE--> CLOSED, far past the builtin limit of 7
        b.record(b.dispatch(0.0), Outcome.FAILURE, float(i))
        assert b.state(float(i)) is BreakerState.CLOSED and b.available(float(i))
    assert b.consecutive_failures == 49
    b.record(b.dispatch(50.0), Outcome.SUCCESS, 50.0)  # CLOSED --SUCCESS--> CLOSED
    assert b.consecutive_failures == 0
    b.abandon(b.dispatch(51.0), 51.0)
    assert b.state(51.0) is BreakerState.CLOSED and b.open_until == 0.0


def test_a_linkerd_deployment_pool_never_ejects_its_service() -> None:
    settings = GatewaySettings(mesh="linkerd")
    policy = DataPlanePolicy.from_settings(settings)
    dep = Deployment("tts-en", settings, lambda: 0.0, random.Random(0), policy)
    dep.pool.update(Reset([Endpoint(id="tts-en-0", url=SVC)]))
    dep.add(Endpoint(id="tts-en-0", url=SVC), GoldenMetrics(Registry()).endpoint("tts-en", "tts-en-0"))
    up = dep.upstreams["tts-en-0"]
    for _ in range(settings.breaker_failures * 3):
        up.breaker.record(up.breaker.dispatch(0.0), Outcome.FAILURE, 0.0)
    assert [c.ejected for c in dep.candidates(0.0)] == [False]


def test_builtin_accepts_anything_and_balances_every_url() -> None:
    cfg = _cfg({"name": "a", "engine": "tone"}, {"name": "b", "external": {"urls": ["https://x:1", "http://y:2/"]}})
    builtin = DataPlanePolicy.from_settings(GatewaySettings())
    check_deployments(builtin, cfg.deployments)
    assert endpoint_urls(builtin, cfg.by_name("b")) == ["https://x:1", "http://y:2"]


def test_linkerd_accepts_one_plain_service_url() -> None:
    cfg = _cfg({"name": "tts-en", "external": {"urls": [SVC + "/"], "kind": "tts"}})
    linkerd = DataPlanePolicy.from_settings(GatewaySettings(mesh="linkerd"))
    check_deployments(linkerd, cfg.deployments)
    assert endpoint_urls(linkerd, cfg.by_name("tts-en")) == [SVC]


@pytest.mark.parametrize(
    ("dep", "message"),
    [
        ({"name": "tts-en", "engine": "piper"}, "deployment 'tts-en': engine: piper cannot run under gateway.mesh=linkerd"),
        ({"name": "two", "external": {"urls": [SVC, SVC]}}, "deployment 'two': external.urls must hold exactly one"),
        ({"name": "tls", "external": {"urls": ["https://x.ns.svc.cluster.local:9000"]}},
         "deployment 'tls': external.urls[0] must be plain http://"),
        ({"name": "tls2", "external": {"urls": [SVC], "tls": True}}, "deployment 'tls2': external.urls[0] must be plain"),
    ],
)
def test_linkerd_refuses_what_it_cannot_run(dep: dict[str, object], message: str) -> None:
    linkerd = DataPlanePolicy.from_settings(GatewaySettings(mesh="linkerd"))
    with pytest.raises(ConfigError) as info:
        check_deployments(linkerd, _cfg(dep).deployments)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
