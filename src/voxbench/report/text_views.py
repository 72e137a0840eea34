"""Views of engines that answer text: speech recognition (corpus WER, RTFx) and LLMs (TTFT,
tokens/s, inter-token latency). Like :mod:`voxbench.report.views`, they only read the document."""

from __future__ import annotations

import statistics
from collections import defaultdict

from voxbench.report.format import UNSUPPORTED, Section, fmt, fmt_rtf, mark, unsupported_note
from voxbench.results.accuracy import corpus_rates
from voxbench.results.document import Case, ResultDocument


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def recognition(doc: ResultDocument) -> Section | None:
    """Corpus WER/CER, sentence accuracy and RTFx per engine, parameters and workload."""
    recognised = [c for c in doc.cases if c.accuracy is not None]
    if not recognised:
        return None
    groups: dict[tuple[str, str, str, str, int], list[Case]] = defaultdict(list)
    for c in recognised:
        params = ", ".join(f"{k}={v}" for k, v in c.params.items())
        groups[(c.engine, params, c.device, c.workload, c.batch_size)].append(c)
    rows = []
    for (engine, params, device, workload, batch), cases in groups.items():
        rates = corpus_rates(c.accuracy.model_dump() for c in cases if c.accuracy)
        assert rates is not None
        audio = sum((c.input_audio_seconds or 0.0) * c.batch_size for c in cases)
        wall = sum(c.latency_ms.median / 1000 for c in cases if c.latency_ms)
        rows.append(
            [
                engine,
                params,
                device,
                workload,
                str(batch),
                str(len(cases)),
                str(int(rates["reference_words"])),
                _pct(rates["wer"]),
                _pct(rates["cer"]),
                _pct(rates["sentence_accuracy"]),
                f"{int(rates['substitutions'])}/{int(rates['deletions'])}/"
                f"{int(rates['insertions'])}",
                fmt(audio / wall if wall > 0 else None, 1),
                fmt_rtf(wall / audio if audio > 0 else None),
                fmt(_median([c.latency_ms.median for c in cases if c.latency_ms]), 1),
            ]
        )
    headers = [
        "engine",
        "params",
        "device",
        "workload",
        "batch",
        "utterances",
        "words",
        "WER ↓",
        "CER ↓",
        "sentences right",
        "S/D/I",
        "rtfx ↑",
        "rtf ↓",
        "median ms",
    ]
    # the batch column when no call batched; device when all ran on the CPU; params when none set
    for i, idle in ((4, "1"), (2, "cpu"), (1, "")):
        if all(r[i] == idle for r in rows):
            headers.pop(i)
            rows = [r[:i] + r[i + 1 :] for r in rows]
    return Section(
        "Speech recognition",
        headers,
        rows,
        note="Corpus figures over the workload's utterances: WER = (substitutions + deletions + "
        "insertions) / reference words, after one normalisation (lowercase, no punctuation); "
        "sentences right = share recognised exactly. rtfx = seconds of input audio / seconds of "
        "processing, summed over the utterances (median call of each; a batched call counts its "
        "batch of copies), as the Open ASR Leaderboard defines it; rtf is its inverse.",
        numeric=set(headers[headers.index("utterances") :]),
    )


def generation(doc: ResultDocument) -> Section | None:
    """Time to first token, decode rate and inter-token latency of text-generating cases."""
    generated = [
        c for c in doc.cases if c.output_kind == "text" and c.accuracy is None and c.latency_ms
    ]
    if not generated:
        return None
    rows = []
    for c in generated:
        ttft, itl = c.ttft_ms, c.itl_ms
        server_rss = c.engine_info.get("server_rss_mb")
        first_call = c.cold_start.first_call_ms if c.cold_start else None
        rows.append(
            [
                c.id,
                fmt(c.cold_start_ms, 0),
                fmt(first_call, 0),
                fmt(ttft.median if ttft else None, 1),
                mark(fmt(ttft.p95 if ttft else None, 1), 95, ttft.n if ttft else None),
                fmt(c.tokens_per_second, 1),
                fmt(itl.median if itl else None, 1),
                mark(fmt(itl.p95 if itl else None, 1), 95, itl.n if itl else None),
                fmt(c.input_tokens, 0),
                fmt(c.output_tokens, 0),
                c.tokens_source or "–",
                fmt(c.latency_ms.median if c.latency_ms else None, 0),
                fmt(server_rss if isinstance(server_rss, (int, float)) else None, 0),
            ]
        )
    headers = [
        "case",
        "init ms",
        "first call ms",
        "ttft median ms",
        "ttft p95 ms",
        "tokens/s ↑",
        "itl median ms",
        "itl p95 ms",
        "input tokens",
        "output tokens",
        "tokens from",
        "total median ms",
        "server RSS MB",
    ]
    note = (
        "init = cold start (a server voxbench starts: until it answers, then the first call, the "
        "only one whose prompt is not in a server's prefix cache). ttft = time to the "
        "first streamed token; tokens/s = (output tokens − 1) / (time after the first token), "
        "median over calls (not streamed: tokens / total time); itl = gaps between streamed "
        "pieces. tokens from: `usage` (the server's count) or `counted` (streamed pieces, when "
        "the server sends no usage). server RSS: the model server's memory after load, when "
        "voxbench started it."
    )
    if any(r[4].endswith(UNSUPPORTED) or r[7].endswith(UNSUPPORTED) for r in rows):
        note += " \\" + unsupported_note(95)
    return Section("Text generation", headers, rows, note=note, numeric=set(headers[1:]))
