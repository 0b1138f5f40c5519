"""The translation service: one request in, validated, segmented, translated, put back together.

``Translator`` is what the HTTP routes need. Two implementations ship:

* :class:`InProcessTranslator` over an engine in this process (a worker, or a single-process
  deployment). Per request: size check (``PayloadTooLarge`` past ``max_input_chars``), language
  resolution (``auto`` detects per text among the engine's languages), pair check
  (``UnsupportedLanguage`` listing the supported set), HTML text-node extraction, sentence
  segmentation, one engine call for every segment of every text (so they decode together), and
  reassembly. Same source and target returns the input unchanged.
* :class:`HttpTranslator`, a client of the same API on another process (a worker behind mTLS or
  the gateway); it maps error bodies back onto :mod:`voxmesh.errors`.

Engines only translate sentence-sized segments (:class:`MtEngine`): the llama.cpp engine and the
external chat-server engine both fit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp

from voxmesh import errors
from voxmesh.mt.detect import Detection, detect
from voxmesh.mt.htmltext import parse_html
from voxmesh.mt.languages import LanguageSet, normalize_code
from voxmesh.mt.prompts import SamplingParams, clean_output
from voxmesh.mt.segment import Segmented, segment
from voxmesh.mt.streaming import Piece

__all__ = [
    "HttpTranslator",
    "InProcessTranslator",
    "MtEngine",
    "TranslationRequest",
    "TranslationResult",
    "Translator",
    "translator_from_settings",
]

Format = Literal["text", "html"]


@dataclass(frozen=True)
class TranslationRequest:
    texts: tuple[str, ...]
    source: str
    target: str
    format: Format = "text"
    glossary: Mapping[str, str] | None = None
    context: str | None = None
    model: str | None = None
    params: SamplingParams | None = None  # None: the engine's defaults

    def to_json(self, *, stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"input": list(self.texts), "source": self.source, "target": self.target,
                                "format": self.format, "stream": stream}
        for key in ("glossary", "context", "model"):
            if getattr(self, key) is not None:
                body[key] = dict(self.glossary or {}) if key == "glossary" else getattr(self, key)
        if self.params is not None and self.params.greedy:
            body["temperature"] = 0.0
        return body


@dataclass(frozen=True)
class TranslationResult:
    translations: list[str]
    source: str  # the resolved source of the first text (``auto`` resolved)
    target: str
    model: str
    detected: list[Detection | None] = field(default_factory=list)  # per text when source was auto

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "translation",
            "model": self.model,
            "source": self.source,
            "target": self.target,
            "translations": self.translations,
            "detected": [None if d is None else {"language": d.language, "confidence": d.confidence}
                         for d in self.detected],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TranslationResult:
        detected = [None if d is None else Detection(d["language"], float(d["confidence"]))
                    for d in data.get("detected") or []]
        return cls(list(data["translations"]), data["source"], data["target"], data.get("model", ""), detected)


class MtEngine(Protocol):
    languages: LanguageSet

    @property
    def model_name(self) -> str: ...

    async def atranslate(self, segments: Sequence[str], source: str, target: str, *,
                         glossary: Mapping[str, str] | None = None, context: str | None = None,
                         params: SamplingParams | None = None) -> list[str]: ...

    def astream(self, segments: Sequence[str], source: str, target: str, *,
                glossary: Mapping[str, str] | None = None, context: str | None = None,
                params: SamplingParams | None = None) -> AsyncIterator[Piece]: ...


class Translator(Protocol):
    async def languages(self) -> LanguageSet: ...

    async def detect(self, text: str) -> list[Detection]: ...

    async def translate(self, request: TranslationRequest) -> TranslationResult: ...

    def stream(self, request: TranslationRequest) -> AsyncIterator[Piece | TranslationResult]:
        """Pieces of the translations in order (``Piece.index`` is the text), then the result."""
        ...


@dataclass
class _Plan:
    """How one text maps to engine segments (HTML: per text node; text: the whole text)."""

    source: str
    units: list[Segmented]
    html: Any = None  # HtmlDocument when format=html

    def segments(self) -> list[str]:
        return [s for u in self.units for s in u.segments]

    def render(self, outs: Sequence[str], target: str) -> str:
        k, joined = 0, []
        for u in self.units:
            joined.append(u.join(outs[k : k + len(u.segments)], self.source, target))
            k += len(u.segments)
        return self.html.render(joined) if self.html is not None else joined[0]


class InProcessTranslator:
    def __init__(self, engine: MtEngine, *, max_input_chars: int = 20_000, max_segment_chars: int = 400) -> None:
        self.engine = engine
        self.max_input_chars = max_input_chars
        self.max_segment_chars = max_segment_chars

    async def languages(self) -> LanguageSet:
        return self.engine.languages

    async def detect(self, text: str) -> list[Detection]:
        return detect(text, allowed=self.engine.languages.codes)

    def _resolve(self, request: TranslationRequest) -> tuple[list[str], list[Detection | None], str]:
        if not request.texts:
            raise errors.InvalidRequest("input is empty: send at least one text", param="q")
        total = sum(len(t) for t in request.texts)
        if total > self.max_input_chars:
            raise errors.PayloadTooLarge(
                f"input has {total} characters; the limit is {self.max_input_chars} per request: "
                "split it, or submit a job for long documents", param="q")
        langs = self.engine.languages
        auto = request.source.strip().lower() in ("auto", "")
        target = langs.check_pair(langs.codes[0] if auto else request.source, request.target)[1]
        sources: list[str] = []
        detected: list[Detection | None] = []
        for text in request.texts:
            if not auto:
                sources.append(langs.check_pair(request.source, target)[0])
                detected.append(None)
                continue
            found = detect(text, allowed=langs.codes)
            if not found:
                if text.strip():
                    raise errors.InvalidRequest("could not detect the source language: pass `source`",
                                                param="source")
                found = [Detection(target, 0.0)]
            sources.append(found[0].language)
            detected.append(found[0])
        return sources, detected, target

    def _plans(self, request: TranslationRequest, sources: list[str]) -> list[_Plan]:
        plans = []
        for text, src in zip(request.texts, sources, strict=True):
            if request.format == "html":
                doc = parse_html(text)
                plans.append(_Plan(src, [segment(t, self.max_segment_chars) for t in doc.texts], doc))
            else:
                plans.append(_Plan(src, [segment(text, self.max_segment_chars)]))
        return plans

    async def translate(self, request: TranslationRequest) -> TranslationResult:
        sources, detected, target = self._resolve(request)
        plans = self._plans(request, sources)
        # One engine call per distinct source language, all segments of all texts together.
        by_source: dict[str, list[int]] = {}
        for i, plan in enumerate(plans):
            if normalize_code(plan.source) != target:
                by_source.setdefault(plan.source, []).append(i)
        outs: dict[int, list[str]] = {}

        async def run(src: str, idxs: list[int]) -> None:
            flat = [s for i in idxs for s in plans[i].segments()]
            got = await self.engine.atranslate(flat, src, target, glossary=request.glossary,
                                               context=request.context, params=request.params)
            k = 0
            for i in idxs:
                n = len(plans[i].segments())
                outs[i] = got[k : k + n]
                k += n

        await asyncio.gather(*(run(src, idxs) for src, idxs in by_source.items()))
        translations = [
            plans[i].render(outs[i], target) if i in outs else request.texts[i] for i in range(len(plans))
        ]
        return TranslationResult(translations, sources[0], target, self.engine.model_name,
                                 detected if any(d is not None for d in detected) else [])

    async def stream(self, request: TranslationRequest) -> AsyncIterator[Piece | TranslationResult]:
        if request.format == "html":
            # Tags must stay whole: stream each finished document as one piece.
            result = await self.translate(request)
            for i, text in enumerate(result.translations):
                yield Piece(i, text)
            yield result
            return
        sources, detected, target = self._resolve(request)
        plans = self._plans(request, sources)
        outs: list[str] = []
        for i, plan in enumerate(plans):
            unit = plan.units[0]
            if normalize_code(plan.source) == target or not unit.segments:
                yield Piece(i, request.texts[i])
                outs.append(request.texts[i])
                continue
            parts: list[list[str]] = [[] for _ in unit.segments]
            lead = unit.separator(-1, plan.source, target)
            if lead:
                yield Piece(i, lead)
            current = 0
            async for piece in self.engine.astream(list(unit.segments), plan.source, target,
                                                   glossary=request.glossary, context=request.context,
                                                   params=request.params):
                while piece.index > current:  # the previous segment is complete
                    sep = unit.separator(current, plan.source, target)
                    if sep:
                        yield Piece(i, sep)
                    current += 1
                parts[piece.index].append(piece.text)
                yield Piece(i, piece.text)
            while current < len(unit.segments):
                sep = unit.separator(current, plan.source, target)
                if sep:
                    yield Piece(i, sep)
                current += 1
            cleaned = [clean_output(seg, "".join(p)) for seg, p in zip(unit.segments, parts, strict=True)]
            outs.append(unit.join(cleaned, plan.source, target))
        yield TranslationResult(outs, sources[0], target, self.engine.model_name,
                                detected if any(d is not None for d in detected) else [])


_STATUS_ERRORS: dict[int, type[errors.VoxmeshError]] = {
    400: errors.InvalidRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    409: errors.Conflict, 413: errors.PayloadTooLarge, 429: errors.QuotaExceeded, 502: errors.UpstreamError,
    503: errors.Overloaded, 504: errors.UpstreamTimeout,
}


def error_from_body(status: int, body: str) -> errors.VoxmeshError:
    """The voxmesh error a worker's JSON error body describes (the inverse of ``to_dict``)."""
    try:
        err = json.loads(body)["error"]
        message, param = str(err.get("message")), err.get("param")
        kind = err.get("type", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        message, param, kind = body[:300] or f"HTTP {status}", None, ""
    cls = _STATUS_ERRORS.get(status, errors.UpstreamError if status >= 500 else errors.InvalidRequest)
    if status == 500:
        cls = errors.EngineError if kind == "engine_error" else errors.UpstreamError
    return cls(message, param=param)


class HttpTranslator:
    """The ``Translator`` of another process, over its ``/v1/translations``, ``/languages``, ``/detect``."""

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None,
                 timeout_s: float = 120.0, headers: Mapping[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.headers = dict(headers or {})
        self._languages: LanguageSet | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own = True
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and self._own:
            await self._session.close()
        self._session = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = self.base_url + path
        try:
            async with self._http().request(method, url, json=body, headers=self.headers) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise error_from_body(resp.status, text)
                return json.loads(text)
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(f"translation worker at {self.base_url} timed out") from exc
        except aiohttp.ClientError as exc:
            raise errors.UpstreamError(f"cannot reach the translation worker at {self.base_url}: {exc}") from exc
        except ValueError as exc:
            raise errors.UpstreamError(f"malformed answer from {url}: {exc}") from exc

    async def languages(self) -> LanguageSet:
        if self._languages is None:
            data = await self._call("GET", "/languages")
            self._languages = LanguageSet([d["code"] for d in data])
        return self._languages

    async def detect(self, text: str) -> list[Detection]:
        data = await self._call("POST", "/detect", {"q": text})
        return [Detection(d["language"], float(d["confidence"])) for d in data]

    async def translate(self, request: TranslationRequest) -> TranslationResult:
        return TranslationResult.from_json(await self._call("POST", "/v1/translations", request.to_json()))

    async def stream(self, request: TranslationRequest) -> AsyncIterator[Piece | TranslationResult]:
        url = self.base_url + "/v1/translations"
        try:
            async with self._http().post(url, json=request.to_json(stream=True), headers=self.headers) as resp:
                if resp.status >= 300:
                    raise error_from_body(resp.status, await resp.text())
                event = "message"
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:].strip())
                        if event == "piece":
                            yield Piece(int(data["index"]), data["text"])
                        elif event == "done":
                            yield TranslationResult.from_json(data)
                        elif event == "error":
                            err = data.get("error", {})
                            raise error_from_body(int(err.get("status", 502)), json.dumps(data))
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(f"translation worker at {self.base_url} timed out") from exc
        except aiohttp.ClientError as exc:
            raise errors.UpstreamError(f"stream from {self.base_url} broke: {exc}") from exc


def translator_from_settings(mt: Any, *, threads: int = 1) -> tuple[InProcessTranslator, Any]:
    """The translator a worker serves, and its engine (close it on shutdown).

    ``mt`` is :class:`voxmesh.settings.MtSettings`: with ``remote_base_url`` set the engine is
    an external chat server (:class:`~voxmesh.engines.remote.RemoteChatEngine`, ``aclose()``),
    otherwise the llama.cpp engine, loaded here with ``threads`` cores (``close()``)."""
    engine: Any
    if mt.remote_base_url:
        from voxmesh.engines.remote import RemoteChatEngine

        engine = RemoteChatEngine.from_settings(mt)
    else:
        from voxmesh.engines.llamacpp import LlamaCppEngine

        engine = LlamaCppEngine.from_settings(mt)
        engine.load(threads)
    return InProcessTranslator(engine, max_input_chars=mt.max_input_chars,
                               max_segment_chars=mt.max_segment_chars), engine
