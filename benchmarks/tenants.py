"""Benchmark: noisy neighbours under per-tenant rate limits, and the cost of auth per request,
with the real auth and limits of ``voxmesh up``.

Two stacks (``voxmesh up`` with the tone engine, 2 replicas, ``--delay`` seconds of work per
request), each in its own process, on the default fast-path gateway server:

* ``auth``: ``auth.mode = jwt+api_keys`` (HS256 secret and an RS256 JWKS file, ``iss``/``aud``
  checked, ``token_cache_s = 0`` so every request verifies its JWT signature with the cached,
  parsed key). Tenants and keys are made with the real CLI before it starts:
  ``voxmesh tenants create tenant-a --requests-per-minute RPM`` (A, B, C; and ``bench-auth``
  without a limit) and ``voxmesh keys create --tenant ... --scopes tts:speak``. Clients send
  ``Authorization: Bearer <key or JWT>``; the limiter is the product's (the guard's
  ``LimitsHook``, each tenant's ``requests_per_minute`` from the tenants table).
* ``none``: ``auth.mode = none`` (the baseline for the added latency of auth).

Part 1, noisy neighbour, ``--rotations`` times in turn: a *solo* window (A and B at ``--rate``
req/s each) then a *contended* window (the same, while C floods at ``--flood`` req/s). Each
rotation gives a ratio of A+B's p99 contended / solo; the report gives each one and their
median, so a slow spell of the shared VM lands on both sides of some ratio, not one pooled
figure. The flood comes from a separate process started ``nice -n 10`` (so the load generator
does not take the gateway's CPU first); the CPU seconds of the gateway process, the measuring
client and the flood client are counted per window.

Part 2, auth per request: the same open-loop load (``--auth-rate`` req/s of tenant bench-auth)
in rotation over four ways in: mode none, an API key, an HS256 JWT, an RS256 JWT; p50/p99 of
the whole answer as the client sees it, per rotation and pooled.

Part 3, micro-benchmarks in this process: ``Guard.check`` (API key, HS256, RS256; caches as
the stack has them) and ``admit()`` on the memory and Redis limiters.

Latency is timed from each request's *scheduled* send time (open loop) to its last byte.

Usage: ``.venv/bin/python benchmarks/tenants.py [--report benchmarks/reports/tenants.md]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT = "Tenants share this gateway fairly."  # 34 characters
BODY = {"model": "tts-1", "input": TEXT, "voice": "low", "response_format": "pcm"}
ISSUER, AUDIENCE, SECRET = "https://issuer.example", "voxmesh", "bench-secret-" + "s" * 32
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
def serve(config: Path, port: int, data_dir: Path, mode: str, jwks: Path | None) -> int:
    import voxmesh.stack.core as core
    from voxmesh.settings import load_settings

    auth: dict[str, Any] = {"mode": mode}
    if mode != "none":
        auth.update(hs256_secret=SECRET, jwks_path=jwks, issuer=ISSUER, audience=AUDIENCE, token_cache_s=0)
    settings = load_settings(None, data_dir=data_dir, server={"port": port}, auth=auth,
                             limits={"burst_s": 1.0}, log_level="WARNING")  # fmt: skip
    return core.run_stack(settings, config)


# ---- load -------------------------------------------------------------------------------
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    offsets: list[float] = field(default_factory=list)  # scheduled send time from the window's start, per latency

    def add(self, status: int, latency: float, offset: float = 0.0) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append(latency)
            self.offsets.append(offset)

    def pct(self, q: float, after_s: float = 0.0) -> float:
        xs = sorted(x for x, o in zip(self.latencies, self.offsets, strict=True) if o >= after_s)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    def merge(self, other: Tally) -> Tally:
        out = Tally(self.latencies + other.latencies, dict(self.statuses), self.offsets + other.offsets)
        for k, v in other.statuses.items():
            out.statuses[k] = out.statuses.get(k, 0) + v
        return out

    def codes(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))


async def open_loop(session: Any, url: str, bearer: str | None, rate: float, seconds: float, tally: Tally,
                    start_wall: float | None = None) -> None:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    loop = asyncio.get_running_loop()
    start = loop.time() + (0.0 if start_wall is None else max(0.0, start_wall - time.time()))
    tasks = []

    async def one(at: float) -> None:
        try:
            async with session.post(url + "/v1/audio/speech", json=BODY, headers=headers) as resp:
                await resp.read()
                tally.add(resp.status, loop.time() - at, at - start)
        except Exception:
            tally.add(-1, loop.time() - at, at - start)

    for i in range(int(rate * seconds)):
        at = start + i / rate
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(at)))
    await asyncio.gather(*tasks)


async def phase(url: str, loads: list[tuple[str, str | None, float]], seconds: float,
                start_wall: float | None = None) -> dict[str, Tally]:
    import aiohttp

    tallies = {name: Tally() for name, _, _ in loads}
    conn = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(open_loop(session, url, bearer, rate, seconds, tallies[name], start_wall)
                               for name, bearer, rate in loads))  # fmt: skip
    return tallies


def flood_client(url: str, key: str, rate: float, seconds: float, start_wall: float) -> int:
    """The noisy tenant, in its own (niced) process; prints its statuses as JSON."""
    tallies = asyncio.run(phase(url, [("C", key, rate)], seconds, start_wall))
    print(json.dumps({"statuses": tallies["C"].statuses, "p50": tallies["C"].pct(0.5)}))
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children that have been waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- micro-benchmarks ---------------------------------------------------------------------
def _percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    xs = sorted(samples_ns)
    return tuple(xs[min(len(xs) - 1, int(q * len(xs)))] / 1000 for q in (0.5, 0.9, 0.99))  # type: ignore[return-value]


async def time_async(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float, float]:
    for _ in range(min(200, n)):
        await fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await fn()
        out.append(time.perf_counter_ns() - t0)
    return _percentiles(out)


async def micro(n: int, data_dir: Path, jwks: Path, tokens: dict[str, str]) -> list[tuple[str, float, float, float]]:
    from voxmesh.auth.guard import Call, Guard
    from voxmesh.auth.store import TenantStore
    from voxmesh.settings import LimitsSettings, load_settings
    from voxmesh.tenancy import build_admission

    rows = []
    settings = load_settings(None, data_dir=data_dir, log_level="WARNING", auth={
        "mode": "jwt+api_keys", "hs256_secret": SECRET, "jwks_path": jwks, "issuer": ISSUER, "audience": AUDIENCE,
        "token_cache_s": 0})  # fmt: skip
    store = await TenantStore.open(settings.db_url(), key_cache_s=settings.auth.key_cache_s)
    try:
        guard = Guard(settings, store=store)
        for name, label in (("key", "API key (hash lookup, 5 s cache)"), ("hs256", "HS256 JWT, signature every call"),
                            ("rs256", "RS256 JWT, RSA-2048, cached JWKS key, signature every call")):
            call = Call("POST", "/v1/audio/speech", "/v1/audio/speech", "127.0.0.1", f"Bearer {tokens[name]}",
                        None, b"", "application/json")  # fmt: skip
            p50, p90, p99 = await time_async(lambda c=call: guard.check(c, "tts:speak"), n)  # type: ignore[misc]
            rows.append((f"Guard.check: {label}", p50, p90, p99))
        # the refusal path: the guard with the product's LimitsHook, the tenant over its limit
        from voxmesh.errors import VoxmeshError
        from voxmesh.tenancy.hook import LimitsHook

        hook = LimitsHook(build_admission(LimitsSettings(requests_per_minute=1)))
        guard.hooks.append(hook)
        body = json.dumps(BODY).encode()
        call = Call("POST", "/v1/audio/speech", "/v1/audio/speech", "127.0.0.1", f"Bearer {tokens['key']}",
                    None, body, "application/json")  # fmt: skip

        async def refused() -> None:
            call.response_headers.clear()
            try:
                await guard.check(call, "tts:speak")
            except VoxmeshError as err:
                assert err.status == 429, err
                return
            # the first call of the warm-up takes the bucket's one token

        p50, p90, p99 = await time_async(refused, n)
        rows.append(("Guard.check + LimitsHook refusing (429: key, body cost, bucket, headers)", p50, p90, p99))
    finally:
        await store.close()
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


# ---- setup ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def voxmesh(*argv: str, data_dir: Path) -> str:
    """The real CLI (``voxmesh ...``) on the stack's data dir; its stdout."""
    out = subprocess.run([sys.executable, "-m", "voxmesh", *argv, "--data-dir", str(data_dir)],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def make_credentials(data_dir: Path, rpm: int, tmp: Path) -> tuple[dict[str, str], Path]:
    """Tenants and keys with the CLI; a JWKS file and JWTs. Returns the bearers and the JWKS path."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    bearers: dict[str, str] = {}
    for t in ("a", "b", "c"):
        voxmesh("tenants", "create", f"tenant-{t}", "--requests-per-minute", str(rpm), data_dir=data_dir)
        bearers[t] = voxmesh("keys", "create", "--tenant", f"tenant-{t}", "--scopes", "tts:speak", data_dir=data_dir)
    voxmesh("tenants", "create", "bench-auth", data_dir=data_dir)  # no limit of its own: settings' defaults (none)
    bearers["key"] = voxmesh("keys", "create", "--tenant", "bench-auth", "--scopes", "tts:speak", data_dir=data_dir)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="bench-1", alg="RS256", use="sig")
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    claims = {"sub": "svc-1", "tenant": "bench-auth", "scope": "tts:speak", "iss": ISSUER, "aud": AUDIENCE,
              "iat": now, "exp": now + 3600}  # fmt: skip
    bearers["hs256"] = jwt.encode(claims, SECRET, algorithm="HS256")
    bearers["rs256"] = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-1"})
    return bearers, jwks


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


class Stack:
    def __init__(self, args: argparse.Namespace, tmp: Path, data_dir: Path, mode: str, jwks: Path | None) -> None:
        config = tmp / "deployments.yaml"
        config.write_text(CONFIG % {"delay": args.delay})
        self.url = f"http://127.0.0.1:{(port := free_port())}"
        argv = [sys.executable, __file__, "--serve", str(config), "--port", str(port), "--data-dir", str(data_dir),
                "--mode", mode]  # fmt: skip
        if jwks is not None:
            argv += ["--jwks", str(jwks)]
        self.proc = subprocess.Popen(argv, env=os.environ.copy())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---- driver ---------------------------------------------------------------------------------
@dataclass
class Window:
    ab: Tally
    c: dict[str, Any] | None
    cpu: dict[str, float]
    load: str


async def noisy_window(args: argparse.Namespace, url: str, gw_pid: int, bearers: dict[str, str],
                       c_rate: float) -> Window:
    s = args.seconds
    start = time.time() + (2.5 if c_rate else 0.3)
    proc = None
    if c_rate:
        proc = subprocess.Popen(["nice", "-n", "10", sys.executable, __file__, "--flood-client", url,
                                 "--key", bearers["c"], "--flood", str(c_rate), "--seconds", str(s),
                                 "--start", repr(start)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    gw0, me0, t0 = cpu_s(gw_pid), time.process_time(), time.time()
    tallies = await phase(url, [("A", bearers["a"], args.rate), ("B", bearers["b"], args.rate)], s, start)
    c = None
    cpu = {"gateway": cpu_s(gw_pid) - gw0, "A+B client": time.process_time() - me0}
    if proc is not None:
        out, _ = await asyncio.to_thread(proc.communicate)
        c = json.loads(out)
    wall = time.time() - t0
    cpu = {k: v / wall for k, v in cpu.items()}  # cores used on average
    return Window(tallies["A"].merge(tallies["B"]), c, cpu, loadavg())


async def main_async(args: argparse.Namespace) -> str:
    import resource

    tmp = Path(tempfile.mkdtemp(prefix="voxmesh-bench-tenants-"))
    data_dir = tmp / "data"
    data_dir.mkdir()
    bearers, jwks = make_credentials(data_dir, args.rpm, tmp)
    auth_stack = Stack(args, tmp, data_dir, "jwt+api_keys", jwks)
    none_stack = Stack(args, tmp, tmp / "data-none", "none", None)
    try:
        await wait_ready(auth_stack.url)
        await wait_ready(none_stack.url)
        for url, bearer in ((auth_stack.url, bearers["key"]), (none_stack.url, None)):
            await phase(url, [("w", bearer, 10.0)], 3)  # warm-up
        load_start = loadavg()
        # part 1: solo, contended (C floods), control (C at its limit), solo, ...
        rotations: list[tuple[Window, Window, float, Window]] = []
        for _ in range(args.rotations):
            solo = await noisy_window(args, auth_stack.url, auth_stack.proc.pid, bearers, 0.0)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cont = await noisy_window(args, auth_stack.url, auth_stack.proc.pid, bearers, args.flood)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            flood_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / args.seconds
            control = await noisy_window(args, auth_stack.url, auth_stack.proc.pid, bearers, args.rpm / 60)
            rotations.append((solo, cont, flood_cpu, control))
        # part 2: auth per request, in rotation over the ways in
        ways = [("mode none", none_stack.url, None), ("API key", auth_stack.url, bearers["key"]),
                ("JWT HS256", auth_stack.url, bearers["hs256"]), ("JWT RS256 (cached JWKS key)", auth_stack.url,
                                                                  bearers["rs256"])]  # fmt: skip
        auth_runs: dict[str, list[Tally]] = {name: [] for name, _, _ in ways}
        for _ in range(args.auth_rotations):
            for name, url, bearer in ways:
                auth_runs[name].append((await phase(url, [("x", bearer, args.auth_rate)], args.auth_seconds))["x"])
        load_end = loadavg()
    finally:
        auth_stack.stop()
        none_stack.stop()
    micro_rows = await micro(args.n, data_dir, jwks, bearers)
    return render(args, rotations, auth_runs, micro_rows, load_start, load_end)


def render(args: argparse.Namespace, rotations: list[tuple[Window, Window, float, Window]],
           auth_runs: dict[str, list[Tally]], micro_rows: list[tuple[str, float, float, float]], load_start: str,
           load_end: str) -> str:
    ratios = [cont.ab.pct(0.99) / solo.ab.pct(0.99) for solo, cont, _, _ in rotations]
    p50_ratios = [cont.ab.pct(0.5) / solo.ab.pct(0.5) for solo, cont, _, _ in rotations]
    control_ratios = [ctl.ab.pct(0.99) / solo.ab.pct(0.99) for solo, _, _, ctl in rotations]
    p95_ratios = [cont.ab.pct(0.95) / solo.ab.pct(0.95) for solo, cont, _, _ in rotations]
    after_ratios = [cont.ab.pct(0.99, 1.0) / solo.ab.pct(0.99, 1.0) for solo, cont, _, _ in rotations]
    lines = [
        "# Tenants: noisy neighbours under rate limits, and the cost of auth per request",
        "",
        f"Command: `.venv/bin/python benchmarks/tenants.py --rotations {args.rotations} --seconds {args.seconds:g} "
        f"--rate {args.rate:g} --flood {args.flood:g} --rpm {args.rpm} --delay {args.delay:g} "
        f"--auth-rotations {args.auth_rotations} --auth-seconds {args.auth_seconds:g} --auth-rate {args.auth_rate:g} "
        f"--n {args.n} --report benchmarks/reports/tenants.md`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, shared with "
        f"other engineers' work; load average (1/5/15 min) {load_start} when the measured windows began, "
        f"{load_end} when they ended. Stacks: `voxmesh up` in their own processes, default fast-path gateway "
        f"server, tone engine, 2 replicas, {args.delay * 1000:.0f} ms of work per request, `limits.burst_s = 1`.",
        "",
        "Auth is the product's: `auth.mode = jwt+api_keys`; tenants tenant-a, tenant-b, tenant-c made with "
        f"`voxmesh tenants create NAME --requests-per-minute {args.rpm}` and keys with `voxmesh keys create "
        "--tenant NAME --scopes tts:speak`; clients send `Authorization: Bearer <key>`; the limit each tenant "
        "gets is its row in the tenants table, applied by the guard's `LimitsHook`.",
        "",
        "## Noisy neighbour",
        "",
        f"Each rotation: a solo window (A and B, {args.rate:g} req/s each, open loop, {args.seconds:g} s), then a "
        f"contended one (the same while C floods at {args.flood:g} req/s from a separate `nice -n 10` process). "
        "Ratio = A+B p99 contended / A+B p99 solo of the same rotation. CPU columns: cores used on average in "
        "the window (gateway process without its workers; the A+B client; the flood client, its start-up "
        f"included). Control: a third window where C sends exactly its limit ({args.rpm / 60:g} req/s, so no "
        "429 at all): what C's *admitted* requests alone cost A and B.",
        "",
        "| rotation | solo p50 / p99 ms | contended p50 / p99 ms | p99 ratio | A+B statuses (contended) | "
        "C statuses | gateway CPU solo / contended | A+B client CPU | flood client CPU | load avg | "
        "control p99 ms (ratio) | C statuses (control) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, ((solo, cont, flood_cpu, ctl), ratio) in enumerate(zip(rotations, ratios, strict=True), 1):
        c = cont.c or {}
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(c.get("statuses", {}).items()))
        lines.append(
            f"| {i} | {solo.ab.pct(0.5):.1f} / {solo.ab.pct(0.99):.1f} | {cont.ab.pct(0.5):.1f} / "
            f"{cont.ab.pct(0.99):.1f} | {ratio:.2f}x | {cont.ab.codes()} | {codes} | "
            f"{solo.cpu['gateway']:.2f} / {cont.cpu['gateway']:.2f} | {cont.cpu['A+B client']:.2f} | "
            f"{flood_cpu:.2f} | {cont.load.split()[0]} | {ctl.ab.pct(0.99):.1f} ({ctl.ab.pct(0.99) / solo.ab.pct(0.99):.2f}x) | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted((ctl.c or {}).get('statuses', {}).items()))} |")  # fmt: skip
    lines += [
        "",
        f"**Median of the per-rotation p99 ratios: {statistics.median(ratios):.2f}x** (goal 1.2x; "
        f"min {min(ratios):.2f}x, max {max(ratios):.2f}x). Median p95 ratio: {statistics.median(p95_ratios):.2f}x, p50 "
        f"ratio: {statistics.median(p50_ratios):.2f}x. "
        f"Control (C at its limit, no 429s): median p99 ratio {statistics.median(control_ratios):.2f}x. "
        "Leaving out requests scheduled in each window's first second (when C's full bucket, "
        f"{args.rpm // 60} requests, lands at once): median p99 ratio {statistics.median(after_ratios):.2f}x "
        f"({' / '.join(f'{r:.2f}x' for r in after_ratios)}).",
        "",
        "## Added latency of auth, end to end",
        "",
        f"Tenant bench-auth (no rate limit), {args.auth_rate:g} req/s open loop, {args.auth_seconds:g} s per way, "
        f"the four ways in rotation {args.auth_rotations} times; JWTs are verified on every request "
        "(`auth.token_cache_s = 0`; the default 60 s cache would skip the signature for a repeated token). "
        "Latency: the client's whole answer (200s only).",
        "",
        "| way in | p50 ms per rotation | p99 ms per rotation | pooled p50 ms | pooled p99 ms | p50 - none ms | statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    pooled = {name: _pool(runs) for name, runs in auth_runs.items()}
    base = pooled["mode none"].pct(0.5)
    for name, runs in auth_runs.items():
        p = pooled[name]
        lines.append(
            f"| {name} | {' / '.join(f'{t.pct(0.5):.1f}' for t in runs)} | "
            f"{' / '.join(f'{t.pct(0.99):.1f}' for t in runs)} | {p.pct(0.5):.1f} | {p.pct(0.99):.1f} | "
            f"{p.pct(0.5) - base:+.1f} | {p.codes()} |")  # fmt: skip
    lines += [
        "",
        "## Per-request checks (micro-benchmarks, this process)",
        "",
        f"{args.n} calls each after a warm-up, timed one by one with `perf_counter_ns`.",
        "",
        "| check | p50 us | p90 us | p99 us |",
        "|---|---|---|---|",
        *[f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} |" for name, p50, p90, p99 in micro_rows],
        "",
    ]
    return "\n".join(lines)


def _pool(runs: list[Tally]) -> Tally:
    out = Tally()
    for t in runs:
        out = out.merge(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rotations", type=int, default=4, help="solo + contended window pairs")
    ap.add_argument("--seconds", type=float, default=12.0, help="seconds per noisy-neighbour window")
    ap.add_argument("--rate", type=float, default=5.0, help="req/s of each well-behaved tenant")
    ap.add_argument("--flood", type=float, default=150.0, help="req/s of the noisy tenant")
    ap.add_argument("--rpm", type=int, default=600, help="requests_per_minute of tenants a, b, c")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds of work per request (tone delay_s)")
    ap.add_argument("--auth-rotations", type=int, default=3)
    ap.add_argument("--auth-seconds", type=float, default=8.0)
    ap.add_argument("--auth-rate", type=float, default=20.0)
    ap.add_argument("--n", type=int, default=3000, help="calls per micro-benchmark")
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="none", help=argparse.SUPPRESS)
    ap.add_argument("--jwks", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--flood-client", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--key", default="", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        return serve(args.serve, args.port, args.data_dir, args.mode, args.jwks)
    if args.flood_client is not None:
        return flood_client(args.flood_client, args.key, args.flood, args.seconds, args.start)
    text = asyncio.run(main_async(args))
    print(text)
    if args.report is not None:
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
