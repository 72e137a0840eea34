"""Display building blocks every report shares: the :class:`Section` a view produces, number
formatting, and the Markdown pieces (tables, the environment lines).

The lowest module of :mod:`voxbench.report`: views, the quality, load and micro reports and the
renderers import it, and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeGuard

from voxbench.results.document import Case, ResultDocument
from voxbench.results.validity import Validity, min_samples, supported

UNSUPPORTED = "*"
"""Marks a percentile its sample count does not support (results.validity.supported)."""
INVALID = "INVALID"
"""Marks a case or load level judged invalid (results.validity)."""


@dataclass
class Section:
    """One view of a document: a title, a note, and rows of display strings."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: set[str] = field(default_factory=set)


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


def device_label(case: Case) -> str:
    """The device, with a visible flag when the engine ran somewhere else than asked."""
    if case.device_fallback:
        return f"{case.device}→{case.device_actual} (fallback!)"
    return case.device


def swept_keys(doc: ResultDocument) -> list[str]:
    """The parameters any engine of the run swept, in order."""
    keys: dict[str, None] = {}
    for engine in doc.config.engines if doc.config else []:
        keys.update(dict.fromkeys(engine.sweep))
    return list(keys)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; ``|`` inside cells escaped, line breaks turned into spaces (a newline
    in an engine name or an input text would end the row)."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def environment_lines(doc: ResultDocument) -> list[str]:
    """Machine, GPU, versions, method and command of a run, as Markdown bullet lines."""
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


def section_markdown(section: Section) -> list[str]:
    """A view as a Markdown section: heading, note, table."""
    lines = ["", f"## {section.title}", ""]
    if section.note:
        lines += [section.note, ""]
    return lines + (markdown_table(section.headers, section.rows) if section.headers else [])


def mark(cell: str, pct: float | str, n: int | None) -> str:
    """``cell`` (a formatted percentile) with :data:`UNSUPPORTED` appended when ``n`` samples do
    not support the ``pct`` percentile; a missing value ("–") is left as it is."""
    return cell if cell == "–" or supported(pct, n) else cell + UNSUPPORTED


def unsupported_note(pct: int) -> str:
    """The footnote that says what a :data:`UNSUPPORTED` mark on a ``pct`` percentile means."""
    return (
        f"{UNSUPPORTED} fewer than {min_samples(pct)} samples: not a true p{pct} "
        "(one of the few largest samples)."
    )


def is_invalid(validity: Validity | None) -> TypeGuard[Validity]:
    """Whether a verdict says invalid (results from before validity have none: valid)."""
    return validity is not None and not validity.valid


def invalid_note(name: str, validity: Validity) -> str:
    """One line naming an invalid case (or level) and its reasons."""
    return f"{INVALID} {name}: {'; '.join(validity.reasons)}."
