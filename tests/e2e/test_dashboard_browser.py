"""The dashboard in a real browser: Playwright driving Debian's chromium (never
``playwright install``) against a running stack (tone deployments, and Piper with a slow g2p
stage on purpose). One test per panel asserts what a person sees; screenshots go to
benchmarks/reports/dashboard/ (described in benchmarks/reports/dashboard.md)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import pytest
import pytest_asyncio
from tests.support.stacks import load, start_stack, tone_config
from tests.support.waits import until

from voxmesh.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).parents[2] / "benchmarks" / "reports" / "dashboard"
G2P_DELAY_MS = 800.0  # well above Piper's own time on one busy core

playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright (the test extra)")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with start_stack(tmp_path_factory.mktemp("dash"), tone_config(piper_fault="g2p", fault_ms=G2P_DELAY_MS, mt=True)) as st:
        yield st


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian package chromium, see packages.apt)")
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        yield b
        await b.close()


class Page:
    """A dashboard tab that records console errors and every URL it asked for."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.urls.append(r.url))

    async def ticks(self) -> int:
        return int(await self.page.evaluate("Number(document.body.dataset.ticks || 0)"))

    async def wait_ticks(self, n: int, timeout: float = 20.0) -> None:
        start = await self.ticks()
        deadline = time.monotonic() + timeout
        while await self.ticks() < start + n:
            assert time.monotonic() < deadline, "the dashboard stopped refreshing"
            await asyncio.sleep(0.1)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any, stack: Stack) -> AsyncIterator[Page]:
    ctx = await browser.new_context(viewport={"width": 1500, "height": 1300})
    p = Page(await ctx.new_page())
    await p.page.goto(stack.url + "/dashboard")
    await p.wait_ticks(1)
    yield p
    await ctx.close()


async def _scaling_state(url: str) -> str:
    """What the autoscaler saw of voice-v1, and what the gateway routed to it."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/admin/autoscaler") as r:
            scaler = await r.json()
        async with http.get(url + "/admin/topology") as r:
            topo = await r.json()
    dep = topo["deployments"].get("voice-v1", {})
    return (f"autoscaler voice-v1: {scaler['deployments'].get('voice-v1')}; last events: {scaler['events'][-5:]}; "
            f"endpoints: {[(e['id'], e.get('in_flight'), e.get('requests')) for e in dep.get('endpoints', [])]}")


async def _at_least(locator: Any, n: int) -> bool:
    return bool(await locator.count() >= n)


async def test_loads_every_panel_from_the_gateway_alone(page: Page, stack: Stack) -> None:
    for panel in ("topology", "replicas", "autoscaler", "stages", "canary", "jobs", "playground"):
        body = page.page.locator(f"#{panel} .body")
        assert (await body.inner_text()).strip(), f"panel {panel} is empty"
        assert await page.page.locator(f"#{panel} .error").count() == 0, panel
    assert "live" in await page.page.locator("#status").inner_text()
    # no CDN, nothing from another origin: the page, its modules and its JSON only
    assert page.urls and all(u.startswith(stack.url) or u.startswith(("blob:", "data:")) for u in page.urls), page.urls
    assert any(u.endswith("/dashboard/panels/topology.js") for u in page.urls)
    assert page.errors == []


async def test_updates_under_load_and_shows_every_edge_of_the_stack(page: Page, stack: Stack) -> None:
    stop = asyncio.Event()
    traffic = asyncio.gather(
        load(stack.url, 30.0, clients=3, stop=stop),
        # and voice-v1 alone: the mixed clients keep it at 1-2 in flight, which a loaded machine
        # (the client's own turn-around) brought down to exactly its target of 1 per replica in one
        # CI run: within tolerance, no scale-up for 25 s
        load(stack.url, 30.0, clients=3, models=("voice-v1",), stop=stop))
    try:
        row = page.page.locator('tr[data-edge="gateway->voice-v1"]')

        async def busy() -> bool:
            cells = await row.locator("td").all_inner_texts()
            return len(cells) > 2 and cells[1] not in ("–", "0.0") and int(cells[2]) > 10

        await until(busy, 25, "req/s on gateway -> voice-v1")
        first = int((await row.locator("td").all_inner_texts())[2])
        await page.wait_ticks(2)
        assert int((await row.locator("td").all_inner_texts())[2]) > first  # live: the count moves
        # replicas follow load: the autoscaler's decision to scale voice-v1 shows with its reason
        scaled = page.page.locator('#autoscaler tr[data-event="scale"]', has_text="voice-v1")
        await until(scaled.count, 25, "a scale event for voice-v1", explain=lambda: _scaling_state(stack.url))
        # ... and the replicas panel follows: more than one serving replica of voice-v1, drawn over time
        reps = page.page.locator('#replicas .deployment[data-deployment="voice-v1"]')
        await until(lambda: reps.locator("tr[data-replica]", has_text="serving").count(), 10, "serving replicas")
        await until(lambda: _at_least(reps.locator("tr[data-replica]", has_text="serving"), 2), 25,
                     "two serving replicas of voice-v1")
        assert await reps.locator('path[data-state="serving"]').count() == 1
        assert "/" in await reps.locator(".warm-pool").inner_text()
        await page.page.screenshot(path=str(SHOTS / "dashboard-under-load.png"), full_page=True)
    finally:
        stop.set()
        await traffic
    async with aiohttp.ClientSession() as http, http.get(stack.url + "/admin/topology") as r:
        topo = await r.json()
    await page.wait_ticks(1)
    expected = set()
    for e in topo["edges"]:
        expected |= {f"{e['caller']}->gateway", f"gateway->{e['deployment']}", f"{e['deployment']}->{e['endpoint']}"}
    for name, dep in topo["deployments"].items():
        expected.add(f"gateway->{name}")
        expected |= {f"{name}->{ep['id']}" for ep in dep["endpoints"]}
    shown = set(await page.page.locator("#topology tr[data-edge]").evaluate_all(
        "rows => rows.map(r => r.dataset.edge)"))
    assert expected <= shown, expected - shown
    assert {"client->gateway", "gateway->voice-v1", "gateway->voice-v2", "gateway->tts-en"} <= shown
    graph = await page.page.locator("#topology svg").text_content() or ""
    assert "voice-v1-" in graph and "req/s" in graph
    assert page.errors == []


async def test_canary_log_shows_every_step_and_its_reason(page: Page, stack: Stack) -> None:
    cfg = {"model": "voice", "primary": "voice-v1", "canary": "voice-v2", "interval_s": 0.5, "threshold": 2,
           "step_weight": 25, "max_weight": 50, "min_success_rate": 0.95, "max_p99_ms": 5000, "min_requests": 3}
    async with aiohttp.ClientSession() as http, http.post(stack.url + "/admin/canaries", json=cfg) as r:
        assert r.status == 202, await r.text()
    stop = asyncio.Event()
    traffic = asyncio.ensure_future(load(stack.url, 40.0, clients=2, models=("voice",), stop=stop))
    try:
        box = page.page.locator('#canary .canary[data-model="voice"]')
        await until(lambda: box.locator(".phase", has_text="promoted").count(), 40, "the canary to be promoted")
        await page.wait_ticks(1)
    finally:
        stop.set()
        await traffic
    async with aiohttp.ClientSession() as http, http.get(stack.url + "/admin/canaries/voice") as r:
        state = await r.json()
    steps = await box.locator("tr.step").all_inner_texts()
    assert len(steps) == len(state["log"]) >= 3
    for entry in state["log"]:
        assert any(entry["reason"] in s for s in steps), entry["reason"]
    assert await box.locator(".weight").inner_text() == str(state["weight"]).rstrip("0").rstrip(".")
    await box.screenshot(path=str(SHOTS / "dashboard-canary.png"))
    assert page.errors == []


async def test_the_slow_stage_is_the_one_the_stage_panel_points_at(page: Page, stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            body = {"model": "tts-en", "input": "The slow stage is easy to find. Inference stays flat.",
                    "voice": "joe", "response_format": "mp3"}
            async with http.post(stack.url + "/v1/audio/speech", json=body) as r:
                assert r.status == 200
                timing = r.headers["Server-Timing"]
                await r.read()
    box = page.page.locator('#stages .deployment[data-deployment="tts-en"]')
    await until(lambda: box.count(), 20, "stage figures for tts-en")
    assert await box.get_attribute("data-slowest") == "g2p"
    cells = {s: await box.locator(f'tr[data-stage="{s}"] td').all_inner_texts() for s in ("g2p", "inference")}
    g2p_ms, inference_ms = float(cells["g2p"][2]), float(cells["inference"][2])
    assert g2p_ms >= 2 * G2P_DELAY_MS * 0.9 and inference_ms < g2p_ms  # two sentences, each slowed
    assert "g2p;dur=" in timing  # passed through the gateway
    # the tone deployments' slowest stage is not g2p: the panel points per deployment
    assert await page.page.locator('#stages .deployment[data-deployment="voice-v1"]').get_attribute("data-slowest") != "g2p"
    await page.page.locator("#stages").screenshot(path=str(SHOTS / "dashboard-slow-stage.png"))
    assert page.errors == []


async def test_playground_plays_speech_and_shows_its_request_id_and_stages(page: Page) -> None:
    form = page.page.locator("#tts-form")
    await form.locator('select[name="model"]').select_option("tts-en")
    await until(lambda: form.locator('select[name="voice"] option[value="joe"]').count(), 10, "the voices of tts-en")
    await form.locator('select[name="emotion"]').select_option("happy")
    await form.locator('select[name="format"]').select_option("mp3")
    await form.locator("textarea").fill("Hello from the playground.")
    await form.locator("button").click()
    audio = page.page.locator("#tts-audio")
    await until(lambda: audio.evaluate("a => a.src.startsWith('blob:') && a.duration > 0"), 30, "audio to load")
    await until(lambda: audio.evaluate("a => a.played.length > 0 && a.currentTime > 0"), 15, "audio to play")
    duration = await audio.evaluate("a => a.duration")
    assert 0.5 < duration < 10
    info = page.page.locator("#tts-info")
    assert len(await info.locator(".request-id").inner_text()) == 32
    assert "inference;dur=" in await info.locator(".server-timing").inner_text()
    # text -> translation, through the gateway to the llama.cpp deployment
    mt = page.page.locator("#mt-form")
    await mt.locator('select[name="model"]').select_option("mt")
    await mt.locator('input[name="source"]').fill("en")
    await mt.locator('input[name="target"]').fill("zh")
    await mt.locator("textarea").fill("Good morning.")
    await mt.locator("button").click()
    out = page.page.locator("#mt-out .translation")
    await until(out.count, 60, "a translation")
    text = await out.inner_text()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text  # Chinese characters came back
    await page.page.locator("#playground").screenshot(path=str(SHOTS / "dashboard-playground.png"))
    assert page.errors == []


async def test_jobs_panel_shows_queue_progress_and_failures(page: Page, stack: Stack) -> None:
    hooks: list[str | None] = []

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        hooks.append(request.headers.get("X-Request-Id"))
        return aiohttp.web.Response(text="ok")

    app = aiohttp.web.Application()
    app.router.add_post("/hook", hook)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    text = " ".join(f"Sentence number {i} of a long text that the runner cuts into chunks." for i in range(40))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(stack.url + "/v1/jobs", json={"text": text, "model": "voice-v1", "voice": "low",
                                                               "webhook_url": hook_url}) as r:
                assert r.status == 201, await r.text()
                good, good_rid = (await r.json())["id"], r.headers["X-Request-Id"]
            async with http.post(stack.url + "/v1/jobs", json={"text": "This one cannot be spoken.", "model": "voice-v2",
                                                               "voice": "low", "options": {"emotion": "furious"}}) as r:
                assert r.status == 201, await r.text()
                bad = (await r.json())["id"]
        good_row = page.page.locator(f'#jobs tr[data-job="{good}"]')
        bad_row = page.page.locator(f'#jobs tr[data-job="{bad}"]')
        await until(lambda: good_row.filter(has_text="succeeded").count(), 60, "the good job to succeed")
        await until(lambda: bad_row.filter(has_text="failed").count(), 60, "the bad job to fail")
        cells = await good_row.locator("td").all_inner_texts()
        done, total = cells[3].split()[-1].split("/")
        assert done == total and int(total) >= 3
        assert "emotion" in (await bad_row.locator("td").all_inner_texts())[6]
        assert await page.page.locator('#jobs .badge[data-state="failed"]').count() == 1
        await page.page.locator("#jobs").screenshot(path=str(SHOTS / "dashboard-jobs.png"))
        await until(lambda: asyncio.sleep(0, hooks), 20, "the webhook")
        assert hooks == [good_rid]  # the webhook carries the request id of the job's submission
    finally:
        await runner.cleanup()
    assert page.errors == []


async def test_a_token_in_the_fragment_goes_with_every_call_and_a_refusal_says_what_to_do(
        browser: Any, stack: Stack) -> None:
    ctx = await browser.new_context()
    p = Page(await ctx.new_page())
    sent: list[tuple[str, str | None]] = []
    p.page.on("request", lambda r: sent.append((r.url, r.headers.get("authorization"))))
    await p.page.goto(stack.url + "/dashboard#token=s3cret")
    await p.wait_ticks(2)
    assert "#token" not in p.page.url  # taken out of the address bar (and history)
    api = [(u, a) for u, a in sent if "/admin/" in u or "/v1/" in u]
    assert api and all(a == "Bearer s3cret" for _, a in api), api
    # what a person sees when the gateway refuses the token (auth on, scope missing)
    await p.page.route("**/admin/topology", lambda route: route.fulfill(status=403, body="{}"))
    await until(lambda: p.page.locator("#status.error", has_text="needs a token").count(), 10, "the refusal")
    await ctx.close()
