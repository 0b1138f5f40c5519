from __future__ import annotations

import pytest

from voxmesh.gateway.resilience.classify import ErrorKind, Outcome, classify


@pytest.mark.parametrize(
    ("status", "error", "idempotent", "expected"),
    [
        (200, None, True, Outcome.SUCCESS),
        (404, None, True, Outcome.SUCCESS),
        (429, None, False, Outcome.SUCCESS),
        (500, None, True, Outcome.RETRYABLE),
        (500, None, False, Outcome.FAILURE),
        (502, None, True, Outcome.RETRYABLE),
        (503, None, False, Outcome.RETRYABLE),
        (504, None, False, Outcome.FAILURE),
        (501, None, True, Outcome.FAILURE),
        (None, ErrorKind.CONNECT, False, Outcome.RETRYABLE),
        (None, ErrorKind.TIMEOUT, True, Outcome.RETRYABLE),
        (None, ErrorKind.TIMEOUT, False, Outcome.FAILURE),
        (None, ErrorKind.RESET, False, Outcome.FAILURE),
    ],
)
def test_table(status: int | None, error: ErrorKind | None, idempotent: bool, expected: Outcome) -> None:
    assert classify(status=status, error=error, idempotent=idempotent) is expected


def test_configured_statuses_and_bad_calls() -> None:
    assert classify(status=500, retry_statuses={502}) is Outcome.FAILURE
    assert classify(status=429, retry_statuses={429}) is Outcome.SUCCESS  # < 500 is never an endpoint fault
    with pytest.raises(ValueError):
        classify()
    with pytest.raises(ValueError):
        classify(status=500, error=ErrorKind.CONNECT)
