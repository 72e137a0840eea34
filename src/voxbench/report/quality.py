"""Quality tables for report.md and the terminal: values with verdicts, and the quality–speed
trade-off with its Pareto front. Views read the document only."""

from __future__ import annotations

import statistics
from collections import defaultdict

from voxbench.report.format import Section, device_label, fmt, fmt_rtf, swept_keys
from voxbench.results.document import Case, QualityScore, ResultDocument

# The values shown first (when present), in the order teams usually read them.
PRIMARY = (
    "f0_rmse_hz",
    "f0_rmse_cents",
    "gpe",
    "vde",
    "wer",
    "cer",
    "dnsmos_ovrl",
    "speaker_similarity",
    "pesq_wb",
    "stoi",
    "mcd_db",
    "lsd_db",
    "spectral_convergence",
)


# The trade-off table keeps to one or two headline values per family (the full set is under
# 'Quality'), so it stays readable in a terminal.
TRADEOFF = (
    "f0_rmse_hz",
    "gpe",
    "wer",
    "cer",
    "dnsmos_ovrl",
    "speaker_similarity",
    "pesq_wb",
    "stoi",
    "mcd_db",
)


def value_text(score: QualityScore) -> str:
    if not score.available or score.value is None:
        return "n/a"
    digits = 3 if abs(score.value) < 10 else 1
    return f"{score.value:.{digits}f}"


def verdict_text(score: QualityScore) -> str:
    if score.passed is None:
        return ""
    return "PASS" if score.passed else "FAIL"


def _value_names(doc: ResultDocument) -> list[str]:
    names: dict[str, None] = {}
    for c in doc.cases:
        names.update({k: None for k, s in c.quality.items() if s.available})
    ordered = [n for n in PRIMARY if n in names]
    return ordered + sorted(n for n in names if n not in ordered)


def case_label(case: Case, keys: list[str]) -> str:
    params = ", ".join(f"{k}={case.params[k]}" for k in keys if k in case.params)
    label = f"{case.engine} · {case.workload}/{case.input_id}"
    return f"{label} · {params}" if params else label


def targets_section(doc: ResultDocument) -> Section | None:
    """Target vs actual with PASS/FAIL, one row per case and value that has a target."""
    keys = swept_keys(doc)
    rows = []
    for c in doc.cases:
        for name, s in c.quality.items():
            if s.target is not None and s.available:
                unit = f" {s.unit}" if s.unit and s.unit not in ("ratio", "cos") else ""
                rows.append(
                    [
                        case_label(c, keys),
                        device_label(c),
                        fmt_rtf(c.rtf),
                        name,
                        f"{s.target_op} {s.target:g}{unit}",
                        value_text(s),
                        verdict_text(s),
                    ]
                )
    if not rows:
        return None
    passed = sum(r[-1] == "PASS" for r in rows)
    return Section(
        "Quality targets",
        ["case", "device", "rtf ↓", "metric", "target", "actual", "verdict"],
        rows,
        note=f"{passed} of {len(rows)} checks pass. Defaults follow common practice; override "
        "them with [targets] in voxbench.toml or --target NAME<=VALUE.",
        numeric={"rtf ↓", "actual"},
    )


def values_section(doc: ResultDocument) -> Section | None:
    """Every available value per case (n/a where a metric could not judge that case)."""
    names = _value_names(doc)
    if not names:
        return None
    keys = swept_keys(doc)
    rows = []
    for c in doc.cases:
        if not c.quality:
            continue
        row = [case_label(c, keys), fmt_rtf(c.rtf)]
        for n in names:
            s = c.quality.get(n)
            row.append(value_text(s) if s else "–")
        rows.append(row)
    headers = ["case", "rtf ↓"] + [_header(doc, n) for n in names]
    return Section(
        "Quality",
        headers,
        rows,
        note="↓ lower is better, ↑ higher is better; n/a: the metric could not judge this case "
        "(the reasons are under 'Quality not measured').",
        numeric=set(headers[1:]),
    )


def _header(doc: ResultDocument, name: str) -> str:
    for c in doc.cases:
        if (s := c.quality.get(name)) is not None:
            return f"{name} {'↑' if s.higher_is_better else '↓'}"
    return name


def unavailable_section(doc: ResultDocument) -> Section | None:
    """Why metrics did not run: one row per metric and reason (with how many cases)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for c in doc.cases:
        seen: set[tuple[str, str]] = set()
        for s in c.quality.values():
            if not s.available and (s.metric, s.reason) not in seen:
                seen.add((s.metric, s.reason))
                counts[(s.metric, s.reason)] += 1
    if not counts:
        return None
    rows = [[m, r, str(n)] for (m, r), n in sorted(counts.items())]
    return Section("Quality not measured", ["metric", "reason", "cases"], rows)


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[bool]:
    """Which (rtf, quality) points no other point beats: rtf at least as low and quality at
    least as good, one of them strictly."""
    sign = -1.0 if higher_is_better else 1.0
    costs = [(r, sign * q) for r, q in points]
    flags = []
    for i, (r, q) in enumerate(costs):
        dominated = any(
            r2 <= r and q2 <= q and (r2 < r or q2 < q) for j, (r2, q2) in enumerate(costs) if j != i
        )
        flags.append(not dominated)
    return flags


def tradeoff_sections(doc: ResultDocument) -> list[Section]:
    """For a sweep: per engine × workload, each setting's rtf beside its quality (means over the
    workload's inputs), and which settings are on the quality–speed Pareto front."""
    keys = swept_keys(doc)
    names = [n for n in _value_names(doc) if n in TRADEOFF or not _builtin(doc, n)]
    if not keys or not names:
        return []
    groups: dict[tuple[str, str, str], dict[str, list[Case]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for c in doc.cases:
        if c.quality and c.rtf is not None:
            setting = ", ".join(f"{k}={c.params[k]}" for k in keys if k in c.params) or "(fixed)"
            groups[(c.engine, c.workload, device_label(c))][setting].append(c)
    sections = []
    for (engine, workload, device), settings in groups.items():
        if len(settings) < 2:
            continue
        shown = [n for n in names if any(n in c.quality for cs in settings.values() for c in cs)]
        table: list[tuple[str, float, dict[str, float | None]]] = []
        for setting, cases in settings.items():
            rtf = statistics.median(c.rtf for c in cases if c.rtf is not None)
            values: dict[str, float | None] = {}
            for n in shown:
                vals = [s.value for c in cases if (s := c.quality.get(n)) and s.value is not None]
                values[n] = statistics.fmean(vals) if vals else None
            table.append((setting, rtf, values))
        fronts: dict[str, set[str]] = defaultdict(set)
        for n in shown:
            pts = [(rtf, v[n]) for _, rtf, v in table if v[n] is not None]
            labels = [s for s, _, v in table if v[n] is not None]
            higher = _higher(doc, n)
            for label, on in zip(labels, pareto_front(pts, higher), strict=True):  # type: ignore[arg-type]
                if on:
                    fronts[label].add(n)
        rows = [
            [setting, fmt_rtf(rtf)]
            + [fmt(x, 3 if x is not None and abs(x) < 10 else 1) for n in shown for x in [v[n]]]
            + [", ".join(n for n in shown if n in fronts[setting]) or "–"]
            for setting, rtf, v in sorted(table, key=lambda t: t[1])
        ]
        headers = ["setting", "rtf ↓"] + [_header(doc, n) for n in shown] + ["Pareto-optimal for"]
        sections.append(
            Section(
                f"Quality–speed trade-off: {engine} on {workload} ({device})",
                headers,
                rows,
                note="Settings sorted by rtf (median over inputs); quality values are means over "
                "inputs. A setting is Pareto-optimal for a metric when no other setting is both "
                "at least as fast and at least as good on it (and better on one).",
                numeric=set(headers[1:-1]),
            )
        )
    return sections


def _builtin(doc: ResultDocument, name: str) -> bool:
    from voxbench.quality.registry import BUILTIN_FAMILIES

    return any(
        s.family in BUILTIN_FAMILIES for c in doc.cases if (s := c.quality.get(name)) is not None
    )


def _higher(doc: ResultDocument, name: str) -> bool:
    for c in doc.cases:
        if (s := c.quality.get(name)) is not None:
            return s.higher_is_better
    return True


def quality_sections(doc: ResultDocument) -> list[Section]:
    found = [targets_section(doc), *tradeoff_sections(doc), values_section(doc)]
    found.append(unavailable_section(doc))
    return [s for s in found if s is not None]
