"""Scale from zero: hold requests (bounded) while the first replica starts, as KEDA's HTTP
add-on does. The gateway calls :meth:`Activator.ensure` before forwarding to a deployment;
with a serving replica it returns at once. At zero it asks the supervisor for one replica
and waits for it; past ``hold_requests`` waiting requests, or after ``hold_timeout_s``, the
request gets a 503 with Retry-After instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from voxmesh.errors import Overloaded

__all__ = ["Activator"]


class Activator:
    def __init__(self, supervisor: Any) -> None:
        self.supervisor = supervisor
        self.held: dict[str, int] = {}

    async def ensure(self, deployment: str) -> None:
        sup = self.supervisor
        dep = sup.deployments.get(deployment)
        if dep is None or sup.serving(deployment) or (not dep.scaling.scale_to_zero and dep.replicas.min > 0):
            return
        scaling = dep.scaling
        if self.held.get(deployment, 0) >= scaling.hold_requests:
            raise Overloaded(f"deployment {deployment!r} is starting from zero and already holds "
                             f"{scaling.hold_requests} requests: retry shortly", retry_after=2.0)
        self.held[deployment] = self.held.get(deployment, 0) + 1
        try:
            if sup.desired.get(deployment, 0) < 1:
                sup.scale(deployment, 1, reason="activation: request held at zero replicas")
            deadline = time.monotonic() + scaling.hold_timeout_s
            while not sup.serving(deployment):
                if time.monotonic() > deadline:
                    raise Overloaded(f"deployment {deployment!r} did not start within "
                                     f"{scaling.hold_timeout_s:.0f}s: retry later", retry_after=5.0)
                await asyncio.sleep(0.02)
        finally:
            self.held[deployment] -= 1
