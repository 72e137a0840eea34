"""Render a result document: Markdown (report.md) and a rich table for the terminal.

Both read only the document, so ``voxbench report RUN_DIR`` re-renders any past run exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxbench.report.views import Section, all_sections, device_label, fmt, fmt_rtf, skip_text
from voxbench.results.document import Case, ResultDocument

RTF_NOTE = (
    "`rtf` = wall time / audio time (lower is better); `rtfx` = audio time / wall time "
    "(higher is better). Latencies are warm single requests; cold start (process start → engine "
    "loaded → first output) is reported apart."
)


def _ci(case: Case) -> str:
    if case.latency_ms is None or case.latency_ms.ci95 is None:
        return "–"
    lo, hi = case.latency_ms.ci95
    return f"{fmt(lo, 2)}–{fmt(hi, 2)}"


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
        "p95 ms": fmt(lat.p95 if lat else None, 2),
        "CI95 median": _ci(case),
        "rtf ↓": fmt_rtf(case.rtf),
        "rtfx ↑": fmt(case.rtfx, 1),
        "chars/s": fmt(case.chars_per_second, 0),
        "ttfa ms": fmt(case.ttfa_ms.median if case.ttfa_ms else None, 2),
        "cold ms": fmt(case.cold_start_ms, 0),
        "RSS MB": fmt(case.peak_rss_mb, 0),
        "CPU": fmt(case.cpu_utilization, 2),
        "errors": str(case.error_count) if case.error_count else "",
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
    return headers


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def _environment_lines(doc: ResultDocument) -> list[str]:
    env = doc.environment
    gpus = ", ".join(f"{g.name} (driver {g.driver}, CUDA {g.cuda})" for g in env.gpus) or (
        f"none ({env.gpu_note})" if env.gpu_note else "none"
    )
    commit = (
        f"{env.git_commit[:12]}{' (dirty)' if env.git_dirty else ''}" if env.git_commit else "–"
    )
    cfg = doc.config
    lines = [
        f"- **created** {doc.created_at}"
        + (f", took {doc.duration_s:.1f} s" if doc.duration_s else ""),
        f"- **machine** `{env.machine_id}`: {env.cpu_model}, {env.cpu_cores_logical} logical cores, "
        f"{env.ram_gb} GiB RAM, {env.os}, Python {env.python}",
        f"- **GPU** {gpus}",
        f"- **voxbench** {doc.voxbench_version}, git commit {commit}",
    ]
    if cfg is not None:
        lines.append(
            f"- **method** {cfg.mode} mode, {cfg.warmup} warm-up + {cfg.iterations} measured "
            f"iterations per case, per-call timeout {cfg.timeout_s if cfg.timeout_s else 'none'} "
            f"s, streaming {cfg.stream}"
        )
    argv = cfg.argv if cfg is not None else (doc.load.settings.get("argv") if doc.load else None)
    if argv:
        lines.append(f"- **command** `voxbench {' '.join(argv)}`")
    return lines


def _section_markdown(section: Section) -> list[str]:
    lines = ["", f"## {section.title}", ""]
    if section.note:
        lines += [section.note, ""]
    return lines + (_table(section.headers, section.rows) if section.headers else [])


def render_markdown(doc: ResultDocument) -> str:
    """The whole report as Markdown."""
    if doc.scenario == "micro":
        from voxbench.report.micro import render_micro_markdown

        return render_micro_markdown(doc)
    if doc.scenario == "load" and doc.load is not None:
        from voxbench.report.load import load_sections

        lines = [f"# voxbench load {doc.run_id}", "", *_environment_lines(doc)]
        for section in load_sections(doc.load):
            lines += _section_markdown(section)
        return "\n".join(lines) + "\n"
    lines = [f"# voxbench run {doc.run_id}", "", *_environment_lines(doc), ""]
    lines += ["## Results", "", RTF_NOTE, ""]
    rows = [case_row(c) for c in doc.cases]
    if rows:
        headers = main_headers(doc, rows)
        lines += _table(headers, [[r[h] for h in headers] for r in rows])
    else:
        lines.append("No cases were measured.")
    for section in all_sections(doc):
        lines += _section_markdown(section)
    if doc.skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {skip_text(s)}" for s in doc.skipped]
    audio = [c for c in doc.cases if c.audio_file]
    if audio:
        lines += ["", "## Listen", ""]
        lines += [f"- [{c.id}]({c.audio_file})" for c in audio]
    return "\n".join(lines) + "\n"


def write_report(doc: ResultDocument, path: Path) -> Path:
    path.write_text(render_markdown(doc), encoding="utf-8")
    return path


NARROW_DROPS = ("workload", "CI95 median", "chars/s", "p95 ms")  # under 150 columns
TIGHT_DROPS = ("cold ms", "RSS MB", "CPU")  # under 100 columns; report.md keeps everything


def rich_table(doc: ResultDocument, width: int = 200) -> Any:
    """The headline table for the terminal; on a narrow screen the secondary columns go."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"voxbench run {doc.run_id}",
        caption=RTF_NOTE.replace("`", ""),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    rows = [case_row(c) for c in doc.cases]
    numeric = {
        "audio s",
        "median ms",
        "p95 ms",
        "rtf ↓",
        "rtfx ↑",
        "chars/s",
        "ttfa ms",
        "cold ms",
        "RSS MB",
        "CPU",
        "errors",
    }
    headers = main_headers(doc, rows) if rows else []
    if width < 150:
        headers = [h for h in headers if h not in NARROW_DROPS]
    if width < 100:
        headers = [h for h in headers if h not in TIGHT_DROPS]
    for h in headers:
        table.add_column(
            h,
            justify="right" if h in numeric else "left",
            no_wrap=True,
            style="red" if h == "errors" else None,
        )
    for r in rows:
        table.add_row(*(r[h] for h in headers))
    return table


TERMINAL_SECTIONS = (
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
