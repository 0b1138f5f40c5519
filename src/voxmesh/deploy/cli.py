"""``voxmesh deploy``: one deployments file drives both the local stack and a cluster.

    voxmesh deploy values --config deployments.yaml > values.yaml
    voxmesh deploy render --config deployments.yaml [--values extra.yaml] [--namespace N] > manifests.yaml

``values`` writes the chart values for the file's deployments; ``render`` renders the chart
(``deploy/helm/voxmesh``) with them, offline, as ``helm template`` would. A bad deployments
file or values file exits 2 with one line naming the field.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from voxmesh.errors import ConfigError

__all__ = ["add_parser"]


def _config_values(args: argparse.Namespace) -> dict[str, Any]:
    from voxmesh.deploy.chart import chart_defaults
    from voxmesh.deploy.values import values_from_config
    from voxmesh.deployments import load_deployments

    config = load_deployments(args.deploy_config or args.config)
    return values_from_config(config, chart_defaults(getattr(args, "chart", None)))


def _extra_values(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read values file {p}: {' '.join(str(exc).split())}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"values file {p} must hold a mapping at the top level")
        out.append(data)
    return out


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _cmd_values(args: argparse.Namespace) -> int:
    values = _config_values(args)
    sys.stdout.write("# chart values from the deployments file (voxmesh deploy values)\n" + _dump(values))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from voxmesh.deploy.chart import ALL_API_VERSIONS, merge_values, render_manifests

    values = _config_values(args)
    for extra in _extra_values(args.values):
        values = merge_values(values, extra)
    apis = ALL_API_VERSIONS if args.api_versions is None else tuple(
        v for v in args.api_versions.split(",") if v)
    docs = render_manifests(values, chart=args.chart, release=args.release, namespace=args.namespace,
                            api_versions=apis, kube_version=args.kube_version)
    for path, text in docs.items():
        body = text.strip("\n")
        if not body.startswith("---"):
            body = "---\n" + body
        sys.stdout.write(f"# Source: {path}\n{body}\n")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``deploy values`` and ``deploy render`` on the ``voxmesh`` command."""
    deploy = subparsers.add_parser("deploy", help="Kubernetes: chart values and manifests from a deployments file")
    sub = deploy.add_subparsers(dest="deploy_command", required=True, metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", dest="deploy_config", type=Path, default=None,
                       help="deployments file (default: the one `voxmesh up` uses)")

    p = sub.add_parser("values", help="print the chart values for the deployments file")
    common(p)
    p.set_defaults(func=_cmd_values)

    p = sub.add_parser("render", help="print the manifests (helm template, offline)")
    common(p)
    p.add_argument("--values", type=Path, action="append", default=[],
                   help="extra values file merged on top (repeatable; later wins)")
    p.add_argument("--namespace", default="voxmesh")
    p.add_argument("--release", default="voxmesh", help="Helm release name (object name prefix)")
    p.add_argument("--chart", type=Path, default=None, help="chart directory (default: see voxmesh.deploy.chart)")
    p.add_argument("--kube-version", default="v1.30.0")
    p.add_argument("--api-versions", default=None,
                   help="comma-separated APIs the cluster serves (default: Linkerd, Gateway API, KEDA, Flagger; "
                        "'' for none: custom resources are then left out)")
    p.set_defaults(func=_cmd_render)
