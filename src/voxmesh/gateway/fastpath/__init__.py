"""The gateway's protocol-level fast path: pooled upstream connections and a lean HTTP/1.1
server for the hot routes, both on asyncio Protocols + httptools, under the unchanged
sans-IO policies of the data plane. See ``benchmarks/reports/gateway.md`` for its cost.
"""

from __future__ import annotations

from voxmesh.gateway.fastpath.gateway import FastGatewayServer, start_fast_gateway

__all__ = ["FastGatewayServer", "start_fast_gateway"]
