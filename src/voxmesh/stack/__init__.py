"""``voxmesh up`` wiring: one module per subsystem plugged into the gateway process."""

from __future__ import annotations

from voxmesh.stack.core import Stack, run_stack

__all__ = ["Stack", "run_stack"]
