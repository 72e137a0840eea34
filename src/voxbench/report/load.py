"""Tables of a load run: per-level figures, errors, stalls, the capacity and cost lines, and a
throughput–latency curve drawn in text."""

from __future__ import annotations

import math
from typing import Any

from voxbench.report.format import INVALID, UNSUPPORTED, Section, fmt, is_invalid, mark
from voxbench.results.document import LoadLevel, LoadResult, Percentiles
from voxbench.results.validity import min_samples

CURVE_WIDTH = 40
_NONE = Percentiles()  # a distribution the level does not have: every cell "–"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _q(d: Percentiles | None, pct: str, digits: int = 1) -> str:
    """The ``pct`` percentile of ``d``, marked when its sample count does not support it."""
    return mark(fmt((d or _NONE).percentile(pct), digits), pct, d.n if d else None)


def _verdict(lv: LoadLevel) -> str:
    if is_invalid(lv.validity):
        return INVALID
    if lv.saturated:
        return f"{INVALID}: generator saturated"
    if not lv.slo:
        return "–"
    return "met" if lv.meets_slo else "missed"


def _level_row(lv: LoadLevel) -> list[str]:
    lat, ttfa = lv.latency_all_ms or lv.latency_ms, lv.ttfa_all_ms or lv.ttfa_ms
    return [
        lv.label,
        fmt(lv.offered_rate, 2),
        fmt(lv.sent_rate, 2),
        fmt(lv.achieved_rate, 2),
        f"{lv.ok}/{lv.requests}",
        _pct(lv.error_rate),
        *(_q(lat, "50"), _q(lat, "95"), _q(lat, "99"), _q(lat, "99.9"), fmt((lat or _NONE).max)),
        _q(lv.latency_ms, "99"),
        *(_q(ttfa, "50"), _q(ttfa, "95"), _q(ttfa, "99")),
        _q(lv.lag_ms, "99", 2),
        fmt(lv.audio_seconds_per_second, 2),
        _q(lv.rtf, "50", 3),
        _verdict(lv),
    ]


def _unsupported_note(rows: list[list[str]]) -> str:
    """The footnote of a table with marked cells; empty when none is marked."""
    if not any(cell.endswith(UNSUPPORTED) for row in rows for cell in row):
        return ""
    pcts = ("95", "99", "99.9")
    needs = ", ".join(f"p{p} {min_samples(float(p)):,}" for p in pcts)
    return (
        f" {UNSUPPORTED} = fewer samples than the percentile needs ({needs}): one of the few "
        "largest samples, not a percentile."
    )


def is_chat(load: LoadResult) -> bool:
    """Whether the run drove a chat endpoint (its levels have token figures, or its target is
    one)."""
    return bool(load.settings.get("chat")) or any(
        lv.tokens_source is not None for lv in load.levels
    )


def _chat_row(lv: LoadLevel) -> list[str]:
    lat = lv.latency_all_ms or lv.latency_ms
    return [
        lv.label,
        fmt(lv.offered_rate, 2),
        fmt(lv.sent_rate, 2),
        fmt(lv.achieved_rate, 2),
        f"{lv.ok}/{lv.requests}",
        _pct(lv.error_rate),
        *(_q(lat, "50"), _q(lat, "99")),
        *(_q(lv.ttft_ms, "50"), _q(lv.ttft_ms, "95"), _q(lv.ttft_ms, "99")),
        *(_q(lv.itl_ms, "50", 2), _q(lv.itl_ms, "95", 2)),
        _q(lv.tokens_per_second, "50"),
        fmt(lv.output_tokens_per_second, 1),
        lv.tokens_source or "–",
        _q(lv.lag_ms, "99", 2),
        _verdict(lv),
    ]


def chat_levels_section(load: LoadResult) -> Section:
    """The level table of a chat target: tokens instead of audio."""
    headers = [
        "level",
        "offered/s",
        "sent/s",
        "achieved/s",
        "ok/req",
        "errors",
        "latency p50",
        "latency p99",
        "ttft p50",
        "ttft p95",
        "ttft p99",
        "itl p50",
        "itl p95",
        "tok/s p50",
        "output tok/s",
        "tokens",
        "lag p99",
        "SLO",
    ]
    rows = [_chat_row(lv) for lv in load.levels]
    return Section(
        "Load levels",
        headers,
        rows,
        note="Times in ms, counted from each request's intended send time (open loop), so "
        "queueing is included; latency over every measured request (a failure at the time it "
        "took to fail), ttft (first non-empty content delta), itl (gaps between content deltas) "
        "and tok/s ((tokens − 1) / (last delta − first delta), per request) over successful "
        "requests. output tok/s = output tokens of the successes completed in the sending "
        "window, per second. tokens = usage (the server's usage.completion_tokens) or counted "
        "(content deltas). lag = how late the load generator sent (sent − intended)."
        + _unsupported_note(rows),
        numeric=set(headers[1:-2]),
    )


def is_transcription(load: LoadResult) -> bool:
    """Whether the run drove a transcription endpoint (its target is one, or its levels have a
    WER)."""
    return bool(load.settings.get("transcription")) or any(lv.wer is not None for lv in load.levels)


def _transcription_row(lv: LoadLevel) -> list[str]:
    lat = lv.latency_all_ms or lv.latency_ms
    return [
        lv.label,
        fmt(lv.offered_rate, 2),
        fmt(lv.sent_rate, 2),
        fmt(lv.achieved_rate, 2),
        f"{lv.ok}/{lv.requests}",
        _pct(lv.error_rate),
        *(_q(lat, "50"), _q(lat, "95"), _q(lat, "99"), _q(lat, "99.9"), fmt((lat or _NONE).max)),
        _q(lv.latency_ms, "99"),
        _q(lv.lag_ms, "99", 2),
        fmt(lv.audio_seconds_per_second, 2),
        _q(lv.rtf, "50", 3),
        _pct(lv.wer),
        _verdict(lv),
    ]


def transcription_levels_section(load: LoadResult) -> Section:
    """The level table of a transcription target: input audio transcribed and WER, no ttfa."""
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
        "ok p99",
        "lag p99",
        "RTFx",
        "rtf p50",
        "WER",
        "SLO",
    ]
    rows = [_transcription_row(lv) for lv in load.levels]
    return Section(
        "Load levels",
        headers,
        rows,
        note="Times in ms, from each request's intended send time (open loop) to the whole "
        "answer, so the upload and queueing are included, over every measured request (a "
        "failure at the time it took to fail, a timeout at the timeout); ok p99 = successful "
        "requests only. lag = how late the load generator sent (sent − intended). RTFx = input "
        "audio seconds of the successes completed in the sending window, per second (the "
        "server's RTFx under load); rtf = latency / input audio, per request. WER = corpus word "
        "error rate of the successful transcripts against the references (errors summed over "
        "reference words)." + _unsupported_note(rows),
        numeric=set(headers[1:-1]),
    )


def levels_section(load: LoadResult) -> Section:
    if is_chat(load):
        return chat_levels_section(load)
    if is_transcription(load):
        return transcription_levels_section(load)
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
        "ok p99",
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
        "queueing is included, over every measured request (a failure at the time it took to "
        "fail, a timeout at the timeout); ok p99 = successful requests only. lag = how late "
        "the load generator sent (sent − intended). achieved/s = successful responses "
        "completed in the sending window, per second; rtf = wall / audio per stream."
        + _unsupported_note(rows),
        numeric=set(headers[1:-1]),
    )


def validity_section(load: LoadResult) -> Section | None:
    """The invalid levels and why (MLPerf LoadGen's rules, results/validity.py)."""
    rows = [
        [lv.label, reason]
        for lv in load.levels
        if is_invalid(lv.validity)
        for reason in lv.validity.reasons
    ]
    if not rows:
        return None
    return Section(
        "Invalid levels",
        ["level", "why"],
        rows,
        note="An invalid level's figures are not the server's to quote; it never counts "
        "towards capacity.",
    )


def workers_sections(load: LoadResult) -> list[Section]:
    """Per level sent by several load generators (``--executor ray --workers N``): each
    worker's share, its sent rate against its schedule, its lag and whether it kept up. None
    for a level one generator sent."""
    out = []
    for lv in load.levels:
        if not lv.workers:
            continue
        rows = [
            [
                str(w.worker),
                w.node or "–",
                f"{w.requests:,}",
                fmt(w.scheduled_rate, 2),
                fmt(w.sent_rate, 2),
                _q(w.lag_ms, "99", 2),
                fmt(w.start_margin_ms, 1),
                "; ".join(w.reasons) if w.saturated else "no",
            ]
            for w in lv.workers
        ]
        out.append(
            Section(
                f"Load workers, level {lv.label}",
                [
                    "worker",
                    "node",
                    "sent",
                    "scheduled/s",
                    "sent/s",
                    "lag p99 ms",
                    "start margin ms",
                    "saturated",
                ],
                rows,
                note="Each worker's share of the one schedule (request i from worker i mod N); "
                "the level's percentiles above are over every worker's raw records merged.",
                numeric={"sent", "scheduled/s", "sent/s", "lag p99 ms", "start margin ms"},
            )
        )
    return out


def slo_section(load: LoadResult) -> Section | None:
    """Each SLO clause at each level: held, missed or not measured, and any caveat."""
    if not any(lv.slo for lv in load.levels):
        return None
    rows = [
        [
            lv.label,
            clause,
            "not measured" if held is None else ("held" if held else "missed"),
            lv.slo_notes.get(clause, ""),
        ]
        for lv in load.levels
        for clause, held in lv.slo.items()
    ]
    return Section("SLO clauses", ["level", "clause", "verdict", "note"], rows)


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
            *(_q(st.count, "95"), _q(st.stall_ms, "95"), fmt(st.stall_ms.max, 1)),
            *(_q(st.startup_ms, "50"), _q(st.startup_ms, "95")),
            _pct(st.continuity_100ms),
            _pct(st.continuity_200ms),
            "–" if st.realtime_streams is None else str(st.realtime_streams),
            fmt(st.realtime_concurrent, 1),
        ]
        for label, st in streamed
    ]
    first = streamed[0][1]
    threshold = first.stall_threshold_ms
    bound = first.startup_bound_ms
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
            "underrun ≤100ms",
            "underrun ≤200ms",
            "real-time streams",
            "real-time at once",
        ],
        rows,
        note=f"A listener with a {first.buffer_ms:g} ms jitter buffer starts playing once the "
        "buffer is full, plays in real time, and stalls when the audio runs out until the buffer "
        "refills"
        + (f"; an underrun of {threshold:g} ms or less is jitter, not a stall" if threshold else "")
        + ". underrun ≤N ms = share of streams whose longest underrun is at most N ms. "
        "Real-time streams started within "
        + (f"{bound:g} ms" if bound is not None else "the start-up bound")
        + " and never stalled; at once = their audio seconds per second of the window (the "
        "listeners fed at the same time)." + _unsupported_note(rows),
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
    if is_chat(load):
        made = f"{fmt(cap.get('output_tokens_per_second'), 1)} output tokens/s"
    elif is_transcription(load):
        made = f"{fmt(cap.get('audio_seconds_per_second'), 2)} input audio s/s transcribed"
    else:
        made = f"{fmt(cap.get('audio_seconds_per_second'), 2)} audio s/s"
    figures = f"(achieved {fmt(cap.get('rate'), 2)} req/s, {made})"
    if cap.get("slo"):
        if cap.get("level"):
            lines.append(f"capacity: {cap['level']} meets {', '.join(cap['slo'])} {figures}")
        else:
            lines.append(f"capacity: no valid level meets {', '.join(cap['slo'])}")
    elif cap.get("level"):
        lines.append(f"capacity: {cap['level']}, the {cap.get('rule', 'highest level')} {figures}")
    elif load.levels and "rule" in cap:
        lines.append(f"capacity: none (no level qualifies as the {cap['rule']})")
    if cap.get("realtime_streams") is not None:
        lines.append(
            f"real-time streams without stalls: {fmt(cap['realtime_streams'], 1)} at once, at "
            f"{cap.get('realtime_level')} (streams that started in time and never stalled, "
            "highest valid level where all but the error limit did)"
            + (
                "; capped at the audio seconds the level made per second"
                if cap.get("realtime_capped")
                else ""
            )
        )
    cost: dict[str, Any] | None = load.cost
    if cost:
        where = f" at {cost['level']}" if cost.get("level") else ""
        lines.append(
            f"cost{where}, {cost['per_hour']:g}/h: {_sig(cost['per_request'])} per request, "
            f"{_sig(cost['per_audio_hour'])} per audio hour"
            + (" transcribed, " if is_transcription(load) else ", ")
            + f"{_money(cost['monthly_at_full_use'], 2)} per month at full use"
            + (
                f"; hardware pays off after {cost['break_even_month']:.1f} months"
                if cost.get("break_even_month")
                else ""
            )
        )
    return lines


def _money(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _sig(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, in positional notation (0.00000731)."""
    if value is None:
        return "–"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def load_sections(load: LoadResult) -> list[Section]:
    """Every section of a load report, in order."""
    summary = capacity_lines(load)
    found = [
        levels_section(load),
        validity_section(load),
        slo_section(load),
        curve_section(load),
        stalls_section(load),
        errors_section(load),
    ]
    sections = [s for s in found if s is not None]
    sections[1:1] = workers_sections(load)  # under the levels table
    if summary:
        sections.insert(0, Section("Capacity", [], [], note="\n".join(f"- {s}" for s in summary)))
    return sections
