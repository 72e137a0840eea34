"""Export of one run for CI dashboards: Bencher Metric Format and github-action-benchmark."""

from __future__ import annotations

import json

import pytest

from support.result_docs import make_case, make_doc, noise
from voxbench.errors import ConfigError
from voxbench.report.dashboards import bencher, github_action_benchmark, render


@pytest.fixture
def doc():  # type: ignore[no-untyped-def]
    case = make_case(noise(20.0, n=10, seed=1))
    case.items_per_second = 50.0
    return make_doc("run1", case)


def test_bencher_metric_format(doc):
    data = bencher(doc)
    case = doc.cases[0]
    assert list(data) == [case.id]
    lat = data[case.id]["latency"]
    # Bencher's built-in latency measure is in nanoseconds
    assert lat["value"] == pytest.approx(case.latency_ms.median * 1e6)
    assert lat["lower_value"] <= lat["value"] <= lat["upper_value"]
    assert lat["lower_value"] == pytest.approx(case.latency_ms.ci95[0] * 1e6)
    assert data[case.id]["throughput"] == {"value": 50.0}
    assert data[case.id]["rtf"]["value"] == case.rtf
    # every measure is {value, lower_value?, upper_value?} with numbers (the BMF JSON schema)
    for measures in data.values():
        for metric in measures.values():
            assert "value" in metric and set(metric) <= {"value", "lower_value", "upper_value"}
            assert all(isinstance(v, float) for v in metric.values())


def test_github_action_benchmark_custom_smaller_is_better(doc):
    entries = github_action_benchmark(doc)
    names = [e["name"] for e in entries]
    case = doc.cases[0]
    assert names == [f"{case.id} latency", f"{case.id} rtf", f"{case.id} peak_rss"]
    lat = entries[0]
    assert lat["unit"] == "ms" and lat["value"] == case.latency_ms.median
    half = (case.latency_ms.ci95[1] - case.latency_ms.ci95[0]) / 2
    assert lat["range"] == f"± {half:.4g}" and "median of 10 calls" in lat["extra"]
    for e in entries:
        assert {"name", "unit", "value"} <= set(e) and isinstance(e["value"], float)


def test_render_and_errors(doc):
    assert json.loads(render(doc, "bencher")) == bencher(doc)
    with pytest.raises(ConfigError, match="unknown export format 'csv'"):
        render(doc, "csv")
    with pytest.raises(ConfigError, match="no measured figures"):
        render(make_doc("empty"), "bencher")
