"""Run internals with known answers: a command's child memory, the worker's start, the kind of a
cold start (issue 15, item 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voxbench.engines.registry import EngineSpec
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload

# A child that holds 300 MiB with every page touched, then prints one word.
ALLOCATE_300 = (
    f"cmd:{sys.executable} -c 'b = bytearray(300 * 2**20); b[::4096] = bytes(300 * 256); "
    "print(len(b) >> 20)' {text}"
)


@pytest.fixture(scope="module")
def item():  # type: ignore[no-untyped-def]
    return resolve_workload("short").items[0]


def test_cmd_engine_reports_its_childs_peak_memory(item) -> None:  # type: ignore[no-untyped-def]
    spec = EngineSpec(ALLOCATE_300, {"stdout": "text"})
    case = run_case(spec, "alloc", "short", item, Settings(iterations=2, warmup=0)).case
    assert case.errors == [] and case.output_text == "300"
    assert case.peak_rss_scope == "worker" and case.peak_rss_mb < 150  # the worker alone
    # 300 MiB of pages plus the interpreter (~10 MiB); above the worker's peak, so the child's own.
    assert 300 <= case.peak_child_rss_mb < 340, case.peak_child_rss_mb
    assert case.peak_child_rss_mb > case.peak_rss_mb


def test_a_small_childs_figure_is_the_workers_peak_at_its_start(item) -> None:  # type: ignore[no-untyped-def]
    """The kernel charges a vfork-ed child with its parent's peak: the documented floor."""
    spec = EngineSpec("cmd:true {text}", {"stdout": "text"})
    case = run_case(spec, "true", "short", item, Settings(iterations=2, warmup=0)).case
    assert case.errors == []
    # `true` itself needs ~1 MiB; what is reported is the worker's own high-water mark.
    assert case.peak_child_rss_mb == pytest.approx(case.peak_rss_mb, abs=5.0)


def test_an_engine_without_children_has_no_child_figure(item) -> None:  # type: ignore[no-untyped-def]
    spec = EngineSpec("voxbench.engines.calibration:SleepEngine", {"call_ms": 1})
    case = run_case(spec, "sleep", "short", item, Settings(iterations=2, warmup=0)).case
    assert case.peak_child_rss_mb is None


PROBE = """
import sys

from voxbench.engines.calibration import SleepEngine


class Probe(SleepEngine):
    def info(self):
        watched = ("typer", "click", "rich", "voxbench.cli", "voxbench.cli.app")
        return {
            **super().info(),
            "cli_modules": [m for m in watched if m in sys.modules],
            "main_file": getattr(sys.modules["__main__"], "__file__", None),
        }
"""


def test_a_worker_started_by_the_console_script_does_not_rerun_it(tmp_path: Path) -> None:
    launcher = Path(sys.executable).parent / "voxbench"
    if not launcher.is_file():
        pytest.skip(f"no console script at {launcher}")
    (tmp_path / "probe_engine.py").write_text(PROBE)
    cmd = [str(launcher), "run", "-e", "probe_engine:Probe", "-a", "call_ms=1", "-w", "short"]
    cmd += ["-n", "1", "--warmup", "0", "--no-audio", "--no-store", "--json", "-"]
    path = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "CI": "1"}
    proc = subprocess.run(
        [*cmd, "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    cases = json.loads(proc.stdout)["cases"]
    assert cases
    for case in cases:
        assert case["errors"] == []
        # multiprocessing's spawn ran the launcher again as __mp_main__: voxbench.cli, its file.
        assert case["engine_info"]["cli_modules"] == []
        assert case["engine_info"]["main_file"] is None
        assert case["cold_start"]["kind"] == "cold" and case["cold_start"]["process_ms"] > 0


KINDS = """
import json
from voxbench.engines.registry import EngineSpec
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload

item = resolve_workload("short").items[0]
spec = EngineSpec("voxbench.engines.calibration:SleepEngine", {"call_ms": 1})
out = []
for mode in ("worker", "worker", "in-process", "in-process", "worker"):
    case = run_case(spec, "sleep", "short", item, Settings(mode=mode, iterations=1, warmup=0)).case
    out.append([mode, case.cold_start.kind, case.cold_start_ms is None])
print(json.dumps(out))
"""


def test_in_process_starts_after_the_first_are_warm_process() -> None:
    # A fresh interpreter, so that no engine has started in it before.
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KINDS)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        ["worker", "cold", False],
        ["worker", "cold", False],
        ["in-process", "cold", False],  # the first engine this process starts
        ["in-process", "warm-process", True],  # its module imported, an engine started before
        ["worker", "cold", False],  # each worker is a fresh process
    ]
