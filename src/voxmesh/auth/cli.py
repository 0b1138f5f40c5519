"""``voxmesh keys`` and ``voxmesh tenants``: API keys and tenants, straight on the metadata DB
(the one ``voxmesh up`` uses: ``jobs.db_url``, else SQLite in ``--data-dir``).

    voxmesh keys create --tenant acme --scopes "tts:speak mt:translate" [--name N] [--expires-days D]
    voxmesh keys ls [--tenant acme] [--json]
    voxmesh keys revoke ID
    voxmesh tenants create acme [--requests-per-minute 600 --chars-per-day ...]
    voxmesh tenants ls [--json]
    voxmesh tenants set acme --chars-per-day 100000 [--concurrent-jobs default] [--disable|--enable]

``keys create`` prints the key once (stdout, one line) and never again. Every command is
written to the audit log as an admin action of ``cli:<user>``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from voxmesh.auth.audit import AuditLog
from voxmesh.auth.store import LIMIT_FIELDS, TenantStore, check_scopes
from voxmesh.errors import InvalidRequest
from voxmesh.settings import Settings, load_settings

__all__ = ["add_parser"]


def _limit_arg(value: str) -> int | None:
    if value == "default":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number (or 'default')") from None
    if n < 0:
        raise argparse.ArgumentTypeError("limits are >= 0")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="the data dir of `voxmesh up` (default .voxmesh)")


def _limits(p: argparse.ArgumentParser) -> None:
    for name in LIMIT_FIELDS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_limit_arg, default=argparse.SUPPRESS,
                       help="a whole number, or 'default'")


def add_parser(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="API keys (stored hashed in the metadata DB)")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("create", help="create a key; prints it once")
    p.add_argument("--tenant", required=True)
    p.add_argument("--scopes", required=True, help='space-separated, e.g. "tts:speak mt:translate"')
    p.add_argument("--name", default="", help="a label for listings")
    p.add_argument("--expires-days", type=float, default=None)
    _common(p)
    p.set_defaults(func=_run(_key_create))
    p = ks.add_parser("ls", help="list keys (ids, tenants, scopes; never the secrets)")
    p.add_argument("--tenant", default=None)
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_run(_key_ls))
    p = ks.add_parser("revoke", help="revoke a key by its id")
    p.add_argument("id")
    _common(p)
    p.set_defaults(func=_run(_key_revoke))

    tenants = subparsers.add_parser("tenants", help="tenants and their limits")
    ts = tenants.add_subparsers(dest="tenants_command", required=True)
    p = ts.add_parser("create", help="create a tenant")
    p.add_argument("name")
    _limits(p)
    _common(p)
    p.set_defaults(func=_run(_tenant_create))
    p = ts.add_parser("ls", help="list tenants and limits")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_run(_tenant_ls))
    p = ts.add_parser("set", help="change a tenant's limits ('default' clears one) or disable it")
    p.add_argument("name")
    _limits(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--disable", dest="disabled", action="store_true", default=argparse.SUPPRESS)
    g.add_argument("--enable", dest="disabled", action="store_false", default=argparse.SUPPRESS)
    _common(p)
    p.set_defaults(func=_run(_tenant_set))


Command = Callable[[argparse.Namespace, TenantStore], Awaitable[int]]


def _run(fn: Command) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        overrides: dict[str, Any] = {} if args.data_dir is None else {"data_dir": args.data_dir}
        settings: Settings = load_settings(args.config, **overrides)

        async def go() -> int:
            from voxmesh.auth.wiring import audit_path

            store = await TenantStore.open(settings.db_url())
            audit = AuditLog(Path(audit_path(settings)))
            sub = getattr(args, "keys_command", None) or getattr(args, "tenants_command", None)
            what = f"{args.command} {sub}"
            try:
                code = await fn(args, store)
                audit.record("admin", "ok", what=f"cli {what}", subject=f"cli:{getpass.getuser()}")
                return code
            except Exception as exc:
                audit.record("admin", getattr(exc, "status", 1), what=f"cli {what}", subject=f"cli:{getpass.getuser()}")
                raise
            finally:
                await store.close()

        return asyncio.run(go())

    return wrapped


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = [columns] + [["-" if r[c] is None else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


async def _key_create(args: argparse.Namespace, store: TenantStore) -> int:
    if args.expires_days is not None and args.expires_days <= 0:
        raise InvalidRequest("--expires-days must be > 0")
    record, key = await store.create_key(
        args.tenant, check_scopes(args.scopes), name=args.name,
        expires_in_s=None if args.expires_days is None else args.expires_days * 86400)  # fmt: skip
    print(key)
    print(f"created key {record.id} for tenant {record.tenant} with scopes {' '.join(sorted(record.scopes))}; "
          "it is shown only this once", file=sys.stderr)
    return 0


async def _key_ls(args: argparse.Namespace, store: TenantStore) -> int:
    rows = [k.to_dict() for k in await store.list_keys(args.tenant)]
    _print(rows, args.json, ["id", "tenant", "scopes", "name", "created_at", "expires_at", "revoked_at"])
    return 0


async def _key_revoke(args: argparse.Namespace, store: TenantStore) -> int:
    key = await store.revoke_key(args.id)
    print(f"revoked key {key.id} of tenant {key.tenant}", file=sys.stderr)
    return 0


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in (*LIMIT_FIELDS, "disabled") if hasattr(args, k)}


async def _tenant_create(args: argparse.Namespace, store: TenantStore) -> int:
    tenant = await store.create_tenant(args.name, **_given(args))
    print(json.dumps(tenant.to_dict()))
    return 0


async def _tenant_ls(args: argparse.Namespace, store: TenantStore) -> int:
    rows = [t.to_dict() for t in await store.list_tenants()]
    _print(rows, args.json, ["name", "disabled", *LIMIT_FIELDS])
    return 0


async def _tenant_set(args: argparse.Namespace, store: TenantStore) -> int:
    tenant = await store.update_tenant(args.name, **_given(args))
    print(json.dumps(tenant.to_dict()))
    return 0
