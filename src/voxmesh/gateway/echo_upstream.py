"""A tiny HTTP upstream with fault injection, for data-plane tests and benchmarks.

Run: ``python -m voxmesh.gateway.echo_upstream --name a --port 0`` prints ``PORT <n>`` once
it listens. Any path answers 200 with a JSON body naming the upstream (and the header
``X-Upstream``) after ``delay_ms``, or 500 with probability ``fail_rate``. ``/stream``
answers ``chunks`` chunks ``gap_ms`` apart (chunked transfer encoding), ``/_fault`` (POST
JSON ``{"fail_rate": x, "delay_ms": y}``) changes the faults at run time, ``/_stats``
answers the number of requests served.

It stands in for a model server so the gateway's policies can be tested against real
sockets and real processes (``kill -9``) without loading a model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys

from aiohttp import web

__all__ = ["build_app", "main"]


def build_app(name: str, *, fail_rate: float = 0.0, delay_ms: float = 0.0, body_bytes: int = 0,
              seed: int | None = None) -> web.Application:  # fmt: skip
    state = {"fail_rate": fail_rate, "delay_ms": delay_ms, "served": 0}
    rng = random.Random(seed)
    padding = "x" * body_bytes

    async def fault(request: web.Request) -> web.Response:
        data = await request.json()
        for key in ("fail_rate", "delay_ms"):
            if key in data:
                state[key] = float(data[key])
        return web.json_response(state)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(state)

    async def stream(request: web.Request) -> web.StreamResponse:
        state["served"] += 1
        chunks = int(request.query.get("chunks", "3"))
        gap = float(request.query.get("gap_ms", "50")) / 1000.0
        if state["delay_ms"]:
            await asyncio.sleep(state["delay_ms"] / 1000.0)
        resp = web.StreamResponse(headers={"X-Upstream": name, "Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        for i in range(chunks):
            if i:
                await asyncio.sleep(gap)
            if request.query.get("break_at") == str(i) and request.transport is not None:
                request.transport.abort()  # die mid-stream
                return resp
            await resp.write(f"chunk{i};".encode())
        await resp.write_eof()
        return resp

    async def echo(request: web.Request) -> web.Response:
        state["served"] += 1
        body = await request.read()
        if state["delay_ms"]:
            await asyncio.sleep(state["delay_ms"] / 1000.0)
        if rng.random() < state["fail_rate"]:
            return web.json_response({"error": {"type": "injected", "message": name}}, status=500,
                                     headers={"X-Upstream": name})  # fmt: skip
        payload = {"upstream": name, "method": request.method, "path": request.path_qs, "len": len(body),
                   "content_type": request.content_type, "pad": padding}  # fmt: skip
        return web.Response(
            text=json.dumps(payload), content_type="application/json", headers={"X-Upstream": name}
        )

    app = web.Application()
    app.router.add_post("/_fault", fault)
    app.router.add_get("/_stats", stats)
    app.router.add_route("*", "/stream", stream)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def _serve(args: argparse.Namespace) -> None:
    app = build_app(args.name, fail_rate=args.fail_rate, delay_ms=args.delay_ms, body_bytes=args.body_bytes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--body-bytes", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
