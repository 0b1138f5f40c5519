"""``python -m voxmesh.jobs.api_main --port P``: the jobs API on its own (development, tests).

Serves :func:`~voxmesh.jobs.routes.setup_job_routes` with the JSON error middleware on
``server.host``; the gateway mounts the same routes in production. Settings come from the
environment / ``--config`` like every voxmesh process. Exits 2 with one line if it cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

from voxmesh.api.errors import error_middleware
from voxmesh.api.request_id import install as install_request_id
from voxmesh.errors import ConfigError, VoxmeshError
from voxmesh.jobs.routes import setup_job_routes
from voxmesh.jobs.wiring import open_jobs
from voxmesh.settings import load_settings

__all__ = ["main"]


async def _serve(config: Path | None, port: int | None) -> None:
    settings = load_settings(config)
    try:
        stack = await open_jobs(settings)
    except VoxmeshError as exc:
        raise ConfigError(f"cannot open the jobs stores: {exc.message}") from exc
    app = web.Application(middlewares=[error_middleware])
    setup_job_routes(app, stack.service)
    install_request_id(app)  # the submission's request id: kept with the job, carried by its chunks
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, port if port is not None else settings.server.port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxmesh-jobs-api", description=__doc__)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.config, args.port))
    except ConfigError as exc:
        print(f"voxmesh-jobs-api: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
