"""/openapi.json: valid OpenAPI 3.1, every route of the app documented, served with /docs."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from voxmesh.api.openapi import OPERATIONS, build_openapi
from voxmesh.gateway.app import GATEWAY_KEY, Catalog, Gateway, build_gateway_app
from voxmesh.jobs.routes import setup_job_routes
from voxmesh.settings import load_settings
from voxmesh.voices.routes import setup_voice_routes


class _Plane:
    golden = None

    def set_split(self, name: str, weights: dict[str, float]) -> None: ...

    def metrics_text(self) -> str:
        return ""

    def topology(self) -> dict[str, Any]:
        return {}


def _app(**settings: Any) -> web.Application:
    s = load_settings(None, **settings)
    gw = Gateway(s, _Plane(), Catalog())
    service = SimpleNamespace(settings=s)
    voices = SimpleNamespace()  # routes only: no request reaches it here
    return build_gateway_app(gw, setup=[lambda app: setup_job_routes(app, service),  # type: ignore[arg-type]
                                        lambda app: setup_voice_routes(app, voices)])  # type: ignore[arg-type]


def _route_table(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", info.get("formatter", ""))
        out.add((route.method, path))
    return out


def test_document_is_valid_openapi_3_1() -> None:
    doc = build_openapi()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any violation of the 3.1 schema


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert _route_table(_app()) == documented


def test_bodies_come_from_the_route_schemas() -> None:
    doc = build_openapi()
    comps = doc["components"]["schemas"]
    speech = comps["SpeechRequest"]
    assert speech["additionalProperties"] is False  # extra="forbid", as the handler validates
    assert speech["properties"]["speed"]["minimum"] == 0.25
    assert set(speech["required"]) == {"model", "input"}
    body = doc["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SpeechRequest"}
    job = doc["paths"]["/v1/jobs/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert job == {"$ref": "#/components/schemas/JobStatus"}
    assert "chunks_done" in comps["JobStatus"]["properties"]
    err = doc["paths"]["/v1/audio/speech"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert err == {"$ref": "#/components/schemas/ErrorBody"}


def test_security_follows_the_scope_table() -> None:
    open_doc = build_openapi()
    assert open_doc["paths"]["/v1/audio/speech"]["post"]["security"] == []
    doc = build_openapi({("POST", "/v1/audio/speech"): "tts:speak", ("POST", "/translate"): "mt:translate"})
    speech = doc["paths"]["/v1/audio/speech"]["post"]
    assert speech["security"] == [{"bearer": ["tts:speak"]}] and {"401", "403"} <= set(speech["responses"])
    assert doc["paths"]["/translate"]["post"]["security"] == [{"bearer": ["mt:translate"]},
                                                               {"api_key": ["mt:translate"]}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "api_key"}
    validate(doc)


async def test_served_document_and_docs_page_without_cdn() -> None:
    async with TestClient(TestServer(_app())) as client:
        resp = await client.get("/openapi.json")
        assert resp.status == 200
        doc = await resp.json()
        validate(doc)
        resp = await client.get("/docs")
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        assert "openapi.json" in page
        assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from another host
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize("origins", [[], ["https://app.example"]])
async def test_cors_off_by_default_and_configurable(origins: list[str]) -> None:
    app = _app(hardening={"cors_origins": origins})
    async with TestClient(TestServer(app)) as client:
        pre = await client.options("/v1/models", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, content-type"})  # fmt: skip
        got = await client.get("/v1/models", headers={"Origin": "https://app.example"})
        evil = await client.get("/v1/models", headers={"Origin": "https://evil.example"})
        evil_pre = await client.options("/v1/models", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})  # fmt: skip
        assert "Access-Control-Allow-Origin" not in evil.headers
        if not origins:
            assert pre.status == 405 and "Access-Control-Allow-Origin" not in pre.headers
            assert "Access-Control-Allow-Origin" not in got.headers
            return
        assert pre.status == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert pre.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert got.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "x-ratelimit-remaining-requests" in got.headers["Access-Control-Expose-Headers"]
        assert evil_pre.status == 403


async def test_usage_route_and_metrics() -> None:
    app = _app()
    gw = app[GATEWAY_KEY]
    await gw.admission.meter.speech("default", 12, 1.0)
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/v1/usage")).json()
        assert body["data"][0]["tenant"] == "default" and body["data"][0]["chars_synthesized"] == 12
        text = await (await client.get("/metrics")).text()
        assert 'voxmesh_tenant_usage_total{tenant="default",kind="chars_synthesized"} 12' in text
