"""Benchmark: noisy neighbours under per-tenant rate limits, and the cost of a per-request check.

Part 1, a real stack (``voxmesh up`` with the tone engine, 2 replicas, ``delay_s`` per request
like a model would take) in its own process, the load generator in this one:

* ``solo A``, ``solo B``: each well-behaved tenant alone, open loop at ``--rate`` req/s;
* ``A + B + C limited``: both again, while tenant C floods at ``--flood`` req/s; every tenant
  has ``requests_per_minute = --rpm``, so C is throttled (429) and A, B stay under;
* ``A + B + C unlimited``: the same flood with no limit on C (the contrast).

Latency is timed from each request's *scheduled* send time (open loop, so a stall is not
hidden by the client waiting) to its last byte. Goal: A's and B's p99 within 1.2x of solo.

How tenants reach the limiter here (auth is not on this branch): the served process wraps
``build_gateway_app`` with a middleware, defined in this file only, that takes the tenant from
an ``X-Bench-Tenant`` header and calls ``gateway.admission.admit(tenant, "POST
/v1/audio/speech", len(input))`` before the handler: the same call, at the same place, the
auth guard will make with ``principal.tenant``. It runs the aiohttp server
(``gateway.server=aiohttp``) because the fast path's hot routes skip aiohttp middlewares.
A request without the header is not limited (the unlimited phase).

Part 2, micro-benchmarks in this process (per call, ``--n`` calls after a warm-up):
JWT verification with PyJWT and a cached key (HS256, RS256 with a parsed RSA-2048 public key,
``iss``/``aud``/``exp`` checked), and ``admit()`` on the memory and Redis limiters (Redis:
127.0.0.1:6379, its own key prefix, deleted afterwards).

Usage: ``.venv/bin/python benchmarks/tenants.py [--seconds 20] [--report benchmarks/reports/tenants.md]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TENANT_HEADER = "X-Bench-Tenant"
TEXT = "Tenants share this gateway fairly."  # 34 characters
CONFIG = """
deployments:
  - name: tone
    engine: tone
    options: {delay_s: %(delay)s, ms_per_char: 10}
    replicas: {min: 2, max: 2, warm: 0}
    threads: 1
aliases: {tts-1: tone}
"""


# ---- the served process -----------------------------------------------------------------
def serve(config: Path, port: int, data_dir: Path, rpm: int, burst_s: float) -> int:
    """``voxmesh up`` with the benchmark's tenant middleware around the gateway app."""
    from aiohttp import web

    import voxmesh.stack.core as core
    from voxmesh.settings import load_settings
    from voxmesh.tenancy.usage import audio_seconds

    original = core.build_gateway_app

    def with_tenants(gw: Any, **kw: Any) -> web.Application:
        app = original(gw, **kw)

        @web.middleware
        async def bench_tenant(request: web.Request, handler: Any) -> web.StreamResponse:
            tenant = request.headers.get(TENANT_HEADER)
            if tenant is None or request.path != "/v1/audio/speech":
                return await handler(request)
            body = await request.read()  # aiohttp keeps it for the handler
            try:
                data = json.loads(body)
                text, fmt = str(data.get("input", "")), str(data.get("response_format", "mp3"))
            except (ValueError, AttributeError):
                text, fmt = "", "mp3"
            decision = await gw.admission.admit(tenant, "POST /v1/audio/speech", len(text))
            if not decision.allowed:
                err = decision.error()
                return web.json_response(err.to_dict(), status=err.status, headers=decision.headers())
            resp = await handler(request)
            if not resp.prepared:
                resp.headers.update(decision.headers())
            seconds = audio_seconds(dict(resp.headers), resp.content_length or 0, fmt)
            await gw.admission.meter.speech(tenant, len(text), seconds)
            return resp

        app.middlewares.append(bench_tenant)
        return app

    core.build_gateway_app = with_tenants  # type: ignore[assignment]
    settings = load_settings(None, data_dir=data_dir, server={"port": port}, gateway={"server": "aiohttp"},
                             limits={"requests_per_minute": rpm, "burst_s": burst_s},
                             log_level="WARNING")  # fmt: skip
    return core.run_stack(settings, config)


# ---- load -------------------------------------------------------------------------------
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append(latency)

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


async def open_loop(session: Any, url: str, tenant: str | None, rate: float, seconds: float, tally: Tally) -> None:
    body = {"model": "tts-1", "input": TEXT, "voice": "low", "response_format": "pcm"}
    headers = {TENANT_HEADER: tenant} if tenant else {}
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []

    async def one(at: float) -> None:
        try:
            async with session.post(url + "/v1/audio/speech", json=body, headers=headers) as resp:
                await resp.read()
                tally.add(resp.status, loop.time() - at)
        except Exception:
            tally.add(-1, loop.time() - at)

    n = int(rate * seconds)
    for i in range(n):
        at = start + i / rate
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(at)))
    await asyncio.gather(*tasks)


async def phase(url: str, loads: list[tuple[str, str | None, float]], seconds: float) -> dict[str, Tally]:
    import aiohttp

    tallies = {name: Tally() for name, _, _ in loads}
    conn = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(open_loop(session, url, tenant, rate, seconds, tallies[name])
                               for name, tenant, rate in loads))  # fmt: skip
    return tallies


# ---- micro-benchmarks ---------------------------------------------------------------------
def _percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    xs = sorted(samples_ns)
    return tuple(xs[min(len(xs) - 1, int(q * len(xs)))] / 1000 for q in (0.5, 0.9, 0.99))  # type: ignore[return-value]


def time_sync(fn: Callable[[], Any], n: int) -> tuple[float, float, float]:
    for _ in range(min(200, n)):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return _percentiles(out)


async def time_async(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float, float]:
    for _ in range(min(200, n)):
        await fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await fn()
        out.append(time.perf_counter_ns() - t0)
    return _percentiles(out)


async def micro(n: int) -> list[tuple[str, float, float, float]]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from voxmesh.settings import LimitsSettings
    from voxmesh.tenancy import build_admission

    now = int(time.time())
    claims = {"sub": "svc-1", "tenant": "acme", "scope": "tts:speak mt:translate", "iss": "https://issuer.example",
              "aud": "voxmesh", "iat": now, "exp": now + 3600}  # fmt: skip
    rows = []
    secret = "s" * 32
    hs = jwt.encode(claims, secret, algorithm="HS256")
    p50, p90, p99 = time_sync(lambda: jwt.decode(hs, secret, algorithms=["HS256"], audience="voxmesh",
                                            issuer="https://issuer.example", leeway=30), n)  # fmt: skip
    rows.append(("JWT verify HS256 (PyJWT)", p50, p90, p99))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs = jwt.encode(claims, key, algorithm="RS256")
    public = key.public_key()  # the cached, parsed key: what a JWKS cache holds
    p50, p90, p99 = time_sync(lambda: jwt.decode(rs, public, algorithms=["RS256"], audience="voxmesh",
                                            issuer="https://issuer.example", leeway=30), n)  # fmt: skip
    rows.append(("JWT verify RS256, RSA-2048 (PyJWT, cached key)", p50, p90, p99))
    limits = {"requests_per_minute": 10**9, "chars_per_day": 10**12}
    mem = build_admission(LimitsSettings(**limits))  # type: ignore[arg-type]
    p50, p90, p99 = await time_async(lambda: mem.admit("acme", "POST /v1/audio/speech", 34), n)
    rows.append(("admit() memory limiter (requests + characters buckets)", p50, p90, p99))
    prefix = f"voxmesh-bench:{uuid.uuid4().hex[:8]}:"
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            pass
    except OSError:
        rows.append(("admit() Redis limiter: no Redis on 127.0.0.1:6379", float("nan"), float("nan"), float("nan")))
        return rows
    red = build_admission(LimitsSettings(backend="redis", key_prefix=prefix, **limits))  # type: ignore[arg-type]
    try:
        p50, p90, p99 = await time_async(lambda: red.admit("acme", "POST /v1/audio/speech", 34), n)
        rows.append(("admit() Redis limiter, loopback (one Lua call)", p50, p90, p99))
    finally:
        client = red.limiter.client  # type: ignore[attr-defined]
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await red.close()
    return rows


# ---- driver ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, timeout: float = 120) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url + "/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("the stack did not become ready")


def pooled(*tallies: Tally) -> Tally:
    out = Tally()
    for t in tallies:
        out.latencies += t.latencies
        for k, v in t.statuses.items():
            out.statuses[k] = out.statuses.get(k, 0) + v
    return out


def row(name: str, t: Tally, base: Tally | None) -> str:
    ratio = f"{t.pct(0.99) / base.pct(0.99):.2f}x" if base is not None and base.latencies else ""
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(t.statuses.items()))
    return f"| {name} | {len(t.latencies)} | {t.pct(0.5):.1f} | {t.pct(0.99):.1f} | {ratio} | {codes} |"


class Server:
    """The stack in its own process, with the given requests burst."""

    def __init__(self, args: argparse.Namespace, burst_s: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="voxmesh-bench-tenants-"))
        config = self.tmp / "deployments.yaml"
        config.write_text(CONFIG % {"delay": args.delay})
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(config), "--port", str(port),
                                      "--data-dir", str(self.tmp / "data"), "--rpm", str(args.rpm),
                                      "--burst", str(burst_s)], env=env)  # fmt: skip

    async def __aenter__(self) -> str:
        await wait_ready(self.url)
        await phase(self.url, [("warm-up", "warmup", 5.0)], 3)
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def main_async(args: argparse.Namespace) -> str:
    s = args.seconds
    bursts = [float(b) for b in args.bursts.split(",")]
    limited: dict[float, dict[str, Tally]] = {}
    well_behaved = [("A", "tenant-a", args.rate), ("B", "tenant-b", args.rate)]
    async with Server(args, bursts[0]) as url:
        solo_a = (await phase(url, [("A", "tenant-a", args.rate)], s))["A"]
        solo_b = (await phase(url, [("B", "tenant-b", args.rate)], s))["B"]
        limited[bursts[0]] = await phase(url, [*well_behaved, ("C", "tenant-c", args.flood)], s)
        unlimited = await phase(url, [*well_behaved, ("C", None, args.flood)], s)
    for burst in bursts[1:]:
        async with Server(args, burst) as url:
            limited[burst] = await phase(url, [*well_behaved, ("C", "tenant-c", args.flood)], s)
    micro_rows = await micro(args.n)
    solo_ab = pooled(solo_a, solo_b)
    limited_rows = []
    for burst, tallies in limited.items():
        limited_rows += [
            row(f"limited, burst_s={burst:g}: A", tallies["A"], solo_a),
            row(f"limited, burst_s={burst:g}: B", tallies["B"], solo_b),
            row(f"**limited, burst_s={burst:g}: A and B pooled**", pooled(tallies["A"], tallies["B"]), solo_ab),
            row(f"limited, burst_s={burst:g}: C (flooding)", tallies["C"], None),
        ]

    lines = [
        "# Tenants: noisy neighbours under rate limits, and the per-request check",
        "",
        f"Command: `.venv/bin/python benchmarks/tenants.py --seconds {args.seconds:g} --rate {args.rate:g} "
        f"--flood {args.flood:g} --rpm {args.rpm} --bursts {args.bursts} --delay {args.delay:g} --n {args.n} "
        "--report benchmarks/reports/tenants.md`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; shared with "
        "other work while it ran (expect 15-30 % noise between runs). Stack: `voxmesh up` in its own process "
        f"(gateway on aiohttp, tone engine, 2 replicas, {args.delay * 1000:.0f} ms per request), load from this "
        f"process, open loop, {args.seconds:g} s per phase. Every tenant: `requests_per_minute = {args.rpm}` "
        f"({args.rpm / 60:g}/s), in-process limiter; `limits.burst_s` (how many seconds' worth of requests "
        "the bucket holds) as in each row: one stack per value.",
        "",
        "Tenants reach the limiter through a middleware defined only in `benchmarks/tenants.py`: it reads "
        f"`{TENANT_HEADER}` and calls `gateway.admission.admit(tenant, \"POST /v1/audio/speech\", len(input))`, "
        "the call the auth guard will make with `principal.tenant`. A and B send "
        f"{args.rate:g} req/s each; C floods at {args.flood:g} req/s (limited: as tenant-c; unlimited: without "
        "the header, so no limit applies).",
        "",
        "## Noisy neighbour",
        "",
        "| phase / tenant | 200s | p50 ms | p99 ms | p99 vs solo | statuses |",
        "|---|---|---|---|---|---|",
        row("solo: A", solo_a, None),
        row("solo: B", solo_b, None),
        row("**solo: A and B pooled**", solo_ab, None),
        *limited_rows,
        row("unlimited C: A", unlimited["A"], solo_a),
        row("unlimited C: B", unlimited["B"], solo_b),
        row("**unlimited C: A and B pooled**", pooled(unlimited["A"], unlimited["B"]), solo_ab),
        row("unlimited C: C (flooding)", unlimited["C"], None),
        "",
        "## Added latency of a per-request check (micro-benchmarks, this process)",
        "",
        f"{args.n} calls each after a warm-up, timed one by one with `perf_counter_ns`.",
        "",
        "| check | p50 us | p90 us | p99 us |",
        "|---|---|---|---|",
        *[f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} |" for name, p50, p90, p99 in micro_rows],
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=5.0, help="req/s of each well-behaved tenant")
    ap.add_argument("--flood", type=float, default=150.0, help="req/s of the noisy tenant")
    ap.add_argument("--rpm", type=int, default=600, help="requests_per_minute of every tenant")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds of work per request (tone delay_s)")
    ap.add_argument("--bursts", default="10,2,1", help="limits.burst_s values, one limited phase (and stack) each")
    ap.add_argument("--burst", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=5000, help="calls per micro-benchmark")
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        return serve(args.serve, args.port, args.data_dir, args.rpm, args.burst)
    text = asyncio.run(main_async(args))
    print(text)
    if args.report is not None:
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
