"""The ``voxmesh`` command. Subcommands are added by their subsystems' ``cli`` modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from voxmesh.errors import ConfigError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxmesh", description=__doc__)
    parser.add_argument("--config", type=str, default=None, help="YAML config file (settings + deployments)")
    parser.add_subparsers(dest="command", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"voxmesh: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
