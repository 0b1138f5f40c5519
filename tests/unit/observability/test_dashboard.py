from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from voxmesh.api.errors import error_middleware
from voxmesh.autoscale import (
    Metric,
    MetricKind,
    MetricSample,
    PolicyState,
    Snapshot,
    decide,
    spec_from_deployment,
)
from voxmesh.autoscale.lifecycle import ReplicaState
from voxmesh.autoscale.supervisor import Replica, Supervisor
from voxmesh.deployments import Deployment
from voxmesh.observability.dashboard import STATIC_DIR, setup_dashboard
from voxmesh.observability.dashboard.views import autoscaler_view, stages_view
from voxmesh.observability.metrics import Registry

PANELS = ("topology", "replicas", "autoscaler", "stages", "canary", "jobs", "playground")


def _supervisor() -> tuple[Supervisor, Any]:
    dep = Deployment.model_validate({"name": "tts", "engine": "tone", "replicas": {"min": 1, "max": 4, "warm": 1},
                                     "scaling": {"in_flight_per_replica": 2}})
    sup = Supervisor([dep], lambda name, event: None)
    for i, state in enumerate((ReplicaState.SERVING, ReplicaState.SERVING, ReplicaState.WARM, ReplicaState.STOPPED)):
        rep = Replica("tts", i, 9000 + i, state=state)
        rep.metrics = {"voxmesh_worker_in_flight": float(i), "voxmesh_worker_queue_length": 0.0}
        sup.replicas["tts"].append(rep)
    sup.events.append({"t": 1.0, "event": "scale", "deployment": "tts", "desired": 3, "reason": "1 -> 3: metrics"})
    snap = Snapshot(now=10.0, deployment="tts", current_replicas=2, ready_replicas=2, warm_replicas=1,
                    metrics=(MetricSample(Metric.IN_FLIGHT, 6.0, MetricKind.TOTAL),))
    decision, _ = decide(snap, spec_from_deployment(dep), PolicyState())

    from types import SimpleNamespace

    return sup, SimpleNamespace(last={"tts": decision})


def test_autoscaler_view_has_states_warm_pool_decision_and_events() -> None:
    sup, loop = _supervisor()
    view = autoscaler_view(sup, loop)
    tts = view["deployments"]["tts"]
    assert tts["replicas"] == {"serving": 2, "warm": 1, "stopped": 1}
    assert tts["warm_pool"] == {"size": 1, "target": 1}
    assert [r["id"] for r in tts["list"]] == ["tts-0", "tts-1", "tts-2"]  # stopped ones are left out
    dec = tts["last_decision"]
    assert dec["reason"] == "metrics" and dec["desired"] > 2 and dec["proposals"][0]["metric"] == "in_flight"
    assert view["events"][-1]["reason"] == "1 -> 3: metrics"
    assert autoscaler_view(sup, None)["deployments"]["tts"]["last_decision"] is None


def _stage_text(values: dict[str, list[float]]) -> str:
    reg = Registry()
    h = reg.histogram("voxmesh_worker_stage_seconds", "x", ("deployment", "stage"))
    for stage, obs in values.items():
        for v in obs:
            h.labels("tts", stage).observe(v)
    return reg.render()


def test_stages_view_sums_replicas_and_estimates_quantiles() -> None:
    a = _stage_text({"g2p": [0.3, 0.31], "inference": [0.1, 0.1]})
    b = _stage_text({"g2p": [0.29], "inference": [0.12]})
    view = stages_view([({"deployment": "tts", "replica": "tts-0"}, a), ({"deployment": "tts", "replica": "tts-1"}, b)])
    g2p, inf = view["deployments"]["tts"]["g2p"], view["deployments"]["tts"]["inference"]
    assert g2p["requests"] == 3 and abs(g2p["mean_ms"] - 300.0) < 0.01
    assert 200 <= g2p["p50_ms"] <= 300 < g2p["p99_ms"] <= 400  # two in (0.2, 0.3], 0.31 in (0.3, 0.4]
    assert inf["requests"] == 3 and inf["p95_ms"] <= 150
    assert stages_view([]) == {"stages": ["queue", "normalize", "g2p", "inference", "prosody", "encode"],
                               "deployments": {}}


def test_every_panel_has_its_own_module_and_nothing_loads_from_elsewhere() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    app_js = (STATIC_DIR / "app.js").read_text()
    for panel in PANELS:
        assert f'id="{panel}"' in html
        assert (STATIC_DIR / "panels" / f"{panel}.js").is_file()
        assert f"./panels/{panel}.js" in app_js
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "http://" not in text and "https://" not in text, path  # no CDN, no remote asset


async def test_routes_serve_assets_with_a_strict_policy_and_the_views() -> None:
    sup, loop = _supervisor()
    app = web.Application(middlewares=[error_middleware])  # as the gateway's app
    setup_dashboard(app, supervisor=lambda: sup, autoscaler=lambda: loop)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/dashboard")
        assert r.status == 200 and r.content_type == "text/html"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        r = await client.get("/dashboard/panels/topology.js")
        assert r.status == 200 and r.content_type == "text/javascript"
        for bad in ("/dashboard/nope.js", "/dashboard/../settings.py", "/dashboard/panels/%2e%2e/__init__.py"):
            assert (await client.get(bad)).status == 404, bad
        r = await client.get("/admin/autoscaler")
        assert (await r.json())["deployments"]["tts"]["warm_pool"]["size"] == 1
        r = await client.get("/admin/stages")
        assert (await r.json())["deployments"] == {}


async def test_views_answer_empty_without_a_supervisor() -> None:
    app = web.Application()
    setup_dashboard(app, supervisor=lambda: None)
    async with TestClient(TestServer(app)) as client:
        assert await (await client.get("/admin/autoscaler")).json() == {"deployments": {}, "events": []}
        assert (await (await client.get("/admin/stages")).json())["deployments"] == {}


