"""The jobs HTTP API, CLI, webhooks and HttpSynthesizer over real loopback HTTP, with a real
SQLite file, the filesystem object store and runner loops in the same event loop."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from tests.epubs import make_epub

from voxmesh.api.errors import error_middleware
from voxmesh.errors import UnknownVoice, UpstreamError
from voxmesh.jobs import cli
from voxmesh.jobs.routes import setup_job_routes
from voxmesh.jobs.synth import FakeSynthesizer, HttpSynthesizer
from voxmesh.jobs.webhook import SIGNATURE_HEADER, verify_signature
from voxmesh.jobs.wiring import JobsStack, make_runner, open_jobs
from voxmesh.settings import Settings

SECRET = "whsec-test"


@dataclass
class Api:
    url: str
    stack: JobsStack
    synth: FakeSynthesizer
    data_dir: Path


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path / "data",
        jobs={"chunk_chars": 60, "poll_interval_s": 0.05, "webhook_secret": SECRET, "max_upload_bytes": 200_000},
    )
    stack = await open_jobs(settings)
    synth = FakeSynthesizer()
    app = web.Application(middlewares=[error_middleware])
    setup_job_routes(app, stack.service)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    runners = [asyncio.create_task(make_runner(stack, synth).run()) for _ in range(2)]
    try:
        yield Api(str(server.make_url("")).rstrip("/"), stack, synth, settings.data_dir)
    finally:
        for r in runners:
            r.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await server.close()
        await stack.close()


async def _wait(session: aiohttp.ClientSession, url: str, job_id: str) -> dict[str, Any]:
    for _ in range(400):
        async with session.get(f"{url}/v1/jobs/{job_id}") as r:
            st: dict[str, Any] = await r.json()
        if st["state"] in ("succeeded", "failed", "cancelled"):
            return st
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {st}")


async def test_text_job_presigned_and_streamed_result(api: Api) -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{api.url}/v1/jobs", json={"text": text, "voice": "v", "model": "m"}) as r:
            assert r.status == 201, await r.text()
            job = await r.json()
        st = await _wait(s, api.url, job["id"])
        assert st["state"] == "succeeded" and st["chunks_done"] == st["chunks_total"] > 3
        async with s.get(f"{api.url}/v1/jobs/{job['id']}/result", allow_redirects=False) as r:
            assert r.status == 302
            location = r.headers["Location"]
        assert location.startswith("/v1/objects/results/") and "sig=" in location
        async with s.get(api.url + location) as r:
            presigned = await r.read()
            assert r.status == 200
        async with s.get(f"{api.url}/v1/jobs/{job['id']}/result?stream=1") as r:
            streamed = await r.read()
        assert presigned == streamed
        with wave.open(io.BytesIO(streamed)) as w:
            assert w.getframerate() == 24000
            assert w.getnframes() / 24000 == pytest.approx(st["duration_s"])
        for bad in (location.replace("sig=", "sig=0"), location.replace("expires=", "expires=1")):
            async with s.get(api.url + bad) as r:
                assert r.status == 403 and (await r.json())["error"]["type"] == "permission_error"
        async with s.get(f"{api.url}/v1/objects/..%2Fvoxmesh.db?expires=1&sig=x") as r:
            assert r.status in (400, 403, 404)
        async with s.get(f"{api.url}/v1/jobs?limit=1") as r:
            page = await r.json()
        assert page["data"][0]["id"] == job["id"] and page["next_cursor"] is None


async def test_epub_upload_chapters(api: Api) -> None:
    book = make_epub([("Opening", "<p>" + "Words in the first chapter. " * 5 + "</p>"), ("Ending", "<p>The end.</p>")])
    form = aiohttp.FormData()
    form.add_field("file", book, filename="book.epub")
    form.add_field("voice", "v")
    form.add_field("model", "m")
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{api.url}/v1/jobs", data=form) as r:
            assert r.status == 201, await r.text()
            job = await r.json()
        st = await _wait(s, api.url, job["id"])
        async with s.get(f"{api.url}/v1/jobs/{job['id']}/chapters") as r:
            marks = (await r.json())["chapters"]
    assert [m["title"] for m in marks] == ["Opening", "Ending"]
    assert marks[0]["end_s"] == marks[1]["start_s"] > 0 and marks[1]["end_s"] == pytest.approx(st["duration_s"])


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("empty.txt", b"", 400),
        ("big.txt", b"A sentence. " * 20_000, 413),
        ("broken.epub", b"PK\x03\x04garbage", 400),
        ("book.pdf", b"%PDF", 400),
    ],
)
async def test_bad_uploads_store_nothing(api: Api, name: str, body: bytes, status: int) -> None:
    form = aiohttp.FormData()
    form.add_field("file", body, filename=name)
    form.add_field("voice", "v")
    form.add_field("model", "m")
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{api.url}/v1/jobs", data=form) as r:
            assert r.status == status
            err = (await r.json())["error"]
            assert err["message"] and "Traceback" not in err["message"]
        async with s.get(f"{api.url}/v1/jobs") as r:
            assert (await r.json())["data"] == []
    assert await api.stack.store.list() == []


async def test_json_errors(api: Api) -> None:
    async with aiohttp.ClientSession() as s:
        for body, status in (
            ({"text": "hi", "voice": "v"}, 400),
            ({"text": "hi", "voice": "v", "model": "m", "colour": 1}, 400),
            ({"text": "hi", "voice": "v", "model": "m", "response_format": "xyz"}, 400),
        ):
            async with s.post(f"{api.url}/v1/jobs", json=body) as r:
                assert r.status == status and (await r.json())["error"]["type"] == "invalid_request_error"
        async with s.get(f"{api.url}/v1/jobs/nope") as r:
            assert r.status == 404
        async with s.delete(f"{api.url}/v1/jobs/nope") as r:
            assert r.status == 404


async def test_signed_webhook(api: Api) -> None:
    got: asyncio.Queue[tuple[bytes, str | None]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await got.put((await request.read(), request.headers.get(SIGNATURE_HEADER)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    hook_server = TestServer(app, host="127.0.0.1")
    await hook_server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            body = {"text": "Hook me. Please.", "voice": "v", "model": "m", "webhook_url": str(hook_server.make_url("/hook"))}
            async with s.post(f"{api.url}/v1/jobs", json=body) as r:
                job = await r.json()
        raw, sig = await asyncio.wait_for(got.get(), 10)
        assert verify_signature(SECRET, raw, sig)
        assert not verify_signature("other", raw, sig)
        assert json.loads(raw)["id"] == job["id"] and json.loads(raw)["state"] == "succeeded"
        await asyncio.sleep(0.3)
        assert got.empty()  # delivered once
    finally:
        await hook_server.close()


async def test_cli_submit_ls_status_and_batch(api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "book.md"
    book.write_text("# One\nHello there. This is the book.\n# Two\nGoodbye now.\n")
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="cmd"))

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return int(args.func(args))

    out = tmp_path / "book.wav"
    code = await asyncio.to_thread(
        run, "jobs", "submit", str(book), "--voice", "v", "--model", "m", "--out", str(out), "--url", api.url, "--poll", "0.05"
    )
    assert code == 0 and out.read_bytes()[:4] == b"RIFF"
    assert await asyncio.to_thread(run, "jobs", "ls", "--url", api.url) == 0
    job_id = capsys.readouterr().out.split()[0]
    assert await asyncio.to_thread(run, "jobs", "status", job_id, "--url", api.url) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "succeeded"
    assert await asyncio.to_thread(run, "jobs", "cancel", job_id, "--url", api.url) == 1  # 409: already finished

    batch = tmp_path / "nightly"
    batch.mkdir()
    (batch / "a.txt").write_text("First file. Short.")
    (batch / "b.md").write_text("# B\nSecond file.")
    (batch / "notes.csv").write_text("ignored")
    common = ("--voice", "v", "--model", "m", "--url", api.url, "--poll", "0.05")
    assert await asyncio.to_thread(run, "batch", str(batch), "--out-dir", str(tmp_path / "out"), *common) == 0
    summary = capsys.readouterr().out
    assert "2 succeeded, 0 failed, 2 total" in summary
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "b.wav"]
    (batch / "c.txt").write_text("")  # rejected: empty
    assert await asyncio.to_thread(run, "batch", str(batch), *common) == 1
    assert "rejected" in capsys.readouterr().out


async def test_http_synthesizer_against_a_speech_server() -> None:
    seen: list[dict[str, Any]] = []

    async def speech(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if body["input"] == "boom":
            return web.json_response({"error": {"type": "engine_error", "message": "kaput"}}, status=500)
        if body["voice"] == "nobody":
            return web.json_response({"error": {"type": "not_found_error", "message": "unknown voice 'nobody'"}}, status=404)
        return web.Response(body=b"\x01\x00\x02\x00", headers={"X-Sample-Rate": "22050"})

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    synth = HttpSynthesizer(str(server.make_url("")), headers={"Authorization": "Bearer t"})
    try:
        res = await synth.synthesize("hi", model="piper", voice="joe", options={"speed": 1.2})
        assert (res.pcm_s16le, res.sample_rate, res.samples) == (b"\x01\x00\x02\x00", 22050, 2)
        assert seen[0] == {"model": "piper", "input": "hi", "voice": "joe", "response_format": "pcm", "sample_rate": 24000, "speed": 1.2}
        with pytest.raises(UpstreamError, match="kaput"):
            await synth.synthesize("boom", model="piper", voice="joe", options={})
        with pytest.raises(UnknownVoice):
            await synth.synthesize("hi", model="piper", voice="nobody", options={})
        await server.close()
        with pytest.raises(UpstreamError):
            await synth.synthesize("hi", model="piper", voice="joe", options={})
    finally:
        await synth.close()
        await server.close()
