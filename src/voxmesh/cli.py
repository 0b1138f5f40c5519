"""The ``voxmesh`` command.

    voxmesh up [--port 8080] [--config FILE]     gateway + controller + job runners + workers
    voxmesh worker --engine piper --model tts-en --port P   one worker (the controller runs these)
    voxmesh sim ...                              autoscaling simulator (see voxmesh sim -h)
    voxmesh jobs submit|ls|status|cancel ...     long-text jobs against a running gateway
    voxmesh batch DIR                            submit a folder of texts, wait, summarize
    voxmesh deploy values|render --config FILE   Kubernetes chart values / manifests (voxmesh.deploy)
    voxmesh keys create|ls|revoke, voxmesh tenants create|ls|set   API keys and tenants (metadata DB)

A process that cannot start exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from voxmesh.errors import ConfigError, VoxmeshError

__all__ = ["main"]


def _add_optional(sub: argparse._SubParsersAction[argparse.ArgumentParser], module: str) -> None:
    """Subcommands owned by subsystems register themselves through ``add_parser``."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        return
    mod.add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxmesh", description="Serve TTS and MT models in production.")
    parser.add_argument("--config", type=Path, default=None, help="YAML file: settings + deployments")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: settings.log_level)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the local stack: gateway, controller, workers, job runners")
    up.add_argument("--host", default=None, help="bind address of the public API (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="port of the public API (default 8080)")
    up.add_argument("--data-dir", type=Path, default=None, help="state: CA, database, objects, logs")
    up.set_defaults(func=_cmd_up)

    worker = sub.add_parser("worker", help="run one worker process hosting one engine")
    worker.add_argument("--engine", required=True, help="piper | kokoro | llamacpp")
    worker.add_argument("--model", required=True, help="deployment name the worker serves")
    worker.add_argument("--host", default="127.0.0.1")
    worker.add_argument("--port", type=int, required=True)
    worker.add_argument("--threads", type=int, default=None, help="cores the worker may use (default: all)")
    worker.add_argument("--options", default="{}", help="engine options as JSON")
    worker.add_argument("--dictionary", type=Path, default=None, help="pronunciation dictionary (JSONL)")
    worker.add_argument("--mesh-dir", type=Path, default=None,
                        help="local mTLS: sign our certificate with the CA in DIR/ca (same data dir as the gateway)")
    worker.add_argument("--key-dir", type=Path, default=None, help="remote mTLS: where our identity lives")
    worker.add_argument("--gateway-url", default=None, help="remote mTLS: the gateway's join URL (https://host:port)")
    worker.add_argument("--token", default=None, help="one-time join token (first start on a host)")
    worker.add_argument("--ca-fingerprint", default=None, help="the CA fingerprint given with the token")
    worker.add_argument("--trust-domain", default="voxmesh.local")
    worker.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process (the supervisor) dies; set by voxmesh up")
    worker.add_argument("--run-dir", type=Path, default=None,
                        help="the supervisor's run dir (data_dir/run) that records this worker")
    worker.set_defaults(func=_cmd_worker)

    _add_optional(sub, "voxmesh.autoscale.sim_cli")
    _add_optional(sub, "voxmesh.jobs.cli")
    _add_optional(sub, "voxmesh.deploy.cli")
    _add_optional(sub, "voxmesh.auth.cli")
    return parser


def _settings(args: argparse.Namespace, **overrides: object) -> object:
    from voxmesh.settings import load_settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(args.config, **clean)


def _logging(args: argparse.Namespace, level: str, fmt: str = "text") -> None:
    from voxmesh.observability.requestid import configure_logging

    configure_logging(args.log_level or level, fmt, sys.stderr)  # every line with its request id
    for noisy in ("alembic", "aiormq", "aio_pika", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _cmd_worker(args: argparse.Namespace) -> int:
    import os

    if args.parent_pid is not None:  # first: a supervisor killed now must not leave us behind
        from voxmesh.lifeline import bind_to_parent

        bind_to_parent(args.parent_pid)
    from voxmesh.worker.preload import start_preload

    try:
        options = json.loads(args.options)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--options is not valid JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise ConfigError(f"--options must be a JSON object, got {args.options!r}")
    from voxmesh.cpu_budget import cpu_budget

    threads = args.threads or cpu_budget()  # the pod's CPU limit, else the cores we may run on
    # the model loads on one core while the web stack imports on the other
    preload = start_preload(args.engine, options, threads)

    from voxmesh.worker.main import MeshArgs, run_worker

    code = 0
    try:
        settings = _settings(args)
        _logging(args, settings.log_level, settings.log_format)  # type: ignore[attr-defined]
        run_worker(settings, preload=preload, engine=args.engine, model=args.model,  # type: ignore[arg-type]
                   host=args.host, port=args.port, threads=threads, dictionary=args.dictionary,
                   mesh=MeshArgs(args.mesh_dir, args.key_dir, args.gateway_url, args.token, args.ca_fingerprint,
                                 args.trust_domain))
    except VoxmeshError as exc:
        print(f"voxmesh: {exc.message}", file=sys.stderr)
        code = 2 if isinstance(exc, ConfigError) else 1
    # The worker has drained (or never served). Leave without tearing the interpreter down:
    # onnxruntime threads still loading or warming abort the process in teardown
    # ("terminate called without an active exception").
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _cmd_up(args: argparse.Namespace) -> int:
    from voxmesh.stack import run_stack

    server: dict[str, object] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    overrides: dict[str, object] = {}
    if server:
        overrides["server"] = server
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    settings = _settings(args, **overrides)
    _logging(args, settings.log_level, settings.log_format)  # type: ignore[attr-defined]
    return run_stack(settings, args.config)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"voxmesh: {exc.message}", file=sys.stderr)
        return 2
    except VoxmeshError as exc:
        print(f"voxmesh: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
