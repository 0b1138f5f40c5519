"""Simulator internals: traces, service times, autoscaler presets, the event engine, reports.

The public entry points are in :mod:`voxmesh.autoscale.simulator`.
"""

from __future__ import annotations

__all__: list[str] = []
