"""Render a result document as Markdown (report.md), for every scenario.

Both read only the document, so ``voxbench report RUN_DIR`` re-renders any past run exactly.
"""

from __future__ import annotations

from pathlib import Path

from voxbench.report import text_views, views
from voxbench.report.format import (
    INVALID,
    UNSUPPORTED,
    Section,
    device_label,
    environment_lines,
    fmt,
    fmt_rtf,
    invalid_note,
    is_invalid,
    mark,
    markdown_table,
    section_markdown,
    unsupported_note,
)
from voxbench.report.load import load_sections
from voxbench.report.micro import render_micro_markdown
from voxbench.report.pipeline import render_pipeline_markdown
from voxbench.report.quality import quality_sections
from voxbench.results.document import Case, ResultDocument
from voxbench.results.skips import skip_text
from voxbench.results.validity import supported

RTF_NOTE = (
    "`rtf` = wall time / audio time (lower is better); `rtfx` = audio time / wall time "
    "(higher is better). Latencies are warm single requests; cold start (process start → engine "
    "loaded → first output) is reported apart. `disk MiB`: the engine's model files plus its "
    "installed packages."
)


def _ci(case: Case) -> str:
    if case.latency_ms is None or case.latency_ms.ci95 is None:
        return "–"
    lo, hi = case.latency_ms.ci95
    return f"{fmt(lo, 2)}–{fmt(hi, 2)}"


def _tail(case: Case, pct: int) -> str:
    """The ``pct`` latency percentile of a case, marked when its sample count does not support
    it (p95 needs 100 samples, p99 500)."""
    lat = case.latency_ms
    if lat is None:
        return "–"
    return mark(fmt(getattr(lat, f"p{pct}"), 2), pct, lat.n)


def case_notes(doc: ResultDocument, headers: list[str]) -> list[str]:
    """The lines under the headline table: what a ``*`` means (for the percentile columns shown
    that carry one), and each invalid case with its reasons."""
    notes = []
    for pct in (95, 99):
        if f"p{pct} ms" not in headers:
            continue
        if any(c.latency_ms and not supported(pct, c.latency_ms.n) for c in doc.cases):
            notes.append(unsupported_note(pct))
    notes += [invalid_note(c.id, c.validity) for c in doc.cases if is_invalid(c.validity)]
    return notes


def _disk(case: Case) -> str:
    """The engine's footprint: model files + installed packages (``engine_info["footprint"]``)."""
    foot = case.engine_info.get("footprint")
    if not isinstance(foot, dict):
        return "–"
    total = float(foot.get("model_mib") or 0.0) + float(foot.get("packages_mib") or 0.0)
    return fmt(total, 0) if total else "–"


def case_row(case: Case) -> dict[str, str]:
    """The headline figures of one case as display strings (shared by Markdown and terminal)."""
    lat = case.latency_ms
    return {
        "engine": case.engine,
        "workload": case.workload,
        "input": case.input_id + (f" ×{case.batch_size}" if case.batch_size > 1 else ""),
        "params": ", ".join(f"{k}={v}" for k, v in case.params.items()),
        "device": device_label(case),
        "audio s": fmt(case.audio_seconds, 2),
        "median ms": fmt(lat.median if lat else None, 2),
        "p95 ms": _tail(case, 95),
        "p99 ms": _tail(case, 99),
        "CI95 median": _ci(case),
        "rtf ↓": fmt_rtf(case.rtf),
        "rtfx ↑": fmt(case.rtfx, 1),
        "chars/s": fmt(case.chars_per_second, 0),
        "ttfa ms": fmt(case.ttfa_ms.median if case.ttfa_ms else None, 2),
        "WER": f"{case.accuracy.wer * 100:.1f}%" if case.accuracy else "–",
        "ttft ms": fmt(case.ttft_ms.median if case.ttft_ms else None, 1),
        "tok/s": fmt(case.tokens_per_second, 1),
        "cold ms": fmt(case.cold_start_ms, 0),
        "RSS MB": fmt(case.peak_rss_mb, 0),
        "disk MiB": _disk(case),
        "CPU": fmt(case.cpu_utilization, 2),
        "errors": str(case.error_count) if case.error_count else "",
        "validity": INVALID if is_invalid(case.validity) else "",
    }


def main_headers(doc: ResultDocument, rows: list[dict[str, str]]) -> list[str]:
    """The headline columns, without params/device/errors when they would say nothing."""
    headers = list(rows[0])
    if not any(r["params"] for r in rows):
        headers.remove("params")
    if all(r["device"] == "cpu" for r in rows):
        headers.remove("device")
    if not any(c.error_count for c in doc.cases):
        headers.remove("errors")
    if not any(is_invalid(c.validity) for c in doc.cases):
        headers.remove("validity")
    for name, present in (
        ("WER", any(c.accuracy for c in doc.cases)),
        ("ttft ms", any(c.ttft_ms for c in doc.cases)),
        ("tok/s", any(c.tokens_per_second is not None for c in doc.cases)),
        ("ttfa ms", any(c.ttfa_ms for c in doc.cases)),
        ("disk MiB", any("footprint" in c.engine_info for c in doc.cases)),
        ("audio s", any(c.audio_seconds for c in doc.cases)),
        ("rtf ↓", any(c.rtf is not None for c in doc.cases)),
        ("rtfx ↑", any(c.rtfx is not None for c in doc.cases)),
        ("chars/s", any(c.chars_per_second and c.output_kind != "text" for c in doc.cases)),
    ):
        if not present:
            headers.remove(name)
    return headers


def render_markdown(doc: ResultDocument) -> str:
    """The whole report as Markdown."""
    if doc.scenario == "micro":
        return render_micro_markdown(doc)
    if doc.scenario == "pipeline":
        return render_pipeline_markdown(doc)
    if doc.scenario == "load" and doc.load is not None:
        lines = [f"# voxbench load {doc.run_id}", "", *environment_lines(doc)]
        for section in load_sections(doc.load):
            lines += section_markdown(section)
        return "\n".join(lines) + "\n"
    lines = [f"# voxbench run {doc.run_id}", "", *environment_lines(doc), ""]
    lines += ["## Results", "", RTF_NOTE, ""]
    rows = [case_row(c) for c in doc.cases]
    if rows:
        headers = main_headers(doc, rows)
        lines += markdown_table(headers, [[r[h] for h in headers] for r in rows])
        notes = case_notes(doc, headers)
        if notes:
            # a bare leading * would start emphasis in Markdown
            lines += ["", *(f"- \\{n}" if n.startswith(UNSUPPORTED) else f"- {n}" for n in notes)]
    else:
        lines.append("No cases were measured.")
    for section in all_sections(doc):
        lines += section_markdown(section)
    if doc.skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {skip_text(s)}" for s in doc.skipped]
    audio = [c for c in doc.cases if c.audio_file]
    if audio:
        lines += ["", "## Listen", ""]
        lines += [f"- [{c.id}]({c.audio_file})" for c in audio]
    return "\n".join(lines) + "\n"


def write_report(doc: ResultDocument, path: Path) -> Path:
    """Write ``report.md`` for any scenario (single, load, micro); returns the path."""
    path.write_text(render_markdown(doc), encoding="utf-8")
    return path


def all_sections(doc: ResultDocument) -> list[Section]:
    """Every view that has data, in report order."""
    found = [
        text_views.recognition(doc),
        text_views.generation(doc),
        views.cold_start(doc),
        views.streaming(doc),
        views.stages(doc),
        *views.sweep(doc),
        views.device_speedup(doc),
        views.batches(doc),
        views.errors(doc),
    ]
    if any(c.quality for c in doc.cases):
        found += quality_sections(doc)
    return [s for s in found if s is not None]
