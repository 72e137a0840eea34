"""compare: the ratio-of-medians interval, the verdict rule, case matching, the outputs."""

from __future__ import annotations

import json
import math

import pytest

from support.result_docs import make_case, make_doc, noise
from voxbench.analysis.compare import (
    RunNoise,
    compare,
    markdown,
    noise_from_store,
    parse_threshold,
    ratio_ci,
    rich_table,
    run_noise,
    to_json,
)
from voxbench.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "value"), [("5%", 0.05), ("5", 0.05), ("0.05", 0.05), ("12.5%", 0.125), ("0", 0.0)]
)
def test_parse_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "-3%", "100%"])
def test_parse_threshold_rejects(text):
    with pytest.raises(ConfigError, match="--threshold"):
        parse_threshold(text)


def test_ratio_ci_covers_the_true_ratio_and_is_repeatable():
    base, cand = noise(20.0, seed=1), noise(22.0, seed=2)
    ratio, lo, hi = ratio_ci(base, cand)
    assert lo < 1.1 < hi and lo < ratio < hi and hi - lo < 0.03
    assert ratio_ci(base, cand) == (ratio, lo, hi)  # seeded
    assert ratio_ci([5.0, 5.0], [6.0, 6.0]) == (1.2, 1.2, 1.2)  # no spread: a point


@pytest.mark.parametrize(
    ("scale", "verdict"),
    [(1.10, "regressed"), (0.90, "improved"), (1.0, "unchanged"), (1.02, "unchanged")],
)
def test_verdict_follows_the_interval_against_the_threshold(scale, verdict):
    base = make_doc("b", make_case(noise(20.0, seed=3)))
    cand = make_doc("c", make_case(noise(20.0 * scale, seed=4)))
    result = compare(base, cand, threshold=0.05)
    [case] = result.cases
    lat = case.metrics[0]
    assert (lat.metric, lat.verdict) == ("latency_ms", verdict)
    assert lat.ci_low <= lat.change <= lat.ci_high
    assert lat.change == pytest.approx(scale - 1, abs=0.01)
    assert result.regressed is (verdict == "regressed")
    assert 0 <= lat.p_value <= 1


def test_a_change_beyond_the_threshold_but_inside_the_noise_is_not_a_regression():
    """Twice the threshold in the point estimate, but so noisy the interval reaches back below
    it: unchanged, flagged noisy, exit status stays 0."""
    base = make_doc("b", make_case(noise(20.0, n=6, sd=0.25, seed=5)))
    cand = make_doc("c", make_case(noise(22.0, n=6, sd=0.25, seed=6)))
    lat = compare(base, cand).cases[0].metrics[0]
    assert lat.verdict == "unchanged" and lat.noisy
    assert lat.ci_low < 0.05 < lat.ci_high


def test_memory_is_a_plain_delta_and_errors_regress():
    base = make_doc("b", make_case(noise(20.0, seed=7)))
    cand_case = make_case(noise(20.0, seed=8), errors=2)
    cand_case.peak_rss_mb = 150.0
    result = compare(base, make_doc("c", cand_case))
    by_metric = {m.metric: m for m in result.cases[0].metrics}
    assert by_metric["peak_rss_mb"].delta == 50.0 and by_metric["peak_rss_mb"].verdict == "info"
    assert by_metric["errors"].verdict == "regressed" and result.regressed


def test_one_sided_cases_are_listed_and_params_can_be_ignored():
    base = make_doc(
        "b", make_case(noise(20.0), input_id="a", speed=1), make_case([1.0], input_id="x")
    )
    cand = make_doc(
        "c", make_case(noise(20.0), input_id="a", speed=2), make_case([1.0], input_id="y")
    )
    with pytest.raises(ConfigError, match="no case in common"):
        compare(base, cand)
    result = compare(base, cand, ignore_params=frozenset({"speed"}))
    assert [c.key for c in result.cases] == ["eng/w/a/cpu"]
    assert result.only_base == ["eng/w/x/cpu"] and result.only_candidate == ["eng/w/y/cpu"]
    text = markdown(result)
    assert "**Only in base** (1)" in text and "`eng/w/y/cpu`" in text


def test_single_samples_fall_back_to_the_point_estimate():
    result = compare(make_doc("b", make_case([10.0])), make_doc("c", make_case([12.0])))
    lat = result.cases[0].metrics[0]
    assert lat.ci_low is None and lat.verdict == "regressed" and lat.change == pytest.approx(0.2)


def test_outputs_agree():
    base = make_doc("b", make_case(noise(20.0, seed=9)))
    cand = make_doc("c", make_case(noise(23.0, seed=10)))
    result = compare(base, cand)
    data = json.loads(to_json(result))
    assert data["regressed"] is True and data["counts"]["regressed"] == 1
    assert data["cases"][0]["verdict"] == "regressed"
    md = markdown(result)
    assert md.splitlines()[0] == "### voxbench compare"
    assert "❌ **1 regressed**" in md and "| `eng/w/a/cpu` | latency_ms |" in md
    lat = result.cases[0].metrics[0]
    assert lat.change == pytest.approx(0.15, abs=0.01)
    assert (
        f"| {lat.change * 100:+.1f}% | {lat.ci_low * 100:+.1f}% … {lat.ci_high * 100:+.1f}% |" in md
    )
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(rich_table(result))
    assert "regressed" in console.export_text()


def test_unknown_metric_is_an_error():
    doc = make_doc("b", make_case(noise(20.0)))
    with pytest.raises(ConfigError, match="unknown metric 'speed'"):
        compare(doc, doc, metrics=("speed",))


def test_between_run_noise_widens_the_interval():
    base = make_doc("b", make_case(noise(20.0, seed=11)))
    cand = make_doc("c", make_case(noise(22.0, seed=12)))
    key = (base.cases[0].id, "latency_ms")
    lat_only = ("latency_ms",)
    assert compare(base, cand, metrics=lat_only).regressed
    quiet = compare(base, cand, metrics=lat_only, noise={key: RunNoise(0.005, 10)})
    quiet = quiet.cases[0].metrics[0]
    assert quiet.verdict == "regressed" and quiet.run_noise == 0.005 and quiet.run_noise_runs == 10
    busy = compare(base, cand, metrics=lat_only, noise={key: RunNoise(0.10, 10)})
    lat = busy.cases[0].metrics[0]
    assert not busy.regressed and lat.verdict == "unchanged" and lat.noisy
    assert lat.ci_low < 0 < 0.1 < lat.ci_high  # ±1.96·√2·10% on the log scale, and more
    assert "between-run noise estimated from 10–10 stored runs" in markdown(busy)


def test_run_noise_estimate():
    assert run_noise([20.0, 21.0]) is None  # too few runs
    assert run_noise([20.0, 20.0, 20.0]) == RunNoise(0.0, 3)
    found = run_noise([10.0, 20.0, 40.0])
    assert found is not None and found.sigma == pytest.approx(math.log(2))


def test_noise_from_the_store(tmp_path):
    from voxbench.results.store import open_store

    medians = [20.0, 22.0, 18.0, 21.0, 19.0]
    docs = [
        make_doc(f"r{i}", make_case([m, m]), created_at=f"2026-01-0{i + 1}T00:00:00+00:00")
        for i, m in enumerate(medians)
    ]
    cand = make_doc("cand", make_case([40.0, 40.0]), created_at="2026-01-09T00:00:00+00:00")
    with open_store(str(tmp_path / "s.sqlite")) as store:
        for d in [*docs, cand]:
            store.add(d)
        found = noise_from_store(store, docs[-1], {"cand"}, ("latency_ms", "peak_rss_mb"))
    assert list(found) == [(docs[0].cases[0].id, "latency_ms")]
    assert found[(docs[0].cases[0].id, "latency_ms")] == run_noise(medians)
