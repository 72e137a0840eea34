"""compare: the ratio-of-medians interval, the verdict rule, case matching, the outputs."""

from __future__ import annotations

import json
import math
import statistics

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
    assert found is not None and found.sigma == pytest.approx(1.4826 * math.log(2))  # MAD
    # heavy tails: the standard deviation without the farthest run, when larger than MAD's
    tails = [20.0, 20.0, 20.0, 20.0, 20.0, 26.0, 15.0, 20.0, 30.0]
    logs = [math.log(x) for x in tails if x != 30.0]
    found = run_noise(tails)
    assert found is not None and found.sigma == pytest.approx(statistics.stdev(logs))
    # one regressed run among three does not move a robust spread
    assert run_noise([37.0, 37.0, 41.0]) == RunNoise(0.0, 3)
    # a step the store has seen: only the runs since the change point count
    step = run_noise([20.0, 20.2, 19.9, 20.1, 20.0, 24.0, 24.1, 23.9, 24.0])
    assert step is not None and step.runs == 4 and step.sigma < 0.01


def test_widening_takes_out_the_within_run_part_and_uses_t():
    """The stored spread of run medians already holds each run's sampling noise of its median,
    which the bootstrap interval covers: a spread no larger than that widens nothing, and the
    extra half width uses Student's t on runs - 1 degrees of freedom, not z."""
    from scipy import stats

    from voxbench.analysis.run_noise import widen as _widen

    ratio, lo, hi = 1.0, math.exp(-0.0196), math.exp(0.0196)  # half width 1.96 * 0.01 (log)
    within = 0.01 / math.sqrt(2)  # per run: (h / z)^2 / 2
    assert _widen(ratio, lo, hi, RunNoise(within, 5), 0.95) == pytest.approx((lo, hi))
    sigma = 0.05
    new_lo, new_hi = _widen(ratio, lo, hi, RunNoise(sigma, 4), 0.95)
    extra = stats.t.ppf(0.975, 3) * math.sqrt(2) * math.sqrt(sigma**2 - within**2)
    assert math.log(new_hi) == pytest.approx(math.hypot(0.0196, extra))
    assert math.log(new_lo) == pytest.approx(-math.hypot(0.0196, extra))


def _stored_compare(tmp_path, history: list[float], base_ms: float, cand_ms: float):
    """A SQLite store holding runs with these medians (one a day), then the base and the
    candidate stored after them; ``voxbench compare base cand`` on it: (exit code, JSON)."""
    from typer.testing import CliRunner

    from voxbench.cli.app import app
    from voxbench.results.store import open_store

    url = str(tmp_path / "store.sqlite")
    docs = [
        make_doc(f"h{i:02d}", make_case(noise(m, seed=100 + i)), created_at=f"2026-01-{i + 1:02d}")
        for i, m in enumerate(history)
    ]
    day = len(history) + 1
    base = make_doc("base", make_case(noise(base_ms, seed=1)), created_at=f"2026-01-{day:02d}")
    cand = make_doc("cand", make_case(noise(cand_ms, seed=2)), created_at=f"2026-01-{day + 1:02d}")
    with open_store(url) as store:
        for d in [*docs, base, cand]:
            store.add(d)
    result = CliRunner().invoke(
        app, ["compare", "base", "cand", "--store", url, "--metric", "latency_ms", "--json", "-"]
    )
    return result.exit_code, json.loads(result.stdout)


def test_one_earlier_regressed_run_in_the_store_does_not_hide_the_next_regression(tmp_path):
    """Stored runs at 37, 37 and 41 ms: the one slow run must not widen the interval so far that
    a 37 -> 41 ms (+11%) candidate passes as unchanged (the standard deviation did: exit 0)."""
    code, data = _stored_compare(tmp_path, [37.0, 37.0, 41.0], 37.0, 41.0)
    [lat] = data["cases"][0]["metrics"]
    assert lat["verdict"] == "regressed" and code == 1
    assert lat["run_noise_runs"] == 4  # 37, 37, 41 and the base (the candidate left out)


def test_quiet_stored_runs_keep_a_small_change_unchanged(tmp_path):
    """Ten stored runs at 37 ± 0.3 ms: 37.0 -> 37.2 ms (+0.5%) is unchanged, exit 0."""
    import numpy as np

    history = list(37.0 + np.random.default_rng(7).normal(0, 0.3, 10))
    code, data = _stored_compare(tmp_path, history, 37.0, 37.2)
    [lat] = data["cases"][0]["metrics"]
    assert lat["verdict"] == "unchanged" and code == 0
    assert lat["run_noise_runs"] == 11 and lat["run_noise"] > 0


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


# -- invalid results are never gated on (results/validity.py) ---------------------------------


def _judged(latency: list[float], **kw):  # type: ignore[no-untyped-def]
    from voxbench.results.validity import case_validity

    case = make_case(latency, **kw)
    case.validity = case_validity(case)
    return case


def test_an_invalid_case_is_not_compared_and_exits_3():
    base = make_doc("b", _judged(noise(20.0, n=5, seed=3)))  # 5 samples: invalid
    cand = make_doc("c", _judged(noise(20.0, seed=4)))
    result = compare(base, cand, threshold=0.05)
    assert result.cases == [] and not result.regressed
    [inv] = result.invalid
    assert "5 measured" in inv.text() and "base" in inv.text()
    assert result.exit_status() == 3
    counts = result.counts()
    assert counts["invalid"] == 1 and counts["regressed"] == counts["unchanged"] == 0
    assert "invalid, not compared" in markdown(result)
    data = json.loads(to_json(result))
    assert data["exit_status"] == 3 and data["regressed"] is False


def test_an_invalid_candidate_hides_even_a_big_slowdown():
    base = make_doc("b", _judged(noise(20.0, seed=3)))
    cand = make_doc("c", _judged(noise(40.0, n=5, seed=4)))
    result = compare(base, cand, threshold=0.05)
    assert not result.regressed and result.exit_status() == 3


def test_a_regression_of_valid_cases_still_exits_1():
    base = make_doc("b", _judged(noise(20.0, seed=3)))
    cand = make_doc("c", _judged(noise(22.0, seed=4)))
    result = compare(base, cand, threshold=0.05)
    assert result.invalid == [] and result.regressed and result.exit_status() == 1


def test_a_regression_beside_an_invalid_case_exits_1():
    base = make_doc(
        "b", _judged(noise(20.0, seed=3)), _judged(noise(20.0, n=5, seed=5), input_id="x")
    )
    cand = make_doc(
        "c", _judged(noise(22.0, seed=4)), _judged(noise(20.0, n=5, seed=6), input_id="x")
    )
    result = compare(base, cand, threshold=0.05)
    assert len(result.invalid) == 1 and result.regressed and result.exit_status() == 1


def test_unjudged_cases_are_compared_as_before():
    base = make_doc("b", make_case(noise(20.0, n=5, seed=3)))  # validity None: old document
    cand = make_doc("c", make_case(noise(20.0, n=5, seed=4)))
    result = compare(base, cand, threshold=0.5)
    assert result.invalid == [] and result.exit_status() == 0


def _metric_names(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.metric for c in result.cases for m in c.metrics}


def test_worker_memory_is_never_diffed_against_in_process_memory():
    """peak_rss_mb of a worker (the engine alone) and of --in-process (voxbench's whole process)
    are different figures: not compared, and the case says why."""
    base_case, cand_case = make_case(noise(20.0, seed=1)), make_case(noise(20.0, seed=2))
    base_case.peak_rss_scope, cand_case.peak_rss_scope = "worker", "process"
    cand_case.peak_rss_mb = 900.0
    result = compare(make_doc("b", base_case), make_doc("c", cand_case))
    assert "peak_rss_mb" not in _metric_names(result)
    assert result.cases[0].not_compared == [
        "peak_rss_mb: not compared, worker memory against process memory"
    ]
    assert "worker memory against process memory" in markdown(result)
    cand_case.peak_rss_scope = "worker"  # same scope: a plain delta, as before
    [rss] = [m for c in compare(make_doc("b", base_case), make_doc("c", cand_case)).cases
             for m in c.metrics if m.metric == "peak_rss_mb"]  # fmt: skip
    assert rss.delta == pytest.approx(800.0) and rss.verdict == "info"


def test_gpu_allocator_memory_is_never_diffed_against_nvml_memory():
    """torch's allocator peak on one side, NVML's figure on the other: neither is compared.
    The same figure on both sides is a plain delta."""
    base_case, cand_case = make_case(noise(20.0, seed=1)), make_case(noise(20.0, seed=2))
    base_case.peak_gpu_allocated_mb = 100.0
    cand_case.gpu_nvml_mb = 400.0
    result = compare(make_doc("b", base_case), make_doc("c", cand_case))
    assert not {"peak_gpu_allocated_mb", "gpu_nvml_mb"} & _metric_names(result)
    cand_case.peak_gpu_allocated_mb = 130.0
    result = compare(make_doc("b", base_case), make_doc("c", cand_case))
    [gpu] = [m for c in result.cases for m in c.metrics if m.metric.startswith(("peak_gpu", "gpu"))]
    assert gpu.metric == "peak_gpu_allocated_mb" and gpu.delta == pytest.approx(30.0)


def test_an_old_nvml_document_is_not_diffed_against_an_allocator_figure():
    """A schema-1.3 document's peak_gpu_mb with an NVML scope is NVML memory: against a new
    document's allocator peak it is not compared."""
    from voxbench.results import ResultDocument

    old = make_doc("b", make_case(noise(20.0, seed=1))).model_dump(mode="json")
    for name in ("peak_gpu_allocated_mb", "gpu_nvml_mb", "peak_child_rss_mb"):
        old["cases"][0].pop(name)  # a 1.3 document has none of these
    old["cases"][0].update(peak_gpu_mb=500.0, peak_gpu_scope="nvml process")
    base = ResultDocument.model_validate(old)
    cand_case = make_case(noise(20.0, seed=2))
    cand_case.peak_gpu_allocated_mb = 100.0
    result = compare(base, make_doc("c", cand_case))
    assert base.cases[0].gpu_nvml_mb == 500.0
    assert not {"peak_gpu_allocated_mb", "gpu_nvml_mb"} & _metric_names(result)
