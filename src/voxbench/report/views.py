"""Tables derived from a result document, shared by report.md and the terminal.

Each view is a :class:`Section` (title, note, headers, rows of display strings) or nothing when
the run holds no data for it. Views only read the document; they never re-measure.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable

from voxbench.report.format import UNSUPPORTED, mark, unsupported_note
from voxbench.report.format import Section as Section
from voxbench.report.format import device_label as device_label
from voxbench.report.format import fmt as fmt
from voxbench.report.format import fmt_rtf as fmt_rtf
from voxbench.report.format import swept_keys as swept_keys
from voxbench.results.document import Case, ResultDocument


def _params_label(params: dict[str, object], keys: Iterable[str]) -> str:
    """The values of the swept keys (the header names the keys)."""
    return ", ".join(str(params.get(k, "–")) for k in keys)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _median_of(cases: list[Case], get: Callable[[Case], float | None]) -> float | None:
    return _median([v for c in cases if (v := get(c)) is not None])


def cold_start(doc: ResultDocument) -> Section | None:
    cold = [(c, c.cold_start) for c in doc.cases if c.cold_start]
    if not cold:
        return None
    return Section(
        "Cold start",
        ["case", "kind", "total", "process start", "import", "load", "first call"],
        [
            [
                c.id,
                s.kind,
                fmt(s.total_ms),
                fmt(s.process_ms),
                fmt(s.import_ms),
                fmt(s.load_ms),
                fmt(s.first_call_ms),
            ]
            for c, s in cold
        ],
        note="Milliseconds from asking for the engine to its first output; `load` is the "
        "engine's initialisation (model load), apart from its first and its warm calls. "
        "`warm-process`: the process had run an engine (or imported this one) before, so the "
        "start was not cold.",
    )


def streaming(doc: ResultDocument) -> Section | None:
    streamed = [c for c in doc.cases if c.ttfa_ms]
    if not streamed:
        return None
    rows = []
    for c in streamed:
        gaps = c.chunk_gap_ms
        ttfa = c.ttfa_ms
        p95 = mark(fmt(ttfa.p95 if ttfa else None, 2), 95, ttfa.n if ttfa else None)
        rows.append(
            [
                c.id,
                str(c.chunks or "–"),
                fmt(c.ttfa_ms.median if c.ttfa_ms else None, 2),
                p95,
                fmt(gaps.median if gaps else None, 2),
                fmt(gaps.max if gaps else None, 2),
            ]
        )
    return Section(
        "Streaming",
        [
            "case",
            "chunks",
            "ttfa median ms",
            "ttfa p95 ms",
            "chunk gap median ms",
            "chunk gap max ms",
        ],
        rows,
        note="\\" + unsupported_note(95) if any(r[3].endswith(UNSUPPORTED) for r in rows) else "",
    )


BAR_WIDTH = 30
BAR_GLYPHS = "█▓▒░▞▚"


def stage_bar(shares: list[float]) -> str:
    """A stacked bar, one glyph per stage in order, the rest of the call as '·'."""
    cells, used = [], 0
    for i, share in enumerate(shares):
        n = round(max(share, 0.0) * BAR_WIDTH)
        n = min(n, BAR_WIDTH - used)
        cells.append(BAR_GLYPHS[i % len(BAR_GLYPHS)] * n)
        used += n
    return "".join(cells) + "·" * (BAR_WIDTH - used)


def stages(doc: ResultDocument) -> Section | None:
    staged = [c for c in doc.cases if c.stages]
    if not staged:
        return None
    rows = []
    for c in staged:
        names = list(c.stages)
        shares = [c.stages[n].share or 0.0 for n in names]
        legend = ", ".join(f"{BAR_GLYPHS[i % len(BAR_GLYPHS)]} {n}" for i, n in enumerate(names))
        rows.append([c.id, "", "", f"`{stage_bar(shares)}` {legend}"])
        for n in names:
            s = c.stages[n]
            rows.append(
                ["", n, fmt(s.median_ms, 2), f"{s.share:.0%}" if s.share is not None else "–"]
            )
    return Section(
        "Stages",
        ["case", "stage", "median ms", "share of call"],
        rows,
        note="Median time per stage and its share of the median call; the bar stacks the "
        "shares in order, `·` is time outside any named stage.",
    )


def sweep(doc: ResultDocument) -> list[Section]:
    """The classic table: chars/s and rtf by swept parameter values × workload, per engine."""
    keys = swept_keys(doc)
    if not keys:
        return []
    sections = []
    by_engine: dict[str, list[Case]] = defaultdict(list)
    for c in doc.cases:
        by_engine[c.engine].append(c)
    for engine, cases in by_engine.items():
        used = [k for k in keys if any(k in c.params for c in cases)]
        if not used:
            continue
        workloads = list(dict.fromkeys(c.workload for c in cases))
        groups: dict[tuple[str, str], list[Case]] = defaultdict(list)
        for c in cases:
            groups[(_params_label(c.params, used), device_label(c))].append(c)
        rows = []
        for (label, device), group in groups.items():
            row = [label, device]
            for w in workloads:
                in_w = [c for c in group if c.workload == w]
                row += [
                    fmt(_median_of(in_w, lambda c: c.chars_per_second), 0),
                    fmt_rtf(_median_of(in_w, lambda c: c.rtf)),
                ]
            rows.append(row)
        headers = [", ".join(used), "device"]
        for w in workloads:
            headers += [f"{w} chars/s", f"{w} rtf ↓"]
        sections.append(
            Section(
                f"Sweep: {engine} by {', '.join(used)} × workload",
                headers,
                rows,
                note="Medians over the inputs of each workload; chars/s is input characters per "
                "second of wall time, rtf = wall / audio (lower is better).",
                numeric=set(headers[2:]),
            )
        )
    return sections


def _case_key(c: Case) -> tuple[str, str, str, str, int]:
    return (c.engine, c.workload, c.input_id, repr(sorted(c.params.items())), c.batch_size)


def device_speedup(doc: ResultDocument) -> Section | None:
    """Median latency per device and the speed-up of each device over the CPU."""
    devices = list(dict.fromkeys(c.device for c in doc.cases))
    if len(devices) < 2:
        return None
    table: dict[tuple, dict[str, Case]] = defaultdict(dict)
    for c in doc.cases:
        table[_case_key(c)][c.device] = c
    others = [d for d in devices if d != "cpu"]
    headers = ["case", *[f"{d} median ms" for d in devices], *[f"{d} speed-up ×" for d in others]]
    rows = []
    for key, per_device in table.items():
        medians = {
            d: (lat.median if d in per_device and (lat := per_device[d].latency_ms) else None)
            for d in devices
        }
        cpu = medians.get("cpu")
        speedups = [fmt(cpu / m, 2) if cpu and (m := medians[d]) else "–" for d in others]
        flags = [
            " (fallback!)" if d in per_device and per_device[d].device_fallback else ""
            for d in others
        ]
        label = "/".join(x for x in (key[0], key[1], key[2]) if x)
        rows.append(
            [
                label,
                *[fmt(medians[d], 2) for d in devices],
                *[s + f for s, f in zip(speedups, flags, strict=True)],
            ]
        )
    return Section(
        "CPU vs GPU",
        headers,
        rows,
        note="Speed-up = CPU median latency / device median latency.",
        numeric=set(headers[1:]),
    )


def batches(doc: ResultDocument) -> Section | None:
    """Throughput per batch size, and the best batch size of each engine and input."""
    if len({c.batch_size for c in doc.cases}) < 2:
        return None
    groups: dict[tuple, list[Case]] = defaultdict(list)
    for c in doc.cases:
        groups[(c.engine, c.workload, c.input_id, repr(sorted(c.params.items())), c.device)].append(
            c
        )
    rows = []
    for key, cases in groups.items():
        best = max(cases, key=lambda c: c.items_per_second or 0.0)
        for c in sorted(cases, key=lambda c: c.batch_size):
            audio_rate = (
                c.audio_seconds / (c.latency_ms.median / 1000)
                if c.audio_seconds and c.latency_ms
                else None
            )
            rows.append(
                [
                    "/".join(key[:3]) + f"/{key[4]}",
                    str(c.batch_size),
                    fmt(c.latency_ms.median if c.latency_ms else None, 2),
                    fmt(c.items_per_second, 1),
                    fmt(audio_rate, 1),
                    "best" if c is best and c.items_per_second else "",
                ]
            )
    return Section(
        "Batch sizes",
        ["case", "batch", "median ms", "items/s", "audio s/s", ""],
        rows,
        note="items/s = batch size / median latency of one batch call; audio s/s = seconds of "
        "audio produced per second of wall time.",
        numeric={"batch", "median ms", "items/s", "audio s/s"},
    )


def errors(doc: ResultDocument) -> Section | None:
    found = [(c, e) for c in doc.cases for e in c.errors]
    if not found:
        return None
    return Section(
        "Errors",
        ["case", "phase", "iteration", "error"],
        [
            [
                c.id,
                e.phase,
                "–" if e.iteration is None else str(e.iteration),
                f"{e.type}: {e.message}",
            ]
            for c, e in found
        ],
    )
