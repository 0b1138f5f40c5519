"""A job keeps its submission's request id: the runner's chunk calls run under ``<id>-c<n>``,
the id never reaches the synthesizer's options or the chunk cache key."""

from __future__ import annotations

from typing import Any

from voxmesh.jobs.synth import FakeSynthesizer, SynthResult
from voxmesh.observability.requestid import REQUEST_ID
from voxmesh.storage.schema import REQUEST_ID_KEY

from .conftest import Stack

TEXT = "The first sentence is here. A second one follows it. Then a third! And the fourth? Finally five."


class Recording(FakeSynthesizer):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str | None, dict[str, Any]]] = []

    async def synthesize(self, text: str, *, model: str, voice: str, options: dict[str, Any]) -> SynthResult:
        self.seen.append((REQUEST_ID.get(), dict(options)))
        return await super().synthesize(text, model=model, voice=voice, options=options)


async def test_chunks_run_under_the_submission_id_and_the_cache_ignores_it(stack: Stack) -> None:
    stack.synth = synth = Recording()
    status = await stack.service.create(text=TEXT, voice="v", model="m", request_id="abc123")
    await stack.drain()
    job = await stack.db.get_job(status.id)
    assert job.request_id == "abc123" and job.trace_id == "abc123" and REQUEST_ID_KEY not in job.options
    assert sorted(rid for rid, _ in synth.seen) == sorted(f"abc123-c{i}" for i in range(status.chunks_total))
    assert all(REQUEST_ID_KEY not in opts for _, opts in synth.seen)
    # the same text under another id reuses every chunk: the id is not part of the cache key
    again = await stack.service.create(text=TEXT, voice="v", model="m", request_id="other-1")
    await stack.drain()
    assert (await stack.service.get(again.id)).state == "succeeded" and len(synth.seen) == status.chunks_total


async def test_a_job_without_an_id_falls_back_to_its_own(stack: Stack) -> None:
    stack.synth = synth = Recording()
    status = await stack.service.create(text="One short chunk.", voice="v", model="m")
    await stack.drain()
    job = await stack.db.get_job(status.id)
    assert job.request_id is None and job.trace_id == f"job-{status.id}"
    assert [rid for rid, _ in synth.seen] == [f"job-{status.id}-c0"]
