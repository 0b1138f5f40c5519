from __future__ import annotations

import itertools

import pytest

from voxmesh.errors import Conflict
from voxmesh.jobs.lifecycle import (
    CHUNK_TRANSITIONS,
    JOB_TRANSITIONS,
    TERMINAL_JOB_STATES,
    ChunkEvent,
    ChunkState,
    JobEvent,
    JobState,
    chunk_next,
    chunk_sources,
    job_next,
    job_sources,
)

EXPECTED_JOB = {
    (JobState.QUEUED, JobEvent.START): JobState.RUNNING,
    (JobState.QUEUED, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.QUEUED, JobEvent.FAIL): JobState.FAILED,
    (JobState.RUNNING, JobEvent.SUCCEED): JobState.SUCCEEDED,
    (JobState.RUNNING, JobEvent.FAIL): JobState.FAILED,
    (JobState.RUNNING, JobEvent.CANCEL): JobState.CANCELLED,
}
EXPECTED_CHUNK = {
    (ChunkState.PENDING, ChunkEvent.LEASE): ChunkState.LEASED,
    (ChunkState.LEASED, ChunkEvent.COMPLETE): ChunkState.DONE,
    (ChunkState.LEASED, ChunkEvent.RETRY): ChunkState.PENDING,
    (ChunkState.LEASED, ChunkEvent.EXPIRE): ChunkState.PENDING,
    (ChunkState.LEASED, ChunkEvent.KILL): ChunkState.DEAD,
}


def test_every_job_transition() -> None:
    for state, event in itertools.product(JobState, JobEvent):
        if (state, event) in EXPECTED_JOB:
            assert job_next(state, event) is EXPECTED_JOB[(state, event)]
        else:
            with pytest.raises(Conflict):
                job_next(state, event)
    assert dict(JOB_TRANSITIONS) == EXPECTED_JOB


def test_every_chunk_transition() -> None:
    for state, event in itertools.product(ChunkState, ChunkEvent):
        if (state, event) in EXPECTED_CHUNK:
            assert chunk_next(state, event) is EXPECTED_CHUNK[(state, event)]
        else:
            with pytest.raises(Conflict):
                chunk_next(state, event)
    assert dict(CHUNK_TRANSITIONS) == EXPECTED_CHUNK


def test_terminal_states_have_no_exit() -> None:
    for state in TERMINAL_JOB_STATES:
        assert not any(src is state for src, _ in JOB_TRANSITIONS)
    for state in (ChunkState.DONE, ChunkState.DEAD):
        assert not any(src is state for src, _ in CHUNK_TRANSITIONS)


def test_sources() -> None:
    assert job_sources(JobEvent.CANCEL) == {JobState.QUEUED, JobState.RUNNING}
    assert chunk_sources(ChunkEvent.LEASE) == {ChunkState.PENDING}
    assert chunk_sources(ChunkEvent.COMPLETE) == {ChunkState.LEASED}
