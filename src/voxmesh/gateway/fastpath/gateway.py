"""The gateway's public listener on the fast server, with the aiohttp app behind it.

:func:`start_fast_gateway` serves the hot routes (``routes.py``) itself and relays every
other request to the gateway's aiohttp application, which listens only on a unix socket in
a private temporary directory. A middleware added to that app takes the client address
from the relay's ``X-Voxmesh-Peer`` header, and only on that unix socket, so
``request.remote`` (the admin loopback check) means what it meant on a TCP listener.

Usage (what ``voxmesh up`` does with ``gateway.server: fast``)::

    app = build_gateway_app(gateway, setup=setup)      # not yet set up by a runner
    server = await start_fast_gateway(gateway, app, host, port)
    ...                                                # server.port is the bound port
    await server.close()                               # drains, then stops the app too

Limits
    The app must not be frozen yet (its middleware list is extended). Request bodies of
    relayed routes are buffered up to ``max(2 MiB, jobs.max_upload_bytes + 1 MiB)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from voxmesh.gateway.cors import CorsPolicy
from voxmesh.gateway.fastpath.h1 import DateHeader
from voxmesh.gateway.fastpath.routes import HOT_BODY_LIMIT, PEER_HEADER, HotRoutes, Relay
from voxmesh.gateway.fastpath.server import HeadLimits, ServerConnection

if TYPE_CHECKING:
    from voxmesh.gateway.app import Gateway
    from voxmesh.gateway.dataplane import DataPlane

__all__ = ["FastGatewayServer", "peer_middleware", "start_fast_gateway"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def peer_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Trust ``X-Voxmesh-Peer`` as the client address only on a unix socket (the relay's)."""
    peer = request.headers.get(PEER_HEADER)
    transport = request.transport
    if peer is not None and transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            request = request.clone(remote=peer)
    return await handler(request)


class FastGatewayServer:
    """The running listener; ``port`` is the bound TCP port."""

    def __init__(
        self,
        server: asyncio.Server,
        runner: web.AppRunner,
        relay: Relay,
        live: set[ServerConnection],
        sock_dir: Path,
    ) -> None:
        self._server = server
        self._runner = runner
        self._relay = relay
        self._live = live
        self._dir = sock_dir
        self.port = int(server.sockets[0].getsockname()[1])

    async def close(self, drain_s: float = 30.0) -> None:
        """Stop accepting, let in-flight answers finish (up to ``drain_s``), then stop the app."""
        self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        while any(not c.idle for c in self._live) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self._live):
            conn.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._relay.close()
        await self._runner.cleanup()
        shutil.rmtree(self._dir, ignore_errors=True)


async def start_fast_gateway(
    gateway: Gateway, app: web.Application, host: str, port: int
) -> FastGatewayServer:
    """Serve ``app`` behind the fast server on ``host:port`` (0: any free port)."""
    dataplane: DataPlane = gateway.dataplane
    app.middlewares.insert(0, peer_middleware)
    sock_dir = Path(tempfile.mkdtemp(prefix="voxmesh-gw-"))
    sock_path = sock_dir / "app.sock"
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        await web.UnixSite(runner, str(sock_path)).start()
        relay = Relay(f"unix:{sock_path}")
        relay_limit = max(HOT_BODY_LIMIT, gateway.settings.jobs.max_upload_bytes + 1024 * 1024)
        hardening = gateway.settings.hardening
        routes = HotRoutes(gateway.catalog, dataplane, relay, relay_limit, activate=gateway.activate,
                           guard=gateway.guard, cors=CorsPolicy(hardening.cors_origins))
        limits = HeadLimits(hardening.max_header_count, hardening.max_header_bytes, hardening.head_timeout_s,
                            hardening.keepalive_timeout_s)
        live: set[ServerConnection] = set()
        date = DateHeader()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: ServerConnection(routes, routes.limit_for, date, live, limits), host, port, backlog=1024
        )
    except BaseException:
        await runner.cleanup()
        shutil.rmtree(sock_dir, ignore_errors=True)
        raise
    return FastGatewayServer(server, runner, relay, live, sock_dir)
