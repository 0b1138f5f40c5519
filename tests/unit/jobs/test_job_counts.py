"""``JobDB.job_counts``: the source of the ``voxmesh_jobs{state}`` gauge behind the job-failure alert."""

from __future__ import annotations

from voxmesh.errors import UnknownVoice

from .conftest import Stack

TEXT = "First sentence here. Second sentence is here. The third one fails. And a fourth."


async def test_counts_every_state_and_sees_a_failed_job(stack: Stack) -> None:
    assert await stack.db.job_counts() == {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    ok = await stack.service.create(text="Just one fine sentence.", voice="v", model="m")
    await stack.drain()
    stack.synth.fail = lambda text: UnknownVoice("no voice 'zz'") if "third" in text else None
    bad = await stack.service.create(text=TEXT, voice="v", model="m")
    await stack.drain()
    assert (await stack.service.get(ok.id)).state == "succeeded"
    assert (await stack.service.get(bad.id)).state == "failed"
    counts = await stack.db.job_counts()
    assert counts["succeeded"] == 1 and counts["failed"] == 1 and sum(counts.values()) == 2
