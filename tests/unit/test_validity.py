"""Validity of a case (results/validity.py) and how the case tables show it: known answers."""

from __future__ import annotations

import pytest

from support.result_docs import make_case, make_doc, noise
from voxbench.report.markdown import render_markdown
from voxbench.report.terminal import rich_table
from voxbench.results.document import ErrorRecord
from voxbench.results.validity import MAX_ERROR_RATE, MIN_SAMPLES, case_validity, supported


def _errors(n: int) -> list[ErrorRecord]:
    return [
        ErrorRecord(phase="measure", iteration=i, type="EngineError", message="boom")
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("pct", "n", "ok"),
    [(90, 49, False), (90, 50, True), (95, 99, False), (95, 100, True), (99, 499, False),
     (99, 500, True), ("p99", 500, True), ("99_9", 4999, False), (99, None, False)],
)  # fmt: skip
def test_supported_percentiles(pct, n, ok):
    assert supported(pct, n) is ok


def test_a_case_of_enough_clean_samples_is_valid():
    v = case_validity(make_case(noise(20.0, n=MIN_SAMPLES)))
    assert v.valid and v.reasons == []


def test_five_iterations_is_invalid_with_that_reason():
    v = case_validity(make_case(noise(20.0, n=5)))
    assert not v.valid
    [reason] = v.reasons
    assert "5 measured" in reason and str(MIN_SAMPLES) in reason


def test_one_error_in_ten_is_invalid():
    case = make_case(noise(20.0, n=9), errors=1)
    case.errors = _errors(1)
    case.iterations = 10
    v = case_validity(case)
    assert not v.valid and MAX_ERROR_RATE < 1 / 10
    assert any("1 of 10" in r and "failed" in r for r in v.reasons), v.reasons


def test_errors_outside_the_measure_phase_do_not_count():
    case = make_case(noise(20.0, n=20))
    case.errors = [ErrorRecord(phase="warmup", type="EngineError", message="boom")]
    case.error_count = 1
    assert case_validity(case).valid


def test_no_output_is_invalid():
    case = make_case([])
    case.iterations = 10
    case.errors = _errors(10)
    v = case_validity(case)
    assert not v.valid and any("nothing" in r for r in v.reasons), v.reasons


def _doc(n: int, *, validity: bool = True):
    case = make_case(noise(20.0, n=n))
    if validity:
        case.validity = case_validity(case)
    return make_doc("r", case)


def _table_text(doc) -> str:  # type: ignore[no-untyped-def]
    from rich.console import Console

    console = Console(width=220, record=True, color_system=None)
    console.print(rich_table(doc, width=220))
    return console.export_text()


def test_500_iterations_show_p99_unmarked():
    doc = _doc(500)
    case = doc.cases[0]
    assert case.latency_ms is not None
    p99 = f"{case.latency_ms.p99:.2f}"
    for text in (render_markdown(doc), _table_text(doc)):
        assert p99 in text and p99 + "*" not in text
        assert "not a true p99" not in text and "INVALID" not in text


def test_ten_iterations_show_p99_marked_with_a_footnote():
    doc = _doc(10)
    case = doc.cases[0]
    assert case.latency_ms is not None
    p99 = f"{case.latency_ms.p99:.2f}"
    for text in (render_markdown(doc), _table_text(doc)):
        assert p99 + "*" in text
        assert "* fewer than 500 samples: not a true p99" in text
        assert "* fewer than 100 samples: not a true p95" in text
        assert "INVALID" not in text  # 10 samples: valid, only its tail is unsupported


def test_an_invalid_case_is_shown_as_such_everywhere():
    doc = _doc(5)
    md, term = render_markdown(doc), _table_text(doc)
    for text in (md, term):
        assert "INVALID" in text and "5 measured" in text
    data = doc.model_dump(mode="json")
    assert data["cases"][0]["validity"]["valid"] is False
    assert "5 measured" in data["cases"][0]["validity"]["reasons"][0]


def test_streaming_ttfa_p95_is_marked_below_100_samples():
    """The Streaming view's ttfa p95 from 30 streamed calls is one of the two largest samples:
    marked, with the footnote; from 100 calls it is a p95, unmarked."""
    from voxbench.report.views import streaming
    from voxbench.results import Summary
    from voxbench.results.stats import summarize

    for n, marked in ((30, True), (100, False)):
        doc = _doc(n)
        ttfa = noise(5.0, n=n)
        doc.cases[0].ttfa_ms = Summary(**summarize(ttfa))  # type: ignore[arg-type]
        section = streaming(doc)
        assert section is not None
        p95 = f"{doc.cases[0].ttfa_ms.p95:.2f}"
        assert section.rows[0][3] == p95 + ("*" if marked else "")
        assert ("fewer than 100 samples" in section.note) is marked


def test_micro_report_marks_p95_and_invalid_cases():
    """The micro table: a 30-sample p95 is marked with the footnote, and an invalid case (5
    samples) is named with its reason in report.md and in the terminal table."""
    from rich.console import Console

    from voxbench.report.micro import micro_rich_table, render_micro_markdown

    doc = _doc(30)
    doc.scenario = "micro"
    few = make_case(noise(1.0, n=5), input_id="few")
    few.validity = case_validity(few)
    doc.cases.append(few)
    md = render_micro_markdown(doc)
    console = Console(width=220, record=True, color_system=None)
    console.print(micro_rich_table(doc, width=220))
    term = console.export_text()
    p95 = doc.cases[0].latency_ms.p95 if doc.cases[0].latency_ms else None
    assert f"{p95:.2f}*" in md and "- \\* fewer than 100 samples: not a true p95" in md
    for text in (md, term):
        assert f"INVALID {few.id}: 5 measured samples, fewer than 10." in text
        assert "fewer than 100 samples" in text
