"""Fixtures shared by the tests that talk to a speech endpoint (the HTTP engine and serve)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voxbench.engines.espeak import EspeakEngine
from voxbench.workloads import WorkloadItem, resolve_workload


@pytest.fixture(scope="module")
def espeak() -> Iterator[EspeakEngine]:
    """espeak in this process, to compare an endpoint's audio with."""
    engine = EspeakEngine()
    engine.load()
    engine.synthesize("warm up")  # espeak's first utterance in a process comes out ~3% shorter
    yield engine
    engine.close()


@pytest.fixture
def no_default_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key in the developer's environment must not change what these tests send."""
    for env in ("VOXBENCH_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(env, raising=False)


def item(workload: str) -> WorkloadItem:
    return resolve_workload(workload).items[0]
