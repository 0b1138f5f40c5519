"""Job and chunk lifecycles as transition tables.

Rules (jobs):
    QUEUED    --start-->    RUNNING      the first chunk of the job is leased
    QUEUED    --cancel-->   CANCELLED    DELETE /v1/jobs/{id} before any work
    QUEUED    --fail-->     FAILED       e.g. the queue refused the job's messages
    RUNNING   --succeed-->  SUCCEEDED    every chunk is done and the result is stored
    RUNNING   --fail-->     FAILED       a chunk was dead-lettered (reason kept on the chunk)
    RUNNING   --cancel-->   CANCELLED
    SUCCEEDED, FAILED, CANCELLED are terminal: nothing leaves them.

Rules (chunks):
    PENDING --lease-->    LEASED   a runner owns it until ``lease_expires_at``
    LEASED  --complete--> DONE     audio stored under its content-addressed key
    LEASED  --retry-->    PENDING  a retryable failure; ``next_attempt_at`` is pushed back (backoff)
    LEASED  --expire-->   PENDING  the owner stopped renewing its lease (crashed, partitioned)
    LEASED  --kill-->     DEAD     attempts exhausted or a permanent error; the reason is kept
    DONE, DEAD are terminal. A chunk whose job is no longer active stays where it is: leasing
    filters on the job's state, so cancelled work is never picked up again.

The database applies these with conditional UPDATEs (``WHERE state = <from>``); these tables
are the single source of which ``<from>`` states each event accepts.
"""

from __future__ import annotations

from enum import StrEnum

from voxmesh.errors import Conflict

__all__ = [
    "ACTIVE_JOB_STATES",
    "CHUNK_TRANSITIONS",
    "JOB_TRANSITIONS",
    "TERMINAL_JOB_STATES",
    "ChunkEvent",
    "ChunkState",
    "JobEvent",
    "JobState",
    "chunk_next",
    "chunk_sources",
    "job_next",
    "job_sources",
]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobEvent(StrEnum):
    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    CANCEL = "cancel"


class ChunkState(StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"


class ChunkEvent(StrEnum):
    LEASE = "lease"
    COMPLETE = "complete"
    RETRY = "retry"
    EXPIRE = "expire"
    KILL = "kill"


JOB_TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (JobState.QUEUED, JobEvent.START): JobState.RUNNING,
    (JobState.QUEUED, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.QUEUED, JobEvent.FAIL): JobState.FAILED,
    (JobState.RUNNING, JobEvent.SUCCEED): JobState.SUCCEEDED,
    (JobState.RUNNING, JobEvent.FAIL): JobState.FAILED,
    (JobState.RUNNING, JobEvent.CANCEL): JobState.CANCELLED,
}

CHUNK_TRANSITIONS: dict[tuple[ChunkState, ChunkEvent], ChunkState] = {
    (ChunkState.PENDING, ChunkEvent.LEASE): ChunkState.LEASED,
    (ChunkState.LEASED, ChunkEvent.COMPLETE): ChunkState.DONE,
    (ChunkState.LEASED, ChunkEvent.RETRY): ChunkState.PENDING,
    (ChunkState.LEASED, ChunkEvent.EXPIRE): ChunkState.PENDING,
    (ChunkState.LEASED, ChunkEvent.KILL): ChunkState.DEAD,
}

TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_JOB_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})


def job_next(state: JobState, event: JobEvent) -> JobState:
    """The state after ``event``; :class:`Conflict` (409) if the table has no such edge."""
    try:
        return JOB_TRANSITIONS[(state, event)]
    except KeyError:
        raise Conflict(f"job is {state.value}: cannot {event.value} it") from None


def chunk_next(state: ChunkState, event: ChunkEvent) -> ChunkState:
    try:
        return CHUNK_TRANSITIONS[(state, event)]
    except KeyError:
        raise Conflict(f"chunk is {state.value}: cannot {event.value} it") from None


def job_sources(event: JobEvent) -> frozenset[JobState]:
    """Every state ``event`` may leave from (used in conditional UPDATEs)."""
    return frozenset(src for (src, ev) in JOB_TRANSITIONS if ev is event)


def chunk_sources(event: ChunkEvent) -> frozenset[ChunkState]:
    return frozenset(src for (src, ev) in CHUNK_TRANSITIONS if ev is event)
