"""Benchmark: the latency the gateway hop adds, and its capacity next to nginx.

One run, side by side, against the same upstream (a raw asyncio Protocol server on uvloop
answering a ~2 KB JSON body at once, keep-alive):

* direct           client -> upstream
* voxmesh-fast     client -> the gateway app behind ``start_fast_gateway`` (``gateway.server: fast``:
                   httptools server, validation, DataPlane policies, pooled Protocol connections) -> upstream
* voxmesh-aiohttp  client -> the same gateway app served by aiohttp (``gateway.server: aiohttp``) -> upstream
* aiohttp-bare     aiohttp server + aiohttp client pool, no policy (the framework's own cost)
* raw-protocol     a minimal Protocol proxy, no policy, no validation (the floor)
* nginx            client -> nginx (1 worker, keepalive upstream pool) -> upstream

Latency: open-loop POSTs at ``--rate`` req/s (default 500) for ``--seconds`` per target and
round, over a pool of keep-alive connections, timed from the write of the request to the
last byte of the response; p50/p99 per round, median over ``--rounds`` rounds. "Added" is
the proxy's figure minus the direct one of the same round.
Capacity: ``wrk -t1 -c32`` for ``--cap-seconds`` per target (a Python closed-loop client
with 32 connections if wrk is missing), and the proxy's CPU time per request.

Placement (``taskset``): client and upstream on CPU 0, the proxy under test on CPU 1.

Usage: ``.venv/bin/python benchmarks/gateway.py [--report benchmarks/reports/gateway.md]``.
Needs nginx (``apt-get install -y nginx``) and wrk (``apt-get install -y wrk``) for the full
table; without them it says so and measures what it can. It installs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BODY = b'{"upstream":"bench","pad":"' + b"x" * 2000 + b'"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
REQ_BODY = b'{"model":"tts","input":"Hello there, this is a benchmark.","voice":"default"}'
REQUEST = (
    b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(REQ_BODY)).encode() + b"\r\n\r\n" + REQ_BODY
)
CLIENT_CPU, UPSTREAM_CPU, PROXY_CPU = "0", "0", "1"


# ---- roles run as subprocesses -----------------------------------------------------------


def _content_length(head: bytes) -> int:
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    return int(m.group(1)) if m else 0


class _UpstreamProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            end = i + 4 + _content_length(self.buf[: i + 2])
            if len(self.buf) < end:
                return
            self.buf = self.buf[end:]
            self.t.write(RESPONSE)


async def _run_upstream() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_UpstreamProtocol, "127.0.0.1", 0, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


async def _gateway(upstream_port: int) -> tuple[object, object]:
    """The real gateway (``Gateway`` + ``build_gateway_app``: validation, catalog, data plane)."""
    from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
    from voxmesh.gateway.balancer.pool import Endpoint, Reset
    from voxmesh.gateway.dataplane import DataPlane
    from voxmesh.settings import Settings

    settings = Settings()
    dp = DataPlane(settings.gateway)
    await dp.start()
    dp.update("tts", Reset([Endpoint("up0", f"http://127.0.0.1:{upstream_port}")]))
    gw = Gateway(settings, dp, Catalog(kinds={"tts": "tts"}))
    return gw, build_gateway_app(gw)


async def _run_gateway(upstream_port: int) -> None:
    """``gateway.server: aiohttp``: the gateway app served by aiohttp (upstream side: the pool)."""
    from aiohttp import web

    _, app = await _gateway(upstream_port)
    runner = web.AppRunner(app, access_log=None)  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def _run_fast(upstream_port: int) -> None:
    """``gateway.server: fast``: the same app behind ``start_fast_gateway``."""
    from voxmesh.gateway.fastpath import start_fast_gateway

    gw, app = await _gateway(upstream_port)
    server = await start_fast_gateway(gw, app, "127.0.0.1", 0)  # type: ignore[arg-type]
    print(f"PORT {server.port}", flush=True)
    await asyncio.Event().wait()


async def _run_bare(upstream_port: int) -> None:
    """The same aiohttp server + client pool with no policy at all: the framework's own cost."""
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False, skip_auto_headers=("User-Agent",)
    )
    base = f"http://127.0.0.1:{upstream_port}"

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with session.request(
            request.method, base + request.path_qs, data=body, headers={"Content-Type": request.content_type}
        ) as r:
            data = await r.read()
            return web.Response(body=data, status=r.status, content_type=r.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


class _RawUp(asyncio.Protocol):
    """Upstream side of the raw proxy: frames each response by Content-Length, hands it back."""

    def __init__(self, down: _RawDown) -> None:
        self.down, self.buf = down, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (i := self.buf.find(b"\r\n\r\n")) >= 0:
            end = i + 4 + _content_length(self.buf[: i + 2])
            if len(self.buf) < end:
                return
            message, self.buf = self.buf[:end], self.buf[end:]
            self.down.t.write(message)


class _RawDown(asyncio.Protocol):
    """Client side of the raw proxy: frames each request, sends it on this connection's upstream."""

    def __init__(self, upstream_port: int) -> None:
        self.port, self.buf = upstream_port, b""
        self.up: _RawUp | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.opener = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.up = await loop.create_connection(lambda: _RawUp(self), "127.0.0.1", self.port)
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.up is None:
            return
        while (i := self.buf.find(b"\r\n\r\n")) >= 0:
            end = i + 4 + _content_length(self.buf[: i + 2])
            if len(self.buf) < end:
                return
            message, self.buf = self.buf[:end], self.buf[end:]
            self.up.t.write(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.up is not None:
            self.up.t.close()


async def _run_raw(upstream_port: int) -> None:
    """A minimal HTTP/1.1 proxy on asyncio Protocols (uvloop), framing by Content-Length only.

    No policy, no chunked bodies, one upstream connection per client connection: the floor a
    protocol-level core starts from (the proposal in the report), measured in the same run."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _RawDown(upstream_port), "127.0.0.1", 0, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


# ---- the load generator --------------------------------------------------------------------


class _ClientConn(asyncio.Protocol):
    def __init__(self, idle: list[_ClientConn]) -> None:
        self.idle = idle
        self.buf = b""
        self.waiter: asyncio.Future[float] | None = None
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def send(self, waiter: asyncio.Future[float]) -> None:
        self.waiter = waiter
        self.sent = time.perf_counter()
        self.t.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        i = self.buf.find(b"\r\n\r\n")
        if i < 0:
            return
        end = i + 4 + _content_length(self.buf[: i + 2])
        if len(self.buf) < end:
            return
        ok = self.buf.startswith(b"HTTP/1.1 200")
        self.buf = self.buf[end:]
        waiter, self.waiter = self.waiter, None
        self.idle.append(self)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter() - self.sent if ok else -1.0)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.idle:
            self.idle.remove(self)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(-1.0)


async def _connect(port: int, idle: list[_ClientConn]) -> _ClientConn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: _ClientConn(idle), "127.0.0.1", port)
    return proto


async def open_loop(port: int, rate: float, seconds: float, conns: int = 32) -> tuple[list[float], int]:
    """Latencies (s) of requests sent every 1/rate s; and how many failed."""
    loop = asyncio.get_running_loop()
    idle: list[_ClientConn] = []
    for _ in range(conns):
        idle.append(await _connect(port, idle))
    waiters: list[asyncio.Future[float]] = []
    openers: list[asyncio.Future[None]] = []

    def fire() -> None:
        waiter: asyncio.Future[float] = loop.create_future()
        waiters.append(waiter)
        if idle:
            idle.pop().send(waiter)
        else:  # every connection busy: open one more (open loop never waits)

            async def fresh() -> None:
                conn = await _connect(port, idle)
                conn.send(waiter)

            openers.append(asyncio.ensure_future(fresh()))

    t0 = loop.time() + 0.05
    n = int(rate * seconds)
    for k in range(n):
        loop.call_at(t0 + k / rate, fire)
    await asyncio.sleep(seconds + 0.1)
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
    await asyncio.gather(*openers)
    for conn in list(idle):
        conn.t.close()
    ok = [r for r in results if r >= 0]
    return ok, len(results) - len(ok)


async def closed_loop(port: int, seconds: float, conns: int = 32) -> float:
    idle: list[_ClientConn] = []
    loop = asyncio.get_running_loop()
    done = 0
    stop = loop.time() + seconds

    async def worker() -> None:
        nonlocal done
        conn = await _connect(port, idle)
        while loop.time() < stop:
            waiter: asyncio.Future[float] = loop.create_future()
            conn.send(waiter)
            await waiter
            idle.remove(conn)
            done += 1
        conn.t.close()

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return done / (loop.time() - start)


def wrk_capacity(port: int, seconds: float, workdir: Path) -> float:
    script = workdir / "post.lua"
    body = REQ_BODY.decode().replace('"', '\\"')
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c32", f"-d{seconds:g}s", "-s", str(script),
         f"http://127.0.0.1:{port}/v1/audio/speech"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m:
        raise RuntimeError(f"cannot read wrk output: {out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non2xx:
        print(f"  warning: wrk saw {non2xx.group(1)} non-2xx responses", flush=True)
    return float(m.group(1))


# ---- orchestration -------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    pids: list[int] = field(default_factory=list)  # processes whose CPU time is the proxy's
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    failed: int = 0
    rps: float = 0.0
    cpu_us_per_req: float | None = None


def _spawn(args: list[str], cpu: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(["taskset", "-c", cpu, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"{args} did not start: {line!r}")
    return proc, int(line.split()[1])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_nginx(upstream_port: int, workdir: Path) -> tuple[subprocess.Popen[str], int] | None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        print(
            "nginx is not installed: the nginx column is skipped (install it with `apt-get install -y nginx`)"
        )
        return None
    port = _free_port()
    for d in ("tmp", "logs"):
        (workdir / d).mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/tmp/body; proxy_temp_path {workdir}/tmp/proxy;
  fastcgi_temp_path {workdir}/tmp/fcgi; uwsgi_temp_path {workdir}/tmp/uwsgi; scgi_temp_path {workdir}/tmp/scgi;
  upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=1024;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    proc = subprocess.Popen(
        ["taskset", "-c", PROXY_CPU, nginx, "-p", str(workdir), "-e", str(workdir / "logs/error.log"),
         "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    for _ in range(100):
        try:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"nginx did not start: {(workdir / 'logs/error.log').read_text()}")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for q in procs:
            t = q.cpu_times()
            total += t.user + t.system
    return total


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(targets: list[Target], args: argparse.Namespace, workdir: Path) -> None:
    for t in targets:  # warm up connections, JITs of sorts, the EWMA
        await open_loop(t.port, args.rate, 1.0)
    for r in range(args.rounds):
        for t in targets:
            lat, failed = await open_loop(t.port, args.rate, args.seconds)
            t.failed += failed
            t.p50.append(_q(lat, 0.50) * 1000)
            t.p99.append(_q(lat, 0.99) * 1000)
            print(f"round {r + 1} {t.name:15s} p50 {t.p50[-1]:.3f} ms  p99 {t.p99[-1]:.3f} ms  failed {failed}",
                  flush=True)  # fmt: skip
    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        print("wrk is not installed: capacity measured with the Python closed-loop client (a lower bound)")
    for t in targets:
        before = _cpu_seconds(t.pids)
        if use_wrk:
            t.rps = wrk_capacity(t.port, args.cap_seconds, workdir)
        else:
            t.rps = await closed_loop(t.port, args.cap_seconds)
        if t.pids:
            t.cpu_us_per_req = (_cpu_seconds(t.pids) - before) / (t.rps * args.cap_seconds) * 1e6
        print(f"capacity {t.name:15s} {t.rps:,.0f} req/s", flush=True)
    args.capacity_tool = "wrk -t1 -c32" if use_wrk else "python closed loop, 32 connections"


def report(targets: list[Target], args: argparse.Namespace) -> str:
    direct = targets[0]
    lines = [
        "| hop | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | max req/s | proxy CPU per request |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        added50 = [a - b for a, b in zip(t.p50, direct.p50, strict=True)]
        added99 = [a - b for a, b in zip(t.p99, direct.p99, strict=True)]
        cpu = f"{t.cpu_us_per_req:.0f} us" if t.cpu_us_per_req is not None else "-"
        add = "-" if t is direct else f"{statistics.median(added50):.3f}"
        add99 = "-" if t is direct else f"{statistics.median(added99):.3f}"
        lines.append(
            f"| {t.name} | {statistics.median(t.p50):.3f} | {statistics.median(t.p99):.3f} | {add} | {add99} "
            f"| {t.rps:,.0f} | {cpu} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    procs: list[subprocess.Popen[str]] = []
    me = [sys.executable, os.path.abspath(__file__)]
    workdir = Path(tempfile.mkdtemp(prefix="vm-bench-"))
    try:
        up, up_port = _spawn([*me, "--role", "upstream"], UPSTREAM_CPU)
        procs.append(up)
        fast, fast_port = _spawn([*me, "--role", "fast", "--upstream-port", str(up_port)], PROXY_CPU)
        procs.append(fast)
        gw, gw_port = _spawn([*me, "--role", "gateway", "--upstream-port", str(up_port)], PROXY_CPU)
        procs.append(gw)
        targets = [Target("direct", up_port), Target("voxmesh-fast", fast_port, [fast.pid]),
                   Target("voxmesh-aiohttp", gw_port, [gw.pid])]
        if args.bare:
            bare, bare_port = _spawn([*me, "--role", "bare", "--upstream-port", str(up_port)], PROXY_CPU)
            procs.append(bare)
            targets.append(Target("aiohttp-bare", bare_port, [bare.pid]))
            raw, raw_port = _spawn([*me, "--role", "raw", "--upstream-port", str(up_port)], PROXY_CPU)
            procs.append(raw)
            targets.append(Target("raw-protocol", raw_port, [raw.pid]))
        started = _start_nginx(up_port, workdir)
        if started is not None:
            procs.append(started[0])
            targets.append(Target("nginx", started[1], [started[0].pid]))
        await measure(targets, args, workdir)
        table = report(targets, args)
        print(table)
        args.table = table
        args.targets = targets
        return 0
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_probe_us() -> float:
    """Best of 200 short runs of ``sum(range(1000))`` in us: the core's speed when it is ours.

    Compare runs with it (the cores are shared and may be slowed by their neighbours)."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=50, repeat=200)) / 50 * 1e6


def describe_machine(args: argparse.Namespace) -> str:
    import aiohttp

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    try:
        nginx_v = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    except OSError:
        nginx_v = "nginx absent"
    load = os.getloadavg()
    return (
        f"- {psutil.cpu_count()} vCPU, {platform.processor() or platform.machine()}, Linux {platform.release()}; "
        f"load average at the end {load[0]:.2f} (1 min) / {load[1]:.2f} (5 min): other processes shared the cores\n"
        f"- CPU probe `sum(range(1000))`: {args.probe_before:.1f} us before, {cpu_probe_us():.1f} us after "
        f"(compare runs with it)\n"
        f"- Python {platform.python_version()}, aiohttp {aiohttp.__version__}, uvloop; {nginx_v}\n"
        f"- placement (taskset): client and upstream on CPU {CLIENT_CPU}, proxy under test on CPU {PROXY_CPU}\n"
        f"- latency: open loop {args.rate:g} req/s, {args.seconds:g} s per target per round, {args.rounds} "
        f"rounds interleaved, 32 keep-alive connections, medians of the per-round p50/p99\n"
        f"- capacity: {args.capacity_tool}, {args.cap_seconds:g} s per target"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "upstream", "gateway", "fast", "bare", "raw"], default="bench")
    parser.add_argument("--upstream-port", type=int)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap-seconds", type=float, default=5)
    parser.add_argument(
        "--bare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure a policy-free aiohttp proxy (the framework's own cost)",
    )
    parser.add_argument("--report", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()
    import uvloop

    if args.role == "upstream":
        uvloop.run(_run_upstream())
        return 0
    if args.role == "gateway":
        uvloop.run(_run_gateway(args.upstream_port))
        return 0
    if args.role == "fast":
        uvloop.run(_run_fast(args.upstream_port))
        return 0
    if args.role == "bare":
        uvloop.run(_run_bare(args.upstream_port))
        return 0
    if args.role == "raw":
        uvloop.run(_run_raw(args.upstream_port))
        return 0
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    args.probe_before = cpu_probe_us()
    print(f"CPU probe: {args.probe_before:.1f} us; load average {os.getloadavg()[0]:.2f}", flush=True)
    rc = uvloop.run(main_async(args))
    if args.report is not None:
        text = args.report.read_text() if args.report.exists() else ""
        marker = f"<!-- results at {args.rate:g} req/s -->"
        block = f"{marker}\n{describe_machine(args)}\n\n{args.table}\n{marker}"
        if text.count(marker) == 2:
            head, _, rest = text.partition(marker)
            _, _, tail = rest.partition(marker)
            text = head + block + tail
        else:
            text = text + "\n" + block + "\n"
        args.report.write_text(text)
        print(f"wrote {args.report}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
