"""Every query of the Grafana dashboard (deploy/grafana/voxmesh.json) parses and returns data
from a real Prometheus (Debian's /usr/bin/prometheus) scraping a running stack under load
once a second; the gateway's one scrape includes the workers' metrics."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import aiohttp
import pytest
from tests.support.stacks import load, prom_query, scrape_job, start_prometheus, start_stack, tone_config

pytestmark = pytest.mark.slow

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "voxmesh.json"


def _queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"variable {var['name']}", var["query"]["query"]))
    return out


def _substitute(expr: str) -> str:
    """What Grafana sends: variables expanded (All -> .*), $__rate_interval as 4 scrapes + 1."""
    if expr.startswith("label_values("):  # the variable query: the series it lists
        metric, _, _label = expr[len("label_values("):-1].partition(",")
        return f"count by ({_label.strip()}) ({metric.strip()})"
    return (expr.replace("$__rate_interval", "10s").replace("$__interval", "1s")
            .replace("$deployment", ".*"))


def test_every_dashboard_query_is_well_formed() -> None:
    qs = _queries()
    assert len(qs) >= 25
    for title, expr in qs:
        assert expr.count("(") == expr.count(")"), title
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    from deploy.grafana.build_dashboard import build

    assert build() == board, "voxmesh.json is stale: run python deploy/grafana/build_dashboard.py"


async def test_every_panel_query_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    async with (start_stack(tmp_path, tone_config()) as st,
                start_prometheus(tmp_path, [scrape_job("voxmesh", [f"127.0.0.1:{st.port}"])]) as prom,
                aiohttp.ClientSession() as http):
        # a job too, so the runners' edge and the chunk queue have series
        job = {"text": "One. Two sentences for the job runner.", "model": "voice-v1", "voice": "low"}
        async with http.post(st.url + "/v1/jobs", json=job) as r:
            assert r.status == 201, await r.text()
        traffic = asyncio.ensure_future(load(st.url, 14.0, clients=3))
        await asyncio.sleep(12.0)
        failures = []
        for title, expr in _queries():
            data = await prom_query(http, prom, _substitute(expr))
            if data.get("status") != "success":
                failures.append(f"{title}: does not parse: {data.get('error')}")
            elif not data["data"]["result"]:
                failures.append(f"{title}: no data for {_substitute(expr)}")
        rps = await prom_query(http, prom, 'sum(rate(voxmesh_route_requests_total{deployment="voice-v1"}[10s]))')
        relayed = await prom_query(http, prom, "count by (deployment, replica) (voxmesh_worker_in_flight)")
        answers = await traffic
        async with http.get(st.url + "/metrics") as r:
            text = await r.text()
    assert not failures, "\n".join(failures)
    assert answers > 20
    assert float(rps["data"]["result"][0]["value"][1]) > 0.5
    # one scrape of the gateway: every serving replica's own metrics, labelled
    pairs = {(r["metric"]["deployment"], r["metric"]["replica"]) for r in relayed["data"]["result"]}
    assert ("voice-v2", "voice-v2-0") in pairs and any(d == "voice-v1" for d, _ in pairs)
    assert 'voxmesh_worker_stage_seconds_count{replica="voice-v2-0",deployment="voice-v2",stage="inference"}' in text
    assert text.count("# TYPE voxmesh_worker_stage_seconds histogram") == 1
    assert not any(math.isnan(float(r["value"][1])) for r in rps["data"]["result"])
