"""The run on the terminal: the headline table and the derived views as rich tables."""

from __future__ import annotations

from typing import Any

from voxbench.report.format import Section
from voxbench.report.markdown import RTF_NOTE, all_sections, case_notes, case_row, main_headers
from voxbench.results.document import ResultDocument

NARROW_DROPS = ("workload", "CI95 median", "chars/s", "p95 ms", "p99 ms")  # under 150 columns
TIGHT_DROPS = (
    "cold ms",
    "RSS MB",
    "disk MiB",
    "CPU",
)  # under 100 columns; report.md keeps everything


def rich_table(doc: ResultDocument, width: int = 200) -> Any:
    """The headline table for the terminal; on a narrow screen the secondary columns go."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    rows = [case_row(c) for c in doc.cases]
    headers = main_headers(doc, rows) if rows else []
    if width < 150:
        headers = [h for h in headers if h not in NARROW_DROPS]
    if width < 100:
        headers = [h for h in headers if h not in TIGHT_DROPS]
    caption = "\n".join([RTF_NOTE.replace("`", ""), *case_notes(doc, headers)])
    table = Table(
        title=f"voxbench run {doc.run_id}",
        caption=escape(caption),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    numeric = {
        "audio s",
        "median ms",
        "p95 ms",
        "p99 ms",
        "rtf ↓",
        "rtfx ↑",
        "chars/s",
        "ttfa ms",
        "WER",
        "ttft ms",
        "tok/s",
        "cold ms",
        "RSS MB",
        "disk MiB",
        "CPU",
        "errors",
    }
    for h in headers:
        table.add_column(
            h,
            justify="right" if h in numeric else "left",
            no_wrap=True,
            style="red" if h in ("errors", "validity") else None,
        )
    for r in rows:
        table.add_row(*(r[h] for h in headers))
    return table


TERMINAL_SECTIONS = (
    "Speech recognition",
    "Text generation",
    "Sweep",
    "CPU vs GPU",
    "Batch sizes",
    "Stages",
    "Quality targets",
    "Quality–speed",
    "Quality not measured",
)


def section_table(section: Section) -> Any:
    """A derived view (sweep, devices, batches, stages) as a rich table."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=section.title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for h in section.headers:
        table.add_column(h, justify="right" if h in section.numeric else "left")
    verdict = {"PASS": "[green]PASS[/]", "FAIL": "[bold red]FAIL[/]"}
    for row in section.rows:
        table.add_row(*(verdict.get(cell) or escape(cell.replace("`", "")) for cell in row))
    return table


def terminal_sections(doc: ResultDocument) -> list[Any]:
    """The derived views worth printing after the headline table."""
    return [section_table(s) for s in all_sections(doc) if s.title.startswith(TERMINAL_SECTIONS)]
