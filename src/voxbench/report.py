"""Render a result document: Markdown (report.md) and a rich table for the terminal.

Both read only the document, so ``voxbench report RUN_DIR`` re-renders any past run exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxbench.results import Case, ResultDocument

RTF_NOTE = (
    "`rtf` = wall time / audio time (lower is better); `rtfx` = audio time / wall time "
    "(higher is better). Latencies are warm single requests; cold start (process start → engine "
    "loaded → first output) is reported apart."
)


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table: '–' when missing, fewer decimals as values grow."""
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.{max(digits - 1, 0)}f}" if digits > 1 else f"{value:.0f}"
    return f"{value:.{digits}f}"


def fmt_rtf(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if value < 0.01 else f"{value:.3f}"


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
        "input": case.input_id,
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
        f"- **method** {cfg.mode} mode, {cfg.warmup} warm-up + {cfg.iterations} measured iterations "
        f"per case, per-call timeout {cfg.timeout_s if cfg.timeout_s else 'none'} s, "
        f"streaming {cfg.stream}",
    ]
    if cfg.argv:
        lines.append(f"- **command** `voxbench {' '.join(cfg.argv)}`")
    return lines


def render_markdown(doc: ResultDocument) -> str:
    """The whole report as Markdown."""
    lines = [f"# voxbench run {doc.run_id}", "", *_environment_lines(doc), ""]
    lines += ["## Results", "", RTF_NOTE, ""]
    rows = [case_row(c) for c in doc.cases]
    if rows:
        lines += _table(list(rows[0]), [list(r.values()) for r in rows])
    else:
        lines.append("No cases were measured.")
    cold = [c for c in doc.cases if c.cold_start]
    if cold:
        lines += [
            "",
            "## Cold start",
            "",
            "Milliseconds from asking for the engine to its first output.",
            "",
        ]
        lines += _table(
            ["case", "total", "process start", "import", "load", "first call"],
            [
                [
                    c.id,
                    fmt(c.cold_start.total_ms),
                    fmt(c.cold_start.process_ms),  # type: ignore[union-attr]
                    fmt(c.cold_start.import_ms),
                    fmt(c.cold_start.load_ms),  # type: ignore[union-attr]
                    fmt(c.cold_start.first_call_ms),
                ]
                for c in cold
            ],  # type: ignore[union-attr]
        )
    streamed = [c for c in doc.cases if c.ttfa_ms]
    if streamed:
        lines += ["", "## Streaming", ""]
        lines += _table(
            [
                "case",
                "chunks",
                "ttfa median ms",
                "ttfa p95 ms",
                "chunk gap median ms",
                "chunk gap max ms",
            ],
            [
                [
                    c.id,
                    str(c.chunks or "–"),
                    fmt(c.ttfa_ms.median, 2),
                    fmt(c.ttfa_ms.p95, 2),  # type: ignore[union-attr]
                    fmt(c.chunk_gap_ms.median if c.chunk_gap_ms else None, 2),
                    fmt(c.chunk_gap_ms.max if c.chunk_gap_ms else None, 2),
                ]
                for c in streamed
            ],
        )
    staged = [c for c in doc.cases if c.stages]
    if staged:
        lines += ["", "## Stages", ""]
        lines += _table(
            ["case", "stage", "median ms", "share of call"],
            [
                [c.id, name, fmt(s.median_ms, 2), f"{s.share:.0%}" if s.share is not None else "–"]
                for c in staged
                for name, s in c.stages.items()
            ],
        )
    errors = [(c, e) for c in doc.cases for e in c.errors]
    if errors:
        lines += ["", "## Errors", ""]
        lines += _table(
            ["case", "phase", "iteration", "error"],
            [
                [
                    c.id,
                    e.phase,
                    "–" if e.iteration is None else str(e.iteration),
                    f"{e.type}: {e.message}",
                ]
                for c, e in errors
            ],
        )
    if doc.skipped:
        lines += ["", "## Skipped", ""]
        lines += [f"- {s.get('engine', '?')}: {s.get('reason', '')}" for s in doc.skipped]
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
    numeric = {"audio s", "median ms", "p95 ms", "rtf ↓", "rtfx ↑", "chars/s", "ttfa ms",
               "cold ms", "RSS MB", "CPU", "errors"}  # fmt: skip
    headers = list(rows[0]) if rows else []
    if width < 150:
        headers = [h for h in headers if h not in NARROW_DROPS]
    if width < 100:
        headers = [h for h in headers if h not in TIGHT_DROPS]
    if not any(c.error_count for c in doc.cases):
        headers = [h for h in headers if h != "errors"]
    for h in headers:
        table.add_column(h, justify="right" if h in numeric else "left", no_wrap=True,
                         style="red" if h == "errors" else None)  # fmt: skip
    for r in rows:
        table.add_row(*(r[h] for h in headers))
    return table
