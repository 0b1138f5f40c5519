"""Enrolled voices in the running stack: the service on the jobs DB and object store, routes
on the gateway's app, fitting rendered through the gateway to the kokoro deployment."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web

from voxmesh.voices.db import VoiceRow
from voxmesh.voices.fit import FitConfig, FitResult, fit_voice, offset_std, stock_embeddings_for
from voxmesh.voices.render import FIT_TEXTS, HELDOUT_TEXTS, VALIDATION_TEXTS, HttpRenderer
from voxmesh.voices.service import VoiceService
from voxmesh.voices.validate import Limits

__all__ = ["VoicesWiring"]

log = logging.getLogger(__name__)


class VoicesWiring:
    """Built after the jobs wiring (it shares its DB engine and object store)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.cfg = stack.settings.voices
        self.service: VoiceService | None = None
        self._std: tuple[float, ...] | None = None
        self._stock_lock = asyncio.Lock()
        self._stock: dict[tuple[str, str, tuple[str, ...]], dict[str, npt.NDArray[np.float32]]] = {}

    def kokoro_models(self) -> list[str]:
        return [d.name for d in self.stack.config.deployments if str(d.engine) == "kokoro"]

    def cloning_models(self) -> list[str]:
        return [d.name for d in self.stack.config.deployments if str(d.engine) == "cosyvoice"]

    def _offset_std(self) -> tuple[float, ...]:
        if self._std is None:
            from voxmesh.engines.kokoro_voices import VoicePackError, default_pack_path, load_pack

            try:
                pack = load_pack(default_pack_path())
            except VoicePackError:
                pack = None
            self._std = offset_std(list(pack.values())) if pack else ()
        return self._std

    async def start(self) -> None:
        from voxmesh.voices.db import VoiceDB
        from voxmesh.voices.encoder import VoiceFilterLiteEncoder

        jobs = self.stack.jobs.jobs
        self.service = VoiceService(VoiceDB(jobs.db.engine), jobs.store, VoiceFilterLiteEncoder(),
                                    self._fit, models=self.kokoro_models, cloning_models=self.cloning_models,
                                    limits=Limits(max_bytes=self.cfg.max_upload_bytes))

    async def _fit(self, row: VoiceRow, emb: npt.NDArray[np.float32],
                   progress: Callable[[str, int, int], Awaitable[None]]) -> FitResult:
        assert self.service is not None
        language = (row.language or "en").split("-")[0].lower()
        voices = [v["id"] for v in self.stack.catalog.voices.get(row.model, [])]
        if self.cfg.candidates:
            voices = [v for v in voices if v in self.cfg.candidates]
        from voxmesh.jobs.wiring import internal_auth

        # the stack's internal key when auth is on (stock voices only: no tenant data involved)
        renderer = HttpRenderer(self.stack.url, row.model, language, headers=internal_auth(self.stack.settings))
        # One fixed fitting text per language (the speaker embedding is text-independent), so the
        # stock voices' embeddings are rendered once per model and language and reused.
        cfg = FitConfig(FIT_TEXTS[language], HELDOUT_TEXTS[language], tuple(voices), self._offset_std(),
                        top_k=self.cfg.top_k, walk_steps=self.cfg.walk_steps, validation_text=VALIDATION_TEXTS[language])
        try:
            key = (row.model, language, tuple(voices))
            async with self._stock_lock:  # concurrent first enrolments compute the cache once
                if key not in self._stock:
                    # once per model and language: the first enrolment reports it as its own stage
                    self._stock[key] = await stock_embeddings_for(voices, cfg.fit_text, renderer,
                                                                  self.service.encoder, progress)
            return await fit_voice(emb, renderer, self.service.encoder, cfg, rng=random.Random(), progress=progress,
                                   stock_embeddings=self._stock[key])
        finally:
            await renderer.close()

    def setup_routes(self, app: web.Application) -> None:
        from voxmesh.voices.routes import setup_voice_routes

        assert self.service is not None
        setup_voice_routes(app, self.service)

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.close()
