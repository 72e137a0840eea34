"""Figures of one load level, computed from the raw request records after the level ran.

Latency and time to first audio count from each request's *intended* send time (open loop), so
queueing in the server is in them; the load generator's own lateness is the schedule lag
(sent − due), reported apart. A level whose lag p99 exceeds ``max_lag_ms`` was limited by the
generator, not the server, and is marked saturated (its figures are not the server's).
"""

from __future__ import annotations

from collections import Counter

from voxbench.load.client import RequestRecord
from voxbench.load.schedule import Level
from voxbench.results.document import LevelSamples, LoadLevel, Percentiles, Stalls

PERCENTILES = (50, 90, 95, 99, 99.9)


def dist(values: list[float]) -> dict[str, float] | None:
    """n, mean, p50/p90/p95/p99/p99.9 (key ``p99_9``) and max (linear interpolation between order
    statistics), as the JSON of a :class:`Percentiles` holds them; None for no values."""
    import numpy as np

    if not values:
        return None
    data = np.asarray(values, dtype=float)
    qs = np.percentile(data, PERCENTILES)
    out = {"n": int(data.size), "mean": float(data.mean())}
    out.update(
        {f"p{p:g}".replace(".", "_"): float(q) for p, q in zip(PERCENTILES, qs, strict=True)}
    )
    out["max"] = float(data.max())
    return out


def percentiles(values: list[float]) -> Percentiles | None:
    """:func:`dist` as a :class:`Percentiles`."""
    found = dist(values)
    return None if found is None else Percentiles.model_validate(found)


def stalls(
    arrivals: list[tuple[float, float]], start: float, buffer_s: float
) -> tuple[int, float, float]:
    """Playback of one stream by a listener with a jitter buffer of ``buffer_s`` seconds.

    ``arrivals`` are (time, audio seconds received so far). The listener asks at ``start``,
    begins playing once ``buffer_s`` of audio (or the whole stream) has arrived, plays in real
    time, and when the audio runs out waits — a stall — until ``buffer_s`` more (or the rest) has
    arrived. Returns (stall count, total stall seconds, start-up delay seconds).
    """
    if not arrivals:
        return 0, 0.0, 0.0
    total = arrivals[-1][1]
    eps = 1e-9

    def when_buffered(audio: float, after: float = float("-inf")) -> float:
        for t, got in arrivals:
            if got >= audio - eps and t >= after:
                return t
        return arrivals[-1][0]

    def received_by(t: float) -> float:
        got = 0.0
        for at, cum in arrivals:
            if at > t + eps:
                break
            got = cum
        return got

    wall = when_buffered(min(buffer_s, total))
    startup, playhead, count, stalled = wall - start, 0.0, 0, 0.0
    while playhead < total - eps:
        available = received_by(wall)
        later = [t for t, _ in arrivals if t > wall + eps]
        next_arrival = later[0] if later else float("inf")
        runs_out = wall + (available - playhead)
        if runs_out < next_arrival - eps:  # audio ends before more arrives: a stall, unless done
            playhead, wall = available, runs_out
            if playhead >= total - eps:
                break
            count += 1
            resume = when_buffered(min(playhead + max(buffer_s, eps), total), after=wall)
            stalled += resume - wall
            wall = resume
        else:
            playhead += next_arrival - wall
            wall = next_arrival
    return count, stalled, startup


def _ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


def _stalls(streamed: list[RequestRecord], buffer_ms: float) -> Stalls:
    per = [stalls(r.arrivals, r.due, buffer_ms / 1000) for r in streamed]
    stalled = sum(1 for c, _, _ in per if c)
    return Stalls(
        buffer_ms=buffer_ms,
        streams=len(per),
        streams_with_stalls=stalled,
        stall_rate=stalled / len(per),
        count=Percentiles.model_validate(dist([float(c) for c, _, _ in per])),
        stall_ms=Percentiles.model_validate(dist([s * 1000 for _, s, _ in per])),
        startup_ms=Percentiles.model_validate(dist([u * 1000 for _, _, u in per])),
    )


def summarize_level(
    level: Level,
    records: list[RequestRecord],
    *,
    warmup_s: float,
    wall_s: float,
    buffer_ms: float,
    max_lag_ms: float,
) -> LoadLevel:
    """Everything reported for one level, plus its raw samples."""
    measured = [r for r in records if r.due >= warmup_s]
    ok = [r for r in measured if r.error is None and r.done >= 0]
    errors = Counter(r.error for r in measured if r.error)
    sent = [r.sent for r in measured if r.sent >= 0]
    span = sent_span = 0.0
    if measured:
        first = min(r.due for r in measured)
        span = max(max((r.done for r in measured), default=first), first) - first
        sent_span = max(sent) - min(sent) if len(sent) > 1 else 0.0
    latency = [r.done - r.due for r in ok]
    ttfa = [r.first_audio - r.due for r in ok if r.first_audio >= 0]
    ttfb = [r.first_byte - r.due for r in ok if r.first_byte >= 0]
    lag = [r.sent - r.due for r in measured if r.sent >= 0]
    rtf = [(r.done - r.due) / r.audio_seconds for r in ok if r.audio_seconds > 0]
    audio = sum(r.audio_seconds for r in ok)
    lag_d = percentiles(_ms(lag))
    result = LoadLevel(
        label=level.label,
        kind=level.kind,
        value=level.value,
        requests=len(measured),
        warmup_requests=len(records) - len(measured),
        ok=len(ok),
        offered_rate=level.value if level.kind == "rate" else None,
        sent_rate=(len(sent) - 1) / sent_span if sent_span > 0 else None,
        achieved_rate=len(ok) / span if span > 0 else None,
        audio_seconds_per_second=audio / span if span > 0 else None,
        in_flight_mean=sum(latency) / span if span > 0 else None,
        error_rate=(sum(errors.values()) / len(measured)) if measured else None,
        errors=dict(errors),
        error_examples={k: next(r.detail for r in measured if r.error == k) for k in errors},
        latency_ms=percentiles(_ms(latency)),
        ttfa_ms=percentiles(_ms(ttfa)),
        ttfb_ms=percentiles(_ms(ttfb)),
        lag_ms=lag_d,
        rtf=percentiles(rtf),
        saturated=bool(lag_d and lag_d.p99 is not None and lag_d.p99 > max_lag_ms),
        wall_s=wall_s,
        samples=LevelSamples(latency_ms=_ms(latency), ttfa_ms=_ms(ttfa), lag_ms=_ms(lag)),
    )
    streamed = [r for r in ok if r.arrivals]  # one chunk is a stream too: it never stalls
    if streamed:
        result.stalls = _stalls(streamed, buffer_ms)
    return result
