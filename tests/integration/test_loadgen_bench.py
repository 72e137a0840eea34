"""``benchmarks/loadgen.py --quick`` end to end: every tool measured, the figures saved as JSON.

The load generator's capacity goals are judged by the full run (``make bench``); this checks only
that the benchmark runs here and reports what it must. locust comes with the ``bench`` extra,
which ``make test`` does not install: without it the benchmark runs with ``--skip-locust`` and
the locust test is skipped, saying so.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "loadgen.py"
HAS_LOCUST = importlib.util.find_spec("locust") is not None

pytestmark = pytest.mark.slow


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of the benchmark, shared by the tests below."""
    missing = [tool for tool in ("nginx", "wrk") if _tool(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (scripts/setup-system.sh adds them)")
    out = tmp_path_factory.mktemp("loadgen") / "figures.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--json", str(out)]
    if not HAS_LOCUST:
        cmd.append("--skip-locust")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "goal: voxbench sustains" in proc.stdout
    return dict(json.loads(out.read_text()))


def test_voxbench_and_wrk_are_measured(figures: dict[str, Any]) -> None:
    vox = figures["voxbench"]
    assert vox["steps"] and vox["sustained_rps"] > 0
    assert vox["lag_p99_ms"] is not None and vox["lag_p99_ms"] < 5
    assert figures["wrk"]["achieved_rate"] > 0
    assert figures["ratios"]["voxbench_over_wrk"] is not None
    goals = {g["goal"]: g["verdict"] for g in figures["goals"]}
    assert all(v in ("met", "MISSED", "inconclusive", "not measured") for v in goals.values())


def test_streams_are_held_and_timed(figures: dict[str, Any]) -> None:
    for key in ("streams", "streams_closed"):
        st = figures[key]
        assert st["requests"] > 0 and st["gaps"] > 0
        assert st["in_flight"]["peak"] > 0
        assert st["gap_error_ms"]["p50"] is not None
        assert st["server_late_ms"]["writes"] > 0


def test_locust_is_measured(figures: dict[str, Any]) -> None:
    if not HAS_LOCUST:
        assert "skipped" in figures["locust"]
        pytest.skip("locust is not installed (pip install -e '.[bench]'); voxbench and wrk ran")
    loc = figures["locust"]
    assert loc["steps"] and loc["sustained_rps"] > 0
    assert loc["closed_loop"]["achieved_rate"] > 0
    assert figures["ratios"]["voxbench_over_locust"] is not None
