"""Shared fixtures. Calibration engines (voxbench.engines.calibration) sleep known times: they
check the harness, they do not stand in for a speech engine."""

from __future__ import annotations

from pathlib import Path

import pytest

CAL = "voxbench.engines.calibration"
pytest_plugins = ["support.speech_fixtures"]


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"
