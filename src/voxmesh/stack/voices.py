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

from voxmesh.voices.acoustic import AcousticFeatures, acoustic_features
from voxmesh.voices.candidates import stock_means
from voxmesh.voices.db import VoiceRow
from voxmesh.voices.fit import FitConfig, FitResult, Heard, fit_voice, offset_std, stock_embeddings_for
from voxmesh.voices.render import FIT_TEXTS, HELDOUT_TEXTS, SECOND_FIT_TEXTS, VALIDATION_TEXTS, HttpRenderer
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
        self._means: dict[str, npt.NDArray[np.float64]] | None = None
        self._stock_lock = asyncio.Lock()
        self._stock: dict[tuple[str, str, tuple[str, ...]], dict[str, Heard]] = {}

    def kokoro_models(self) -> list[str]:
        return [d.name for d in self.stack.config.deployments if str(d.engine) == "kokoro"]

    def cloning_models(self) -> list[str]:
        return [d.name for d in self.stack.config.deployments if str(d.engine) == "cosyvoice"]

    def _pack_stats(self) -> tuple[tuple[float, ...], dict[str, npt.NDArray[np.float64]]]:
        """The stock voices' spread (the walk's scale) and mean styles (half moves, local search)."""
        if self._std is None or self._means is None:
            from voxmesh.engines.kokoro_voices import VoicePackError, default_pack_path, load_pack

            try:
                pack = load_pack(default_pack_path())
            except VoicePackError:
                pack = None
            self._std = offset_std(list(pack.values())) if pack else ()
            self._means = stock_means(pack) if pack else {}
        return self._std, self._means

    async def _reference_acoustic(self, row: VoiceRow) -> AcousticFeatures | None:
        """The enrolment clip's pitch and envelope (the encoder-free term), or None if unreadable."""
        from voxmesh.voices.validate import validate_clip

        assert self.service is not None
        try:
            audio = await self.service.store.get(row.audio_key)
            pcm, _ = await asyncio.to_thread(validate_clip, audio, self.service.limits)
            return await asyncio.to_thread(acoustic_features, pcm)
        except Exception:  # the fit still runs on the speaker encoder alone
            log.warning("voice %s: no acoustic features of the reference", row.id, exc_info=True)
            return None

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

        acoustic = await self._reference_acoustic(row) if self.cfg.acoustic_weight else None
        # the stack's internal key when auth is on (stock voices only: no tenant data involved)
        renderer = HttpRenderer(self.stack.url, row.model, language, headers=internal_auth(self.stack.settings))
        # Fixed fitting texts per language (the speaker embedding is text-independent), so the
        # stock voices are rendered once per model and language and reused.
        std, means = self._pack_stats()
        cfg = FitConfig(FIT_TEXTS[language], HELDOUT_TEXTS[language], tuple(voices), std,
                        top_k=self.cfg.top_k, walk_steps=self.cfg.walk_steps, local_steps=self.cfg.local_steps,
                        validation_text=VALIDATION_TEXTS[language], extra_fit_texts=(SECOND_FIT_TEXTS[language],),
                        acoustic_weight=self.cfg.acoustic_weight, max_renders=self.cfg.max_renders,
                        stock_means=means or None)
        try:
            key = (row.model, language, tuple(voices))
            async with self._stock_lock:  # concurrent first enrolments compute the cache once
                if key not in self._stock:
                    # once per model and language: the first enrolment reports it as its own stage
                    self._stock[key] = await stock_embeddings_for(voices, cfg.fit_texts, renderer,
                                                                  self.service.encoder, progress)
            return await fit_voice(emb, renderer, self.service.encoder, cfg, rng=random.Random(), progress=progress,
                                   stock_embeddings=self._stock[key], reference_acoustic=acoustic)
        finally:
            await renderer.close()

    def setup_routes(self, app: web.Application) -> None:
        from voxmesh.voices.routes import setup_voice_routes

        assert self.service is not None
        setup_voice_routes(app, self.service)

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.close()
