from __future__ import annotations

import io
import json
import random
import wave

import pytest

from voxmesh.errors import Conflict, InvalidRequest, UnknownVoice, UpstreamError
from voxmesh.jobs.lifecycle import ChunkState
from voxmesh.jobs.queue import MemoryQueue
from voxmesh.jobs.runner import backoff_s, is_retryable

from .conftest import Stack

TEXT = "The first sentence is here. A second one follows it. Then a third! And the fourth? Finally five."


def _wav(data: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


async def test_job_runs_to_a_stitched_result(stack: Stack) -> None:
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    assert status.state == "queued" and status.chunks_total >= 3
    assert await stack.service.queue_length() == status.chunks_total
    await stack.drain()
    done = await stack.service.get(status.id)
    assert done.state == "succeeded" and done.chunks_done == done.chunks_total and done.eta_s == 0.0
    pcm, rate = _wav((await stack.service.result(status.id))[0])
    chunks = await stack.db.job_chunks(status.id)
    expected = b"".join(stack.synth.render(c.text, "v", 24000) for c in chunks)
    assert rate == 24000 and pcm == expected
    assert done.duration_s == pytest.approx(len(expected) / 2 / 24000)
    assert done.audio_seconds == pytest.approx(done.duration_s, abs=1e-3)
    assert [c.synth_calls for c in chunks] == [1] * len(chunks)
    assert await stack.service.queue_length() == 0


async def test_same_text_is_synthesized_once(stack: Stack) -> None:
    a = await stack.service.create(text=TEXT, voice="v", model="m")
    await stack.drain()
    calls = len(stack.synth.calls)
    b = await stack.service.create(text=TEXT, voice="v", model="m")
    await stack.drain()
    assert len(stack.synth.calls) == calls  # content-addressed chunk audio reused
    assert (await stack.service.result(a.id))[0] == (await stack.service.result(b.id))[0]
    await stack.service.create(text=TEXT, voice="other", model="m")
    await stack.drain()
    assert len(stack.synth.calls) == 2 * calls


async def test_chapters_marks_match_audio(stack: Stack) -> None:
    md = b"# One\nAlpha beta gamma. Delta epsilon.\n\n# Two\nZeta eta theta iota kappa lambda mu nu xi.\n"
    status = await stack.service.create(filename="b.md", data=md, voice="v", model="m")
    await stack.drain()
    chapters = (await stack.service.chapters(status.id))["chapters"]
    done = await stack.service.get(status.id)
    assert [c["title"] for c in chapters] == ["One", "Two"]
    assert chapters[0]["start_s"] == 0.0 and chapters[0]["end_s"] == chapters[1]["start_s"]
    assert chapters[1]["end_s"] == pytest.approx(done.duration_s)
    first = [c for c in await stack.db.job_chunks(status.id) if c.chapter == 0]
    assert chapters[0]["end_s"] == pytest.approx(sum(c.samples or 0 for c in first) / 24000)


async def test_retry_with_backoff_then_success(stack: Stack) -> None:
    failures = {"n": 0}

    def fail(text: str) -> Exception | None:
        if text.startswith("The first") and failures["n"] < 2:
            failures["n"] += 1
            return UpstreamError("engine hiccup")
        return None

    stack.synth.fail = fail
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    runner = stack.runner()
    await stack.drain(runner)
    first = (await stack.db.job_chunks(status.id))[0]
    assert first.state is ChunkState.PENDING and first.error == "UpstreamError: engine hiccup"
    assert first.next_attempt_at > stack.clock()
    for _ in range(2):
        stack.clock.advance(10)
        if isinstance(stack.queue, MemoryQueue):  # delayed re-publish uses real timers
            stack.queue.put_raw(first.id)
        await stack.drain(runner)
    assert (await stack.service.get(status.id)).state == "succeeded"
    assert (await stack.db.job_chunks(status.id))[0].attempts == 3


async def test_permanent_error_dead_letters_and_fails_job(stack: Stack) -> None:
    stack.synth.fail = lambda text: UnknownVoice("no voice 'zz'") if "third" in text else None
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    await stack.drain()
    done = await stack.service.get(status.id)
    assert done.state == "failed" and done.chunks_dead == 1
    assert done.error is not None and "no voice 'zz'" in done.error
    dead = [c for c in await stack.db.job_chunks(status.id) if c.state is ChunkState.DEAD]
    assert dead[0].error is not None and dead[0].error.startswith("dead after 1 attempt(s): UnknownVoice")
    with pytest.raises(Conflict):
        await stack.service.result(status.id)


async def test_attempts_exhausted(stack: Stack) -> None:
    stack.synth.fail = lambda text: UpstreamError("down") if "third" in text else None
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    runner = stack.runner()
    for _ in range(5):
        await stack.drain(runner)
        stack.clock.advance(100)
        if isinstance(stack.queue, MemoryQueue):
            for c in await stack.db.job_chunks(status.id):
                if c.state is ChunkState.PENDING:
                    stack.queue.put_raw(c.id)
    done = await stack.service.get(status.id)
    assert done.state == "failed" and "dead after 3 attempt(s)" in (done.error or "")


async def test_crashed_runner_lease_expires_and_audio_is_reused(stack: Stack) -> None:
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    lease = await stack.queue.lease("doomed", 60.0, 0.0)
    assert lease is not None
    # the doomed runner synthesized and stored the audio, then died before marking the chunk done
    stack.synth.calls.clear()
    from voxmesh.jobs.stitch import chunk_object_key, pcm_to_wav

    pcm = stack.synth.render(lease.chunk.text, "v", 24000)
    await stack.store.put(chunk_object_key(lease.chunk.cache_key), pcm_to_wav(pcm, 24000))
    await stack.drain()
    assert (await stack.service.get(status.id)).state == "running"  # waits for the lease
    stack.clock.advance(61)
    if isinstance(stack.queue, MemoryQueue):
        stack.queue.put_raw(lease.chunk.id)  # the broker redelivers the unacked message
    await stack.drain()
    assert (await stack.service.get(status.id)).state == "succeeded"
    assert lease.chunk.text not in stack.synth.calls  # found in the store, not re-synthesized


async def test_cancel_stops_work(stack: Stack) -> None:
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    runner = stack.runner()
    assert await runner.step()
    cancelled = await stack.service.cancel(status.id)
    assert cancelled.state == "cancelled"
    await stack.drain(runner)
    assert (await stack.service.get(status.id)).chunks_done == 1
    with pytest.raises(Conflict):
        await stack.service.cancel(status.id)


async def test_bad_message_does_not_kill_the_loop(stack: Stack) -> None:
    if not isinstance(stack.queue, MemoryQueue):
        pytest.skip("only message queues carry messages")
    stack.queue.put_raw(None)
    stack.queue.put_raw(123456)  # a chunk that does not exist
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    await stack.drain()
    assert (await stack.service.get(status.id)).state == "succeeded"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"text": "  "}, InvalidRequest),
        ({"text": "hi", "response_format": "ogg"}, InvalidRequest),
        ({"text": "hi", "voice": ""}, InvalidRequest),
        ({"text": "hi", "options": {"input": "x"}}, InvalidRequest),
        ({"text": "hi", "options": [1]}, InvalidRequest),
        ({"text": "hi", "webhook_url": "ftp://x"}, InvalidRequest),
        ({}, InvalidRequest),
        ({"filename": "x.epub", "data": b"not an epub"}, InvalidRequest),
    ],
)
async def test_bad_input_stores_nothing(stack: Stack, kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {"voice": "v", "model": "m", **kwargs}
    with pytest.raises(error):
        await stack.service.create(**args)  # type: ignore[arg-type]
    assert (await stack.service.list())[0] == []
    assert stack.store.objects == {}


async def test_unknown_voice_from_catalog(stack: Stack) -> None:
    class Catalog:
        def check(self, model: str, voice: str) -> None:
            if voice != "joe":
                raise UnknownVoice(f"voice {voice!r} is not offered by {model}")

    stack.service.catalog = Catalog()
    with pytest.raises(UnknownVoice):
        await stack.service.create(text="Hello.", voice="bob", model="piper")
    assert (await stack.service.list())[0] == []
    assert (await stack.service.create(text="Hello.", voice="joe", model="piper")).state == "queued"


async def test_eta_and_progress(stack: Stack) -> None:
    status = await stack.service.create(text=TEXT, voice="v", model="m")
    runner = stack.runner()
    await runner.step()
    stack.clock.advance(10)
    await runner.step()
    mid = await stack.service.get(status.id)
    assert mid.state == "running" and mid.chunks_done == 2 and mid.audio_seconds > 0
    assert mid.eta_s is not None and mid.eta_s > 0


def test_classify_and_backoff() -> None:
    assert is_retryable(UpstreamError("x")) and is_retryable(RuntimeError("x"))
    assert not is_retryable(UnknownVoice("x")) and not is_retryable(InvalidRequest("x"))
    rng = random.Random(0)
    delays = [backoff_s(a, 1.0, 8.0, rng) for a in range(1, 8)]
    assert all(0.5 * min(8, 2 ** (a - 1)) <= d <= min(8, 2 ** (a - 1)) for a, d in zip(range(1, 8), delays, strict=True))


async def test_list_paging(stack: Stack) -> None:
    ids = [(await stack.service.create(text=f"Job number {i}.", voice="v", model="m")).id for i in range(5)]
    page, cursor = await stack.service.list(limit=3)
    page2, cursor2 = await stack.service.list(limit=3, cursor=cursor)
    assert [j.id for j in page + page2] == ids[::-1] and cursor2 is None
    with pytest.raises(InvalidRequest):
        await stack.service.list(cursor="zz")
    assert json.dumps(page[0].to_dict())


class _DbRestart(ConnectionResetError):
    """What a call raises while PostgreSQL restarts (the runner lives on)."""


@pytest.mark.parametrize("call", ["lease_chunk", "complete"])
async def test_a_failed_db_call_gives_the_message_back(stack: Stack, call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The chaos soak: a pg-restart under lease_chunk (or complete) left the chunk's message in
    # the runner's hand, neither acked nor requeued; with RabbitMQ's prefetch of 1 that runner
    # never got another message and every job stood still. The message must go back.
    if not isinstance(stack.queue, MemoryQueue):
        pytest.skip("only message queues carry messages")
    status = await stack.service.create(text="Only one chunk here.", voice="v", model="m")
    real = getattr(stack.db, call)
    failed: list[str] = []

    async def once(*args: object, **kwargs: object) -> object:
        if not failed:
            failed.append(call)
            raise _DbRestart("the database system is shutting down")
        return await real(*args, **kwargs)

    monkeypatch.setattr(stack.db, call, once)
    runner = stack.runner()
    with pytest.raises(_DbRestart):
        await runner.step()
    assert failed and await stack.queue.length() == 1  # released: back in the queue
    stack.clock.advance(stack.settings.jobs.lease_s + 1)  # complete failed: its lease must expire first
    await stack.drain(runner)
    assert (await stack.service.get(status.id)).state == "succeeded"
    chunk = (await stack.db.job_chunks(status.id))[0]
    assert chunk.synth_calls == 1  # the stored audio was found, not made again
