"""An external OpenAI-compatible chat server as an MT backend (vLLM or SGLang serving HY-MT,
llama-cpp-python's server, any ``/v1/chat/completions``).

Algorithm
    Each segment becomes one chat request whose single user message is HY-MT1.5's instruction
    (:func:`voxmesh.mt.prompts.instruction`); the server applies its model's chat template. The
    segments of a call go out concurrently (bounded by ``max_concurrency``), so a server with
    continuous batching (vLLM, SGLang) batches them. Streaming uses ``stream: true`` and reads
    the server-sent ``data:`` lines (``choices[0].delta.content``), segment after segment.

    Sampling: ``temperature`` / ``top_p`` / ``max_tokens`` are standard; ``top_k`` and the
    repetition penalty are extensions, sent as both ``repetition_penalty`` (vLLM, SGLang) and
    ``repeat_penalty`` (llama.cpp) unless ``extensions=False`` (servers that reject unknown keys).

Errors (translated at this boundary): connection failures -> ``UpstreamError`` (502), timeouts
-> ``UpstreamTimeout`` (504), 429/503 -> ``Overloaded`` (503, keeps ``Retry-After``), other
non-2xx -> ``UpstreamError`` with the server's message.

Limits: no retries or balancing here; put the gateway's data plane in front (``base_url`` may
be any URL, a gateway route included).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from voxmesh.engines.base import Capabilities
from voxmesh.errors import Overloaded, UpstreamError, UpstreamTimeout, VoxmeshError
from voxmesh.mt.languages import DEFAULT_LANGUAGES, LanguageSet
from voxmesh.mt.prompts import HYMT_SAMPLING, SamplingParams, clean_output, instruction
from voxmesh.mt.streaming import Piece

__all__ = ["RemoteChatEngine"]


class RemoteChatEngine:
    name = "remote"

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "hy-mt",
        api_key: str | None = None,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        sampling: SamplingParams = HYMT_SAMPLING,
        timeout_s: float = 60.0,
        max_concurrency: int = 16,
        extensions: bool = True,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self.model = model
        self.api_key = api_key
        self.languages = LanguageSet(languages)
        self.sampling = sampling
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.extensions = extensions
        self._limit = asyncio.Semaphore(max_concurrency)
        self._session = session
        self._own_session = session is None

    @classmethod
    def from_settings(cls, mt: Any, **overrides: Any) -> RemoteChatEngine:
        if not mt.remote_base_url:
            raise ValueError("mt.remote_base_url is not set")
        kw: dict[str, Any] = dict(
            model=mt.remote_model, api_key=mt.remote_api_key, languages=mt.languages,
            timeout_s=mt.remote_timeout_s,
            sampling=SamplingParams(temperature=mt.temperature, top_k=mt.top_k, top_p=mt.top_p,
                                    repeat_penalty=mt.repeat_penalty, max_new_tokens=mt.max_new_tokens,
                                    seed=mt.seed),
        )
        kw.update(overrides)
        return cls(mt.remote_base_url, **kw)

    @property
    def model_name(self) -> str:
        return self.model

    def capabilities(self) -> Capabilities:
        return Capabilities(kind="mt", languages=self.languages.codes, streaming=True)

    async def aclose(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own_session = True
        return self._session

    def body(self, text: str, source: str, target: str, *, glossary: Mapping[str, str] | None,
             context: str | None, params: SamplingParams, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": instruction(text, source, target, glossary=glossary,
                                                                 context=context)}],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": params.seed,
            "stream": stream,
        }
        if self.extensions:
            body["top_k"] = params.top_k
            body["repetition_penalty"] = params.repeat_penalty
            body["repeat_penalty"] = params.repeat_penalty
        return body

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def _post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        url = f"{self.base_url}/v1/chat/completions"
        try:
            resp = await self._http().post(url, json=body, headers=self._headers(), timeout=self.timeout)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"chat server at {self.base_url} did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"cannot reach the chat server at {self.base_url}: {exc}") from exc
        if resp.status >= 300:
            raise await _status_error(resp)
        return resp

    async def _one(self, text: str, source: str, target: str, glossary: Mapping[str, str] | None,
                   context: str | None, params: SamplingParams) -> str:
        body = self.body(text, source, target, glossary=glossary, context=context, params=params, stream=False)
        async with self._limit:
            resp = await self._post(body)
            try:
                data = await resp.json(content_type=None)
                content = data["choices"][0]["message"]["content"] or ""
            except TimeoutError as exc:
                raise UpstreamTimeout(f"chat server at {self.base_url} timed out mid-answer") from exc
            except (aiohttp.ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
                raise UpstreamError(f"malformed answer from the chat server at {self.base_url}: {exc}") from exc
            finally:
                resp.release()
        return clean_output(text, content)

    async def atranslate(self, segments: Sequence[str], source: str, target: str, *,
                         glossary: Mapping[str, str] | None = None, context: str | None = None,
                         params: SamplingParams | None = None) -> list[str]:
        p = params or self.sampling
        return list(await asyncio.gather(*(self._one(s, source, target, glossary, context, p) for s in segments)))

    async def astream(self, segments: Sequence[str], source: str, target: str, *,
                      glossary: Mapping[str, str] | None = None, context: str | None = None,
                      params: SamplingParams | None = None) -> AsyncIterator[Piece]:
        p = params or self.sampling
        for i, text in enumerate(segments):
            body = self.body(text, source, target, glossary=glossary, context=context, params=p, stream=True)
            async with self._limit:
                resp = await self._post(body)
                try:
                    started = False
                    async for delta in _sse_deltas(resp):
                        if not started:
                            delta = delta.lstrip()
                            started = bool(delta)
                        if delta:
                            yield Piece(i, delta)
                except TimeoutError as exc:
                    raise UpstreamTimeout(f"chat server at {self.base_url} stalled mid-stream") from exc
                except aiohttp.ClientError as exc:
                    raise UpstreamError(f"stream from {self.base_url} broke: {exc}") from exc
                finally:
                    resp.release()

    def translate(self, texts: list[str], source: str, target: str, *,
                  glossary: Mapping[str, str] | None = None, context: str | None = None) -> list[str]:
        """Blocking convenience for scripts (not inside a running event loop)."""

        async def run() -> list[str]:
            try:
                return await self.atranslate(texts, source, target, glossary=glossary, context=context)
            finally:
                await self.aclose()

        return asyncio.run(run())


async def _sse_deltas(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    async for raw in resp.content:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            continue
        if "error" in chunk:
            raise UpstreamError(f"chat server error mid-stream: {chunk['error']}")
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield content


async def _status_error(resp: aiohttp.ClientResponse) -> VoxmeshError:
    try:
        text = (await resp.text())[:500]
    except (TimeoutError, aiohttp.ClientError):
        text = ""
    finally:
        resp.release()
    message = text
    try:
        err = json.loads(text).get("error")
        message = err.get("message", text) if isinstance(err, dict) else str(err or text)
    except (ValueError, AttributeError):
        pass
    where = f"chat server {resp.url.origin()} answered {resp.status}"
    if resp.status in (429, 503):
        retry = resp.headers.get("Retry-After")
        return Overloaded(f"{where}: {message}", retry_after=float(retry) if retry and retry.isdigit() else 1.0)
    return UpstreamError(f"{where}: {message}")
