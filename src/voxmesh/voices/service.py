"""Enrolled voices: create (validate, store, embed, fit in the background), read, delete, resolve.

Storage per voice ``voice_<24 hex>`` of tenant ``T`` (object keys under ``voices/<T>/<id>/``):

* ``reference.<fmt>``: the uploaded clip, as uploaded;
* ``embedding.npy``: the reference's speaker embedding (float32);
* ``style.json``: the fitted Kokoro style (signed blend weights + 256-d offset);
* the DB row (``voxmesh.voices.db``): name, model, consent time, state, progress, the clip's
  measurements and the similarity report.

Delete removes all three objects, then the row, and cancels a fit in flight; a fit that
finishes after its voice was deleted stores nothing (the row's transition fails first, and
its style object is removed again).

Consent: ``consent`` must be true (the caller states they have the speaker's permission); its
time is stored with the voice. Voices are tenant-owned: another tenant gets 404.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from voxmesh.clock import Clock, wall
from voxmesh.errors import Conflict, InvalidRequest, NotFound
from voxmesh.storage.objects import ObjectStore
from voxmesh.voices.db import VoiceDB, VoiceRow
from voxmesh.voices.encoder import SpeakerEncoder
from voxmesh.voices.fit import FitResult
from voxmesh.voices.ids import ENROLLED_ID, is_enrolled_id
from voxmesh.voices.lifecycle import VoiceEvent, VoiceState
from voxmesh.voices.validate import Limits, validate_clip

__all__ = ["ENROLLED_ID", "Enrolment", "Fitter", "VoiceService", "is_enrolled_id"]

log = logging.getLogger(__name__)

_TENANT_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")

# the voice, its reference embedding, a progress callback -> fit result
Fitter = Callable[[VoiceRow, npt.NDArray[np.float32], Callable[[str, int, int], Awaitable[None]]],
                  Awaitable[FitResult]]


def _tenant_key(tenant: str) -> str:
    return tenant if _TENANT_SEGMENT.match(tenant) else "t-" + hashlib.sha256(tenant.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Enrolment:
    """A validated-to-be enrolment request (the route parses the multipart form into this)."""

    name: str
    model: str
    audio: bytes
    consent: bool
    transcript: str | None = None
    language: str | None = None


def _wav16k(pcm: npt.NDArray[np.float32]) -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class VoiceService:
    def __init__(self, db: VoiceDB, store: ObjectStore, encoder: SpeakerEncoder, fitter: Fitter | None, *,
                 models: Callable[[], list[str]], cloning_models: Callable[[], list[str]] = list,
                 clock: Clock = wall, limits: Limits | None = None) -> None:
        self.db = db
        self.store = store
        self.encoder = encoder
        self.fitter = fitter
        self.matching_models = models  # kokoro deployments: voice matching (a fitted style)
        self.cloning_models = cloning_models  # cloning engines (cosyvoice): the reference itself
        self.clock = clock
        self.limits = limits or Limits()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def models(self) -> list[str]:
        """Deployments that take enrolled voices."""
        return [*self.matching_models(), *self.cloning_models()]

    # -- create ---------------------------------------------------------------------------
    def _check(self, req: Enrolment) -> None:
        if req.consent is not True:
            raise InvalidRequest("consent must be true: confirm you have the speaker's permission to enrol "
                                 "their voice", param="consent")
        if not req.name.strip() or len(req.name) > 100:
            raise InvalidRequest("name must be 1-100 characters", param="name")
        if req.transcript is not None and len(req.transcript) > 2000:
            raise InvalidRequest("transcript must be at most 2000 characters", param="transcript")
        if req.language is not None and req.language.split("-")[0].lower() not in ("en", "zh", "ja", "ko"):
            raise InvalidRequest("language must be en, zh or ja (ko for cloning engines)", param="language")
        allowed = self.models()
        if req.model not in allowed:
            raise InvalidRequest(f"model {req.model!r} cannot take enrolled voices; use one of {allowed or 'none'} "
                                 "(kokoro or cloning deployments)", param="model")
        if req.model not in self.cloning_models() and (req.language or "en").split("-")[0].lower() == "ko":
            raise InvalidRequest("voice matching (kokoro) speaks en, zh or ja", param="language")
        if req.model in self.cloning_models() and not (req.transcript or "").strip():
            raise InvalidRequest("a cloning engine needs the clip's transcript: add the form field 'transcript'",
                                 param="transcript")

    async def create(self, tenant: str, req: Enrolment) -> VoiceRow:
        self._check(req)
        pcm, report = await asyncio.to_thread(validate_clip, req.audio, self.limits)
        voice_id = "voice_" + secrets.token_hex(12)
        prefix = f"voices/{_tenant_key(tenant)}/{voice_id}"
        audio_key = f"{prefix}/reference.{report.format}"
        emb = await asyncio.to_thread(self.encoder.embed, pcm)
        buf = io.BytesIO()
        np.save(buf, emb.astype(np.float32))
        emb_key = f"{prefix}/embedding.npy"
        await self.store.put(audio_key, req.audio, content_type=f"audio/{report.format}")
        await self.store.put(emb_key, buf.getvalue())
        now = self.clock()
        row = await self.db.create({
            "id": voice_id, "tenant": tenant, "name": req.name.strip(), "model": req.model,
            "language": req.language, "transcript": req.transcript, "consent_at": now, "created_at": now,
            "updated_at": now, "audio_key": audio_key, "embedding_key": emb_key,
            "clip": {**report.as_dict(), "encoder": self.encoder.name},
        })
        if req.model in self.cloning_models():
            # nothing to fit: the engine clones the (validated, 16 kHz) reference per request
            await self.store.put(f"{prefix}/reference16k.wav", _wav16k(pcm), content_type="audio/wav")
            await self.db.transition(voice_id, VoiceEvent.FITTED, self.clock(), progress=1.0, stage="done",
                                     report={"method": "zero-shot cloning by the deployment's engine"})
            return await self.db.get(tenant, voice_id)
        if self.fitter is not None:
            self._tasks[voice_id] = asyncio.ensure_future(self._fit(row, emb))
        return row

    async def _fit(self, row: VoiceRow, emb: npt.NDArray[np.float32]) -> None:
        assert self.fitter is not None

        async def progress(stage: str, done: int, total: int) -> None:
            await self.db.progress(row.id, stage, done / max(1, total), self.clock())

        style_key = f"{row.audio_key.rsplit('/', 1)[0]}/style.json"
        try:
            result = await self.fitter(row, emb, progress)
            style = result.style.as_dict()
            await self.store.put(style_key, json.dumps(style).encode(), content_type="application/json")
            ok = await self.db.transition(row.id, VoiceEvent.FITTED, self.clock(), style=style,
                                          report=result.report(), progress=1.0, stage="done")
            if not ok:  # deleted while fitting
                await self.store.delete(style_key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("voice %s: fit failed", row.id)
            await self.db.transition(row.id, VoiceEvent.FAILED, self.clock(), error=f"fit failed: {exc}")
        finally:
            self._tasks.pop(row.id, None)

    # -- read / delete ---------------------------------------------------------------------
    async def get(self, tenant: str, voice_id: str) -> VoiceRow:
        if not is_enrolled_id(voice_id):
            raise NotFound(f"no voice {voice_id!r}: see GET /v1/audio/voices", param="voice")
        return await self.db.get(tenant, voice_id)

    async def list(self, tenant: str, model: str | None = None) -> list[VoiceRow]:
        return await self.db.list(tenant, model)

    async def delete(self, tenant: str, voice_id: str) -> VoiceRow:
        row = await self.get(tenant, voice_id)
        task = self._tasks.pop(voice_id, None)
        if task is not None:
            task.cancel()
        prefix = row.audio_key.rsplit("/", 1)[0]
        for key in (row.audio_key, row.embedding_key, f"{prefix}/style.json", f"{prefix}/reference16k.wav"):
            if key:
                await self.store.delete(key)
        await self.db.delete(tenant, voice_id)
        return row

    async def resolve(self, tenant: str, voice_id: str) -> dict[str, Any]:
        """The speech-body fields that carry an enrolled voice to the worker (READY only):
        ``voice_style`` (voice matching) or ``voice_reference`` (cloning deployments)."""
        row = await self.get(tenant, voice_id)
        if row.model in self.cloning_models():
            wav = await self.store.get(f"{row.audio_key.rsplit('/', 1)[0]}/reference16k.wav")
            return {"voice_reference": {"audio": base64.b64encode(wav).decode(), "transcript": row.transcript or ""}}
        if row.state is VoiceState.FITTING:
            raise Conflict(f"voice {voice_id} is still being fitted ({row.progress:.0%}): poll "
                           f"GET /v1/audio/voices/{voice_id} until status is ready")
        if row.state is VoiceState.FAILED or row.style is None:
            raise Conflict(f"voice {voice_id} failed to fit ({row.error}): delete it and enrol again")
        return {"voice_style": row.style}

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
