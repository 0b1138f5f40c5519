"""/docs in a real browser (Playwright driving Debian's chromium): the page renders every
operation from /openapi.json, shows a body's schema, sends a request, and loads nothing
from another host."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from tests.unit.api.test_openapi import _app

from voxmesh.api.openapi import OPERATIONS

pytestmark = pytest.mark.slow


async def test_docs_page_renders_and_sends() -> None:
    pw = pytest.importorskip("playwright.async_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (apt-get install -y chromium)")
    server = TestServer(_app())
    await server.start_server()
    base = str(server.make_url("/"))
    hosts: set[str] = set()
    try:
        async with pw.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = await browser.new_page()
            page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
            await page.goto(base + "docs")
            await page.wait_for_selector("details.op")
            title = await page.text_content("#title")
            assert title is not None and "OpenAPI 3.1.0" in title
            summaries = await page.locator("details.op > summary").all_inner_texts()
            assert any("POST" in s and "/v1/audio/speech" in s for s in summaries)
            assert len(summaries) == len(OPERATIONS)
            speech = page.locator("details.op", has_text="/v1/audio/speech").first
            await speech.locator("summary").click()
            schema = await speech.locator("pre").first.inner_text()
            assert '"input"' in schema and '"speed"' in schema
            health = page.locator("details.op", has=page.locator("span.path", has_text="/healthz"))
            await health.locator("summary").click()
            await health.get_by_role("button", name="Send").click()
            out = health.locator("pre").last
            await pw.expect(out).to_contain_text("200 OK")
            assert "alive" in await out.inner_text()
            await browser.close()
    finally:
        await server.close()
    assert hosts == {urlsplit(base).netloc}  # nothing from a CDN
