"""``python -m voxmesh.jobs.runner_main [--config FILE] [--runners N]``: a job-runner process.

Runs ``jobs.runners`` runner loops (or ``--runners``) against the configured DB, store and
queue, synthesizing with ``jobs.engine`` (``http`` to ``jobs.engine_url``, or ``fake``).
SIGTERM/SIGINT stop it gracefully: the chunk in hand is abandoned and its lease expires
(or its message is redelivered), which is exactly what a crash does, so nothing is lost.
Exits 2 with a one-line reason when it cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from voxmesh.errors import ConfigError, VoxmeshError
from voxmesh.jobs.wiring import build_synthesizer, make_runner, open_jobs
from voxmesh.settings import load_settings

__all__ = ["main"]

log = logging.getLogger("voxmesh.jobs.runner_main")


async def _serve(config: Path | None, runners: int | None) -> None:
    settings = load_settings(config)
    count = runners if runners is not None else settings.jobs.runners
    try:
        stack = await open_jobs(settings)
    except VoxmeshError as exc:
        raise ConfigError(f"cannot open the jobs stores: {exc.message}") from exc
    synth = build_synthesizer(settings)
    tasks = [asyncio.create_task(make_runner(stack, synth).run()) for _ in range(max(1, count))]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("job runner started: %d loop(s), queue=%s", len(tasks), settings.jobs.queue)
    await stop.wait()
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    close = getattr(synth, "close", None)
    if close is not None:
        await close()
    await stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxmesh-runner", description=__doc__)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--runners", type=int, default=None)
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process (whatever supervises the runner) dies")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        from voxmesh.lifeline import bind_to_parent

        bind_to_parent(args.parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args.config, args.runners))
    except ConfigError as exc:
        print(f"voxmesh-runner: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
