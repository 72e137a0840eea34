"""From raw conversations to the figures of a pipeline case (docs/methodology.md, Pipelines).

Every figure is computed per conversation from its raw times, then summarised over the
conversations that succeeded; the raw values stay in ``PipelineCase.samples``. Times are from
the end of the user's speech (``end_of_speech_ns``):

- ``first_audio_ms`` (the case's ``ttfa_ms``): to the first audible sample, as the listener hears
  it (playback of the answer's chunks, leading silence skipped);
- ``first_byte_ms``: to the first audio byte; ``end_to_end_ms`` (the case's ``latency_ms``): to
  the last audio byte of the answer;
- the stages that lead to the first byte: ``stt_ms`` (end of speech → final transcript),
  the LLM's part (sequential: the whole answer, ``llm_ms``; streaming: to its first complete
  sentence, ``llm_first_sentence_ms``) and ``tts_first_audio_ms`` (TTS began → its first audio);
  ``handoff_ms`` = first byte − their sum: what the chain loses between stages (the transcript
  handed on, the sentence queued to the TTS thread).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from statistics import median
from typing import Any

from voxbench.pipeline.chain import Conversation, Mode
from voxbench.results.accuracy import corpus_rates, error_counts
from voxbench.results.document import Accuracy, ErrorRecord, StageSummary, Summary
from voxbench.results.pipeline_doc import PipelineCase
from voxbench.results.stats import summarize

NS_PER_MS = 1e6


def _ms(later: int | None, earlier: int | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier) / NS_PER_MS


def conversation_figures(conv: Conversation) -> dict[str, float | None]:
    """The figures of one conversation (milliseconds unless named otherwise)."""
    eos = conv.end_of_speech_ns
    play = conv.playback
    first_byte = _ms(play.first_byte_ns, eos)
    stt = _ms(conv.stt_done_ns, eos)
    llm_part = (
        _ms(conv.llm_done_ns, conv.llm_start_ns)
        if conv.mode == "sequential"
        else _ms(conv.llm_first_sentence_ns, conv.llm_start_ns)
    )
    tts_first = _ms(play.first_byte_ns, conv.tts_first_start_ns)
    parts = (stt, llm_part, tts_first)
    stage_sum = sum(p for p in parts if p is not None) if None not in parts else None
    tokens = conv.tokens
    rate: float | None = None
    times = conv.token_times_ns
    if tokens and tokens > 1 and len(times) > 1 and times[-1] > times[0]:
        rate = (tokens - 1) / ((times[-1] - times[0]) / 1e9)
    elif tokens and conv.llm_done_ns and conv.llm_start_ns and conv.llm_done_ns > conv.llm_start_ns:
        rate = tokens / ((conv.llm_done_ns - conv.llm_start_ns) / 1e9)
    audio_s = play.audio_seconds
    tts_busy_ms = conv.tts_busy_ns / NS_PER_MS if conv.tts_busy_ns else None
    return {
        "first_audio_ms": _ms(play.first_audible_ns, eos),
        "first_byte_ms": first_byte,
        "end_to_end_ms": _ms(play.last_arrival_ns, eos),
        "stt_ms": stt,
        "stt_first_partial_ms": _ms(conv.stt_first_partial_ns, conv.speech_start_ns),
        "llm_ttft_ms": _ms(conv.llm_first_token_ns, conv.llm_start_ns),
        "llm_ms": _ms(conv.llm_done_ns, conv.llm_start_ns),
        "llm_first_sentence_ms": _ms(conv.llm_first_sentence_ns, conv.llm_start_ns),
        "tts_first_audio_ms": tts_first,
        "tts_ms": tts_busy_ms,
        "tts_rtf": tts_busy_ms / 1000 / audio_s if tts_busy_ms and audio_s else None,
        "stage_sum_ms": stage_sum,
        "handoff_ms": first_byte - stage_sum
        if first_byte is not None and stage_sum is not None
        else None,
        "stall_ms": play.stall_ms,
        "stalls": float(len(play.stalls_ms)),
        "leading_silence_ms": play.leading_silence_s * 1000,
        "answer_audio_seconds": audio_s,
        "output_tokens": float(tokens) if tokens is not None else None,
        "tokens_per_second": rate,
        "sentences": float(conv.sentences),
        "input_tokens": float(conv.input_tokens) if conv.input_tokens is not None else None,
    }


def itl_ms(conv: Conversation) -> list[float]:
    """Gaps between the LLM's streamed pieces."""
    t = conv.token_times_ns
    return [(b - a) / NS_PER_MS for a, b in itertools.pairwise(t)]


def _summary(values: Sequence[float]) -> Summary | None:
    data = summarize(values)
    return Summary(**data) if data else None


def _median(values: Sequence[float]) -> float | None:
    return float(median(values)) if values else None


def case_figures(
    convs: Sequence[Conversation],
    *,
    mode: Mode,
    names: dict[str, str],
    reference: str | None,
    echo: bool,
) -> dict[str, Any]:
    """The Case fields of one prompt × mode: summaries, stages, accuracy, errors, the pipeline part.

    ``convs`` are the measured conversations (warm-ups excluded), in order.
    """
    good = [c for c in convs if c.error is None]
    rows = [conversation_figures(c) for c in good]
    samples: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                samples.setdefault(key, []).append(float(value))
    col = samples.get
    first_byte = _median(col("first_byte_ms", []))
    stage_parts = {
        "stt": _median(col("stt_ms", [])),
        "llm": _median(col("llm_ms" if mode == "sequential" else "llm_first_sentence_ms", [])),
        "tts": _median(col("tts_first_audio_ms", [])),
        "handoff": _median(col("handoff_ms", [])),
    }
    shares = {k: v / first_byte for k, v in stage_parts.items() if v is not None and first_byte}
    ranked: list[str] = [k for k in ("stt", "llm", "tts") if k in shares]
    bottleneck = max(ranked, key=lambda k: shares[k]) if ranked else None
    itl = [gap for c in good for gap in itl_ms(c)]
    counts = [error_counts(reference, c.transcript) for c in good] if reference else []
    valid_counts = [c for c in counts if c is not None]
    last_counts = valid_counts[-1] if valid_counts else None
    accuracy = None
    if last_counts is not None:
        rates = corpus_rates(valid_counts) or {}
        accuracy = Accuracy(
            **{
                **{k: last_counts[k] for k in Accuracy.model_fields if k in last_counts},
                "wer": rates.get("wer", last_counts["wer"]),
                "cer": rates.get("cer", last_counts["cer"]),
            }
        )
    errors = [
        ErrorRecord(
            phase="measure",
            iteration=n,
            type=c.error["type"],
            message=c.error["message"],
            where=c.error["stage"],
        )
        for n, c in enumerate(convs)
        if c.error is not None
    ]
    last = good[-1] if good else (convs[-1] if convs else None)
    pipeline = PipelineCase(
        mode=mode,
        stt=names["stt"],
        llm=names["llm"],
        tts=names["tts"],
        llm_is_echo=echo,
        stt_listened=any(c.listened for c in convs),
        llm_streamed=any(c.token_times_ns for c in good),
        tts_streamed=mode == "streaming" and bool(names.get("tts_streams")),
        first_byte_ms=_summary(col("first_byte_ms", [])),
        stt_ms=_summary(col("stt_ms", [])),
        stt_first_partial_ms=_summary(col("stt_first_partial_ms", [])),
        llm_ms=_summary(col("llm_ms", [])),
        llm_first_sentence_ms=_summary(col("llm_first_sentence_ms", []))
        if mode == "streaming"
        else None,
        tts_first_audio_ms=_summary(col("tts_first_audio_ms", [])),
        tts_ms=_summary(col("tts_ms", [])),
        tts_rtf=_median(col("tts_rtf", [])),
        handoff_ms=_summary(col("handoff_ms", [])),
        stage_sum_ms=_median(col("stage_sum_ms", [])),
        shares=shares,
        bottleneck=bottleneck,
        stall_ms=_median(col("stall_ms", [])),
        stalled=sum(1 for v in col("stalls", []) if v > 0),
        leading_silence_ms=_median(col("leading_silence_ms", [])),
        answer_audio_seconds=_median(col("answer_audio_seconds", [])),
        sentences=_median(col("sentences", [])),
        transcript=last.transcript if last else None,
        answer=last.answer if last else None,
        samples=samples,
    )
    stages = {
        k: StageSummary(median_ms=v, share=shares.get(k))
        for k, v in stage_parts.items()
        if v is not None
    }
    tokens_source = next((c.tokens_source for c in reversed(good) if c.tokens_source), None)
    return {
        "latency_ms": _summary(col("end_to_end_ms", [])),
        "ttfa_ms": _summary(col("first_audio_ms", [])),
        "ttft_ms": _summary(col("llm_ttft_ms", [])),
        "itl_ms": _summary(itl),
        "tokens_per_second": _median(col("tokens_per_second", [])),
        "output_tokens": _median(col("output_tokens", [])),
        "input_tokens": _median(col("input_tokens", [])),
        "tokens_source": tokens_source,
        "audio_seconds": pipeline.answer_audio_seconds,
        "accuracy": accuracy,
        "stages": stages,
        "errors": errors,
        "error_count": len(errors),
        "output_text": pipeline.answer,
        "pipeline": pipeline,
        "samples_latency": col("end_to_end_ms", []),
        "samples_ttfa": col("first_audio_ms", []),
    }
