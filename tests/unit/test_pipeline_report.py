"""The report of a pipeline run (report/pipeline.py) from a small document built by hand: the target
table says PASS / FAIL of the values it was given, an echo chain says no language model ran (and
shows no token figures), an invalid case is marked and explained, and a ``|`` in a prompt id
cannot break a table."""

from __future__ import annotations

from support.result_docs import ENV
from voxbench.pipeline.targets import check, parse_targets
from voxbench.report import render_markdown
from voxbench.report.pipeline import ECHO_NOTE
from voxbench.results import Case, ResultDocument, Summary
from voxbench.results.pipeline_doc import ComponentStart, PipelineCase, PipelineResult
from voxbench.results.stats import summarize
from voxbench.results.validity import Validity

STT = [100.0, 120.0, 140.0]  # median 120
FIRST_AUDIO = [800.0, 900.0, 1000.0, 1100.0, 1200.0]  # median 1000, max 1200
TOKENS_PER_S = [40.0, 50.0, 60.0]  # median 50


def _summary(values: list[float]) -> Summary:
    return Summary(**summarize(values))  # type: ignore[arg-type]


def _case(input_id: str, *, echo: bool = False, validity: Validity | None = None) -> Case:
    pipeline = PipelineCase(
        mode="sequential",
        stt="known-stt",
        llm="echo" if echo else "llm:127.0.0.1:8000",
        tts="known-tts",
        llm_is_echo=echo,
        stt_ms=_summary(STT),
        llm_ms=_summary([600.0, 610.0, 620.0]),
        first_byte_ms=_summary([900.0, 910.0, 920.0]),
        tts_first_audio_ms=_summary([150.0, 155.0, 160.0]),
        handoff_ms=_summary([0.5, 0.6, 0.7]),
        shares={"stt": 0.13, "llm": 0.67, "tts": 0.17, "handoff": 0.0},
        bottleneck="llm",
        answer="t0 t1 t2",
        samples={"stt_ms": STT, "first_audio_ms": FIRST_AUDIO, "tokens_per_second": TOKENS_PER_S},
    )
    return Case(
        id=f"chain/spoken/{input_id}/mode=sequential/cpu",
        engine="chain",
        workload="spoken",
        input_id=input_id,
        input_kind="audio",
        params={"mode": "sequential"},
        mode="in-process",
        iterations=3,
        warmup=0,
        latency_ms=_summary([1000.0, 1010.0, 1020.0]),
        ttfa_ms=_summary(FIRST_AUDIO),
        ttft_ms=_summary([200.0, 210.0, 220.0]),
        tokens_per_second=123456.0 if echo else 50.0,
        output_kind="audio",
        validity=validity,
        pipeline=pipeline,
    )


def _doc(*cases: Case, targets: list[str], echo: bool = False) -> ResultDocument:
    parsed = parse_targets(targets)
    pooled: dict[str, list[float]] = {}
    for c in cases:
        assert c.pipeline is not None
        for key, values in c.pipeline.samples.items():
            pooled.setdefault(key, []).extend(values)
    return ResultDocument(
        scenario="pipeline",
        run_id="run-1",
        created_at="2026-01-01T00:00:00+00:00",
        voxbench_version="0",
        environment=ENV,
        cases=list(cases),
        pipeline=PipelineResult(
            settings={"stt": "known-stt", "llm": "echo" if echo else "http://127.0.0.1:8000/v1",
                      "tts": "known-tts", "workload": "spoken", "modes": ["sequential"],
                      "iterations": 3, "warmup": 0, "echo": echo},
            components=[ComponentStart(role="stt", engine="known-stt", import_ms=5.0,
                                       load_ms=10.0, total_ms=15.0)],
            targets=check(parsed, pooled, mode="sequential", echo=echo),
        ),
    )  # fmt: skip


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(md: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The header and body rows of the table under ``## title``, cells split on unescaped
    ``|`` (an escaped one stays in its cell)."""
    import re

    lines = [ln for ln in _section(md, title).splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    return cells[0], cells[2:]


def _rows(md: str, title: str) -> list[list[str]]:
    return _table(md, title)[1]


def test_target_rows_pass_and_fail_on_the_statistic_asked() -> None:
    doc = _doc(
        _case("p1"),
        targets=["stt_ms<=110", "first_audio_ms<=1000", "first_audio_ms:max<=1100",
                 "tokens_per_second>=45", "stall_ms<=10"],
    )  # fmt: skip
    md = render_markdown(doc)
    assert md.startswith("# voxbench pipeline run-1\n")
    rows = {r[1]: r for r in _rows(md, "Pipeline targets")}
    assert rows["STT latency after end of speech"] == [
        "sequential", "STT latency after end of speech", "<= 110 ms", "120 ms", "FAIL",
    ]  # fmt: skip
    assert rows["end of speech → first audible answer"][3:] == ["1,000 ms", "PASS"]  # <= holds
    assert rows["end of speech → first audible answer (max)"][2:] == [
        "<= 1100 ms", "1,200 ms", "FAIL",
    ]  # fmt: skip
    assert rows["LLM tokens/s"][2:] == [">= 45 tok/s", "50.0 tok/s", "PASS"]
    # a figure the run never measured is neither PASS nor FAIL
    assert rows["playback stalls of the answer"][3:] == ["–", "not measured"]
    assert ECHO_NOTE not in md


def test_an_echo_chain_says_no_language_model_ran() -> None:
    doc = _doc(_case("p1", echo=True), targets=["tokens_per_second>=60", "stt_ms<=500"], echo=True)
    md = render_markdown(doc)
    assert ECHO_NOTE in _section(md, "Pipeline targets")
    rows = {r[1]: r for r in _rows(md, "Pipeline targets")}
    assert rows["LLM tokens/s"][3:] == ["–", "echo: no language model ran"]
    assert rows["STT latency after end of speech"][3:] == ["120 ms", "PASS"]
    assert ECHO_NOTE in _section(md, "Pipeline")
    headers, (row,) = _table(md, "Pipeline")
    cells = dict(zip(headers, row, strict=True))
    # echo's microsecond "tokens" are no model's: no TTFT, no rate (the case holds 123456)
    assert cells["llm ms"] == "echo" and cells["ttft ms"] == "–" and cells["tok/s"] == "–"
    assert "123,456" not in md


def test_an_invalid_case_is_marked_and_explained() -> None:
    bad = Validity(valid=False, reasons=["3 measured samples, fewer than 10"])
    md = render_markdown(_doc(_case("p1"), _case("p2", validity=bad), targets=["stt_ms<=500"]))
    header, rows = _table(md, "Pipeline")
    assert header[-1] == "validity"
    assert [(r[0], r[-1]) for r in rows] == [("p1", ""), ("p2", "INVALID")]
    note = "- INVALID chain/spoken/p2/mode=sequential/cpu: 3 measured samples, fewer than 10."
    assert note in _section(md, "Pipeline")


def test_a_valid_run_has_no_validity_column() -> None:
    md = render_markdown(_doc(_case("p1", validity=Validity()), targets=["stt_ms<=500"]))
    header, _ = _table(md, "Pipeline")
    assert "validity" not in header and "INVALID" not in md


def test_a_pipe_in_a_prompt_id_is_escaped() -> None:
    md = render_markdown(_doc(_case("what|time"), targets=["stt_ms<=500"]))
    assert "| what\\|time | sequential |" in md
    for title in ("Pipeline", "Pipeline stage shares"):
        header, (row,) = _table(md, title)
        assert len(row) == len(header)  # the id did not add a column
        assert row[0] == "what\\|time"
