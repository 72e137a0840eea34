"""Results from several machines in one comparison: rows = cases, columns = machines.

Input: result folders in the usual layout (``results/<machine-id>/<run-id>/results.json``; any
folder above or at that level, or single files). Documents are grouped by
``environment.machine_id``; when a machine has several runs with the same case, the newest run's
case is used. Speedups are relative to a baseline machine (the first one found, or
``--baseline``): baseline / machine for metrics where lower is better (latency, rtf), machine /
baseline where higher is better (rtfx, items/s), so above 1 always means faster than the baseline.

Output folder: ``aggregate.json``, ``aggregate.md``, and ``<machine-id>/<run-id>/`` with a copy
of each run's ``results.json`` and ``report.md`` that was used: the per-machine layout is kept.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError
from voxbench.results.keys import case_key
from voxbench.results.metrics import CATALOGUE, Metric

if TYPE_CHECKING:
    from voxbench.results.document import Case, ResultDocument

METRICS: dict[str, Metric] = {m.name: m for m in CATALOGUE if m.aggregate}
"""The metrics aggregation puts side by side (catalogue entries with ``aggregate``), by name."""
DEFAULT_TABLES = ("latency_ms", "rtfx")


def case_metrics(c: Case) -> dict[str, float | None]:
    """The figures of one case that aggregation compares, by metric name."""
    return {name: m.of_case(c) for name, m in METRICS.items()}


@dataclass
class Machine:
    """One column: a machine, what it has, and the runs its numbers come from."""

    machine_id: str
    gpus: list[str]
    cpu_model: str
    runs: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.machine_id} ({', '.join(self.gpus)})" if self.gpus else self.machine_id


@dataclass
class Row:
    """One case across machines: values[machine][metric] and speedups[machine][metric]."""

    case: str
    engine: str
    workload: str
    device: str
    values: dict[str, dict[str, float | None]] = field(default_factory=dict)
    speedups: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class Aggregate:
    """The comparison across machines."""

    baseline: str
    machines: list[Machine]
    rows: list[Row]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for m, obj in zip(data["machines"], self.machines, strict=True):
            m["label"] = obj.label
        data["metrics"] = {
            k: {"unit": m.unit, "higher_is_better": m.higher_is_better} for k, m in METRICS.items()
        }
        return data


def _speedup(metric: str, base: float | None, value: float | None) -> float | None:
    if base is None or value is None or base <= 0 or value <= 0:
        return None
    return value / base if METRICS[metric].higher_is_better else base / value


def aggregate(
    docs: list[tuple[Path, ResultDocument]], baseline: str | None = None
) -> tuple[Aggregate, dict[str, list[tuple[Path, ResultDocument]]]]:
    """Group documents by machine, take each machine's newest figure per case, and compute
    speedups against ``baseline`` (default: the first machine). Also returns, per machine, the
    documents whose cases were used."""
    from voxbench.results.machines import by_machine as split_runs

    by_machine: dict[str, list[tuple[Path, ResultDocument]]] = {}
    for path, doc in split_runs(docs):  # a run on several machines (Ray): its machines' parts
        by_machine.setdefault(doc.environment.machine_id, []).append((path, doc))
    if not by_machine:
        raise ConfigError("no result documents to aggregate")
    if baseline is None:
        baseline = next(iter(by_machine))
    elif baseline not in by_machine:
        raise ConfigError(
            f"--baseline {baseline!r} is not among the machines: {', '.join(by_machine)}"
        )
    machines: list[Machine] = []
    rows: dict[str, Row] = {}
    used: dict[str, list[tuple[Path, ResultDocument]]] = {}
    for mid, items in by_machine.items():
        items.sort(key=lambda it: (it[1].created_at, it[1].run_id))
        env = items[-1][1].environment
        machine = Machine(mid, [g.name for g in env.gpus], env.cpu_model)
        newest: dict[str, tuple[Case, tuple[Path, ResultDocument]]] = {}
        for item in items:
            for c in item[1].cases:
                newest[case_key(c)] = (c, item)
        for key, (c, item) in newest.items():
            row = rows.setdefault(key, Row(key, c.engine, c.workload, c.device))
            row.values[mid] = case_metrics(c)
            if item[1].run_id not in machine.runs:
                machine.runs.append(item[1].run_id)
                used.setdefault(mid, []).append(item)
        machines.append(machine)
    if not rows:
        raise ConfigError("the result documents hold no cases to aggregate")
    for row in rows.values():
        base = row.values.get(baseline, {})
        for mid, vals in row.values.items():
            row.speedups[mid] = {m: _speedup(m, base.get(m), vals.get(m)) for m in METRICS}
    machines.sort(key=lambda m: m.machine_id != baseline)  # baseline first, then as found
    return Aggregate(baseline, machines, list(rows.values())), used


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def markdown(agg: Aggregate, tables: tuple[str, ...] = DEFAULT_TABLES) -> str:
    """One table per metric: rows = cases, columns = machines, each cell value (speedup)."""
    lines = ["# voxbench aggregate", ""]
    lines.append(f"Baseline machine: **{agg.baseline}**. Speedup = how many times faster than ")
    lines[-1] += "the baseline (above 1: faster), from each machine's newest run of the case."
    lines.append("")
    lines.append("| machine | GPUs | CPU | runs |")
    lines.append("|---|---|---|---|")
    for m in agg.machines:
        gpus = ", ".join(m.gpus) or "–"
        lines.append(f"| {m.machine_id} | {gpus} | {m.cpu_model} | {', '.join(m.runs)} |")
    for metric in tables:
        unit = METRICS[metric].unit
        if not any(
            r.values.get(m.machine_id, {}).get(metric) is not None
            for r in agg.rows
            for m in agg.machines
        ):
            continue
        better = "higher is better" if METRICS[metric].higher_is_better else "lower is better"
        lines += ["", f"## {metric}" + (f" ({unit})" if unit else "") + f", {better}", ""]
        lines.append("| case | " + " | ".join(m.label for m in agg.machines) + " |")
        lines.append("|---|" + "---:|" * len(agg.machines))
        for r in agg.rows:
            cells = []
            for m in agg.machines:
                v = r.values.get(m.machine_id, {}).get(metric)
                s = r.speedups.get(m.machine_id, {}).get(metric)
                cell = _fmt(v)
                if v is not None and s is not None and m.machine_id != agg.baseline:
                    cell += f" ({s:.2f}×)"
                cells.append(cell)
            lines.append(f"| `{r.case}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(
    agg: Aggregate,
    used: dict[str, list[tuple[Path, ResultDocument]]],
    out: Path,
    tables: tuple[str, ...] = DEFAULT_TABLES,
) -> list[Path]:
    """Write aggregate.json, aggregate.md and the per-machine copies into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for mid, items in used.items():
        for path, doc in items:
            dest = out / mid / doc.run_id
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "results.json").write_text(doc.model_dump_json(indent=2), encoding="utf-8")
            report = path.parent / "report.md"
            if path.name == "results.json" and report.is_file():
                shutil.copyfile(report, dest / "report.md")
    for name, text in (
        ("aggregate.json", json.dumps(agg.to_dict(), indent=2) + "\n"),
        ("aggregate.md", markdown(agg, tables)),
    ):
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
