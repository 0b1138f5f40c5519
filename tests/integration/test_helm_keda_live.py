"""The rendered ScaledObjects against real processes.

* Prometheus (Debian's ``/usr/bin/prometheus``, on a free loopback port with a temp config
  and storage) scrapes a real ``voxmesh up`` stack (gateway + one ``engine: tone`` worker,
  plain HTTP as under Linkerd) with the label the cluster's scrape config adds
  (``namespace``). Under a known load (5 requests held in the worker: one running, four
  queued, each 6 s) the exact PromQL of the rendered ScaledObject returns 5, the gateway's own view of
  in-flight requests agrees, and KEDA's replica count is ceil(5 / 2) = 3.
* The machine's RabbitMQ (a vhost of our own): messages published by voxmesh's RabbitQueue
  give the queue depth KEDA's rabbitmq scaler reads (passive declare, QueueLength), mapped to
  replicas with the rendered trigger's value and bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.integration.helm_kit import NAMESPACE, objects, parse, render, scenario_values
from tests.support.stacks import prom_query, scrape_job, start_prometheus, start_stack

from voxmesh.deploy.chart import chart_defaults
from voxmesh.deploy.keda import desired_replicas
from voxmesh.deploy.values import values_from_config
from voxmesh.deployments import DeploymentsConfig
from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

HELD = 5
TARGET = 2

CONFIG = {
    "settings": {"mesh": {"enabled": False}},
    "deployments": [{
        "name": "tone",
        "engine": "tone",
        # one core: one request runs, the others queue; each takes 6 s
        "options": {"delay_s": 6.0, "ms_per_char": 5},
        "replicas": {"min": 1, "max": 4, "warm": 0},
        "threads": 1,
        # the local controller must not scale during the test: it would tick once an hour
        "scaling": {"in_flight_per_replica": TARGET, "sync_period_s": 3600},
    }],
    "aliases": {"tts-1": "tone"},
}


def _scaled_object(values: dict[str, Any], name: str) -> dict[str, Any]:
    objs = parse(render(values))
    return next(o for o in objects(objs, "ScaledObject") if o["metadata"]["name"] == name)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(tmp_path, CONFIG, mesh={"enabled": False}) as st:
        yield st


def prometheus(tmp_path: Path, targets: dict[str, int]) -> contextlib.AbstractAsyncContextManager[str]:
    # what the cluster's kubernetes_sd relabeling gives: the pod's namespace as a label
    jobs = [scrape_job(job, [f"127.0.0.1:{p}"], namespace=NAMESPACE) for job, p in targets.items()]
    return start_prometheus(tmp_path, jobs)


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> float | None:
    body = await prom_query(session, base, promql)
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def poll(session: aiohttp.ClientSession, base: str, promql: str, want: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            got = await query(session, base, promql)
            if got == want:
                return got
        await asyncio.sleep(0.2)
    return got


async def test_rendered_scaledobject_query_reads_the_held_load(stack: Stack, tmp_path: Path) -> None:
    so = _scaled_object(values_from_config(DeploymentsConfig.model_validate(CONFIG), chart_defaults()), "vm-voxmesh-tone")["spec"]
    (trigger,) = so["triggers"]
    promql, threshold = trigger["metadata"]["query"], float(trigger["metadata"]["threshold"])
    assert threshold == TARGET and 'model="tone"' in promql and f'namespace="{NAMESPACE}"' in promql

    worker = stack.supervisor.serving("tone")[0]
    targets = {"gateway": stack.port, "worker": worker.port}
    async with prometheus(tmp_path, targets) as prom, aiohttp.ClientSession() as session:
        # both targets up, and idle: the query reads 0
        assert await poll(session, prom, 'sum(up{namespace="voxmesh"})', 2, 30) == 2
        assert await poll(session, prom, promql, 0, 10) == 0

        body = {"model": "tts-1", "voice": "low", "response_format": "pcm"}
        t0 = time.monotonic()

        async def speak(i: int) -> None:
            async with session.post(f"{stack.url}/v1/audio/speech", json=body | {"input": f"Held {i}."}) as r:
                await r.read()

        held = [asyncio.create_task(speak(i)) for i in range(HELD)]
        try:
            # the first finishes 6 s after it starts: read while all five are in the worker
            # (the two targets are scraped at their own phases: poll each)
            value, gateway_view = await asyncio.gather(
                poll(session, prom, promql, HELD, 5.0),
                poll(session, prom, 'sum(voxmesh_endpoint_in_flight{deployment="tone"})', HELD, 5.0))
            elapsed = time.monotonic() - t0
        finally:
            for t in held:
                t.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            # four requests are still queued behind 6 s each: do not wait for the drain
            for rep in stack.supervisor.replicas["tone"]:
                if rep.proc is not None and rep.proc.returncode is None:
                    rep.proc.kill()
    assert elapsed < 6.0, f"read after {elapsed:.1f} s: the first request may have finished"
    assert value == HELD, f"{promql} = {value}, want {HELD}"
    assert gateway_view == HELD
    replicas = desired_replicas(value, threshold, so["minReplicaCount"], so["maxReplicaCount"],
                                float(trigger["metadata"]["activationThreshold"]))
    assert replicas == math.ceil(HELD / TARGET) == 3


@pytest.mark.rabbitmq
async def test_rabbitmq_depth_maps_to_the_runner_replicas(rabbitmq_url: str) -> None:
    import aio_pika

    from voxmesh.jobs.queue_rabbitmq import RabbitQueue

    name = f"tts-tasks-{uuid.uuid4().hex[:8]}"
    values = scenario_values("ha")
    values["settings"]["jobs"]["queue_name"] = name
    so = _scaled_object(values, "vm-voxmesh-runner")["spec"]
    (trigger,) = so["triggers"]
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["queueName"] == name
    value = float(trigger["metadata"]["value"])
    lo, hi = so["minReplicaCount"], so["maxReplicaCount"]

    queue = await RabbitQueue(None, rabbitmq_url, name=name).connect()  # type: ignore[arg-type]
    conn = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await conn.channel()

        async def depth() -> int:
            # what KEDA's rabbitmq scaler reads in amqp/QueueLength mode: a passive declare
            declared = await channel.declare_queue(name, passive=True)
            return int(declared.declaration_result.message_count)

        seen = []
        for total in (0, 57, 250):
            have = await depth()
            if total > have:
                await queue.publish(list(range(have, total)))
            deadline = time.monotonic() + 10
            while await depth() != total and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            d = await depth()
            seen.append((d, desired_replicas(d, value, lo, hi, float(trigger["metadata"]["activationValue"]))))
        # a delayed (parked) message is not in the main queue: KEDA does not count it
        await queue.publish([999], delay_s=30)
        assert await depth() == 250
    finally:
        with contextlib.suppress(Exception):
            ch = await conn.channel()
            await ch.queue_delete(name)
        await conn.close()
        await queue.close()
    assert (value, lo, hi) == (20, 2, 10)
    assert seen == [(0, 2), (57, 3), (250, 10)]


async def test_every_rendered_promql_parses_in_prometheus(tmp_path: Path) -> None:
    """Each query the chart hands KEDA (ScaledObjects) or Flagger (MetricTemplates, with
    Flagger's variables filled in) is valid PromQL to a real Prometheus."""
    from tests.integration.helm_kit import SCENARIOS, scenario_objects

    queries = set()
    for s in SCENARIOS:
        for o in scenario_objects(s):
            if o["kind"] == "ScaledObject":
                queries |= {t["metadata"]["query"] for t in o["spec"]["triggers"] if t["type"] == "prometheus"}
            if o["kind"] == "MetricTemplate":
                q = o["spec"]["query"]
                for var, value in (("namespace", NAMESPACE), ("target", "vm-voxmesh-tts-en"), ("interval", "1m")):
                    q = q.replace("{{ " + var + " }}", value)
                queries.add(q)
    assert len(queries) >= 8
    async with prometheus(tmp_path, {}) as prom, aiohttp.ClientSession() as session:
        bad = []
        for q in sorted(queries):
            body = await prom_query(session, prom, q)
            if body["status"] != "success":
                bad.append(f"{q}: {body.get('error')}")
    assert not bad, "\n".join(bad)
