"""``python -m voxmesh.mesh``: mint join tokens, serve the join API, join, and probe mTLS.

A small operator and debugging tool (think ``kubeadm token create`` plus ``curl --cert``);
the multi-host test drives real processes with it. Subcommands::

    token      --data-dir D [--name N ...] [--ttl S]     print {token, fingerprint, expires_at, name} lines
    serve-join --data-dir D --host H --port P            gateway side: /mesh/* over bootstrap HTTPS
    join       --gateway-url U --token T --ca-fingerprint F --name N --key-dir K [--host H ...]
    worker     --key-dir K --host H --port P --gateway-url U [--token T --ca-fingerprint F --name N]
               join if K holds no identity, then serve GET /whoami over mTLS (gateway only),
               renewing through the gateway at 2/3 of the certificate's life
    call       (--url URL --expect NAME)... (--data-dir D | --key-dir K)
               GET over mTLS with the gateway identity of D (or the identity in K)

Servers print ``READY <url>`` on stdout once listening. Errors print one line and exit 1.
The gateway's CA lives in ``D/mesh/ca``, its identity in ``D/mesh/gateway``, tokens in
``D/mesh/join-tokens.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from voxmesh.errors import VoxmeshError
from voxmesh.mesh.ca import CertificateAuthority
from voxmesh.mesh.certs import read_identity, spiffe_id
from voxmesh.mesh.join import JoinAuthority, join, remote_renewer, setup_join_routes
from voxmesh.mesh.tls import ReloadableIdentity, client_context, local_renewer, peer_identity
from voxmesh.mesh.tokens import FileTokenStore
from voxmesh.settings import MeshSettings

_DEFAULT_TD = str(MeshSettings.model_fields["trust_domain"].default)


def _authority(data_dir: Path, trust_domain: str) -> JoinAuthority:
    ca = CertificateAuthority.load_or_create(data_dir / "mesh" / "ca", trust_domain)
    return JoinAuthority(ca, FileTokenStore(data_dir / "mesh" / "join-tokens.json"))


async def _serve(app: web.Application, host: str, port: int, ctx: Any, tasks: list[asyncio.Task[None]]) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ctx)
    await site.start()
    print(f"READY https://{host}:{site.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()


async def _token(args: argparse.Namespace) -> None:
    authority = _authority(args.data_dir, args.trust_domain)
    for name in args.name or [None]:
        tok = authority.mint(name=name, ttl_s=args.ttl)
        print(json.dumps({"token": tok.token, "fingerprint": tok.fingerprint, "expires_at": tok.expires_at, "name": name}))


async def _serve_join(args: argparse.Namespace) -> None:
    authority = _authority(args.data_dir, args.trust_domain)
    ident = await ReloadableIdentity.load_or_issue(
        args.data_dir / "mesh" / "gateway", local_renewer(authority.ca, "gateway", hosts=[args.host])
    )
    app = web.Application()
    setup_join_routes(app, authority)
    await _serve(app, args.host, args.port, ident.bootstrap_server_context(), [ident.start()])


async def _join(args: argparse.Namespace) -> None:
    paths = await join(
        args.gateway_url, args.token, args.ca_fingerprint, args.name, args.key_dir, hosts=args.host or []
    )
    stored = read_identity(paths.directory)
    print(json.dumps({"spiffe_id": str(stored.spiffe_id) if stored else None, "dir": str(paths.directory)}))


async def _worker(args: argparse.Namespace) -> None:
    if read_identity(args.key_dir) is None:
        if not (args.token and args.ca_fingerprint and args.name):
            raise SystemExit(f"{args.key_dir} holds no identity: pass --token, --ca-fingerprint and --name to join")
        await join(args.gateway_url, args.token, args.ca_fingerprint, args.name, args.key_dir, hosts=[args.host])
    ident = await ReloadableIdentity.load_or_issue(
        args.key_dir, remote_renewer(args.gateway_url, args.key_dir, hosts=[args.host])
    )
    me = ident.spiffe_id
    allowed = [spiffe_id(me.trust_domain, name, me.namespace) for name in args.allow]

    async def whoami(request: web.Request) -> web.Response:
        peer = peer_identity(request.transport)
        return web.json_response({"server": str(me), "peer": str(peer) if peer else None})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    await _serve(app, args.host, args.port, ident.server_context(allowed), [ident.start()])


async def _call(args: argparse.Namespace) -> None:
    directory = args.key_dir or args.data_dir / "mesh" / "gateway"
    current = read_identity(directory)
    if current is None:
        raise SystemExit(f"no identity in {directory}")
    if len(args.url) != len(args.expect):
        raise SystemExit("call: give one --expect per --url")
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for url, name in zip(args.url, args.expect, strict=True):
            expect = spiffe_id(current.spiffe_id.trust_domain, name, current.spiffe_id.namespace)
            ctx = client_context(directory / "identity.pem", current.trust_anchor_pem, [expect])
            async with session.get(url, ssl=ctx) as resp:
                print(json.dumps({"url": url, "status": resp.status, "body": await resp.json(content_type=None)}))
                if resp.status != 200:
                    raise SystemExit(1)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m voxmesh.mesh", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    tok = sub.add_parser("token")
    tok.add_argument("--data-dir", type=Path, required=True)
    tok.add_argument("--trust-domain", default=_DEFAULT_TD)
    tok.add_argument("--name", action="append", help="bind the token to this identity name (repeat: one token each)")
    tok.add_argument("--ttl", type=float, default=3600.0)
    sj = sub.add_parser("serve-join")
    sj.add_argument("--data-dir", type=Path, required=True)
    sj.add_argument("--trust-domain", default=_DEFAULT_TD)
    sj.add_argument("--host", required=True)
    sj.add_argument("--port", type=int, default=8443)
    for name in ("join", "worker"):
        j = sub.add_parser(name)
        j.add_argument("--gateway-url", required=True)
        j.add_argument("--token", required=name == "join")
        j.add_argument("--ca-fingerprint", required=name == "join")
        j.add_argument("--name", required=name == "join")
        j.add_argument("--key-dir", type=Path, required=True)
    sub.choices["join"].add_argument("--host", action="append")
    w = sub.choices["worker"]
    w.add_argument("--host", required=True)
    w.add_argument("--port", type=int, default=9443)
    w.add_argument("--allow", action="append", default=None, help="identity names allowed to call (default: gateway)")
    c = sub.add_parser("call")
    c.add_argument("--url", action="append", required=True)
    c.add_argument("--expect", action="append", required=True, help="identity name the server at --url must have")
    c.add_argument("--data-dir", type=Path)
    c.add_argument("--key-dir", type=Path)
    c.add_argument("--timeout", type=float, default=10.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "worker" and not args.allow:
        args.allow = ["gateway"]
    if args.cmd == "call" and not (args.data_dir or args.key_dir):
        print("call: pass --data-dir (gateway identity) or --key-dir", file=sys.stderr)
        return 2
    commands = {"token": _token, "serve-join": _serve_join, "join": _join, "worker": _worker, "call": _call}
    try:
        asyncio.run(commands[args.cmd](args))
    except VoxmeshError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except aiohttp.ClientError as exc:
        print(f"error: {exc!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
