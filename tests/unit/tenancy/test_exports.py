"""The public surface of tenancy is what we mean it to be."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "voxmesh.tenancy": [
        "UNLIMITED", "Admission", "BucketResult", "BucketSpec", "BucketState", "Decision", "DefaultLimits",
        "Limiter", "MemoryLimiter", "RouteKind", "TenantLimits", "UsageKind", "UsageMeter", "audio_seconds",
        "build_admission",
    ],
    "voxmesh.tenancy.admission": ["Admission", "build_admission"],
    "voxmesh.tenancy.hook": ["LimitsHook"],
    "voxmesh.tenancy.limiter": ["Limiter", "MemoryLimiter"],
    "voxmesh.tenancy.redis_limiter": ["RedisLimiter"],
    "voxmesh.tenancy.http": ["ADMIN_SCOPE", "DEFAULT_TENANT", "PrincipalLike", "principal_of", "read_usage",
                             "usage_handler"],
    "voxmesh.tenancy.gate": ["admit_request", "meter_answer", "rate_headers", "refusal_parts", "refusal_response",
                             "request_cost"],
    "voxmesh.api.openapi": ["OPERATIONS", "Operation", "build_openapi", "setup_openapi_routes"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is exported but missing"
