"""Views of a pipeline run (``voxbench pipeline``): the target table, the chain per prompt and
mode, where the time goes, and the components' starts. Read from the document alone."""

from __future__ import annotations

from voxbench.report.format import (
    INVALID,
    Section,
    environment_lines,
    fmt,
    fmt_rtf,
    invalid_note,
    is_invalid,
    section_markdown,
)
from voxbench.results.document import Case, ResultDocument, Summary
from voxbench.results.pipeline_doc import TargetCheck

ECHO_NOTE = "LLM: `echo` — no language model ran; the answer is the transcript (STT → TTS alone)."
TIMES_NOTE = (
    "Times from the end of the user's speech, medians over the measured conversations. "
    "`first audible`: to the first audible sample of the answer (leading silence skipped, as "
    "a listener hears it); `first byte`: to its first audio byte; `whole answer`: to its last. "
    "Stages to the first byte: `stt` (end of speech → transcript), `llm` (sequential: the whole "
    "answer; streaming: its first sentence), `tts` (to its first audio); `lost` = first byte − "
    "their sum: time the chain loses between stages."
)


def _med(s: Summary | None, digits: int = 0) -> str:
    return fmt(s.median if s else None, digits)


def _verdict(row: TargetCheck) -> str:
    if row.passed is None:
        return row.note or "–"
    return "PASS" if row.passed else "FAIL"


def _target_rows(rows: list[TargetCheck]) -> list[list[str]]:
    out = []
    for r in rows:
        stat = "" if r.stat == "median" else f" ({r.stat})"
        out.append(
            [
                r.mode or "",
                r.label + stat,
                f"{r.op} {r.target:g} {r.unit}".strip(),
                fmt(r.actual, 1) + (f" {r.unit}" if r.actual is not None and r.unit else ""),
                _verdict(r),
            ]
        )
    return out


def targets(doc: ResultDocument) -> Section | None:
    """Target against actual, per mode, over all its conversations."""
    if doc.pipeline is None or not doc.pipeline.targets:
        return None
    note = "Each figure's median (unless named) over every measured conversation of the mode."
    if doc.pipeline.settings.get("echo"):
        note += " " + ECHO_NOTE
    return Section(
        "Pipeline targets",
        ["mode", "figure", "target", "actual", "verdict"],
        _target_rows(doc.pipeline.targets),
        note,
        {"actual"},
    )


def _llm_cell(case: Case) -> str:
    p = case.pipeline
    assert p is not None
    if p.llm_is_echo:
        return "echo"
    return _med(p.llm_ms if p.mode == "sequential" else p.llm_first_sentence_ms)


def chain(doc: ResultDocument) -> Section | None:
    """Per prompt and mode: what the listener waited for, and each stage."""
    cases = [c for c in doc.cases if c.pipeline is not None]
    if not cases:
        return None
    rows = []
    for c in cases:
        p = c.pipeline
        assert p is not None
        rows.append(
            [
                c.input_id,
                p.mode,
                _med(c.ttfa_ms),
                _med(p.first_byte_ms),
                _med(c.latency_ms),
                _med(p.stt_ms),
                _llm_cell(c),
                _med(p.tts_first_audio_ms),
                _med(p.handoff_ms, 1),
                p.bottleneck or "–",
                f"{c.accuracy.wer * 100:.0f}%" if c.accuracy else "–",
                # echo's "tokens" are the transcript's words, answered in microseconds: no
                # model's TTFT or rate, so none is shown (ECHO_NOTE says why)
                "–" if p.llm_is_echo else fmt(c.ttft_ms.median if c.ttft_ms else None, 0),
                "–" if p.llm_is_echo else fmt(c.tokens_per_second, 1),
                fmt(p.stall_ms, 0) if p.mode == "streaming" else "–",
                str(c.error_count) if c.error_count else "",
                INVALID if is_invalid(c.validity) else "",
            ]
        )
    headers = [
        "prompt",
        "mode",
        "first audible ms",
        "first byte ms",
        "whole answer ms",
        "stt ms",
        "llm ms",
        "tts ms",
        "lost ms",
        "bottleneck",
        "WER",
        "ttft ms",
        "tok/s",
        "stalls ms",
        "errors",
        "validity",
    ]
    keep = [
        i
        for i, h in enumerate(headers)
        if not (h in ("errors", "validity") and not any(r[i] for r in rows))
    ]
    note = TIMES_NOTE
    if any(c.pipeline and c.pipeline.llm_is_echo for c in cases):
        note += " " + ECHO_NOTE
    invalid = [invalid_note(c.id, c.validity) for c in cases if is_invalid(c.validity)]
    if invalid:
        note += "\n\n" + "\n".join(f"- {n}" for n in invalid)
    return Section(
        "Pipeline",
        [headers[i] for i in keep],
        [[r[i] for i in keep] for r in rows],
        note,
        {h for h in headers if h.endswith(("ms", "s")) or h == "WER"},
    )


def shares(doc: ResultDocument) -> Section | None:
    """Where the time to the first audio byte goes, and the stage sum against the measured."""
    cases = [c for c in doc.cases if c.pipeline is not None]
    if not cases:
        return None
    rows = []
    for c in cases:
        p = c.pipeline
        assert p is not None
        share = {k: f"{v * 100:.0f}%" for k, v in p.shares.items()}
        first = p.first_byte_ms.median if p.first_byte_ms else None
        diff = first - p.stage_sum_ms if first is not None and p.stage_sum_ms is not None else None
        rows.append(
            [
                c.input_id,
                p.mode,
                share.get("stt", "–"),
                share.get("llm", "–"),
                share.get("tts", "–"),
                share.get("handoff", "–"),
                fmt(p.stage_sum_ms, 0),
                fmt(first, 0),
                fmt(diff, 1),
                fmt_rtf(p.tts_rtf),
                fmt(p.leading_silence_ms, 0),
                fmt(p.sentences, 0),
            ]
        )
    return Section(
        "Pipeline stage shares",
        [
            "prompt",
            "mode",
            "stt",
            "llm",
            "tts",
            "lost",
            "stage sum ms",
            "first byte ms",
            "difference ms",
            "tts rtf ↓",
            "lead silence ms",
            "sentences",
        ],
        rows,
        "Each stage's median over the median time to the first audio byte; the stage sum beside "
        "the measured first byte (the difference is time lost between stages). `tts rtf` = TTS "
        "busy time / answer audio time.",
        {"stage sum ms", "first byte ms", "difference ms", "tts rtf ↓", "lead silence ms"},
    )


def components(doc: ResultDocument) -> Section | None:
    """Each component's start (import, load) and what it can do."""
    if doc.pipeline is None or not doc.pipeline.components:
        return None
    rows = [
        [
            c.role,
            c.engine,
            fmt(c.import_ms, 0),
            fmt(c.load_ms, 0),
            fmt(c.total_ms, 0),
            "yes" if c.streams else "no",
            "yes" if c.listens else ("–" if c.role != "stt" else "no"),
        ]
        for c in doc.pipeline.components
    ]
    return Section(
        "Pipeline components",
        ["role", "engine", "import ms", "load ms", "init ms", "streams", "listens live"],
        rows,
        "Initialisation of each component, once, before any conversation (its cold start); "
        "`listens live`: the recogniser is fed the speech at real-time pace in streaming mode.",
        {"import ms", "load ms", "init ms"},
    )


def _pct(s: Summary | None, name: str) -> str:
    return fmt(getattr(s, name) if s else None, 0)


def levels(doc: ResultDocument) -> Section | None:
    """Many conversations at once: per level, what the users waited for, and the SLO."""
    if doc.pipeline is None or not doc.pipeline.levels:
        return None
    rows = []
    for lv in doc.pipeline.levels:
        rows.append(
            [
                lv.label,
                str(lv.conversations),
                str(lv.failed) if lv.failed else "",
                fmt(lv.achieved_rate, 2),
                _pct(lv.first_audio_all_ms, "median"),
                _pct(lv.first_audio_all_ms, "p95"),
                _pct(lv.first_audio_all_ms, "p99"),
                _pct(lv.stt_ms, "median"),
                _pct(lv.llm_ttft_ms, "median"),
                _pct(lv.tts_first_audio_ms, "median"),
                "echo"
                if doc.pipeline.settings.get("echo")
                else fmt(lv.tokens_per_second.median if lv.tokens_per_second else None, 1),
                fmt(lv.lag_ms.p99 if lv.lag_ms else None, 1),
                {True: "PASS", False: "FAIL"}.get(lv.meets_slo, "–")
                if lv.meets_slo is not None
                else "–",
                INVALID if is_invalid(lv.validity) else "",
            ]
        )
    cap = doc.pipeline.capacity
    slo = cap.get("slo", doc.pipeline.settings.get("slo", ""))
    found = ", ".join(
        f"{mode}: {value:g} conversations/s" if value else f"{mode}: none"
        for mode, value in cap.items()
        if mode != "slo"
    )
    note = (
        "Open loop: users start speaking on a seeded schedule whether or not earlier ones were "
        "answered; `first audible` counts every conversation (a failed one at the time it took "
        "to fail); stage columns are medians of the successful ones; `lag p99`: how late the "
        f"generator started conversations. SLO `{slo}`; capacity (valid levels meeting it): "
        f"{found or '–'}."
    )
    invalid = [
        invalid_note(lv.label, lv.validity) for lv in doc.pipeline.levels if is_invalid(lv.validity)
    ]
    if invalid:
        note += "\n\n" + "\n".join(f"- {n}" for n in invalid)
    return Section(
        "Pipeline under load",
        [
            "level",
            "conversations",
            "failed",
            "done/s",
            "first audible p50",
            "p95",
            "p99",
            "stt p50",
            "ttft p50",
            "tts p50",
            "tok/s p50",
            "lag p99 ms",
            "SLO",
            "validity",
        ],
        rows,
        note,
        {
            "conversations",
            "failed",
            "done/s",
            "first audible p50",
            "p95",
            "p99",
            "stt p50",
            "ttft p50",
            "tts p50",
            "tok/s p50",
            "lag p99 ms",
        },
    )


def pipeline_sections(doc: ResultDocument) -> list[Section]:
    """Every pipeline view that has data, in report order."""
    found = [levels(doc), targets(doc), chain(doc), shares(doc), components(doc)]
    return [s for s in found if s is not None]


def render_pipeline_markdown(doc: ResultDocument) -> str:
    """report.md of a pipeline run."""
    lines = [f"# voxbench pipeline {doc.run_id}", "", *environment_lines(doc)]
    settings = doc.pipeline.settings if doc.pipeline else {}
    if settings:
        chain_text = f"{settings.get('stt')} → {settings.get('llm')} → {settings.get('tts')}"
        lines.append(
            f"- **chain** {chain_text}; workload `{settings.get('workload')}`, modes "
            f"{', '.join(settings.get('modes', []))}, {settings.get('warmup')} warm-up + "
            f"{settings.get('iterations')} measured conversations per prompt and mode"
        )
        if settings.get("argv"):
            lines.append(f"- **command** `voxbench {' '.join(settings['argv'])}`")
    for section in pipeline_sections(doc):
        lines += section_markdown(section)
    audio = [c for c in doc.cases if c.audio_file]
    if audio:
        lines += ["", "## Listen", ""]
        for c in audio:
            said = (c.pipeline.answer or "") if c.pipeline else ""
            lines.append(f"- [{c.id}]({c.audio_file}): {said[:200]}")
    return "\n".join(lines) + "\n"
