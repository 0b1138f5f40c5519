"""Mesh wiring for ``voxmesh up``: the CA, the gateway identity, worker identities, joining.

Local workers sign their own short-lived certificates with the CA in ``data_dir/mesh/ca``
(they share the machine and the data dir) and rotate them at 2/3 of their life; the gateway
does the same for its client identity. Workers accept only the gateway identity; the gateway
accepts only worker identities. When ``mesh.join_port`` is set, the gateway also serves
``/mesh/join`` and ``/mesh/renew`` over HTTPS on that port for workers on other hosts.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from voxmesh.deployments import Deployment
from voxmesh.mesh import (
    CertificateAuthority,
    FileTokenStore,
    JoinAuthority,
    ReloadableIdentity,
    local_renewer,
    setup_join_routes,
    spiffe_id,
)
from voxmesh.settings import Settings

__all__ = ["GATEWAY_NAME", "MeshWiring", "worker_identity_name"]

log = logging.getLogger(__name__)

GATEWAY_NAME = "gateway"


def worker_identity_name(deployment: str) -> str:
    return f"worker-{deployment}"


class MeshWiring:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.data_dir.resolve() / "mesh"
        self.td = settings.mesh.trust_domain
        self.ca = CertificateAuthority.load_or_create(self.dir / "ca", self.td)
        self.identity: ReloadableIdentity | None = None
        self.authority = JoinAuthority(self.ca, FileTokenStore(self.dir / "join-tokens.json"))
        self._join_runner: web.AppRunner | None = None

    async def start(self, deployments: list[Deployment]) -> None:
        self.identity = await ReloadableIdentity.load_or_issue(
            self.dir / GATEWAY_NAME,
            local_renewer(self.ca, GATEWAY_NAME, ttl_s=self.settings.mesh.cert_ttl_s),
            rotate_fraction=self.settings.mesh.rotate_fraction,
        )
        self.identity.start()
        self._expect = [spiffe_id(self.td, worker_identity_name(d.name)) for d in deployments]
        port = self.settings.mesh.join_port
        if port is not None:
            app = web.Application()
            setup_join_routes(app, self.authority)
            self._join_runner = web.AppRunner(app, access_log=None)
            await self._join_runner.setup()
            site = web.TCPSite(self._join_runner, self.settings.mesh.join_host, port,
                               ssl_context=self.identity.bootstrap_server_context())
            await site.start()
            log.info("mesh join API on https://%s:%d (CA fingerprint %s)",
                     self.settings.mesh.join_host, port, self.ca.fingerprint)

    def client_ssl(self) -> Any:
        assert self.identity is not None, "start() first"
        return self.identity.client_context(self._expect)

    def worker_tls_args(self, dep: Deployment, index: int) -> list[str]:
        return ["--mesh-dir", str(self.dir), "--trust-domain", self.td]

    async def stop(self) -> None:
        if self.identity is not None:
            await self.identity.stop()
        if self._join_runner is not None:
            await self._join_runner.cleanup()
