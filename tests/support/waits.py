"""Waiting in async tests for something that happens in another process or task."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

__all__ = ["until"]


async def until(probe: Callable[[], Any], timeout: float, what: str, *, every: float = 0.2,
                explain: Callable[[], Any] | None = None) -> Any:
    """Call ``probe`` (a plain function, or one that returns an awaitable) every ``every`` s
    until it gives something truthy, and return that. After ``timeout`` s and one last try,
    fail with "timed out after <timeout> s waiting for <what>", followed by what ``explain``
    gives then (the state a person needs to tell why it never happened)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            detail = ""
            if explain is not None:
                detail = explain()
                if inspect.isawaitable(detail):
                    detail = await detail
                detail = f"; {detail}"
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        await asyncio.sleep(every)
