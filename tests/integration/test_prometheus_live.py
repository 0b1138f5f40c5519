"""deploy/prometheus/rules.yaml on a real Prometheus scraping a real ``voxmesh up`` stack.

Two ``engine: tone`` deployments serve a short known load: ``tone`` answers everything,
``broken`` has ``VOXMESH_WORKER__FAULT_ERROR_RATE=1.0`` (every synthesis fails with 500).
Prometheus (the Debian package, on a free loopback port, 1 s scrape and evaluation) scrapes
the gateway and, through a file_sd list written here, every worker (the mesh is off so that
workers speak plain HTTP, as pods do behind the Linkerd proxy). Then, with the rules as
shipped: every recording rule's expression parses and returns data, every rule evaluates
without error, the figures are the right ones (tone 100 % success, broken 0 %), and the
fast burn-rate page fires for ``broken`` and only for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tests.support.stacks import closed_loop, prom_query, scrape_job, start_prometheus, start_stack
from tests.support.waits import until

from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"

CONFIG = {
    "deployments": [
        {"name": "tone", "engine": "tone", "replicas": {"min": 1, "max": 1}, "threads": 1},
        {"name": "broken", "engine": "tone", "replicas": {"min": 1, "max": 1}, "threads": 1,
         "env": {"VOXMESH_WORKER__FAULT_ERROR_RATE": "1.0"}},
    ],
    "aliases": {"tts-1": "tone"},
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    # the breaker must not eject "broken": its worker has to keep counting 500s while Prometheus watches
    async with start_stack(tmp_path, CONFIG, mesh={"enabled": False}, jobs={"runners": 0},
                           gateway={"breaker_failures": 100_000}) as st:
        yield st


@pytest.fixture
async def prometheus(tmp_path: Path, stack: Stack) -> AsyncIterator[str]:
    workers = [
        {"targets": [f"127.0.0.1:{r.port}"], "labels": {"deployment": name}}
        for name in ("tone", "broken") for r in stack.supervisor.serving(name)
    ]  # fmt: skip
    assert len(workers) == 2
    (tmp_path / "workers.json").write_text(json.dumps(workers))
    scrape = [
        scrape_job("voxmesh-gateway", [stack.url.removeprefix("http://")]),
        {"job_name": "voxmesh-workers",
         "file_sd_configs": [{"files": [str(tmp_path / "workers.json")], "refresh_interval": "1s"}]},
    ]  # fmt: skip
    async with start_prometheus(tmp_path, scrape, rule_files=[RULES], scrape_timeout="900ms") as url:
        yield url


async def _query(session: aiohttp.ClientSession, prom: str, expr: str) -> list[dict[str, Any]]:
    body = await prom_query(session, prom, expr)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def _load(url: str, seconds: float) -> dict[str, list[int]]:
    """Two closed-loop clients a deployment, 20 ms apart: every status, per deployment."""
    async def clients(model: str) -> list[int]:
        def body(i: int, n: int) -> dict[str, str]:
            return {"model": model, "input": f"Client {i} says {n}.", "voice": "low", "response_format": "pcm"}
        return await closed_loop(url, body, clients=2, seconds=seconds, pause_s=0.02)

    tone, broken = await asyncio.gather(clients("tone"), clients("broken"))
    return {"tone": tone, "broken": broken}


async def test_rules_return_data_and_the_burn_rate_page_fires(stack: Stack, prometheus: str) -> None:
    rules_doc = yaml.safe_load(RULES.read_text())
    records = {r["record"]: r["expr"] for g in rules_doc["groups"] for r in g["rules"] if "record" in r}
    async with aiohttp.ClientSession() as session:
        statuses = await _load(stack.url, 6.0)
        assert statuses["tone"] and set(statuses["tone"]) == {200}
        assert statuses["broken"] and all(s >= 500 for s in statuses["broken"])

        async def all_have_data() -> dict[str, int] | None:
            counts = {name: len(await _query(session, prometheus, expr)) for name, expr in records.items()}
            return counts if all(counts.values()) else None

        try:
            await until(all_have_data, 30, "every recording rule's expression to return data", every=0.5)
        finally:
            empty = [n for n, e in records.items() if not await _query(session, prometheus, e)]
            assert empty == [], f"recording rules with no data: {empty}"
        for name in records:  # the recorded series themselves exist (the rule ran)
            await until(lambda n=name: _query(session, prometheus, n), 10, f"recorded series {name}", every=0.5)

        async def per(label: str, record: str) -> dict[str, float] | None:
            """The recorded ratio per deployment, once both deployments have one (a rate needs
            two scrapes of each; on a loaded machine one may lag the other by a rule cycle)."""
            got = {s["metric"][label]: float(s["value"][1]) for s in await _query(session, prometheus, record)}
            return got if set(got) == {"tone", "broken"} else None

        success = await until(lambda: per("deployment", "deployment:voxmesh_success:ratio_rate5m"), 20,
                              "both deployments' success ratio", every=0.5)
        assert success == {"tone": 1.0, "broken": 0.0}
        worker_ok = await until(lambda: per("model", "model:voxmesh_worker_success:ratio_rate5m"), 20,
                                "both workers' success ratio", every=0.5)
        assert worker_ok == {"tone": 1.0, "broken": 0.0}

        # VoxmeshNoReadyReplica joins the autoscaler's wish with the serving replicas on
        # `deployment`: with the real labels the join matches both deployments (so it stays quiet)
        joined = await _query(session, prometheus, 'voxmesh_autoscaler_desired_replicas > 0 and on (deployment) '
                                                   'sum by (deployment) (voxmesh_replicas{state="serving"}) > 0')
        assert sorted(s["metric"]["deployment"] for s in joined) == ["broken", "tone"]

        async def firing() -> list[dict[str, Any]]:
            async with session.get(prometheus + "/api/v1/alerts") as resp:
                alerts: list[dict[str, Any]] = (await resp.json())["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "VoxmeshErrorBudgetBurnFast" and a["state"] == "firing"]

        fired = await until(firing, 30, "VoxmeshErrorBudgetBurnFast to fire", every=0.5)
        assert [a["labels"]["deployment"] for a in fired] == ["broken"]
        assert fired[0]["labels"]["severity"] == "page"

        async with session.get(prometheus + "/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
        assert bad == []
        assert sum(len(g["rules"]) for g in groups) == sum(len(g["rules"]) for g in rules_doc["groups"])
