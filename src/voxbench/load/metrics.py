"""Figures of one load level, computed from the raw request records after the level ran.

Latency and time to first audio count from each request's *intended* send time (open loop), so
queueing in the server is in them; the load generator's own lateness is the schedule lag
(sent − due), reported apart. A level whose lag p99 exceeds ``max_lag_ms`` was limited by the
generator, not the server, and is marked saturated (its figures are not the server's).

Rates are over the level's *sending window*: from the first measured request's due time for
``n`` mean gaps between due times (n measured requests), so a level of 20 s at 10 req/s has a
window of 20 s. Throughput (requests; audio seconds, for transcription targets of the input
audio; for chat targets output tokens) counts the completions inside that window — of any request
of the level, warm-up included — so the latency tail after the last send is not counted as idle
time (which would bias an overloaded level's rate low), and neither is the warm-up's backlog.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, cast

from voxbench.load.client import RequestRecord
from voxbench.load.schedule import Level
from voxbench.load.transcriptions import Corpus, transcription_figures
from voxbench.results.document import LevelSamples, LoadLevel, Percentiles, Stalls
from voxbench.results.validity import MAX_ERROR_RATE, MIN_SAMPLES, verdict

PERCENTILES = (50, 90, 95, 99, 99.9)
PcmSource = Literal["header", "option", "default"]
_PCM_SOURCES = ("header", "option", "default")
STALL_THRESHOLD_MS = 10.0
"""An underrun this long or shorter is jitter, not a stall (default of ``--stall-threshold-ms``)."""
STARTUP_BOUND_MS = 1000.0
"""Start-up delay a real-time stream may take when the SLO bounds no ttfa."""
MIN_DURATION_S = 5.0
"""Shortest measured window of a valid level (default of ``--min-duration``)."""
SENT_FRACTION = 0.95
"""A generator that sent less than this share of the scheduled rate was saturated."""


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


@dataclass(frozen=True)
class Playback:
    """One stream as a listener heard it: the underruns (each the seconds from the audio running
    out to playing again), and the start-up delay (asking to the first sound)."""

    startup_s: float
    underruns: tuple[float, ...]

    def stalls(self, threshold_s: float = 0.0) -> list[float]:
        """The underruns longer than ``threshold_s`` (shorter ones are jitter)."""
        return [u for u in self.underruns if u > threshold_s]

    @property
    def worst_s(self) -> float:
        """The longest underrun, s; 0 when the audio never ran out."""
        return max(self.underruns, default=0.0)


def playback(arrivals: list[tuple[float, float]], start: float, buffer_s: float) -> Playback:
    """Playback of one stream by a listener with a jitter buffer of ``buffer_s`` seconds.

    ``arrivals`` are (time, audio seconds received so far). The listener asks at ``start``,
    begins playing once ``buffer_s`` of audio (or the whole stream) has arrived, plays in real
    time, and when the audio runs out waits — an underrun — until ``buffer_s`` more (or the rest)
    has arrived.
    """
    if not arrivals:
        return Playback(0.0, ())
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
    startup, playhead, underruns = wall - start, 0.0, []
    while playhead < total - eps:
        available = received_by(wall)
        later = [t for t, _ in arrivals if t > wall + eps]
        next_arrival = later[0] if later else float("inf")
        runs_out = wall + (available - playhead)
        if runs_out < next_arrival - eps:  # audio ends before more arrives: a stall, unless done
            playhead, wall = available, runs_out
            if playhead >= total - eps:
                break
            resume = when_buffered(min(playhead + max(buffer_s, eps), total), after=wall)
            underruns.append(resume - wall)
            wall = resume
        else:
            playhead += next_arrival - wall
            wall = next_arrival
    return Playback(startup, tuple(underruns))


def stalls(
    arrivals: list[tuple[float, float]], start: float, buffer_s: float
) -> tuple[int, float, float]:
    """(stall count, total stall seconds, start-up delay seconds) of :func:`playback`, every
    underrun counted."""
    heard = playback(arrivals, start, buffer_s)
    return len(heard.underruns), sum(heard.underruns), heard.startup_s


def _ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


def _realtime(r: RequestRecord, heard: Playback, threshold_s: float, bound_ms: float) -> bool:
    """A real-time stream: started within ``bound_ms`` and no underrun over ``threshold_s``."""
    return not heard.stalls(threshold_s) and heard.startup_s * 1000 <= bound_ms


def _concurrent(
    streams: list[tuple[RequestRecord, bool]], window: tuple[float, float] | None
) -> float | None:
    """Real-time listeners fed at once: audio seconds of the real-time streams that ended in the
    window, per second of it (each listener plays its stream for its audio's length)."""
    if window is None:
        return None
    t0, t1 = window
    return sum(r.audio_seconds for r, good in streams if good and t0 <= r.done < t1) / (t1 - t0)


def _stalls(
    streamed: list[RequestRecord],
    warm: list[RequestRecord],
    buffer_ms: float,
    threshold_ms: float,
    startup_bound_ms: float,
    window: tuple[float, float] | None,
) -> Stalls:
    """The playback figures of the measured streams; ``warm`` (the warm-up's streams) count only
    towards the listeners fed at once in the window, as their completions count in throughput."""
    heard = [playback(r.arrivals, r.due, buffer_ms / 1000) for r in streamed]
    threshold = threshold_ms / 1000
    found = [h.stalls(threshold) for h in heard]
    worst = [h.worst_s * 1000 for h in heard]
    good = [
        _realtime(r, h, threshold, startup_bound_ms) for r, h in zip(streamed, heard, strict=True)
    ]
    early = [
        (
            r,
            _realtime(
                r, playback(r.arrivals, r.due, buffer_ms / 1000), threshold, startup_bound_ms
            ),
        )
        for r in warm
        if window is not None and r.done >= window[0]
    ]
    concurrent = _concurrent([*zip(streamed, good, strict=True), *early], window)
    stalled = sum(1 for st in found if st)
    return Stalls(
        buffer_ms=buffer_ms,
        streams=len(heard),
        streams_with_stalls=stalled,
        stall_rate=stalled / len(heard),
        count=Percentiles.model_validate(dist([float(len(st)) for st in found])),
        stall_ms=Percentiles.model_validate(dist([sum(st) * 1000 for st in found])),
        startup_ms=Percentiles.model_validate(dist([h.startup_s * 1000 for h in heard])),
        stall_threshold_ms=threshold_ms,
        worst_underrun_ms=percentiles(worst),
        continuity_100ms=sum(1 for w in worst if w <= 100) / len(worst),
        continuity_200ms=sum(1 for w in worst if w <= 200) / len(worst),
        startup_bound_ms=startup_bound_ms,
        realtime_streams=sum(good),
        realtime_concurrent=concurrent,
    )


def sending_window(measured: list[RequestRecord]) -> tuple[float, float] | None:
    """[start, end) of the measured requests' sending window: from the first due time for ``n``
    mean gaps between due times; None for fewer than two requests or no spread."""
    if len(measured) < 2:
        return None
    dues = [r.due for r in measured]
    first, last = min(dues), max(dues)
    if last <= first:
        return None
    return first, first + (last - first) * len(dues) / (len(dues) - 1)


def _overlap(r: RequestRecord, t0: float, t1: float) -> float:
    end = r.done if r.done >= 0 else t1
    return max(0.0, min(end, t1) - max(r.due, t0))


def _pcm_rate(ok: list[RequestRecord]) -> tuple[int, PcmSource] | None:
    """The (Hz, source) most raw PCM answers were read at; None when none was raw PCM."""
    found = Counter((r.sample_rate, r.rate_source) for r in ok if r.rate_source in _PCM_SOURCES)
    if not found:
        return None
    (rate, source), _ = found.most_common(1)[0]
    return rate, cast(PcmSource, source)


def _when_failed(r: RequestRecord, at: float) -> float:
    """Seconds from due to ``at`` (a time the request reached), else to when it ended."""
    return (at if at >= 0 else r.done) - r.due


def _timed_out(r: RequestRecord, timeout_s: float | None) -> float:
    """Seconds from due to the client's timeout of a request that has no end recorded."""
    return (r.sent if r.sent >= 0 else r.due) - r.due + (timeout_s or 0.0)


def _decode_rate(r: RequestRecord, tokens: int) -> float | None:
    """A chat request's tokens per second after its first token: (tokens − 1) / (last content
    delta − first delta); when one delta carried them all, over the time to the end of the body.
    (The last delta, not the body's end: the usage and ``[DONE]`` events after it are no
    decoding.)"""
    span = r.last_token - r.first_token
    if span <= 0:
        span = r.done - r.first_token
    if tokens < 2 or span <= 0:
        return None
    return (tokens - 1) / span


def _gaps(r: RequestRecord) -> list[float]:
    times = r.token_times
    return [b - a for a, b in pairwise(times)]


def chat_figures(
    records: list[RequestRecord], ok: list[RequestRecord], window: tuple[float, float] | None
) -> dict[str, object]:
    """The chat fields of a level (:class:`LoadLevel` ttft_ms, itl_ms, tokens_per_second,
    output_tokens_per_second, tokens_source) and its samples' ttft_ms and tokens_per_second.

    Token counts are the server's ``usage.completion_tokens`` when every successful request had
    one (``usage``), else the content deltas counted (``counted``) for all of them, so one level
    never mixes the two. ttft counts from the intended send time, like latency; successes only.
    Output tokens per second: the tokens of the successes completed inside the sending window
    (warm-up included, as for achieved_rate), per second of the window."""
    answered = [r for r in ok if r.first_token >= 0]
    if not answered:
        return {}
    source = "usage" if all(r.usage_tokens >= 0 for r in ok) else "counted"

    def tokens(r: RequestRecord) -> int:
        return r.usage_tokens if source == "usage" and r.usage_tokens >= 0 else r.deltas

    ttft = [(r.first_token - r.due) * 1000 for r in answered]
    rates = [v for r in answered if (v := _decode_rate(r, tokens(r))) is not None]
    itl = [g * 1000 for r in answered for g in _gaps(r)]
    out: dict[str, object] = {
        "ttft_ms": percentiles(ttft),
        "itl_ms": percentiles(itl),
        "tokens_per_second": percentiles(rates),
        "tokens_source": source,
        "samples": {"ttft_ms": ttft, "tokens_per_second": rates},
    }
    if window is not None:
        t0, t1 = window
        done_in = [
            r for r in records if r.error is None and r.first_token >= 0 and t0 <= r.done < t1
        ]
        total = sum(tokens(r) for r in done_in)
        out["output_tokens_per_second"] = total / (t1 - t0)
    return out


def summarize_level(
    level: Level,
    records: list[RequestRecord],
    *,
    warmup_s: float,
    wall_s: float,
    buffer_ms: float,
    max_lag_ms: float,
    stall_threshold_ms: float = STALL_THRESHOLD_MS,
    startup_bound_ms: float = STARTUP_BOUND_MS,
    max_error_rate: float = MAX_ERROR_RATE,
    min_duration_s: float = MIN_DURATION_S,
    timeout_s: float | None = None,
    corpus: Corpus | None = None,
) -> LoadLevel:
    """Everything reported for one level, its validity, plus its raw samples.

    ``timeout_s`` is the client's timeout: a measured request that never ended (no ``done``;
    the client records a timeout at the moment it fired, so this is only a fallback) counts in
    the all-request distributions as failing at its send time plus the timeout. ``corpus``: the
    references and input audio of a transcription target's items
    (:func:`~voxbench.load.transcriptions.transcription_figures`)."""
    measured = [r for r in records if r.due >= warmup_s]
    ok = [r for r in measured if r.error is None and r.done >= 0]
    errors = Counter(r.error for r in measured if r.error)
    sent = [r.sent for r in measured if r.sent >= 0]
    window = sending_window(measured)
    if window is None and measured:  # one request: from its due time to its end
        first = min(r.due for r in measured)
        last = max(max((r.done for r in measured), default=first), first)
        window = (first, last) if last > first else None
    achieved = audio_rate = in_flight = span = None
    if window is not None:
        t0, t1 = window
        span = t1 - t0
        done_in = [r for r in records if r.error is None and t0 <= r.done < t1]
        achieved = len(done_in) / span
        audio_rate = sum(r.audio_seconds for r in done_in) / span
        in_flight = sum(_overlap(r, t0, t1) for r in records if r.sent >= 0) / span
    latency = [r.done - r.due for r in ok]
    ttfa = [r.first_audio - r.due for r in ok if r.first_audio >= 0]
    ttfb = [r.first_byte - r.due for r in ok if r.first_byte >= 0]
    ended = [r for r in measured if r.done >= 0]
    unended = [] if timeout_s is None else [r for r in measured if r.done < 0]
    latency_all = [r.done - r.due for r in ended] + [_timed_out(r, timeout_s) for r in unended]
    lag = [r.sent - r.due for r in measured if r.sent >= 0]
    rtf = [(r.done - r.due) / r.audio_seconds for r in ok if r.audio_seconds > 0]
    lag_d = percentiles(_ms(lag))
    pcm = _pcm_rate(ok)
    result = LoadLevel(
        label=level.label,
        kind=level.kind,
        value=level.value,
        requests=len(measured),
        warmup_requests=len(records) - len(measured),
        ok=len(ok),
        offered_rate=level.value if level.kind == "rate" else None,
        sent_rate=_rate(sent),
        achieved_rate=achieved,
        audio_seconds_per_second=audio_rate,
        in_flight_mean=in_flight,
        window_s=span,
        error_rate=(sum(errors.values()) / len(measured)) if measured else None,
        errors=dict(errors),
        error_examples={k: next(r.detail for r in measured if r.error == k) for k in errors},
        latency_ms=percentiles(_ms(latency)),
        ttfa_ms=percentiles(_ms(ttfa)),
        ttfb_ms=percentiles(_ms(ttfb)),
        latency_all_ms=percentiles(_ms(latency_all)),
        ttfa_all_ms=percentiles(
            _ms([_when_failed(r, r.first_audio) for r in ended] + latency_all[len(ended) :])
        ),
        ttfb_all_ms=percentiles(
            _ms([_when_failed(r, r.first_byte) for r in ended] + latency_all[len(ended) :])
        ),
        lag_ms=lag_d,
        rtf=percentiles(rtf),
        saturated=False,
        wall_s=wall_s,
        samples=LevelSamples(
            latency_ms=_ms(latency),
            ttfa_ms=_ms(ttfa),
            lag_ms=_ms(lag),
            latency_all_ms=_ms(latency_all),
        ),
    )
    if pcm is not None:
        result.pcm_sample_rate, result.pcm_sample_rate_source = pcm
    chat = chat_figures(records, ok, window)
    if chat:
        samples = cast(dict[str, list[float]], chat.pop("samples"))
        result.samples.ttft_ms = samples["ttft_ms"]
        result.samples.tokens_per_second = samples["tokens_per_second"]
        for name, value in chat.items():
            setattr(result, name, value)
    if corpus is not None:
        stt = transcription_figures(records, ok, window, corpus)
        result.audio_seconds_per_second = stt.audio_seconds_per_second
        result.rtf = percentiles(stt.rtf)
        if stt.wer is not None:
            result.wer, result.cer, result.wer_requests = stt.wer, stt.cer, stt.wer_requests
    streamed = [r for r in ok if r.arrivals]  # one chunk is a stream too: it never stalls
    if streamed:
        warm = [r for r in records if r.due < warmup_s and r.error is None and r.arrivals]
        result.stalls = _stalls(
            streamed, warm, buffer_ms, stall_threshold_ms, startup_bound_ms, window
        )
    generator = generator_reasons(
        result, scheduled_rate=_rate([r.due for r in measured]), max_lag_ms=max_lag_ms
    )
    result.saturated = bool(generator)
    result.validity = verdict(
        level_reasons(
            result, generator, max_error_rate=max_error_rate, min_duration_s=min_duration_s
        )
    )
    return result


def _rate(times: list[float]) -> float | None:
    """Events per second between the first and the last of ``times``; None without a spread."""
    spread = max(times) - min(times) if len(times) > 1 else 0.0
    return (len(times) - 1) / spread if spread > 0 else None


def generator_reasons(
    level: LoadLevel, *, scheduled_rate: float | None, max_lag_ms: float
) -> list[str]:
    """Why the load generator, not the server, set the level's pace (none: it kept up): it sent
    under :data:`SENT_FRACTION` of the scheduled rate, or its schedule lag p99 is over the limit."""
    reasons = []
    if (
        level.kind == "rate"
        and scheduled_rate
        and level.sent_rate is not None
        and level.sent_rate < SENT_FRACTION * scheduled_rate
    ):
        reasons.append(
            f"load generator saturated: sent {level.sent_rate:.4g}/s of {scheduled_rate:.4g}/s "
            "scheduled"
        )
    lag_p99 = level.lag_ms.p99 if level.lag_ms else None
    if lag_p99 is not None and lag_p99 > max_lag_ms:
        reasons.append(f"schedule lag p99 {lag_p99:.3g} ms over the {max_lag_ms:g} ms limit")
    return reasons


def level_reasons(
    level: LoadLevel, generator: list[str], *, max_error_rate: float, min_duration_s: float
) -> list[str]:
    """Why a level's figures may not be quoted (none: valid), after MLPerf LoadGen's rules:
    enough samples, a generator that kept its schedule (``generator``: its
    :func:`generator_reasons`), few errors, a long enough window."""
    reasons = []
    if level.requests < MIN_SAMPLES:
        reasons.append(
            f"too few samples: {level.requests} measured requests (fewer than {MIN_SAMPLES})"
        )
    reasons += generator
    if level.error_rate is not None and level.error_rate > max_error_rate:
        reasons.append(f"error rate {level.error_rate:.2%} over the {max_error_rate:.2%} limit")
    if level.requests and (level.window_s or 0.0) < min_duration_s:
        reasons.append(
            f"duration {level.window_s or 0.0:.3g} s under the {min_duration_s:g} s minimum"
        )
    return reasons
