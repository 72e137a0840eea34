"""The metric catalogue and the typed load level: known answers for every reader, the views each
consumer takes of the catalogue, and levels whose JSON is unchanged by being typed."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from voxbench.analysis import aggregate, compare
from voxbench.results import Case, Samples, Summary
from voxbench.results.document import LoadLevel, LoadResult, Percentiles
from voxbench.results.keys import case_id, case_key, keyed_levels, level_key
from voxbench.results.metrics import BY_NAME, CATALOGUE
from voxbench.results.store import METRICS as STORED
from voxbench.results.store import open_store
from voxbench.results.store.schema import (
    CASE_COLUMNS,
    KEY_COLUMNS,
    LEGACY_COLUMNS,
    METRIC_COLUMNS,
)


def summary(median: float, p95: float, p99: float, n: int = 4) -> Summary:
    return Summary(
        n=n, min=median / 2, median=median, mean=median, p90=p95, p95=p95, p99=p99,
        max=p99, stdev=1.0, ci95=(median - 1, median + 1),
    )  # fmt: skip


@pytest.fixture
def case() -> Case:
    return Case(
        id="eng/w/a/voice=x/batch=2/cpu", engine="eng", workload="w", input_id="a",
        input_kind="text", params={"voice": "x"}, batch_size=2, mode="worker", iterations=4,
        warmup=1, latency_ms=summary(20.0, 30.0, 40.0), ttfa_ms=summary(5.0, 6.0, 7.0),
        rtf=0.02, rtfx=50.0, peak_rss_mb=100.0, peak_gpu_allocated_mb=200.0, cold_start_ms=300.0,
        items_per_second=100.0, chars_per_second=500.0, error_count=3,
        samples=Samples(
            latency_ms=[10.0, 20.0, 30.0, 40.0], audio_seconds=[1.0, 1.0, 2.0, 2.0],
            ttfa_ms=[4.0, 5.0, 5.0, 6.0],
        ),
    )  # fmt: skip


# the metrics these known answers are about (a metric added later is checked by its own test)
KNOWN = {
    "latency_ms", "latency_p95_ms", "latency_p99_ms", "rtf", "rtfx", "ttfa_ms", "errors",
    "peak_rss_mb", "peak_gpu_allocated_mb", "cold_start_ms", "items_per_second",
    "chars_per_second", "achieved_rate",
}  # fmt: skip


def known(names: Iterable[str]) -> list[str]:
    """``names`` in their order, less the metrics these tests do not know."""
    return [n for n in names if n in KNOWN]


# what test_store.py stores as a load level: a level as it was written, only some keys
STORE_TEST_LEVEL = {
    "label": "2/s", "kind": "rate", "value": 2.0, "requests": 20, "errors": {"timeout": 1},
    "latency_ms": {"p50": 80.0, "p95": 120.0}, "ttfa_ms": {"p50": 30.0},
    "samples": {"latency_ms": [80.0] * 20},
}  # fmt: skip


def test_case_readers_give_the_known_values(case: Case) -> None:
    values = {m.name: m.of_case(case) for m in CATALOGUE}
    assert {k: v for k, v in values.items() if k in KNOWN} == {
        "latency_ms": 20.0, "latency_p95_ms": 30.0, "latency_p99_ms": 40.0, "rtf": 0.02,
        "rtfx": 50.0, "ttfa_ms": 5.0, "errors": 3, "peak_rss_mb": 100.0,
        "peak_gpu_allocated_mb": 200.0,
        "cold_start_ms": 300.0, "items_per_second": 100.0, "chars_per_second": 500.0,
        "achieved_rate": None,
    }  # fmt: skip
    assert BY_NAME["latency_ms"].ci_of_case(case) == (19.0, 21.0)
    assert BY_NAME["ttfa_ms"].ci_of_case(case) == (4.0, 6.0)
    assert BY_NAME["rtf"].ci_of_case(case) is None
    assert BY_NAME["latency_ms"].samples_of_case(case) == [10.0, 20.0, 30.0, 40.0]
    assert BY_NAME["ttfa_ms"].samples_of_case(case) == [4.0, 5.0, 5.0, 6.0]
    # rtf per iteration: wall seconds / audio seconds
    assert BY_NAME["rtf"].samples_of_case(case) == pytest.approx([0.01, 0.02, 0.015, 0.02])
    assert BY_NAME["peak_rss_mb"].samples_of_case(case) == []


def test_rtf_has_no_samples_unless_every_iteration_made_audio(case: Case) -> None:
    case.samples.audio_seconds = [1.0, 0.0, 1.0, 1.0]
    assert BY_NAME["rtf"].samples_of_case(case) == []
    case.samples.audio_seconds = [1.0]
    assert BY_NAME["rtf"].samples_of_case(case) == []


def test_a_case_without_figures_reads_as_none() -> None:
    bare = Case(
        id="e/w/a/cpu", engine="e", workload="w", input_id="a", input_kind="text",
        mode="worker", iterations=0, warmup=0,
    )  # fmt: skip
    assert [m.name for m in CATALOGUE if m.name in KNOWN and m.of_case(bare) is not None] == [
        "errors"
    ]
    assert BY_NAME["errors"].of_case(bare) == 0
    assert all(m.samples_of_case(bare) == [] and m.ci_of_case(bare) is None for m in CATALOGUE)


def test_level_readers_give_the_known_values() -> None:
    level = LoadLevel.model_validate(
        {**STORE_TEST_LEVEL, "errors": {"timeout": 1, "http_500": 2}, "achieved_rate": 1.5}
    )
    values = {m.name: m.of_level(level) for m in CATALOGUE if m.level and m.name in KNOWN}
    assert values == {
        "latency_ms": 80.0, "latency_p95_ms": 120.0, "latency_p99_ms": None, "rtf": None,
        "ttfa_ms": 30.0, "errors": 3, "achieved_rate": 1.5,
    }  # fmt: skip
    assert BY_NAME["latency_ms"].samples_of_level(level) == [80.0] * 20
    assert BY_NAME["ttfa_ms"].samples_of_level(level) == []
    assert BY_NAME["peak_rss_mb"].of_level(level) is None


def test_names_and_store_columns_are_unique() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names)) == len(BY_NAME)
    assert len(CASE_COLUMNS) == len(set(CASE_COLUMNS))
    assert not set(KEY_COLUMNS) & set(METRIC_COLUMNS)
    for fmt in ("bencher", "github"):
        exports = [getattr(m, fmt) for m in CATALOGUE if getattr(m, fmt)]
        for side in ("name", "level_name"):
            named = [getattr(e, side) for e in exports if getattr(e, side)]
            assert len(named) == len(set(named)), (fmt, side)


def test_store_columns_are_the_schema_of_the_cases_table(tmp_path) -> None:
    """Every stored metric's column exists (a new one needs a migration), and the columns that
    shipped keep their order: CSV and Parquet exports are laid out by it."""
    with open_store(str(tmp_path / "s.sqlite")) as store:
        table = [r[1] for r in store.db.query("PRAGMA table_info(cases)")]
    assert sorted(CASE_COLUMNS + LEGACY_COLUMNS) == sorted(table)
    shipped = [
        "latency_median_ms", "latency_ci_low_ms", "latency_ci_high_ms", "latency_p95_ms", "rtf",
        "rtfx", "ttfa_median_ms", "peak_rss_mb", "cold_start_ms", "items_per_second",
        "chars_per_second",
    ]  # fmt: skip
    assert [c for c in METRIC_COLUMNS if c in shipped] == shipped


def test_each_consumer_takes_its_metrics_from_the_catalogue_in_its_order() -> None:
    order = [m.name for m in CATALOGUE]
    for view in (compare.METRICS, aggregate.METRICS, STORED):
        assert all(view[name] is BY_NAME[name] for name in view)
        assert list(view) == [n for n in order if n in view]
    assert known(compare.DEFAULT_METRICS) == [
        "latency_ms", "rtf", "ttfa_ms", "errors", "peak_rss_mb", "peak_gpu_allocated_mb",
        "cold_start_ms",
    ]  # fmt: skip
    assert known(n for n in compare.METRICS if compare.METRICS[n].gated) == [
        "latency_ms", "rtf", "ttfa_ms", "errors",
    ]  # fmt: skip
    assert known(aggregate.METRICS) == [
        "latency_ms", "rtf", "rtfx", "ttfa_ms", "peak_rss_mb", "peak_gpu_allocated_mb",
        "cold_start_ms", "items_per_second",
    ]  # fmt: skip
    assert known(STORED) == [
        "latency_ms", "latency_p95_ms", "rtf", "rtfx", "ttfa_ms", "peak_rss_mb",
        "peak_gpu_allocated_mb", "cold_start_ms", "items_per_second", "chars_per_second",
    ]  # fmt: skip
    # customSmallerIsBetter takes no metric where higher is better
    assert not [m.name for m in CATALOGUE if m.github and m.higher_is_better]


def test_case_key_is_the_case_id_format(case: Case) -> None:
    assert case_key(case) == case.id == "eng/w/a/voice=x/batch=2/cpu"
    assert case_key(case, frozenset({"voice"})) == "eng/w/a/batch=2/cpu"
    assert case_id("e", "w", "a", {"b": 2, "a": 1}, 1, "cuda:0") == "e/w/a/a=1,b=2/cuda:0"
    assert level_key("short", "2 req/s") == "load/short/2 req/s"


def test_levels_are_keyed_by_the_workload_of_the_run() -> None:
    level = LoadLevel.model_validate(STORE_TEST_LEVEL)
    load = LoadResult(target="http://x", settings={"workload": "long"}, levels=[level])
    assert keyed_levels(load) == [("load/long/2/s", level)]
    assert LoadResult(target="http://x", settings={}).workload == "load"
    assert keyed_levels(None) == []


def test_a_typed_level_writes_the_json_it_was_given() -> None:
    level = LoadLevel.model_validate(STORE_TEST_LEVEL)
    assert level.model_dump(mode="json") == STORE_TEST_LEVEL
    assert json.dumps(level.model_dump(mode="json")) == json.dumps(STORE_TEST_LEVEL)
    assert LoadLevel.model_validate_json(level.model_dump_json()) == level
    # a field assigned later is written, after the others, as evaluate() writes slo, meets_slo
    level.slo, level.meets_slo = {"latency_p95<200ms": True}, True
    assert list(level.model_dump())[-2:] == ["slo", "meets_slo"]


def test_a_level_from_summarize_level_keeps_every_key_and_value() -> None:
    from voxbench.load.client import RequestRecord
    from voxbench.load.metrics import summarize_level
    from voxbench.load.schedule import Level

    recs = [
        RequestRecord(
            due=float(i), sent=i + 0.001, first_byte=i + 0.05, first_audio=i + 0.06,
            done=i + 0.2, status=200, audio_seconds=1.0, arrivals=[(i + 0.06, 0.5), (i + 0.2, 1.0)],
        )
        for i in range(6)
    ]  # fmt: skip
    level = summarize_level(
        Level("rate", 1.0), recs, warmup_s=1.0, wall_s=6.0, buffer_ms=50.0, max_lag_ms=5.0
    )
    written = json.loads(level.model_dump_json())
    assert list(written) == [
        "label", "kind", "value", "requests", "warmup_requests", "ok", "offered_rate",
        "sent_rate", "achieved_rate", "audio_seconds_per_second", "in_flight_mean", "window_s",
        "error_rate", "errors", "error_examples", "latency_ms", "ttfa_ms", "ttfb_ms",
        "latency_all_ms", "ttfa_all_ms", "ttfb_all_ms", "lag_ms", "rtf",
        "saturated", "wall_s", "samples", "stalls", "validity",
    ]  # fmt: skip
    assert list(written["latency_ms"]) == ["n", "mean", "p50", "p90", "p95", "p99", "p99_9", "max"]
    assert list(written["stalls"]) == [
        "buffer_ms", "streams", "streams_with_stalls", "stall_rate", "count", "stall_ms",
        "startup_ms", "stall_threshold_ms", "worst_underrun_ms", "continuity_100ms",
        "continuity_200ms", "startup_bound_ms", "realtime_streams", "realtime_concurrent",
    ]  # fmt: skip
    assert written["latency_ms"]["p50"] == pytest.approx(200.0)
    assert LoadLevel.model_validate(written).model_dump(mode="json") == written


def test_a_level_reads_by_key_like_the_dict_it_was() -> None:
    level = LoadLevel.model_validate(STORE_TEST_LEVEL)
    assert level["latency_ms"]["p95"] == 120.0 and level["errors"] == {"timeout": 1}
    assert level.get("stalls") is None and level.get("ok", 7) == 7
    with pytest.raises(KeyError):
        level["ttfb_ms"]


def test_percentile_by_name() -> None:
    p = Percentiles(p50=1.0, p99_9=3.0)
    assert (p.percentile("50"), p.percentile("99.9"), p.percentile("95")) == (1.0, 3.0, None)
    assert p.percentile("75") is None
