"""Tables of a load run: per-level figures, errors, stalls, the capacity and cost lines, and a
throughput–latency curve drawn in text."""

from __future__ import annotations

from typing import Any

from voxbench.report.format import Section, fmt
from voxbench.results.document import LoadLevel, LoadResult, Percentiles

CURVE_WIDTH = 40
_NONE = Percentiles()  # a distribution the level does not have: every cell "–"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _level_row(lv: LoadLevel) -> list[str]:
    lat, ttfa = lv.latency_ms or _NONE, lv.ttfa_ms or _NONE
    verdict = ("met" if lv.meets_slo else "missed") if lv.slo else "–"
    if lv.saturated:
        verdict = "INVALID: generator saturated"
    return [
        lv.label,
        fmt(lv.offered_rate, 2),
        fmt(lv.sent_rate, 2),
        fmt(lv.achieved_rate, 2),
        f"{lv.ok}/{lv.requests}",
        _pct(lv.error_rate),
        *(fmt(lat.p50, 1), fmt(lat.p95, 1), fmt(lat.p99, 1), fmt(lat.p99_9, 1), fmt(lat.max, 1)),
        *(fmt(ttfa.p50, 1), fmt(ttfa.p95, 1), fmt(ttfa.p99, 1)),
        fmt((lv.lag_ms or _NONE).p99, 2),
        fmt(lv.audio_seconds_per_second, 2),
        fmt((lv.rtf or _NONE).p50, 3),
        verdict,
    ]


def levels_section(load: LoadResult) -> Section:
    headers = [
        "level",
        "offered/s",
        "sent/s",
        "achieved/s",
        "ok/req",
        "errors",
        "latency p50",
        "p95",
        "p99",
        "p99.9",
        "max",
        "ttfa p50",
        "ttfa p95",
        "ttfa p99",
        "lag p99",
        "audio s/s",
        "rtf p50",
        "SLO",
    ]
    rows = [_level_row(lv) for lv in load.levels]
    return Section(
        "Load levels",
        headers,
        rows,
        note="Times in ms, counted from each request's intended send time (open loop), so "
        "queueing is included; lag = how late the load generator sent (sent − intended). "
        "achieved/s = successful responses per second; rtf = wall / audio per stream.",
        numeric=set(headers[1:-1]),
    )


def errors_section(load: LoadResult) -> Section | None:
    rows = [
        [lv.label, kind, str(n), lv.error_examples.get(kind, "")]
        for lv in load.levels
        for kind, n in lv.errors.items()
    ]
    if not rows:
        return None
    return Section("Errors by kind", ["level", "kind", "count", "example"], rows)


def stalls_section(load: LoadResult) -> Section | None:
    streamed = [(lv.label, lv.stalls) for lv in load.levels if lv.stalls]
    if not streamed:
        return None
    rows = [
        [
            label,
            str(st.streams),
            _pct(st.stall_rate),
            *(fmt(st.count.p95, 1), fmt(st.stall_ms.p95, 1), fmt(st.stall_ms.max, 1)),
            *(fmt(st.startup_ms.p50, 1), fmt(st.startup_ms.p95, 1)),
        ]
        for label, st in streamed
    ]
    buffer_ms = streamed[0][1].buffer_ms
    return Section(
        "Playback stalls",
        [
            "level",
            "streams",
            "streams stalled",
            "stalls p95",
            "stall ms p95",
            "stall ms max",
            "start-up ms p50",
            "start-up ms p95",
        ],
        rows,
        note=f"A listener with a {buffer_ms:g} ms jitter buffer starts playing once the buffer "
        "is full, plays in real time, and stalls when the audio runs out until the buffer "
        "refills.",
    )


def curve_section(load: LoadResult) -> Section | None:
    points = [(lv.label, lv.achieved_rate, (lv.latency_ms or _NONE).p95) for lv in load.levels]
    worst = max((p for _, _, p in points if p), default=0)
    if not worst:
        return None
    rows = [
        [
            label,
            fmt(rate, 2),
            fmt(p95, 1),
            "`" + "█" * max(1, round(CURVE_WIDTH * (p95 or 0) / worst)) + "`",
        ]
        for label, rate, p95 in points
    ]
    return Section("Throughput and latency", ["level", "achieved/s", "p95 ms", "p95 latency"], rows)


def capacity_lines(load: LoadResult) -> list[str]:
    cap = load.capacity
    lines = []
    if cap.get("slo"):
        if cap.get("level"):
            lines.append(
                f"capacity: {cap['level']} meets {', '.join(cap['slo'])} "
                f"(achieved {fmt(cap.get('rate'), 2)} req/s, "
                f"{fmt(cap.get('audio_seconds_per_second'), 2)} audio s/s)"
            )
        else:
            lines.append(f"capacity: no level meets {', '.join(cap['slo'])}")
    if cap.get("realtime_streams") is not None:
        lines.append(
            f"real-time streams without stalls: {fmt(cap['realtime_streams'], 1)} "
            "concurrent (highest stall-free, error-free level)"
        )
    cost: dict[str, Any] | None = load.cost
    if cost:
        lines.append(
            f"cost at {cost['per_hour']:g}/h: {_money(cost['per_request'], 6)} per request, "
            f"{_money(cost['per_audio_hour'], 4)} per audio hour, "
            f"{_money(cost['monthly_at_full_use'], 2)} per month at full use"
            + (
                f"; hardware pays off after {cost['break_even_month']:.1f} months"
                if cost.get("break_even_month")
                else ""
            )
        )
    return lines


def _money(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def load_sections(load: LoadResult) -> list[Section]:
    """Every section of a load report, in order."""
    summary = capacity_lines(load)
    found = [levels_section(load), curve_section(load), stalls_section(load), errors_section(load)]
    sections = [s for s in found if s is not None]
    if summary:
        sections.insert(0, Section("Capacity", [], [], note="\n".join(f"- {s}" for s in summary)))
    return sections
