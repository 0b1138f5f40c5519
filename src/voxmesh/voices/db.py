"""The ``voices`` table (migration 0003) and its queries. Every read and write is scoped by
tenant: a voice of another tenant does not exist for the caller (404, never 403)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Index, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from voxmesh.errors import NotFound
from voxmesh.voices.lifecycle import VoiceEvent, VoiceState, next_state

__all__ = ["VoiceDB", "VoiceRow", "voices"]

metadata = MetaData()

voices = Table(
    "voices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("language", String(16)),
    Column("transcript", Text),
    Column("consent_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("stage", String(16)),
    Column("progress", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("audio_key", String(512), nullable=False),
    Column("embedding_key", String(512)),
    Column("style", Text),
    Column("clip", Text, nullable=False),
    Column("report", Text),
    Column("error", Text),
    Index("ix_voices_tenant", "tenant", "created_at"),
)


@dataclass(frozen=True)
class VoiceRow:
    id: str
    tenant: str
    name: str
    model: str
    language: str | None
    transcript: str | None
    consent_at: float
    state: VoiceState
    stage: str | None
    progress: float
    created_at: float
    updated_at: float
    audio_key: str
    embedding_key: str | None
    style: dict[str, Any] | None
    clip: dict[str, Any]
    report: dict[str, Any] | None
    error: str | None

    @classmethod
    def from_row(cls, row: Any) -> VoiceRow:
        m = dict(row._mapping)
        m["state"] = VoiceState(m["state"])
        for key in ("style", "report"):
            m[key] = json.loads(m[key]) if m[key] else None
        m["clip"] = json.loads(m["clip"])
        return cls(**m)

    def public(self) -> dict[str, Any]:
        """The API's view: no object keys, no style vector."""
        return {
            "id": self.id, "object": "voice", "name": self.name, "model": self.model, "language": self.language,
            "transcript": self.transcript, "status": self.state.value, "stage": self.stage,
            "progress": round(self.progress, 3), "created_at": int(self.created_at),
            "consent_at": int(self.consent_at), "clip": self.clip, "report": self.report, "error": self.error,
            "kind": "enrolled",
            "method": "voice matching (Kokoro style fit)" if self.style is not None or self.report is None
            or "best_stock" in self.report else "zero-shot cloning (remote engine)",
        }


class VoiceDB:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, row: dict[str, Any]) -> VoiceRow:
        values = {**row, "clip": json.dumps(row["clip"]), "state": VoiceState.FITTING.value, "progress": 0.0}
        async with self.engine.begin() as conn:
            await conn.execute(voices.insert().values(**values))
        return await self.get(row["tenant"], row["id"])

    async def get(self, tenant: str, voice_id: str) -> VoiceRow:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(voices).where(voices.c.id == voice_id, voices.c.tenant == tenant))).first()
        if row is None:
            raise NotFound(f"no voice {voice_id!r}: see GET /v1/audio/voices", param="voice")
        return VoiceRow.from_row(row)

    async def list(self, tenant: str, model: str | None = None) -> list[VoiceRow]:
        q = select(voices).where(voices.c.tenant == tenant)
        if model is not None:
            q = q.where(voices.c.model == model)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(voices.c.created_at))).all()
        return [VoiceRow.from_row(r) for r in rows]

    async def progress(self, voice_id: str, stage: str, fraction: float, now: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(voices).where(voices.c.id == voice_id, voices.c.state == "fitting")
                               .values(stage=stage, progress=fraction, updated_at=now))

    async def transition(self, voice_id: str, event: VoiceEvent, now: float, **values: Any) -> bool:
        """Apply ``event`` if the voice still exists in a state that allows it (a voice deleted
        while fitting is left deleted: returns False)."""
        for key in ("style", "report"):
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key])
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(voices.c.state).where(voices.c.id == voice_id))).first()
            if row is None:
                return False
            target = next_state(VoiceState(row[0]), event)
            if target is None:
                return False
            res = await conn.execute(update(voices).where(voices.c.id == voice_id, voices.c.state == row[0])
                                     .values(state=target.value, updated_at=now, **values))
            return bool(res.rowcount)

    async def delete(self, tenant: str, voice_id: str) -> VoiceRow:
        row = await self.get(tenant, voice_id)
        async with self.engine.begin() as conn:
            await conn.execute(delete(voices).where(voices.c.id == voice_id, voices.c.tenant == tenant))
        return row
