"""A stop step that hangs is abandoned after its bound, named in the log, and the stop goes on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voxmesh.stack.core import _bounded


async def test_a_hanging_step_is_logged_and_abandoned(caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []

    async def hang() -> None:
        await asyncio.Event().wait()

    async def quick() -> None:
        done.append("quick")

    with caplog.at_level(logging.ERROR, logger="voxmesh.stack.core"):
        await _bounded("jobs", hang(), timeout=0.05)
        await _bounded("supervisor", quick(), timeout=1.0)
    assert done == ["quick"]  # the step after the hung one still ran
    assert "stop: jobs did not finish within 0.05 s" in caplog.text
    assert "hang" in caplog.text  # the pending task, so the log says what it waited on
