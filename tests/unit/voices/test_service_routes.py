"""Enrolled voices over HTTP on the gateway's app: consent, validation, tenant scoping, fit
progress, resolution into the speech body, deletion of every stored artefact. The data plane
is a stand-in that echoes the body it would forward; the DB is real SQLite, migrated."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import warnings
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_exceptions import NotAppKeyWarning
from tests.unit.voices.clips import encode, speechlike

from voxmesh.deployments import DeploymentsConfig
from voxmesh.gateway.app import Catalog, Gateway, build_gateway_app
from voxmesh.settings import Settings
from voxmesh.storage.engine import create_engine
from voxmesh.storage.memory import MemoryObjectStore
from voxmesh.storage.migrate import migrate
from voxmesh.voices.db import VoiceDB, VoiceRow
from voxmesh.voices.encoder import SpectralEncoder
from voxmesh.voices.fit import FitResult, Style
from voxmesh.voices.routes import setup_voice_routes
from voxmesh.voices.service import VoiceService


class EchoPlane:
    def set_split(self, model: str, weights: dict[str, float]) -> None: ...

    async def forward(self, request: web.Request, *, model: str, path: str, body: bytes, caller: str) -> web.Response:
        return web.json_response({"model": model, "body": json.loads(body)})


class Principal:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant


@web.middleware
async def principal_from_header(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
    tenant = request.headers.get("X-Test-Tenant")
    if tenant:
        with warnings.catch_warnings():  # the auth branch's key is the plain string "principal"
            warnings.simplefilter("ignore", NotAppKeyWarning)
            request["principal"] = Principal(tenant)
    return await handler(request)


STYLE = Style((("af_heart", 1.25), ("af_bella", -0.25)), tuple([0.01] * 256))


class Harness:
    def __init__(self, client: TestClient[Any, Any], store: MemoryObjectStore, release: asyncio.Event) -> None:
        self.client = client
        self.store = store
        self.release = release

    async def enrol(self, tenant: str = "acme", **fields: str) -> aiohttp.ClientResponse:
        form = aiohttp.FormData(default_to_multipart=True)
        data = {"name": "Ada", "consent": "true", **fields}
        no_file = data.pop("no_file", None)
        for k, v in data.items():
            form.add_field(k, v)
        if no_file is None:
            form.add_field("file", encode(speechlike(5.0, 22050), 22050, "wav"), filename="ada.wav",
                           content_type="audio/wav")
        return await self.client.post("/v1/audio/voices", data=form, headers={"X-Test-Tenant": tenant})


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    engine = create_engine(url)
    await migrate(engine)
    store = MemoryObjectStore()
    release = asyncio.Event()

    async def fitter(row: VoiceRow, emb: np.ndarray, progress: Callable[[str, int, int], Awaitable[None]]) -> FitResult:
        await progress("stock", 1, 4)
        await release.wait()
        return FitResult(STYLE, "spectral-stats", "af_heart", {"af_heart": 0.5}, 0.7, 0.5, 0.6, 0.45, 4)

    service = VoiceService(VoiceDB(engine), store, SpectralEncoder(), fitter, models=lambda: ["tts-multi"],
                           cloning_models=lambda: ["tts-clone"])
    catalog = Catalog.from_config(DeploymentsConfig(), {"tts-multi": "tts", "tts-en": "tts", "tts-clone": "tts"})
    catalog.voices["tts-multi"] = [{"id": "af_heart", "name": "Heart"}]
    gw = Gateway(Settings(), EchoPlane(), catalog)
    app = build_gateway_app(gw, setup=[lambda a: setup_voice_routes(a, service)])
    app.middlewares.append(principal_from_header)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, store, release)
    await service.close()
    await engine.dispose()


async def _wait_ready(h: Harness, vid: str) -> dict[str, Any]:
    for _ in range(200):
        body = await (await h.client.get(f"/v1/audio/voices/{vid}", headers={"X-Test-Tenant": "acme"})).json()
        if body["status"] != "fitting":
            return dict(body)
        await asyncio.sleep(0.02)
    raise AssertionError("fit did not finish")


async def test_enrol_fit_speak_list_delete(harness: Harness) -> None:
    h = harness
    resp = await h.enrol(transcript="Hello there.", language="en")
    assert resp.status == 202, await resp.text()
    voice = await resp.json()
    vid = voice["id"]
    assert voice["status"] == "fitting" and voice["clip"]["sample_rate"] == 22050 and voice["consent_at"] > 0
    assert len(h.store.objects) == 2  # reference audio + embedding

    speech = {"model": "tts-multi", "input": "Hi", "voice": vid}
    busy = await h.client.post("/v1/audio/speech", json=speech, headers={"X-Test-Tenant": "acme"})
    assert busy.status == 409 and "still being fitted" in (await busy.json())["error"]["message"]
    progress = await (await h.client.get(f"/v1/audio/voices/{vid}", headers={"X-Test-Tenant": "acme"})).json()
    assert progress["stage"] == "stock" and progress["progress"] == 0.25

    h.release.set()
    ready = await _wait_ready(h, vid)
    assert ready["status"] == "ready" and ready["report"]["heldout_text"]["gain"] == pytest.approx(0.15)
    ok = await h.client.post("/v1/audio/speech", json=speech, headers={"X-Test-Tenant": "acme"})
    forwarded = (await ok.json())["body"]
    assert ok.status == 200 and forwarded["voice_style"]["weights"] == {"af_heart": 1.25, "af_bella": -0.25}
    assert len(forwarded["voice_style"]["offset"]) == 256 and forwarded["voice"] == "default"

    listing = await (await h.client.get("/v1/audio/voices", headers={"X-Test-Tenant": "acme"})).json()
    assert [v["id"] for v in listing["enrolled"]] == [vid] and listing["models"]["tts-multi"][0]["id"] == "af_heart"
    per_model = await (await h.client.get("/v1/audio/voices?model=tts-multi", headers={"X-Test-Tenant": "acme"})).json()
    assert [v["id"] for v in per_model["voices"]] == ["af_heart", vid]

    # another tenant sees nothing and can touch nothing
    other = {"X-Test-Tenant": "globex"}
    assert (await (await h.client.get("/v1/audio/voices", headers=other)).json())["enrolled"] == []
    assert (await h.client.get(f"/v1/audio/voices/{vid}", headers=other)).status == 404
    assert (await h.client.delete(f"/v1/audio/voices/{vid}", headers=other)).status == 404
    assert (await h.client.post("/v1/audio/speech", json=speech, headers=other)).status == 404
    assert (await h.client.get(f"/v1/audio/voices/{vid}")).status == 404  # no principal: tenant "default"

    assert len(h.store.objects) == 3  # + style.json
    gone = await h.client.delete(f"/v1/audio/voices/{vid}", headers={"X-Test-Tenant": "acme"})
    assert gone.status == 200 and (await gone.json())["deleted"] is True
    assert h.store.objects == {}
    assert (await h.client.get(f"/v1/audio/voices/{vid}", headers={"X-Test-Tenant": "acme"})).status == 404


@pytest.mark.parametrize(("fields", "status", "match"), [
    ({"consent": "false"}, 400, "consent must be true"),
    ({"model": "tts-en"}, 400, "cannot take enrolled voices"),
    ({"language": "fr"}, 400, "language must be"),
    ({"no_file": "1"}, 400, "missing form field 'file'"),
    ({"colour": "blue"}, 400, "unknown form field"),
    ({"name": ""}, 400, "name must be"),
])
async def test_bad_enrolments_are_clear_4xx(harness: Harness, fields: dict[str, str], status: int, match: str) -> None:
    resp = await harness.enrol(**fields)
    assert resp.status == status
    assert match in (await resp.json())["error"]["message"]
    assert harness.store.objects == {}


async def test_bad_audio_and_bad_body(harness: Harness) -> None:
    form = aiohttp.FormData()
    form.add_field("name", "x")
    form.add_field("consent", "true")
    form.add_field("file", encode(speechlike(1.0), 16000), filename="a.wav")
    resp = await harness.client.post("/v1/audio/voices", data=form)
    assert resp.status == 400 and "give 3-30 s" in (await resp.json())["error"]["message"]
    resp = await harness.client.post("/v1/audio/voices", json={"name": "x"})
    assert resp.status == 400 and "multipart" in (await resp.json())["error"]["message"]


async def test_delete_while_fitting_leaves_nothing(harness: Harness) -> None:
    vid = (await (await harness.enrol()).json())["id"]
    assert (await harness.client.delete(f"/v1/audio/voices/{vid}", headers={"X-Test-Tenant": "acme"})).status == 200
    harness.release.set()
    await asyncio.sleep(0.05)
    assert harness.store.objects == {}


async def test_cloning_deployment_gets_the_reference_itself(harness: Harness) -> None:
    h = harness
    missing = await h.enrol(model="tts-clone")
    assert missing.status == 400 and "transcript" in (await missing.json())["error"]["message"]
    resp = await h.enrol(model="tts-clone", transcript="the words of the clip")
    voice = await resp.json()
    assert resp.status == 202 and voice["status"] == "ready" and voice["method"].startswith("zero-shot cloning")
    speech = {"model": "tts-clone", "input": "Hi", "voice": voice["id"]}
    ok = await h.client.post("/v1/audio/speech", json=speech, headers={"X-Test-Tenant": "acme"})
    ref = (await ok.json())["body"]["voice_reference"]
    wav = base64.b64decode(ref["audio"])
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and 4.9 < w.getnframes() / 16000 < 5.1
    assert ref["transcript"] == "the words of the clip" and "voice_style" not in (await ok.json())["body"]
    assert len(h.store.objects) == 3
    await h.client.delete(f"/v1/audio/voices/{voice['id']}", headers={"X-Test-Tenant": "acme"})
    assert h.store.objects == {}
