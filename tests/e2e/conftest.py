"""One real stack (``voxmesh up`` as a subprocess, real workers over mTLS) for the e2e tests;
``run_stack`` (``tests.support.stacks.run_up``) starts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.stacks import RunningUp, run_up

E2E_CONFIG = """
settings:
  log_level: INFO
deployments:
  - name: tts-en
    engine: piper
    replicas: {min: 1, max: 2, warm: 0}
    threads: 2
  - name: tts-multi
    engine: kokoro
    replicas: {min: 1, max: 1, warm: 0}
    threads: 2
  - name: mt
    engine: llamacpp
    replicas: {min: 1, max: 1, warm: 0}
    threads: 2
  - name: tone
    engine: tone
    replicas: {min: 2, max: 3, warm: 1}
    threads: 1
aliases:
  tts-1: tts-en
"""


# the names the e2e tests import
RunningStack = RunningUp
run_stack = run_up


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with run_stack(tmp_path_factory.mktemp("stack"), E2E_CONFIG) as running:
        yield running
