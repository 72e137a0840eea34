"""Shared fixtures. Calibration engines (voxbench.engines.calibration) sleep known times: they
check the harness, they do not stand in for a speech engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CAL = "voxbench.engines.calibration"
pytest_plugins = ["support.speech_fixtures", "support.store_fixtures", "support.browser"]


@pytest.fixture(scope="session", autouse=True)
def _private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every run the tests make is recorded in a store of their own, never the user's
    (~/.local/share/voxbench); subprocesses inherit it through the environment."""
    path = tmp_path_factory.mktemp("store") / "results.sqlite"
    old = os.environ.get("VOXBENCH_STORE")
    os.environ["VOXBENCH_STORE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("VOXBENCH_STORE", None)
    else:
        os.environ["VOXBENCH_STORE"] = old


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"
