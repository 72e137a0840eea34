"""Render a micro run: the Markdown report and the terminal table.

Reads only the result document, so ``voxbench report RUN_DIR`` re-renders a micro run exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxbench.report.format import (
    environment_lines,
    fmt,
    invalid_note,
    is_invalid,
    mark,
    markdown_table,
    unsupported_note,
)
from voxbench.results.document import Case, ResultDocument
from voxbench.results.skips import skip_text
from voxbench.results.validity import supported

MICRO_NOTE = (
    "Per-call latency of in-process kernels (each sample times a loop of calls). "
    "`× real time` = seconds of audio processed per second of wall time (higher is better). "
    "`speedup vs ref` = reference median / this median (> 1: faster than the reference, "
    "measured on the CPU). `max rel err` = largest absolute difference from the reference's "
    "output divided by the reference's largest magnitude."
)
HEADERS = [
    "kernel",
    "size",
    "input",
    "backend",
    "device",
    "median ms",
    "p95 ms",
    "CI95 median",
    "× real time",
    "speedup vs ref",
    "max rel err",
]
NUMERIC = {"median ms", "p95 ms", "× real time", "speedup vs ref", "max rel err"}


def _ms(value: float | None) -> str:
    """Milliseconds with three significant figures below 1 ms (kernels can take microseconds)."""
    if value is None:
        return "–"
    if abs(value) < 1:
        return f"{value:.4f}" if abs(value) < 0.01 else f"{value:.3f}"
    return fmt(value, 2)


def _speedup(case: Case) -> str:
    if case.error_count:
        return "error"
    if case.params.get("backend") == case.meta.get("reference") and case.device == "cpu":
        return "ref"
    value = case.meta.get("speedup_vs_reference")
    return f"{value:.2f}×" if isinstance(value, int | float) else "–"


def _error(case: Case) -> str:
    rel = case.meta.get("max_rel_error")
    mismatched = case.meta.get("mismatched") or 0
    if rel is None:
        return "–" if not mismatched else f"{mismatched} differ"
    text = "0" if rel == 0 else f"{rel:.1e}"
    return text + (f", {mismatched} differ" if mismatched else "")


def micro_notes(doc: ResultDocument) -> list[str]:
    """Lines under the kernel table: what ``*`` means, and each invalid case with its reasons."""
    notes = []
    if any(c.latency_ms and not supported(95, c.latency_ms.n) for c in doc.cases):
        notes.append(unsupported_note(95))
    return notes + [invalid_note(c.id, c.validity) for c in doc.cases if is_invalid(c.validity)]


def micro_row(case: Case) -> dict[str, str]:
    """One case as display strings (shared by Markdown and the terminal)."""
    lat = case.latency_ms
    backend = str(case.params.get("backend", "?"))
    ci = f"{_ms(lat.ci95[0])}–{_ms(lat.ci95[1])}" if lat and lat.ci95 else "–"
    return {
        "kernel": case.engine.removeprefix("micro:"),
        "size": case.workload,
        "input": case.input_id,
        "backend": backend,
        "device": case.device,
        "median ms": _ms(lat.median if lat else None),
        "p95 ms": mark(_ms(lat.p95 if lat else None), 95, lat.n if lat else None),
        "CI95 median": ci,
        "× real time": fmt(case.rtfx, 1) if case.rtfx is not None else "–",
        "speedup vs ref": _speedup(case),
        "max rel err": _error(case),
    }


def _method_line(doc: ResultDocument) -> str:
    cfg = doc.config
    loops = sorted({int(c.meta.get("loops_per_sample", 1)) for c in doc.cases if c.latency_ms})
    loop_text = f"{loops[0]}–{loops[-1]}" if loops else "–"
    return (
        f"- **method** in-process; per case a calibrated loop of {loop_text} calls per sample, "
        f"{cfg.warmup if cfg else '?'} warm-up sample(s), up to "
        f"{cfg.iterations if cfg else '?'} measured samples; time per call from "
        "`perf_counter_ns` around each loop (CUDA: synchronised before both reads)"
    )


def render_micro_markdown(doc: ResultDocument) -> str:
    """The whole micro report as Markdown."""
    env_lines = [
        _method_line(doc) if line.startswith("- **method**") else line
        for line in environment_lines(doc)
    ]
    lines = [f"# voxbench micro {doc.run_id}", "", *env_lines, "", "## Kernels", "", MICRO_NOTE, ""]
    rows = [micro_row(c) for c in doc.cases]
    if rows:
        lines += markdown_table(HEADERS, [[r[h] for h in HEADERS] for r in rows])
        notes = micro_notes(doc)
        if notes:
            lines += ["", *(f"- {n}".replace("- *", "- \\*", 1) for n in notes)]
    else:
        lines.append("No cases were measured.")
    described = {c.engine: c.meta.get("summary") for c in doc.cases if c.meta.get("summary")}
    if described:
        lines += ["", "## What each kernel does", ""]
        lines += [f"- `{engine}`: {text}" for engine, text in described.items()]
    failed = [(c, e) for c in doc.cases for e in c.errors]
    if failed:
        lines += ["", "## Errors", ""]
        lines += [f"- {c.id}: {e.phase}: {e.type}: {e.message}" for c, e in failed]
    if doc.skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {skip_text(s)}" for s in doc.skipped]
    return "\n".join(lines) + "\n"


def write_micro_report(doc: ResultDocument, path: Path) -> Path:
    path.write_text(render_micro_markdown(doc), encoding="utf-8")
    return path


def micro_rich_table(doc: ResultDocument, width: int = 200) -> Any:
    """The micro table for the terminal; under 120 columns the CI and p95 columns go."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"voxbench micro {doc.run_id}",
        caption=escape(" ".join([MICRO_NOTE, *micro_notes(doc)]).replace("`", "")),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    headers = list(HEADERS)
    if width < 120:
        headers = [h for h in headers if h not in ("CI95 median", "p95 ms", "input")]
    for h in headers:
        table.add_column(h, justify="right" if h in NUMERIC else "left", no_wrap=True)
    for case in doc.cases:
        row = micro_row(case)
        style = "red" if case.error_count or is_invalid(case.validity) else None
        table.add_row(*(row[h] for h in headers), style=style)
    return table
