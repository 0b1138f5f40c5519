"""The translation routes on a real aiohttp server (loopback), driven by real clients:
libretranslatepy (LibreTranslate's Python client), raw HTTP, SSE, and HttpTranslator."""

from __future__ import annotations

import asyncio
import json
import urllib.error
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from libretranslatepy import LibreTranslateAPI

from voxmesh import errors
from voxmesh.api.translate import setup_translate_routes
from voxmesh.mt.memory import MemoryEngine
from voxmesh.mt.service import HttpTranslator, InProcessTranslator, TranslationRequest, TranslationResult
from voxmesh.mt.streaming import Piece

PHRASES = {("en", "zh"): {"Hello world.": "你好，世界。"}, ("zh", "en"): {"谢谢。": "Thank you."}}


@pytest.fixture
async def server() -> AsyncIterator[str]:
    engine = MemoryEngine(PHRASES, languages=["en", "zh", "ja"], delay_s=0.02)
    app = web.Application()
    setup_translate_routes(app, InProcessTranslator(engine, max_input_chars=5000))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_libretranslatepy_client_works(server: str) -> None:
    lt = LibreTranslateAPI(server, api_key="k")
    assert await asyncio.to_thread(lt.translate, "Hello world.", "en", "zh") == "你好，世界。"
    assert await asyncio.to_thread(lt.translate, "谢谢。", "auto", "en") == "Thank you."
    langs = await asyncio.to_thread(lt.languages)
    assert {"code": "en", "name": "English", "targets": ["zh", "ja"]} in langs
    detected = await asyncio.to_thread(lt.detect, "这是中文。")
    assert detected[0]["language"] == "zh" and detected[0]["confidence"] > 50


async def test_libretranslatepy_sees_400_for_an_unsupported_pair(server: str) -> None:
    lt = LibreTranslateAPI(server)
    with pytest.raises(urllib.error.HTTPError) as err:
        await asyncio.to_thread(lt.translate, "Hello", "en", "fr")
    assert err.value.code == 400
    body = json.loads(err.value.read())
    assert body["error"]["type"] == "invalid_request_error" and "en, zh, ja" in body["error"]["message"]


async def test_json_list_auto_and_html(server: str) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(server + "/translate", json={"q": ["Hello world.", "谢谢。"], "source": "auto", "target": "en"})
        body = await r.json()
        assert r.status == 200
        assert body["translatedText"] == ["Hello world.", "Thank you."]  # en->en passes through
        assert [d["language"] for d in body["detectedLanguage"]] == ["en", "zh"]
        r = await s.post(server + "/translate", json={"q": "<p>Hello world.</p><br>", "source": "en", "target": "zh",
                                                      "format": "html"})
        assert (await r.json())["translatedText"] == "<p>你好，世界。</p><br>"


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/translate", {"q": "x", "source": "en"}, 400),  # no target
        ("/translate", {"q": 5, "source": "en", "target": "zh"}, 400),
        ("/translate", {"q": "x", "source": "en", "target": "zh", "format": "pdf"}, 400),
        ("/translate", {"q": "x" * 6000, "source": "en", "target": "zh"}, 413),
        ("/v1/translations", {"input": "x", "target": "zh", "glossary": "nope"}, 400),
        ("/v1/translations", {"input": "x", "target": "zh", "temperature": "hot"}, 400),
    ],
)
async def test_bad_requests_get_json_errors_never_500(server: str, path: str, payload: dict[str, object],
                                                      status: int) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(server + path, json=payload)
        assert r.status == status
        assert set((await r.json())["error"]) == {"type", "message", "param"}
        r = await s.post(server + path, data=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status == 400


async def test_v1_translations_and_sse_stream(server: str) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(server + "/v1/translations",
                         json={"input": ["Hello world.", "A cat."], "source": "en", "target": "zh",
                               "glossary": {"cat": "猫"}})
        body = await r.json()
        assert body["translations"] == ["你好，世界。", "[zh] A 猫."]
        r = await s.post(server + "/v1/translations", json={"input": "One two three.", "source": "en",
                                                            "target": "ja", "stream": True})
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = (await r.read()).decode()
    events = [(b.split("\n")[0][len("event: "):], json.loads(b.split("\n")[1][len("data: "):]))
              for b in raw.strip().split("\n\n")]
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"piece"} and len(kinds) > 2
    assert "".join(d["text"] for k, d in events if k == "piece") == events[-1][1]["translations"][0]


async def test_http_translator_round_trips_results_and_errors(server: str) -> None:
    tr = HttpTranslator(server)
    try:
        assert (await tr.languages()).codes == ("en", "zh", "ja")
        result = await tr.translate(TranslationRequest(("Hello world.",), "en", "zh"))
        assert result.translations == ["你好，世界。"] and result.model == "memory"
        items = [x async for x in tr.stream(TranslationRequest(("Hi there.",), "en", "zh"))]
        assert isinstance(items[-1], TranslationResult)
        assert "".join(p.text for p in items if isinstance(p, Piece)) == items[-1].translations[0]
        with pytest.raises(errors.InvalidRequest) as err:
            await tr.translate(TranslationRequest(("Hi",), "en", "de"))
        assert err.value.status == 400
        assert (await tr.detect("Bonjour"))[0].language in ("en", "zh", "ja")
    finally:
        await tr.aclose()
    dead = HttpTranslator("http://127.0.0.1:9")
    with pytest.raises(errors.UpstreamError):
        await dead.translate(TranslationRequest(("Hi",), "en", "zh"))
    await dead.aclose()
