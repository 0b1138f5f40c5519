"""Idempotent job submission (``Idempotency-Key``): a repeat gets the first job back, never a
second one; another request under the same key is a 409; keys are per tenant; a key whose
submission the queue refused is free again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from voxmesh.errors import Conflict, InvalidRequest, Overloaded
from voxmesh.jobs.idempotency import check_key, fingerprint
from voxmesh.jobs.routes import setup_job_routes

from .conftest import Stack


def test_key_rules() -> None:
    assert check_key(None) is None
    assert check_key("6f1c-4d2b_x.y:z") == "6f1c-4d2b_x.y:z"
    for bad in ("", "with space", "é", "x" * 256, "tab\t"):
        with pytest.raises(InvalidRequest, match="Idempotency-Key"):
            check_key(bad)


def test_fingerprint_covers_fields_and_file() -> None:
    base = {"text": "a", "voice": "v", "options": {"speed": 1.0}}
    assert fingerprint(base) == fingerprint(dict(reversed(base.items())))
    assert fingerprint(base) != fingerprint({**base, "text": "b"})
    assert fingerprint(base) != fingerprint({**base, "options": {"speed": 1.1}})
    assert fingerprint(base, b"file one") != fingerprint(base, b"file two")
    assert fingerprint(base, b"") != fingerprint(base)


async def test_a_repeat_returns_the_first_job_and_stores_nothing_new(stack: Stack) -> None:
    first, replayed = await stack.service.submit(text="Some words to say twice.", voice="v", model="m",
                                                 idempotency_key="k-1")
    assert not replayed
    chunks = len(await stack.db.job_chunks(first.id))
    again, replayed = await stack.service.submit(text="Some words to say twice.", voice="v", model="m",
                                                 idempotency_key="k-1")
    assert replayed and again.id == first.id
    await stack.drain()
    late, replayed = await stack.service.submit(text="Some words to say twice.", voice="v", model="m",
                                                idempotency_key="k-1")
    assert replayed and late.id == first.id and late.state == "succeeded"  # whatever state it reached
    jobs, _ = await stack.service.list()
    assert [j.id for j in jobs] == [first.id]
    assert len(await stack.db.job_chunks(first.id)) == chunks
    without = await stack.service.create(text="Some words to say twice.", voice="v", model="m")
    assert without.id != first.id  # no key: every submission is a job


async def test_the_same_key_for_another_request_is_a_conflict(stack: Stack) -> None:
    job = await stack.service.create(text="One text.", voice="v", model="m", idempotency_key="k-2")
    for change in ({"text": "Another text."}, {"voice": "w"}, {"options": {"speed": 1.2}},
                   {"response_format": "mp3"}):
        fields: dict[str, Any] = {"text": "One text.", "voice": "v", "model": "m", **change}
        with pytest.raises(Conflict, match=f"different request \\(job {job.id}\\)"):
            await stack.service.create(**fields, idempotency_key="k-2")
    assert len((await stack.service.list())[0]) == 1


async def test_keys_are_per_tenant(stack: Stack) -> None:
    a = await stack.service.create(text="Same.", voice="v", model="m", tenant="acme", idempotency_key="k")
    b = await stack.service.create(text="Same.", voice="v", model="m", tenant="globex", idempotency_key="k")
    assert a.id != b.id  # globex's "k" neither returns nor reveals acme's job
    again, replayed = await stack.service.submit(text="Same.", voice="v", model="m", tenant="acme",
                                                 idempotency_key="k")
    assert replayed and again.id == a.id


async def test_a_submission_the_queue_refused_gives_its_key_up(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(ids: list[int]) -> None:
        raise Overloaded("queue is reconnecting", retry_after=1.0)

    publish = stack.queue.publish
    monkeypatch.setattr(stack.queue, "publish", refuse)
    with pytest.raises(Overloaded):
        await stack.service.create(text="Retry me.", voice="v", model="m", idempotency_key="k-3")
    monkeypatch.setattr(stack.queue, "publish", publish)
    job, replayed = await stack.service.submit(text="Retry me.", voice="v", model="m", idempotency_key="k-3")
    assert not replayed and job.state == "queued"
    await stack.drain()
    assert (await stack.service.get(job.id)).state == "succeeded"


async def test_routes_answer_201_then_200_replayed_then_409(stack: Stack) -> None:
    app = web.Application()
    setup_job_routes(app, stack.service)
    async with TestClient(TestServer(app)) as client:
        body = {"text": "Over HTTP.", "voice": "v", "model": "m"}
        r1 = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "h-1"})
        assert r1.status == 201 and "Idempotent-Replayed" not in r1.headers
        r2 = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "h-1"})
        assert r2.status == 200 and r2.headers["Idempotent-Replayed"] == "true"
        assert (await r2.json())["id"] == (await r1.json())["id"] and r2.headers["Location"] == r1.headers["Location"]
        r3 = await client.post("/v1/jobs", json={**body, "text": "Else."}, headers={"Idempotency-Key": "h-1"})
        assert r3.status == 409
        assert "different request" in (await r3.json())["error"]["message"]
        r4 = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "has space"})
        assert r4.status == 400 and (await r4.json())["error"]["param"] == "Idempotency-Key"


async def test_cli_resubmits_after_a_lost_answer_and_gets_the_same_job(stack: Stack, tmp_path: Any) -> None:
    """The first answer is lost (the server created the job, then the connection dropped);
    ``JobsClient.submit_file`` retries under the same key and gets that job, not a second one.
    A 503 before that (queue refused) is retried too."""
    from voxmesh.jobs.cli import JobsClient

    seen: list[str] = []

    @web.middleware
    async def flaky(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.headers.get("Idempotency-Key", ""))
        if len(seen) == 1:
            return web.json_response({"error": {"message": "restarting"}}, status=503)
        resp = await handler(request)
        if len(seen) == 2:  # the job exists now; the client never hears of it
            assert request.transport is not None
            request.transport.close()
        return resp

    app = web.Application(middlewares=[flaky])
    setup_job_routes(app, stack.service)
    book = tmp_path / "book.txt"
    book.write_text("A short book that must be submitted exactly once.")
    async with TestServer(app) as server:
        client = JobsClient(str(server.make_url("")))
        job = await asyncio.to_thread(client.submit_file, book, {"voice": "v", "model": "m"}, sleep=lambda s: None)
    assert len(seen) == 3 and len(set(seen)) == 1 and seen[0]  # one key for every try
    jobs, _ = await stack.service.list()
    assert [j.id for j in jobs] == [job["id"]]


def test_cli_gives_up_on_a_4xx_at_once(tmp_path: Any) -> None:
    from voxmesh.jobs.cli import ApiError, JobsClient

    calls: list[int] = []

    class Refusing(JobsClient):
        def _req(self, *args: Any, **kwargs: Any) -> bytes:
            calls.append(1)
            raise ApiError(400, "bad voice")

    book = tmp_path / "b.txt"
    book.write_text("x")
    with pytest.raises(ApiError):
        Refusing("http://127.0.0.1:9").submit_file(book, {}, sleep=lambda s: None)
    assert len(calls) == 1
