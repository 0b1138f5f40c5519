"""Build the jobs subsystem from :class:`~voxmesh.settings.Settings` (for the gateway and runners).

``stack = await open_jobs(settings)`` opens (and migrates) the DB, the object store and the
queue and returns them with a :class:`JobService`; ``make_runner(stack, synth)`` builds a
runner; ``await stack.close()`` releases everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxmesh.clock import wall
from voxmesh.jobs.queue import ChunkQueue, DbQueue
from voxmesh.jobs.runner import Runner
from voxmesh.jobs.service import JobService, VoiceCatalog
from voxmesh.jobs.synth import FakeSynthesizer, HttpSynthesizer, Synthesizer
from voxmesh.settings import Settings
from voxmesh.storage.db import JobDB
from voxmesh.storage.factory import build_store
from voxmesh.storage.objects import ObjectStore

__all__ = ["JobsStack", "build_synthesizer", "internal_auth", "make_runner", "open_jobs"]


@dataclass
class JobsStack:
    settings: Settings
    db: JobDB
    store: ObjectStore
    queue: ChunkQueue
    service: JobService

    async def close(self) -> None:
        await self.queue.close()
        await self.db.close()


async def open_jobs(settings: Settings, *, catalog: VoiceCatalog | None = None) -> JobsStack:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = await JobDB.open(settings.db_url())
    store = build_store(settings)
    ensure_bucket = getattr(store, "ensure_bucket", None)  # S3: create the bucket on first start
    if ensure_bucket is not None:
        await ensure_bucket()
    queue: ChunkQueue
    if settings.jobs.queue == "rabbitmq":
        from voxmesh.jobs.queue_rabbitmq import RabbitQueue

        queue = await RabbitQueue(
            db, settings.jobs.rabbitmq_url, name=settings.jobs.queue_name, prefetch=settings.jobs.prefetch
        ).connect()
    else:
        queue = DbQueue(db)
    service = JobService(settings, db, store, queue, clock=wall, catalog=catalog)
    return JobsStack(settings, db, store, queue, service)


def build_synthesizer(settings: Settings) -> Synthesizer:
    cfg = settings.jobs
    if cfg.engine == "fake":
        return FakeSynthesizer(sample_rate=cfg.sample_rate, delay_s=cfg.fake_delay_s)
    return HttpSynthesizer(cfg.engine_url, sample_rate=cfg.sample_rate, headers=internal_auth(settings))


def internal_auth(settings: Settings) -> dict[str, str]:
    """Runners call the gateway with the stack's internal key (same data dir) when auth is on."""
    if settings.auth.mode == "none":
        return {}
    from voxmesh.auth.guard import load_internal_key

    return {"Authorization": f"Bearer {load_internal_key(settings.data_dir)}"}


def make_runner(stack: JobsStack, synth: Synthesizer, *, owner: str | None = None) -> Runner:
    return Runner(
        db=stack.db, store=stack.store, queue=stack.queue, synth=synth, settings=stack.settings.jobs, owner=owner
    )
