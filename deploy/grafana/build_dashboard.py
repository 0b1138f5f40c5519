"""Writes voxmesh.json, the Grafana dashboard (run: python deploy/grafana/build_dashboard.py).

Rows: golden metrics per deployment, per endpoint, per edge (caller -> deployment -> endpoint);
autoscaling and replicas; jobs; worker stages. Every query reads the names documented in
src/voxmesh/gateway/golden.py, the worker's /metrics (relayed by the gateway with deployment
and replica labels on one machine) and the autoscaler's. tests/integration/test_grafana_prometheus.py
runs every query against a real Prometheus scraping a running stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEP = 'deployment=~"$deployment"'
RI = "$__rate_interval"


def q(expr: str, legend: str) -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend, "datasource": {"type": "prometheus", "uid": "${datasource}"}}


def quantiles(metric: str, by: str, legend: str, sel: str = DEP) -> list[dict[str, Any]]:
    return [q(f"histogram_quantile({p}, sum by ({by}, le) (rate({metric}_bucket{{{sel}}}[{RI}])))",
              f"p{int(p * 100)} {legend}") for p in (0.5, 0.95, 0.99)]


ROWS: list[tuple[str, list[tuple[str, str, list[dict[str, Any]]]]]] = [
    ("Golden metrics per deployment", [
        ("Requests per second", "reqps", [
            q(f"sum by (deployment) (rate(voxmesh_route_requests_total{{{DEP}}}[{RI}]))", "{{deployment}}")]),
        ("Success rate", "percentunit", [
            q(f'sum by (deployment) (rate(voxmesh_route_requests_total{{{DEP},status!~"5..|stream_error"}}[{RI}])) '
              f"/ sum by (deployment) (rate(voxmesh_route_requests_total{{{DEP}}}[{RI}]))", "{{deployment}}")]),
        ("Latency to first byte", "s", quantiles("voxmesh_route_latency_seconds", "deployment", "{{deployment}}")),
        ("Retries per second", "reqps", [
            q(f"sum by (deployment) (rate(voxmesh_route_retries_total{{{DEP}}}[{RI}]))", "{{deployment}}")]),
        ("Requests by status", "reqps", [
            q(f"sum by (deployment, status) (rate(voxmesh_route_requests_total{{{DEP}}}[{RI}]))",
              "{{deployment}} {{status}}")]),
    ]),
    ("Endpoints (replicas as the gateway sees them)", [
        ("Attempts per second by classification", "reqps", [
            q(f"sum by (deployment, endpoint, classification) (rate(voxmesh_endpoint_requests_total{{{DEP}}}[{RI}]))",
              "{{endpoint}} {{classification}}")]),
        ("Endpoint latency", "s", quantiles("voxmesh_endpoint_latency_seconds", "deployment, endpoint", "{{endpoint}}")),
        ("In flight", "short", [q(f"sum by (deployment, endpoint) (voxmesh_endpoint_in_flight{{{DEP}}})", "{{endpoint}}")]),
        ("Breaker state (0 closed, 1 open, 2 half-open)", "short", [
            q(f"max by (deployment, endpoint) (voxmesh_endpoint_breaker_state{{{DEP}}})", "{{endpoint}}")]),
        ("Peak-EWMA latency", "s", [q(f"max by (deployment, endpoint) (voxmesh_endpoint_ewma_seconds{{{DEP}}})",
                                     "{{endpoint}}")]),
    ]),
    ("Edges (caller -> deployment -> endpoint)", [
        ("Edge requests per second", "reqps", [
            q(f"sum by (caller, deployment, endpoint) (rate(voxmesh_edge_requests_total{{{DEP}}}[{RI}]))",
              "{{caller}} -> {{endpoint}}")]),
        ("Edge success rate", "percentunit", [
            q(f'sum by (caller, deployment, endpoint) (rate(voxmesh_edge_requests_total{{{DEP},classification="success"}}[{RI}])) '
              f"/ sum by (caller, deployment, endpoint) (rate(voxmesh_edge_requests_total{{{DEP}}}[{RI}]))",
              "{{caller}} -> {{endpoint}}")]),
        ("Edge latency", "s", quantiles("voxmesh_edge_latency_seconds", "caller, deployment, endpoint",
                                        "{{caller}} -> {{endpoint}}")),
    ]),
    ("Autoscaling", [
        ("Replicas by state", "short", [q(f"sum by (deployment, state) (voxmesh_replicas{{{DEP}}})",
                                          "{{deployment}} {{state}}")]),
        ("Desired replicas", "short", [q(f"max by (deployment) (voxmesh_autoscaler_desired_replicas{{{DEP}}})",
                                         "{{deployment}}")]),
        ("Policy inputs", "short", [q(f"max by (deployment, metric) (voxmesh_autoscaler_metric_value{{{DEP}}})",
                                      "{{deployment}} {{metric}}")]),
        ("Decisions by reason", "ops", [
            q(f"sum by (deployment, reason) (rate(voxmesh_autoscaler_decisions_total{{{DEP}}}[{RI}]))",
              "{{deployment}} {{reason}}")]),
        ("Worker in-flight and queue", "short", [
            q(f"sum by (deployment) (voxmesh_worker_in_flight{{{DEP}}})", "in flight {{deployment}}"),
            q(f"sum by (deployment) (voxmesh_worker_queue_length{{{DEP}}})", "queued {{deployment}}")]),
        ("Audio seconds per second (throughput)", "short", [
            q(f"sum by (deployment) (rate(voxmesh_worker_audio_seconds_total{{{DEP}}}[{RI}]))", "{{deployment}}")]),
    ]),
    ("Jobs", [
        ("Chunks waiting for a runner", "short", [q("max(voxmesh_jobs_queue_length)", "queue")]),
        ("Chunk synthesis by the runners", "reqps", [
            q(f'sum by (deployment, classification) (rate(voxmesh_edge_requests_total{{caller="jobs-runner"}}[{RI}]))',
              "{{deployment}} {{classification}}")]),
        ("Chunk latency", "s", quantiles("voxmesh_edge_latency_seconds", "deployment", "{{deployment}}",
                                         'caller="jobs-runner"')),
    ]),
    ("Worker stages", [
        ("Mean seconds per request by stage", "s", [
            q(f"sum by (deployment, stage) (rate(voxmesh_worker_stage_seconds_sum{{{DEP}}}[{RI}])) "
              f"/ sum by (deployment, stage) (rate(voxmesh_worker_stage_seconds_count{{{DEP}}}[{RI}]))",
              "{{deployment}} {{stage}}")]),
        ("p95 by stage", "s", [
            q(f"histogram_quantile(0.95, sum by (deployment, stage, le) (rate(voxmesh_worker_stage_seconds_bucket{{{DEP}}}[{RI}])))",
              "{{deployment}} {{stage}}")]),
        ("Share of request time by stage", "percentunit", [
            q(f"sum by (deployment, stage) (rate(voxmesh_worker_stage_seconds_sum{{{DEP}}}[{RI}])) "
              f"/ ignoring(stage) group_left sum by (deployment) (rate(voxmesh_worker_stage_seconds_sum{{{DEP}}}[{RI}]))",
              "{{deployment}} {{stage}}")]),
    ]),
]


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid = 1
    y = 0
    for title, row in ROWS:
        panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        for i, (ptitle, unit, targets) in enumerate(row):
            for k, t in enumerate(targets):
                t["refId"] = chr(ord("A") + k)
            panels.append({
                "type": "timeseries", "title": ptitle, "id": pid,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 8, "x": 8 * (i % 3), "y": y + 8 * (i // 3)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": targets,
            })
            pid += 1
        y += 8 * ((len(row) + 2) // 3)
    return {
        "title": "voxmesh", "uid": "voxmesh", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-30m", "to": "now"}, "refresh": "10s", "tags": ["voxmesh"],
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"name": "deployment", "type": "query", "label": "deployment", "multi": True, "includeAll": True,
             "allValue": ".*", "current": {"text": "All", "value": "$__all"},
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(voxmesh_route_requests_total, deployment)", "refId": "deployment"},
             "definition": "label_values(voxmesh_route_requests_total, deployment)", "refresh": 2},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("voxmesh.json")
    out.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {out}")
