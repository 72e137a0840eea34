"""Text from engines and workloads cannot break a report: an engine name and an input holding
``<script>``, ``|``, backticks and a newline leave report.md's table whole and report.html
without a live script."""

from __future__ import annotations

from support.result_docs import make_case, make_doc
from voxbench.report.html import render_html
from voxbench.report.markdown import render_markdown

NASTY = "<script>alert(1)</script> a|b `code` line1\nline2"


def _doc():  # type: ignore[no-untyped-def]
    case = make_case([10.0, 11.0], input_id="x").model_copy(
        update={"engine": NASTY, "input_text": NASTY}
    )
    return make_doc("run-x", case)


def test_html_has_no_live_script_from_the_data() -> None:
    html = render_html(_doc(), run_dir=None)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_escapes_pipes_in_cells() -> None:
    row = next(ln for ln in render_markdown(_doc()).splitlines() if "alert(1)" in ln)
    assert "a\\|b" in row


def test_markdown_table_rows_stay_whole() -> None:
    md = render_markdown(_doc())
    rows = [ln for ln in md.splitlines() if "alert(1)" in ln or "line2" in ln]
    assert len(rows) == 1 and rows[0].startswith("| ") and rows[0].endswith(" |")
