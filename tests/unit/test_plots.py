"""report/plots: every plot is well-formed SVG with the marks its data calls for, None without
data, hostile text escaped, small with many raw samples, and no matplotlib state left behind."""

from __future__ import annotations

import importlib
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from support.result_docs import make_case, make_doc, noise
from voxbench.errors import ConfigError
from voxbench.results import Summary
from voxbench.results.document import (
    EngineRef,
    LoadLevel,
    LoadResult,
    Percentiles,
    QualityScore,
    RunConfig,
    StageSummary,
)
from voxbench.results.pipeline_doc import PipelineCase
from voxbench.results.stats import summarize

pytest.importorskip("matplotlib")

from voxbench.report import plots

HOSTILE = "<script>alert(1)</script>"
LIMIT = 150_000  # bytes an inline plot may take


def parse(svg: str | None) -> ET.Element:
    """The SVG, checked: present, well-formed, an <svg> root, no markup smuggled in by data."""
    assert svg is not None
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert "<script" not in svg.lower() and "onerror" not in svg
    root = ET.fromstring(svg)
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))  # no id twice: references (clip paths, markers) resolve
    return root


def marks(root: ET.Element, kind: str) -> list[str]:
    """The ids of the data marks of one kind (plots name them ``<prefix>-<kind>...``)."""
    ids = [el.get("id", "") for el in root.iter()]
    return [i for i in ids if re.fullmatch(rf"vb[0-9a-f]{{8}}-{re.escape(kind)}.*", i)]


def texts(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter() if el.tag.endswith("text")]


def summary(values: list[float]) -> Summary:
    return Summary(**summarize(values))  # type: ignore[arg-type]


def big_case(n: int = 20_000, *, case_id: str = "eng/w/a/cpu", seed: int = 0):  # type: ignore[no-untyped-def]
    """A case with ``n`` raw latencies (two modes: 20 and 30 ms) and as many ttfa samples."""
    rng = np.random.default_rng(seed)
    lat = list(np.concatenate([rng.normal(20, 1, n // 2), rng.normal(30, 1, n - n // 2)]))
    case = make_case([float(x) for x in lat])
    case.id = case_id
    case.samples.ttfa_ms = [float(x) for x in rng.normal(5, 0.5, n)]
    return case


def test_latency_distribution_draws_both_series_and_stays_small():
    case = big_case(case_id=HOSTILE)
    svg = plots.latency_distribution(case)
    root = parse(svg)
    assert len(svg) < LIMIT
    assert len(marks(root, "hist-latency")) == 1 and len(marks(root, "hist-ttfa")) == 1
    assert len(marks(root, "ecdf-")) == 2
    assert HOSTILE in texts(root)  # shown literally: matplotlib escaped it in the file
    assert "&lt;script&gt;" in svg
    assert "latency (n=20000)" in texts(root)
    latency_only = make_case(noise(20.0))
    assert len(marks(parse(plots.latency_distribution(latency_only)), "ecdf-")) == 1
    assert plots.latency_distribution(make_case([])) is None


def test_latency_overview_one_box_per_case():
    cases = [big_case(case_id=f"eng/w/{i}/cpu", seed=i) for i in range(3)]
    cases.append(make_case([]))  # no samples: no box
    cases[1].id = HOSTILE
    svg = plots.latency_overview(make_doc("r", *cases))
    root = parse(svg)
    assert len(svg) < LIMIT
    assert len(marks(root, "box-")) == 3
    labels = texts(root)
    assert "eng/w/0/cpu" in labels and HOSTILE in labels and "eng/w/2/cpu" in labels
    assert plots.latency_overview(make_doc("r", make_case([]))) is None


def test_rtf_vs_length_one_series_per_engine():
    cases = []
    for engine, base in (("fast", 0.1), ("slow", 0.5)):
        for chars in (10, 100, 1000):
            c = make_case(noise(20.0), input_id=f"{engine}{chars}")
            c.engine, c.input_chars, c.rtf = engine, chars, base + 10 / chars
            cases.append(c)
    root = parse(plots.rtf_vs_length(make_doc("r", *cases)))
    assert len(marks(root, "series-")) == 2
    assert {"fast", "slow"} <= set(texts(root))
    assert "rtf = wall / audio (lower is better)" in texts(root)
    assert "input chars" in texts(root)
    no_rtf = make_case(noise(20.0))
    no_rtf.rtf = None
    assert plots.rtf_vs_length(make_doc("r", no_rtf)) is None


def test_log_axes_are_labelled_in_plain_numbers():
    """rtf over 100×: a log axis; its ticks read 0.01, 0.1, 1 — not mathtext markup."""
    cases = []
    for n, rtf in enumerate((0.002, 0.02, 0.5)):
        c = make_case(noise(20.0), input_id=f"i{n}")
        c.engine, c.input_chars, c.rtf = "e", 10 * (n + 1), rtf
        cases.append(c)
    labels = texts(parse(plots.rtf_vs_length(make_doc("r", *cases))))
    assert "0.01" in labels and "0.1" in labels
    assert not any("mathdefault" in t or "$" in t for t in labels)


def test_stage_bars_stack_stages_and_the_rest():
    case = make_case([100.0] * 5)
    case.stages = {"encode": StageSummary(median_ms=30.0), "vocode": StageSummary(median_ms=50.0)}
    other = make_case([10.0] * 5, input_id="b")
    other.stages = {"encode": StageSummary(median_ms=10.0)}  # the whole call: no "other"
    root = parse(plots.stage_bars(make_doc("r", case, make_case([1.0]), other)))
    assert len(marks(root, "bar-encode-")) == 2 and len(marks(root, "bar-vocode-")) == 2
    assert len(marks(root, "bar-other-")) == 2  # one of them 0 wide: the second case's
    assert {"encode", "vocode", "other"} <= set(texts(root))
    assert plots.stage_bars(make_doc("r", make_case([1.0]))) is None


def streamed_case(ttfa: list[float], gaps: list[float], audio_s: float):  # type: ignore[no-untyped-def]
    case = make_case([ttfa[i] + sum(gaps) for i in range(len(ttfa))])
    case.streamed, case.output_kind, case.audio_seconds = True, "audio", audio_s
    case.samples.ttfa_ms = ttfa
    case.samples.chunk_gap_ms = gaps * len(ttfa)
    case.chunks = len(gaps) + 1
    return case


def test_stream_timeline_marks_the_stall_of_the_median_iteration():
    """Four 100 ms chunks of the median iteration arrive at 100, 150, 400, 450 ms: playback from
    100 ms reaches the third chunk at 300 ms, 100 ms before it came (one stall), the fourth is
    there in time."""
    case = streamed_case([90.0, 100.0, 300.0], [50.0, 250.0, 50.0], audio_s=0.4)
    root = parse(plots.stream_timeline(case))
    assert len(marks(root, "stall-")) == 1
    assert any("1 stall(s), 100 ms" in t for t in texts(root))
    assert marks(root, "chunks") and marks(root, "playback")
    smooth = streamed_case([100.0], [10.0, 10.0, 10.0], audio_s=0.4)  # faster than real time
    root = parse(plots.stream_timeline(smooth))
    assert not marks(root, "stall-") and any("no stall" in t for t in texts(root))
    assert plots.stream_timeline(make_case(noise(20.0))) is None  # not streamed
    text = streamed_case([100.0], [10.0], audio_s=0.4)
    text.output_kind = "text"
    assert plots.stream_timeline(text) is None


def test_stream_timeline_of_many_chunks_is_small():
    case = streamed_case([50.0] * 4, list(np.full(20_000, 0.5)), audio_s=200.0)
    svg = plots.stream_timeline(case)
    parse(svg)
    assert svg is not None and len(svg) < LIMIT


def sweep_doc():  # type: ignore[no-untyped-def]
    cases = []
    for workload in ("short", "long"):
        for speed in (1, 2, 4):
            c = make_case(noise(20.0), input_id=f"{workload}{speed}", speed=speed)
            c.workload, c.chars_per_second, c.rtf = workload, 100.0 * speed, 0.4 / speed
            c.quality = {
                "wer": QualityScore(
                    metric="wer", family="intelligibility", value=0.01 * speed, target=0.03,
                    target_op="<=", higher_is_better=False,
                )
            }  # fmt: skip
            cases.append(c)
    doc = make_doc("r", *cases)
    doc.config = RunConfig(
        engines=[EngineRef(ref="eng", sweep={"speed": [1, 2, 4]})], workloads=["short", "long"],
        iterations=30, warmup=1, mode="in-process", timeout_s=None,
    )  # fmt: skip
    return doc


def test_sweep_plot_bars_per_setting_and_workload():
    root = parse(plots.sweep_table_plot(sweep_doc()))
    assert len(marks(root, "bar-short-")) == 3 and len(marks(root, "bar-long-")) == 3
    assert {"speed=1", "speed=2", "speed=4"} <= set(texts(root))
    assert plots.sweep_table_plot(make_doc("r", make_case(noise(20.0)))) is None


def test_pareto_front_and_target():
    """Faster settings are worse here (wer 0.01 × speed, rtf 0.4 / speed): every setting of
    each workload is on the front (6 labelled points); a setting as slow as another and worse
    is not."""
    doc = sweep_doc()
    root = parse(plots.pareto(doc))
    front = [t for t in texts(root) if t.startswith("eng speed=")]
    assert len(front) == 6 and "eng speed=4 (long, cpu)" in front
    assert len(marks(root, "settings")) == 1 and marks(root, "front")
    assert "target 0.03" in texts(root)
    worse = doc.cases[0].model_copy(deep=True)  # speed=1's rtf, but the worst wer
    worse.params, worse.quality["wer"].value = {"speed": 8}, 0.5
    doc.cases.append(worse)
    front = [t for t in texts(parse(plots.pareto(doc))) if t.startswith("eng speed=")]
    assert len(front) == 6 and not any("speed=8" in t for t in front)
    assert plots.pareto(make_doc("r", make_case(noise(20.0)))) is None  # no quality target


def level(label: str, rate: float, p50: float, errors: dict[str, int]) -> LoadLevel:
    dist = Percentiles(n=100, p50=p50, p95=p50 * 2, p99=p50 * 3)
    return LoadLevel(label=label, kind="rate", value=rate, achieved_rate=rate * 0.9,
                     latency_ms=dist, ttfa_all_ms=dist, errors=errors)  # fmt: skip


def test_load_curves_and_errors():
    load = LoadResult(
        target=f"http://127.0.0.1:1/{HOSTILE}",
        settings={},
        levels=[
            level("1/s", 1, 10.0, {}),
            level("2/s", 2, 12.0, {"timeout": 1}),
            level("4/s", 4, 90.0, {"timeout": 5, "http 503": 3, HOSTILE: 1}),
        ],
    )
    svg = plots.load_curves(load)
    root = parse(svg)
    assert len(marks(root, "curve-latency_ms-")) == 3  # p50, p95, p99 of the successes
    assert len(marks(root, "curve-ttfa_all_ms-")) == 3  # ttfa over every request
    root = parse(plots.load_errors(load))
    assert len(marks(root, "bar-0-")) == 3 and len(marks(root, "bar-2-")) == 3  # kinds × levels
    assert HOSTILE in texts(root)
    calm = LoadResult(target="t", settings={}, levels=[level("1/s", 1, 10.0, {})])
    assert plots.load_errors(calm) is None
    assert plots.load_curves(LoadResult(target="t", settings={})) is None


def test_pipeline_stages_per_prompt_and_mode():
    cases = []
    for mode in ("sequential", "streaming"):
        c = make_case([900.0] * 3, input_id="hello")
        c.pipeline = PipelineCase(mode=mode, stt="s", llm="l", tts="t",
                                  first_byte_ms=summary([800.0, 810.0, 820.0]))  # fmt: skip
        c.stages = {k: StageSummary(median_ms=v) for k, v in
                    {"stt": 200.0, "llm": 400.0, "tts": 150.0, "handoff": 60.0}.items()}  # fmt: skip
        cases.append(c)
    root = parse(plots.pipeline_stages(make_doc("r", *cases)))
    for key in ("stt", "llm", "tts", "handoff"):
        assert len(marks(root, f"bar-{key}-")) == 2
    assert {"hello · sequential", "hello · streaming", "lost"} <= set(texts(root))
    assert plots.pipeline_stages(make_doc("r", make_case(noise(20.0)))) is None


def test_compare_changes_regressions_first():
    from voxbench.analysis.compare import compare

    base = make_doc("b", make_case(noise(20.0, seed=1), input_id="same"),
                    make_case(noise(20.0, seed=2), input_id="slower"))  # fmt: skip
    cand = make_doc("c", make_case(noise(20.0, seed=3), input_id="same"),
                    make_case(noise(24.0, seed=4), input_id="slower"))  # fmt: skip
    cmp = compare(base, cand, threshold=0.05)
    svg = plots.compare_changes(cmp)
    root = parse(svg)
    assert marks(root, "changes-regressed") and marks(root, "changes-unchanged")
    labels = [t for t in texts(root) if " · latency_ms" in t]
    assert labels[0].startswith("eng/w/slower") and labels[1].startswith("eng/w/same")
    one = compare(make_doc("b", make_case([10.0])), make_doc("c", make_case([10.0])))
    one.cases = []
    assert plots.compare_changes(one) is None


def test_aggregate_bars_machines_side_by_side():
    from voxbench.analysis.aggregate import aggregate

    docs = [
        (Path("a.json"), make_doc("ra", make_case(noise(20.0)), make_case(noise(10.0), input_id="b"), machine_id="box-a")),
        (Path("b.json"), make_doc("rb", make_case(noise(10.0)), make_case(noise(5.0), input_id="b"), machine_id="box-b")),
    ]  # fmt: skip
    agg, _ = aggregate(docs)
    root = parse(plots.aggregate_bars(agg))
    assert len(marks(root, "bar-latency_ms-0-")) == 2 and len(marks(root, "bar-latency_ms-1-")) == 2
    assert any(t.startswith("2.0") and t.endswith("×") for t in texts(root))  # box-b twice as fast
    assert "box-a" in texts(root) and "box-b" in texts(root)


def test_history_plot_marks_change_points_with_their_direction():
    from voxbench.analysis.history import CaseHistory, History

    def pts(values: list[float]) -> list[dict[str, object]]:
        return [
            {"run_id": f"r{i}", "created_at": f"2026-01-{i + 1:02d}T00:00:00", "git_commit": f"{i}" * 40,
             "machine_id": "box", "mode": "worker", "value": v, "ci_low": v * 0.99, "ci_high": v * 1.01, "n": 10}
            for i, v in enumerate(values)
        ]  # fmt: skip

    up = CaseHistory(HOSTILE, "eng", "w", pts([20.0] * 5 + [25.0] * 5))
    up.change_points = [{"index": 5, "change": 0.25}]
    down = CaseHistory("eng/w/b/cpu", "eng", "w", pts([20.0] * 5 + [10.0] * 5))
    down.change_points = [{"index": 5, "change": -0.5}]
    flat = CaseHistory("eng/w/c/cpu", "eng", "w", pts([20.0] * 10))
    svg = plots.history_plot(History("eng", "latency_ms", "ms", 0.05, [up, down, flat]))
    root = parse(svg)
    assert len(marks(root, "series-")) == 3
    assert marks(root, "change-0-0") and marks(root, "change-1-0") and not marks(root, "change-2")
    assert "+25.0% regressed" in texts(root) and "-50.0% improved" in texts(root)
    assert any(t.startswith(HOSTILE) for t in texts(root))
    faster = plots.history_plot(History("eng", "rtfx", "", 0.05, [up]))
    assert "+25.0% improved" in texts(parse(faster))  # rtfx: higher is better
    assert plots.history_plot(History("eng", "latency_ms", "ms", 0.05, [])) is None


def test_ids_are_unique_per_plot_and_output_is_repeatable():
    a = plots.latency_distribution(big_case(2000))
    b = plots.latency_overview(make_doc("r", big_case(2000)))
    ids_a = {el.get("id") for el in parse(a).iter()} - {None}
    ids_b = {el.get("id") for el in parse(b).iter()} - {None}
    assert ids_a and ids_b and not ids_a & ids_b  # two plots inline on one page never collide
    assert plots.latency_distribution(big_case(2000)) == a  # same data, same bytes


def test_no_matplotlib_state_is_left_behind():
    import matplotlib

    keys = ("text.color", "svg.fonttype", "font.size", "axes.facecolor", "text.parse_math")
    before = {k: matplotlib.rcParams[k] for k in keys}
    plots.latency_distribution(big_case(200))
    assert {k: matplotlib.rcParams[k] for k in keys} == before
    assert before["svg.fonttype"] != "none" or before["text.color"] != plots.GREY
    assert "matplotlib.pyplot" not in sys.modules


def test_without_matplotlib_a_plot_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.delitem(sys.modules, "voxbench.report.plots")
    fresh = importlib.import_module("voxbench.report.plots")  # the module imports without it
    with pytest.raises(ConfigError, match=re.escape("pip install 'voxbench[html]'")) as info:
        fresh.latency_distribution(make_case(noise(20.0)))
    assert "\n" not in str(info.value)
    from typer.testing import CliRunner

    from voxbench.cli.app import app

    store, out = tmp_path / "s.sqlite", tmp_path / "h.svg"
    result = CliRunner().invoke(
        app, ["history", "-e", "eng", "--store", str(store), "--svg", str(out)]
    )
    assert isinstance(result.exception, ConfigError), result.output
    assert "pip install 'voxbench[html]'" in str(result.exception)
    assert not store.exists() and not out.exists()  # said before the store was read
