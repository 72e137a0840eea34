"""history: change-point detection, the sparkline, the plot, and the series read from a store."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from support.result_docs import make_case, make_doc, noise
from voxbench.analysis.history import build_history, detect_changes, rich_tables, sparkline
from voxbench.errors import ConfigError
from voxbench.results.store import open_store


def series(*levels: tuple[float, int], sd: float = 0.01, seed: int = 0) -> list[float]:
    """Concatenated noisy levels: (value, runs) pairs, relative noise ``sd``."""
    rng = np.random.default_rng(seed)
    return [v * (1 + rng.normal(0, sd)) for v, n in levels for _ in range(n)]


def test_no_change_points_in_noise():
    """Noise alone, 100 series of 40 runs at 1% noise: never a change point."""
    found = [detect_changes(series((20.0, 40), seed=s)) for s in range(100)]
    assert sum(bool(f) for f in found) == 0


@pytest.mark.parametrize("seed", range(5))
def test_a_ten_percent_step_is_found_where_it_is(seed):
    cuts = detect_changes(series((20.0, 15), (22.0, 15), seed=seed))
    assert len(cuts) == 1 and abs(cuts[0] - 15) <= 1


def test_two_steps_and_the_minimum_shift():
    values = series((20.0, 10), (24.0, 10), (20.5, 10), seed=3)
    assert detect_changes(values) == [10, 20]
    small = series((20.0, 15), (20.6, 15), sd=0.001, seed=4)  # +3%: real but below 5%
    assert detect_changes(small) == []  # the default minimum shift is 5%
    assert detect_changes(small, min_shift=0.02) == [15]


def test_one_outlier_run_is_not_a_step():
    values = [20.0] * 10 + [40.0] + [20.0] * 10
    assert detect_changes(values) == []
    assert detect_changes([20.0] * 10 + [22.0]) == []  # one new run: not yet confirmed
    assert detect_changes([20.0] * 10 + [22.0, 22.1]) == [10]


def test_sparkline():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▁▁▁"
    assert sparkline([1, 1, 8, 8], {2}) == "▁▁|██"
    assert sparkline([]) == ""


@pytest.fixture
def stored_history(tmp_path):
    """12 runs of one case over 12 days with a +10% step at the 7th (new commit)."""
    url = str(tmp_path / "s.sqlite")
    with open_store(url) as store:
        for i, center in enumerate([20.0] * 6 + [22.0] * 6):
            doc = make_doc(
                f"run{i:02d}",
                make_case(noise(center, n=10, sd=0.005, seed=i)),
                created_at=f"2026-01-{i + 1:02d}T00:00:00+00:00",
                git_commit=f"{i:02d}" + "c" * 38,
            )
            store.add(doc)
    return url


def test_history_from_the_store_marks_the_step(stored_history):
    with open_store(stored_history) as store:
        hist = build_history(store, "eng")
    [case] = hist.cases
    assert case.case_id == "eng/w/a/cpu" and len(case.points) == 12
    assert [p["run_id"] for p in case.points] == [f"run{i:02d}" for i in range(12)]
    [cp] = case.change_points
    assert cp["run_id"] == "run06" and cp["git_commit"].startswith("06")
    assert cp["change"] == pytest.approx(0.10, abs=0.02)
    from rich.console import Console

    console = Console(record=True, width=200)
    for table in rich_tables(hist, last=5):
        console.print(table)
    out = console.export_text()
    assert "run11" in out and "run06" not in out  # the last 5 rows only
    assert "|" in out  # the sparkline marks the step
    pytest.importorskip("matplotlib")
    from voxbench.report.plots import history_plot

    text = history_plot(hist)
    assert text is not None
    root = ET.fromstring(text)  # well-formed
    ids = [el.get("id", "") for el in root.iter()]
    [series] = [el for el in root.iter() if el.get("id", "").endswith("-series-0")]
    assert len([el for el in series.iter() if el.tag.endswith("use")]) == 12  # a dot per run
    assert sum(i.endswith("-change-0-0") for i in ids) == 1  # its one change point
    assert "+10" in text and "regressed" in text  # latency up: a regression


def test_history_errors(stored_history):
    with open_store(stored_history) as store:
        with pytest.raises(ConfigError, match="no latency_ms history for engine 'other'"):
            build_history(store, "other")
        with pytest.raises(ConfigError, match="unknown metric"):
            build_history(store, "eng", metric="speed")


def test_machines_and_modes_are_separate_series_unless_asked(tmp_path):
    """Runs of one case alternating between a 20 ms and a 30 ms machine: two series, neither with
    a change point (mixed, the machines read as steps); ``all_machines`` mixes them on request.
    A worker-mode run of the same case on the same machine is a series of its own, too."""
    from typer.testing import CliRunner

    from voxbench.cli.app import app

    url = str(tmp_path / "s.sqlite")
    with open_store(url) as store:
        for i in range(12):
            fast = i % 4 < 2  # two runs on each machine in turn: 20, 20, 30, 30, 20, 20, ...
            case = make_case(noise(20.0 if fast else 30.0, n=10, sd=0.005, seed=i))
            store.add(
                make_doc(
                    f"run{i:02d}",
                    case,
                    created_at=f"2026-01-{i + 1:02d}T00:00:00+00:00",
                    machine_id="fast-box" if fast else "slow-box",
                )
            )
        worker = make_case(noise(25.0, n=10, sd=0.005, seed=99)).model_copy(
            update={"mode": "worker"}
        )
        store.add(
            make_doc(
                "worker", worker, created_at="2026-01-20T00:00:00+00:00", machine_id="fast-box"
            )
        )
        hist = build_history(store, "eng")
        mixed = build_history(store, "eng", all_machines=True, all_modes=True)
    series = {(c.machine_id, c.mode): c for c in hist.cases}
    assert set(series) == {
        ("fast-box", "in-process"),
        ("slow-box", "in-process"),
        ("fast-box", "worker"),
    }
    assert len(series["fast-box", "in-process"].points) == 6
    assert {p["machine_id"] for p in series["slow-box", "in-process"].points} == {"slow-box"}
    assert all(not c.change_points for c in hist.cases)
    [one] = mixed.cases
    assert len(one.points) == 13 and one.machine_id is None and one.change_points
    result = CliRunner().invoke(app, ["history", "-e", "eng", "--store", url, "--json", "-"])
    assert result.exit_code == 0, result.output
    import json

    assert len(json.loads(result.stdout)["cases"]) == 3
    result = CliRunner().invoke(
        app, ["history", "-e", "eng", "--store", url, "--all-machines", "--json", "-"]
    )
    assert [c["mode"] for c in json.loads(result.stdout)["cases"]] == ["in-process", "worker"]
