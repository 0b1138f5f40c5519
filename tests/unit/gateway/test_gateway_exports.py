"""The public surface of the data plane and its policies is what we mean it to be."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "voxmesh.gateway.dataplane": ["DataPlane"],
    "voxmesh.gateway.balancer.pool": ["Add", "Delta", "Endpoint", "Pool", "Remove", "Reset", "Update"],
    "voxmesh.gateway.balancer.ewma": ["PeakEwma"],
    "voxmesh.gateway.balancer.p2c": ["Candidate", "PowerOfTwoChoices", "Unavailable"],
    "voxmesh.gateway.resilience.classify": ["DEFAULT_RETRY_STATUSES", "ErrorKind", "Outcome", "classify"],
    "voxmesh.gateway.resilience.retry_budget": ["RetryBudget"],
    "voxmesh.gateway.resilience.backoff": ["Backoff"],
    "voxmesh.gateway.resilience.breaker": ["TRANSITIONS", "Breaker", "BreakerState", "Event", "Ticket"],
    "voxmesh.gateway.resilience.timeouts": ["Deadlines", "RouteTimeouts", "TimeoutKind"],
    "voxmesh.gateway.resilience.no_ejection": ["NoEjection"],
    "voxmesh.gateway.meshmode": ["DataPlanePolicy", "MeshMode", "check_deployments", "endpoint_urls"],
    "voxmesh.gateway.split": ["TrafficSplit", "WeightedChoice"],
    "voxmesh.gateway.canary": [
        "CanaryConfig",
        "CanaryPhase",
        "CanaryState",
        "Decision",
        "LogEntry",
        "Snapshot",
        "decide",
        "split_weights",
    ],
    "voxmesh.gateway.canary_loop": ["CanaryLoop"],
    "voxmesh.gateway.golden": ["EdgeStats", "EndpointStats", "GoldenMetrics", "summary"],
    "voxmesh.gateway.upstreams": ["Attempt", "Deployment", "Upstream"],
    "voxmesh.gateway.fastpath": ["FastGatewayServer", "start_fast_gateway"],
    "voxmesh.gateway.fastpath.client": [
        "HIGH_WATER", "LOW_WATER", "ConnectFailed", "ConnectionBroken", "ConnectionPool", "Response",
    ],
    "voxmesh.gateway.fastpath.sink": ["AiohttpSink", "Sink", "error_parts"],
    "voxmesh.gateway.fastpath.server": ["Exchange", "Handler", "HeadLimits", "LimitFor", "Request", "ServerConnection"],
    "voxmesh.gateway.cors": ["CorsPolicy", "cors_middleware"],
    "voxmesh.gateway.fastpath.routes": ["HOT_BODY_LIMIT", "PEER_HEADER", "HeaderSink", "HotRoutes", "Relay"],
    "voxmesh.gateway.fastpath.gateway": ["FastGatewayServer", "peer_middleware", "start_fast_gateway"],
    "voxmesh.observability.metrics": [
        "LATENCY_BUCKETS",
        "Counter",
        "CounterChild",
        "Gauge",
        "GaugeChild",
        "Histogram",
        "HistogramChild",
        "Registry",
    ],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_sans_io_policies_import_no_asyncio_or_sockets() -> None:
    import ast
    from pathlib import Path

    import voxmesh.gateway as gw

    root = Path(gw.__file__).parent
    policies = [
        *root.glob("balancer/*.py"),
        *root.glob("resilience/*.py"),
        root / "split.py",
        root / "canary.py",
    ]
    for path in policies:
        tree = ast.parse(path.read_text())
        imported = {
            a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & {"asyncio", "socket", "aiohttp", "ssl"}, (path.name, imported)
