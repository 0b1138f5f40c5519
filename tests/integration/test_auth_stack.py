"""The auth matrix on a real stack (tone workers, an external MT server, SQLite, mTLS), for
both gateway servers: every route x {no credential, malformed, expired, wrong signature,
wrong issuer, wrong audience, missing scope, another tenant's object, valid JWT, valid key}
with the exact status of each cell. Then the openai and libretranslatepy clients unmodified
with an API key, presigned URLs across tenants, the internal key of the job runners, the
guard running once per request, and a grep of every log line for the credentials used."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import sys
import time
import urllib.error
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tests.authkit import AUDIENCE, ISSUER, Signer

from voxmesh.auth.scopes import ALL_SCOPES, AUTHENTICATED, PUBLIC, SIGNED, scope_for
from voxmesh.deployments import DeploymentsConfig
from voxmesh.settings import load_settings
from voxmesh.stack import Stack

pytestmark = pytest.mark.slow

SIGNER = Signer()
FORGER = Signer()  # same kid, another key
LONG_TEXT = "A long sentence that keeps the runner busy for a while. " * 300


async def _fake_mt(request: web.Request) -> web.Response:
    """An external LibreTranslate-and-OpenAI-shaped MT server."""
    answers: dict[str, Any] = {
        "/translate": {"translatedText": "hola"},
        "/detect": [{"confidence": 90.0, "language": "en"}],
        "/languages": [{"code": "en", "name": "English", "targets": ["es"]}],
        "/v1/translations": {"object": "translation", "output": "hola"},
        "/v1/chat/completions": {"id": "c", "object": "chat.completion", "created": 0, "model": "mt",
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": "hola"}}]},
    }
    await request.read()
    return web.json_response(answers.get(request.path, {}))


@dataclass
class Env:
    stack: Stack
    url: str
    session: aiohttp.ClientSession
    keys: dict[str, str] = field(default_factory=dict)  # scope -> API key of tenant acme
    job: str = ""  # a succeeded job of acme
    secrets: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


def _token(scope: str | None, tenant: str = "acme", **kw: Any) -> str:
    return SIGNER.token(tenant=tenant, scope=scope, **{"iss": ISSUER, "aud": AUDIENCE, **kw})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["fast", "aiohttp"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    mt = web.AppRunner(web.Application())
    mt.app.router.add_route("*", "/{tail:.*}", _fake_mt)
    await mt.setup()
    site = web.TCPSite(mt, "127.0.0.1", 0)
    await site.start()
    mt_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(SIGNER.jwks()))
    settings = load_settings(None, data_dir=tmp_path / "data", server={"port": 0},
                             gateway={"server": request.param},
                             auth={"mode": "jwt+api_keys", "jwks_path": str(jwks), "issuer": ISSUER,
                                   "audience": AUDIENCE},
                             jobs={"chunk_chars": 200, "poll_interval_s": 0.05})  # fmt: skip

    def tone(name: str) -> dict[str, Any]:
        return {"name": name, "engine": "tone", "options": {"ms_per_char": 1}, "threads": 1,
                "replicas": {"min": 1, "max": 1, "warm": 0}}
    config = DeploymentsConfig.model_validate({
        "deployments": [tone("tone-a"), tone("tone-b"), {"name": "mt", "external": {"urls": [mt_url], "kind": "mt"}}],
        "aliases": {"tts-1": "tone-a"},
    })  # fmt: skip
    lines: list[str] = []
    handler = _Collect(lines)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    st = Stack(settings, config)
    session = aiohttp.ClientSession()
    try:
        await st.start()
        e = Env(st, st.url, session, log_lines=lines)
        for scope in sorted(ALL_SCOPES):
            _, key = await st.auth.store.create_key("acme", frozenset({scope}))
            e.keys[scope] = key
        e.secrets += list(e.keys.values()) + [k.split("_", 2)[2] for k in e.keys.values()]
        e.secrets.append((settings.data_dir / "internal.key").read_text().strip())
        yield e
    finally:
        await session.close()
        await st.stop()
        await mt.cleanup()
        root.removeHandler(handler)
        root.setLevel(old_level)


async def _job(e: Env, text: str = "Hello there. This is a job.", tenant: str = "acme") -> str:
    async with e.session.post(e.url + "/v1/jobs", json={"text": text, "voice": "low", "model": "tts-1"},
                              headers=_bearer(_token("jobs:write", tenant))) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def _wait_job(e: Env, job_id: str) -> None:
    for _ in range(600):
        async with e.session.get(f"{e.url}/v1/jobs/{job_id}", headers=_bearer(_token("jobs:read"))) as r:
            state = (await r.json())["state"]
        if state == "succeeded":
            return
        assert state in ("queued", "running"), state
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@dataclass(frozen=True)
class Row:
    """One route: how to call it (path and body may need a fresh object) and its success status."""

    method: str
    route: str
    ok: int
    path: str | Callable[[Env], Any] = ""
    body: Any = None
    owned: bool = False  # the path names an object of tenant acme

    @property
    def scope(self) -> str:
        return scope_for(self.method, self.route)


_n = itertools.count()


async def _fresh_key_id(e: Env) -> str:
    rec, _ = await e.stack.auth.store.create_key("acme", frozenset({"tts:speak"}))
    return f"/admin/keys/{rec.id}"


async def _running_job(e: Env) -> str:
    return f"/v1/jobs/{await _job(e, LONG_TEXT)}"


ROWS = [
    Row("GET", "/healthz", 200), Row("GET", "/readyz", 200),
    Row("GET", "/openapi.json", 200), Row("GET", "/docs", 200), Row("GET", "/v1/usage", 200),
    Row("GET", "/metrics", 200), Row("GET", "/v1/models", 200), Row("GET", "/v1/audio/voices", 200),
    # enrolled voices: this stack has no Kokoro deployment to enrol for, so a caller who passes
    # the guard gets the route's own answer (400 for the body, 404 for an id it does not own);
    # tenant isolation of real voices is tested in tests/unit/voices and tests/e2e/test_voices_api.py
    Row("POST", "/v1/audio/voices", 400, body={"name": "x"}),
    Row("GET", "/v1/audio/voices/{voice_id}", 404, "/v1/audio/voices/voice_0123456789abcdef01234567"),
    Row("DELETE", "/v1/audio/voices/{voice_id}", 404, "/v1/audio/voices/voice_0123456789abcdef01234567"),
    Row("POST", "/v1/audio/speech", 200, body={"model": "tts-1", "input": "Hi.", "voice": "low", "response_format": "wav"}),
    Row("POST", "/translate", 200, body={"q": "Hello", "source": "en", "target": "es"}),
    Row("POST", "/detect", 200, body={"q": "Hello"}),
    Row("GET", "/languages", 200),
    Row("POST", "/v1/translations", 200, body={"input": "Hello", "target": "es"}),
    Row("POST", "/v1/chat/completions", 200, body={"model": "mt", "messages": [{"role": "user", "content": "Hello"}]}),
    Row("POST", "/v1/jobs", 201, body={"text": "Short job.", "voice": "low", "model": "tts-1"}),
    Row("GET", "/v1/jobs", 200),
    Row("GET", "/v1/jobs/{id}", 200, lambda e: f"/v1/jobs/{e.job}", owned=True),
    Row("DELETE", "/v1/jobs/{id}", 200, _running_job, owned=True),
    Row("GET", "/v1/jobs/{id}/result", 302, lambda e: f"/v1/jobs/{e.job}/result", owned=True),
    Row("GET", "/v1/jobs/{id}/chapters", 200, lambda e: f"/v1/jobs/{e.job}/chapters", owned=True),
    Row("GET", "/admin/topology", 200),
    Row("GET", "/admin/autoscaler", 200), Row("GET", "/admin/stages", 200),
    Row("GET", "/dashboard", 200), Row("GET", "/dashboard/", 200),
    Row("GET", "/dashboard/{name}", 200, "/dashboard/app.js"),
    Row("PUT", "/admin/splits/{model}", 200, "/admin/splits/voice", {"weights": {"tone-a": 100, "tone-b": 0}}),
    Row("POST", "/admin/canaries", 202, body=lambda: {"model": f"canary-{next(_n)}", "primary": "tone-a",
                                                        "canary": "tone-b", "interval_s": 60}),
    Row("GET", "/admin/canaries/{model}", 200, "/admin/canaries/watched"),
    Row("GET", "/admin/keys", 200),
    Row("POST", "/admin/keys", 201, body={"tenant": "acme", "scopes": "tts:speak", "name": "matrix"}),
    Row("DELETE", "/admin/keys/{id}", 200, _fresh_key_id),
    Row("GET", "/admin/tenants", 200),
    Row("POST", "/admin/tenants", 201, body=lambda: {"name": f"t{next(_n)}", "requests_per_minute": 60}),
    Row("GET", "/admin/tenants/{name}", 200, "/admin/tenants/acme"),
    Row("PATCH", "/admin/tenants/{name}", 200, "/admin/tenants/acme", {"concurrent_jobs": 3}),
]  # fmt: skip
NOT_CALLED = {("GET", "/v1/objects/{key}")}  # SIGNED: the URL is the credential (test_presigned_urls)

CELLS = ["none", "malformed", "expired", "bad_signature", "wrong_issuer", "wrong_audience", "missing_scope",
         "other_tenant", "valid_jwt", "valid_key"]


def _credential(e: Env, row: Row, cell: str) -> dict[str, str]:
    scope = row.scope if row.scope in ALL_SCOPES else "metrics"
    other = " ".join(sorted(ALL_SCOPES - {row.scope})) if row.scope in ALL_SCOPES else ""
    tokens = {
        "none": None,
        "malformed": "Bearer not-a-token",
        "expired": _token(scope, exp_in=-3600),
        "bad_signature": FORGER.token(scope=scope, iss=ISSUER, aud=AUDIENCE),
        "wrong_issuer": _token(scope, iss="https://evil.test"),
        "wrong_audience": _token(scope, aud="another-api"),
        "missing_scope": _token(other),
        "other_tenant": _token(" ".join(sorted(ALL_SCOPES)), tenant="globex"),
        "valid_jwt": _token(scope),
        "valid_key": e.keys[scope],
    }
    token = tokens[cell]
    if token is None:
        return {}
    if token.startswith("Bearer "):
        return {"Authorization": token}
    e.secrets.append(token)
    e.secrets.append(token.rsplit(".", 1)[-1])
    return _bearer(token)


def expected(row: Row, cell: str) -> int | None:
    if row.scope in (PUBLIC, SIGNED):
        return row.ok
    if cell in ("none", "malformed", "expired", "bad_signature", "wrong_issuer", "wrong_audience"):
        return 401
    if cell == "missing_scope":
        return row.ok if row.scope == AUTHENTICATED else 403
    if cell == "other_tenant":
        return 404 if row.owned else None  # no object to steal: nothing to test
    return row.ok


async def _call(e: Env, row: Row, headers: dict[str, str]) -> tuple[int, aiohttp.typedefs.LooseHeaders, bytes]:
    path = row.path or row.route
    if callable(path):
        path = path(e)
        if asyncio.iscoroutine(path):
            path = await path
    body = row.body() if callable(row.body) else row.body
    async with e.session.request(row.method, e.url + str(path), json=body, headers=headers,
                                 allow_redirects=False) as r:
        return r.status, r.headers, await r.read()


def _app_routes(st: Stack) -> set[tuple[str, str]]:
    app = st.fast._runner.app if st.fast is not None else st.runner.app  # type: ignore[union-attr]
    return {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD" and r.resource}


async def test_auth_matrix_and_clients(env: Env) -> None:
    e = env
    # every route the running app serves is a row of the matrix (add rows for new routes)
    missing = _app_routes(e.stack) - {(r.method, r.route) for r in ROWS} - NOT_CALLED
    assert not missing, f"routes without a row in the auth matrix: {sorted(missing)}"
    e.job = await _job(e)  # also proves the runners reach the gateway with the internal key
    await _wait_job(e, e.job)
    async with e.session.post(e.url + "/admin/canaries", headers=_bearer(_token("admin")),
                              json={"model": "watched", "primary": "tone-a", "canary": "tone-b", "interval_s": 60}) as r:
        assert r.status == 202, await r.text()
    failures = []
    for row in ROWS:
        for cell in CELLS:
            want = expected(row, cell)
            if want is None:
                continue
            status, headers, body = await _call(e, row, _credential(e, row, cell))
            if status != want:
                failures.append(f"{row.method} {row.route} [{cell}]: {status} != {want}: {body[:200]!r}")
            elif status == 401:
                assert headers.get("WWW-Authenticate", "").startswith("Bearer realm="), (row, cell)  # type: ignore[attr-defined]
            elif status == 403:
                assert 'error="insufficient_scope"' in headers.get("WWW-Authenticate", ""), (row, cell)  # type: ignore[attr-defined]
    assert not failures, "\n".join(failures)

    # listings are per tenant; the other tenant's job is untouched by its failed DELETE
    other_job = await _job(e, tenant="globex")
    async with e.session.get(e.url + "/v1/jobs?limit=100", headers=_bearer(_token("jobs:read", "globex"))) as r:
        assert [j["id"] for j in (await r.json())["data"]] == [other_job]
    async with e.session.get(e.url + "/v1/jobs?limit=100", headers=_bearer(_token("jobs:read"))) as r:
        ids = [j["id"] for j in (await r.json())["data"]]
    assert e.job in ids and other_job not in ids
    async with e.session.get(f"{e.url}/v1/jobs/{e.job}", headers=_bearer(_token("jobs:read"))) as r:
        assert (await r.json())["state"] == "succeeded"

    async with e.session.get(e.url + "/metrics", headers=_bearer(_token("metrics"))) as r:
        metrics = await r.text()
    denied = next(line for line in metrics.splitlines() if line.startswith('voxmesh_auth_checks_total{outcome="denied"}'))
    assert int(float(denied.split()[-1])) >= len(ROWS) * 6

    await _presigned_urls(e)
    await _openai_client(e)
    await _libretranslate_client(e)
    await _admin_keys_over_http(e)
    await _admission_seam(e)
    if e.stack.fast is not None:
        await _checked_once(e)
    _no_secret_in_any_log(e)


async def _presigned_urls(e: Env) -> None:
    async with e.session.get(f"{e.url}/v1/jobs/{e.job}/result", headers=_bearer(_token("jobs:read")),
                             allow_redirects=False) as r:
        assert r.status == 302
        url = r.headers["Location"]
    location = url if url.startswith("http") else e.url + url
    async with e.session.get(location) as r:  # the signature is the credential: no bearer needed
        assert r.status == 200 and (await r.read())[:4] == b"RIFF"
    other = await _job(e, "Another tenant's words.", tenant="globex")
    forged = location.replace(e.job, other)  # the same signature on another job's key
    async with e.session.get(forged) as r:
        assert r.status == 403
    async with e.session.get(location.rsplit("&sig=", 1)[0] + "&sig=" + "0" * 64) as r:
        assert r.status == 403


async def _openai_client(e: Env) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=e.keys["tts:speak"], base_url=e.url + "/v1", max_retries=0)
    try:
        speech = await client.audio.speech.create(model="tts-1", voice="low", input="Hello from openai.",
                                                  response_format="wav")
        assert speech.content[:4] == b"RIFF"
        models = await client.models.list()
        assert "tts-1" in [m.id for m in models.data]
        with pytest.raises(openai.PermissionDeniedError):  # 403: this key may not read jobs' voices
            await client.with_options().get("/audio/voices", cast_to=object)
    finally:
        await client.close()
    bad = openai.AsyncOpenAI(api_key="vxk_000000000000_" + "A" * 43, base_url=e.url + "/v1", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError):
            await bad.audio.speech.create(model="tts-1", voice="low", input="Hi.")
    finally:
        await bad.close()


async def _libretranslate_client(e: Env) -> None:
    from libretranslatepy import LibreTranslateAPI

    lt = LibreTranslateAPI(e.url + "/", api_key=e.keys["mt:translate"])
    assert await asyncio.to_thread(lt.translate, "Hello", "en", "es") == "hola"
    assert (await asyncio.to_thread(lt.detect, "Hello"))[0]["language"] == "en"
    assert (await asyncio.to_thread(lt.languages))[0]["code"] == "en"
    for key in (e.keys["tts:speak"], None):  # a key without mt:translate; no key
        lt = LibreTranslateAPI(e.url + "/", api_key=key)
        with pytest.raises(urllib.error.HTTPError) as info:
            await asyncio.to_thread(lt.translate, "Hello", "en", "es")
        body = json.loads(info.value.read())
        info.value.close()
        assert info.value.code == (403 if key else 401) and body["error"]["type"] in (
            "permission_error", "authentication_error")


async def _admin_keys_over_http(e: Env) -> None:
    admin = _bearer(_token("admin"))
    async with e.session.post(e.url + "/admin/keys", headers=admin,
                              json={"tenant": "initech", "scopes": ["tts:speak"], "expires_in_s": 3600}) as r:
        assert r.status == 201
        made = await r.json()
    e.secrets.append(made["key"])
    body = {"model": "tts-1", "input": "Hi.", "voice": "low", "response_format": "pcm"}
    async with e.session.post(e.url + "/v1/audio/speech", json=body, headers=_bearer(made["key"])) as r:
        assert r.status == 200
    async with e.session.get(e.url + "/admin/keys?tenant=initech", headers=admin) as r:
        listed = await r.json()
    assert [k["id"] for k in listed["data"]] == [made["id"]] and made["key"] not in json.dumps(listed)
    async with e.session.delete(f"{e.url}/admin/keys/{made['id']}", headers=admin) as r:
        assert r.status == 200 and (await r.json())["revoked_at"] is not None
    async with e.session.post(e.url + "/v1/audio/speech", json=body, headers=_bearer(made["key"])) as r:
        assert r.status == 401  # revoked: at once on this gateway
    async with e.session.post(e.url + "/admin/keys", headers=admin, json={"tenant": "initech", "scopes": "root"}) as r:
        assert r.status == 400 and "unknown scopes" in (await r.json())["error"]["message"]
    audit = [json.loads(line) for line in (e.stack.settings.data_dir / "audit.log").read_text().splitlines()]
    assert any(a["event"] == "admin" and a["what"] == f"DELETE /admin/keys/{made['id']}" and a["outcome"] == 200
               for a in audit)
    assert any(a["event"] == "auth_failure" and a.get("reason") == "expired" for a in audit)


async def _admission_seam(e: Env) -> None:
    """One hook on the guard limits both servers: hot, relayed and streamed answers carry its
    headers, and its refusal is a 429 with them."""
    from voxmesh.auth.guard import Call
    from voxmesh.auth.principal import Principal
    from voxmesh.errors import QuotaExceeded

    seen: list[str] = []

    async def limiter(principal: Principal, call: Call) -> None:
        seen.append(f"{principal.tenant} {call.method} {call.path}")
        call.response_headers.append(("x-ratelimit-remaining-requests", "41"))
        if principal.tenant == "noisy":
            raise QuotaExceeded("tenant noisy is over its requests per minute", retry_after=3)

    e.stack.auth.guard.hooks.append(limiter)
    try:
        speech = {"model": "tts-1", "input": "Hi.", "voice": "low", "response_format": "wav"}
        for tenant, want in (("acme", 200), ("noisy", 429)):
            for method, path, payload, scope in (("POST", "/v1/audio/speech", speech, "tts:speak"),
                                                 ("GET", "/v1/jobs", None, "jobs:read")):
                async with e.session.request(method, e.url + path, json=payload,
                                             headers=_bearer(_token(scope, tenant))) as r:
                    await r.read()
                    assert r.status == want, (tenant, path)
                    assert r.headers.get("x-ratelimit-remaining-requests") == "41", (tenant, path, dict(r.headers))
                    if want == 429:
                        assert r.headers["Retry-After"] == "3"
        async with e.session.get(e.url + "/healthz") as r:
            assert "x-ratelimit-remaining-requests" not in r.headers  # public routes are not admitted
    finally:
        e.stack.auth.guard.hooks.remove(limiter)
    assert seen == ["acme POST /v1/audio/speech", "acme GET /v1/jobs", "noisy POST /v1/audio/speech",
                    "noisy GET /v1/jobs"]


async def _checked_once(e: Env) -> None:
    """The guard runs once per request on the fast server, hot or relayed; a client header
    claiming to be the relay or a principal changes nothing."""
    guard = e.stack.auth.guard
    body = {"model": "tts-1", "input": "Hi.", "voice": "low", "response_format": "pcm"}
    for method, path, payload, scope in (("POST", "/v1/audio/speech", body, "tts:speak"), ("GET", "/v1/jobs", None, "jobs:read")):
        before = sum(guard.outcomes.values())
        async with e.session.request(method, e.url + path, json=payload, headers=_bearer(_token(scope))) as r:
            assert r.status == 200
        assert sum(guard.outcomes.values()) - before == 1, path
    forged = {"X-Voxmesh-Peer": "127.0.0.1", "X-Voxmesh-Caller": "jobs-runner", "X-Voxmesh-Principal": "admin"}
    async with e.session.get(e.url + "/admin/topology", headers=forged) as r:
        assert r.status == 401


def _no_secret_in_any_log(e: Env) -> None:
    data = e.stack.settings.data_dir
    texts = ["\n".join(e.log_lines), (data / "audit.log").read_text()]
    texts += [p.read_text(errors="replace") for p in (data / "logs").glob("*.log")]
    assert len(e.log_lines) > 10 and texts[1].count("\n") > 50
    blob = "\n".join(texts)
    assert len(e.secrets) > 20
    leaked = [s[:12] + "..." for s in set(e.secrets) if s and s in blob]
    assert not leaked, f"credentials in the logs: {leaked}"


def test_up_refuses_mode_none_on_a_public_address(tmp_path: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("VOXMESH_")}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "voxmesh", "up", "--host", "0.0.0.0", "--port", "0",
                           "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "auth.mode is none" in lines[0] and "VOXMESH_AUTH__MODE" in lines[0], proc.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started
    env["VOXMESH_AUTH__MODE"] = "jwt"  # an authenticated mode without any key to check tokens with
    proc = subprocess.run([sys.executable, "-m", "voxmesh", "up", "--port", "0", "--data-dir", str(tmp_path / "data")],
                          env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "VOXMESH_AUTH__HS256_SECRET" in lines[0], proc.stderr
