"""The observability modules' public names are what we mean them to be."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "voxmesh.observability.stages": {"STAGES", "StageFault", "StageTimes", "bound", "parse_server_timing", "stage"},
    "voxmesh.observability.relay": {"Family", "parse_families", "relay"},
    "voxmesh.observability.requestid": {"HEADER", "REQUEST_ID", "JsonFormatter", "RequestIdFilter",
                                        "configure_logging", "new_id", "pick_request_id"},
    "voxmesh.observability.dashboard": {"STATIC_DIR", "setup_dashboard"},
    "voxmesh.observability.dashboard.views": {"autoscaler_view", "stages_view"},
    "voxmesh.api.request_id": {"echo_request_id", "install", "request_id_middleware"},
    "voxmesh.gateway.fastpath.request_id": {"IdSink"},
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exports(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == EXPECTED[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name
