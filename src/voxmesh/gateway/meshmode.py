"""What the gateway's own data plane does under each ``gateway.mesh`` mode.

``builtin`` (the default, one machine): the gateway is the mesh. It reaches workers over
mTLS with identities from its built-in CA, balances every replica by power of two choices
over peak-EWMA, retries under a budget, ejects failing endpoints with its breaker, and the
controller (supervisor + autoscaler) starts, warms and scales the workers.

``linkerd`` (Kubernetes with the Linkerd proxy injected in every pod): Linkerd is the mesh,
so the gateway must not stack a second one on top of it.

Linkerd takes over
    * mTLS and identity: the proxies encrypt and authenticate pod to pod; the gateway sends
      plain HTTP to ``http://<svc>.<ns>.svc.cluster.local:<port>`` (``mesh.enabled`` is
      implied false: no built-in CA, no worker certificates, no join API). An ``https://``
      URL or ``external.tls`` is refused: the proxy would see opaque TLS and could apply
      none of its HTTP features.
    * balancing: one Service URL per deployment (``external.urls[0]``; more than one URL is
      refused), the proxy balances its pods (EWMA, like ours).
    * retries: the gateway makes exactly one attempt; Linkerd retries under its own budget
      (``retry.linkerd.io/*`` annotations on the Service or HTTPRoute). Two retry layers
      multiply: 3 gateway attempts x 3 proxy attempts is 9 requests on a failing pod.
    * circuit breaking: the gateway never ejects its one endpoint (:class:`NoEjection`);
      the proxy's failure accrual ejects single pods (``balancer.linkerd.io/failure-accrual``).
    * replicas and scaling: model deployments are ``external`` Services, so the supervisor
      and autoscaler manage none of them; KEDA / HPA scale the pods. A deployment with an
      ``engine`` is refused (``voxmesh deploy render`` turns each one into a Service).

The gateway keeps
    the public API (OpenAI / LibreTranslate), auth and quotas, durable jobs, routing by model
    (aliases, and weighted splits between deployments, i.e. between Services), timeouts per
    request / first byte / idle stream (the client's deadline: keep Linkerd's
    ``timeout.linkerd.io/*`` below them so the proxy's answer reaches the client), the in-flight cap (now per
    deployment: one endpoint), and the golden metrics per route, deployment and caller edge
    (``golden.py``; endpoint labels name the Service). Response headers from upstream, the
    proxy's ``l5d-proxy-error`` included, reach the client untouched; request headers are
    passed by allow-list, so a client can never set ``l5d-dst-override`` to reroute inside
    the mesh.

Sans-IO: :class:`DataPlanePolicy` is a frozen value chosen from settings once;
:func:`check_deployments` is a pure validation of the deployments file.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from voxmesh.deployments import Deployment
from voxmesh.errors import ConfigError
from voxmesh.gateway.resilience.breaker import Breaker
from voxmesh.gateway.resilience.no_ejection import NoEjection
from voxmesh.settings import GatewaySettings

__all__ = ["DataPlanePolicy", "MeshMode", "check_deployments", "endpoint_urls"]


class MeshMode(Enum):
    BUILTIN = "builtin"
    LINKERD = "linkerd"


@dataclass(frozen=True)
class DataPlanePolicy:
    """The data-plane features the gateway runs itself in one mesh mode."""

    mode: MeshMode
    max_attempts: int  # attempts per request, the first included (1: no gateway retries)
    ejection: bool  # the per-endpoint failure-accrual breaker may eject
    builtin_mtls: bool  # the built-in CA and mTLS to workers
    manages_workers: bool  # deployments with an engine become supervised worker processes

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> DataPlanePolicy:
        if settings.mesh == "linkerd":
            return cls(MeshMode.LINKERD, max_attempts=1, ejection=False, builtin_mtls=False,
                       manages_workers=False)  # fmt: skip
        return cls(MeshMode.BUILTIN, max_attempts=settings.retry_max_attempts, ejection=True,
                   builtin_mtls=True, manages_workers=True)  # fmt: skip

    def new_breaker(self, settings: GatewaySettings, rng: random.Random) -> Breaker | NoEjection:
        if not self.ejection:
            return NoEjection()
        return Breaker(
            failures=settings.breaker_failures,
            min_backoff_s=settings.breaker_min_backoff_s,
            max_backoff_s=settings.breaker_max_backoff_s,
            jitter=settings.breaker_jitter,
            rng=rng,
        )


def check_deployments(policy: DataPlanePolicy, deployments: Iterable[Deployment]) -> None:
    """Refuse, with one line naming the field, what the mode cannot run."""
    if policy.mode is not MeshMode.LINKERD:
        return
    for dep in deployments:
        where = f"deployment {dep.name!r}"
        if dep.external is None:
            raise ConfigError(
                f"{where}: engine: {dep.engine} cannot run under gateway.mesh=linkerd (the gateway runs no "
                "workers there); declare it as external: {urls: ['http://<svc>.<ns>.svc.cluster.local:<port>'], "
                "kind: ...} (voxmesh deploy render does this)"
            )
        if len(dep.external.urls) != 1:
            raise ConfigError(
                f"{where}: external.urls must hold exactly one Service URL under gateway.mesh=linkerd "
                f"(got {len(dep.external.urls)}); Linkerd balances the pods behind it"
            )
        if dep.external.tls or urlsplit(dep.external.urls[0]).scheme != "http":
            raise ConfigError(
                f"{where}: external.urls[0] must be plain http:// and external.tls false under "
                "gateway.mesh=linkerd: the Linkerd proxy does the mTLS"
            )


def endpoint_urls(policy: DataPlanePolicy, dep: Deployment) -> list[str]:
    """The URLs the data plane balances for an external deployment."""
    assert dep.external is not None
    urls = [u.rstrip("/") for u in dep.external.urls]
    return urls[:1] if policy.mode is MeshMode.LINKERD else urls
