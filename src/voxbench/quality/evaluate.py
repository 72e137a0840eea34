"""Quality of a finished run: every metric on every case's saved audio, with targets and verdicts.

Reads only the result document and the run folder (``audio/``), so ``voxbench quality RUN_DIR``
gives the same answer later as ``voxbench run --quality`` did at the time. What a case is judged
against comes from its inputs:

- ``input_text`` (text workloads): the words for WER/CER;
- ``input_meta["melody"]`` (e.g. ``singing30``): the target melody for pitch, transposed by the
  engine's own ``pitch_shift_semitones`` (from ``engine_info``) for a voice converter;
- ``input_meta["reference"]`` (a JSONL workload's ``"reference"`` field): reference audio for
  PESQ/STOI, spectral distances, speaker similarity, and pitch when no melody is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable, Note
from voxbench.quality.targets import Target
from voxbench.results.document import Case, QualityScore, QualitySettings, ResultDocument

Progress = Callable[[int, int, str], None]


def read_clip(path: Path) -> Clip:
    """Mono float32 audio from a file (channels averaged)."""
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return Clip(np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32), int(rate))


def midi_melody(path: Path) -> list[tuple[float, float, float]]:
    """``(onset s, duration s, MIDI pitch)`` of every note in a MIDI file, tempo changes honoured
    (mido's playback clock); a note is closed by its note_off or a note_on with velocity 0."""
    import mido

    notes: list[tuple[float, float, float]] = []
    sounding: dict[tuple[int, int], float] = {}
    now = 0.0
    for msg in mido.MidiFile(str(path)):
        now += msg.time
        if msg.type not in ("note_on", "note_off"):
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault(key, now)
        elif key in sounding:
            onset = sounding.pop(key)
            notes.append((onset, now - onset, float(msg.note)))
    return sorted(notes)


def melody_of(case: Case) -> tuple[Note, ...] | None:
    """The input's target melody (a note list, or a MIDI file's path), transposed by the
    engine's reported pitch shift."""
    raw = case.input_meta.get("melody")
    if not raw:
        return None
    if isinstance(raw, str):
        raw = midi_melody(Path(raw))
    shift = float(case.engine_info.get("pitch_shift_semitones", 0.0) or 0.0)
    return tuple(Note(float(o), float(d), float(p) + shift) for o, d, p in raw)


def case_item(case: Case, run_dir: Path) -> tuple[Item | None, str]:
    """The :class:`Item` a case is judged on, or None and the reason there is none."""
    if not case.audio_file:
        if case.error_count and not case.latency_ms:
            return None, "the case failed; no audio to judge"
        return None, "no audio saved for this case (run without --no-audio)"
    path = run_dir / case.audio_file
    if not path.is_file():
        return None, f"audio file {path} is missing"
    reference = None
    ref_path = case.input_meta.get("reference")
    if isinstance(ref_path, str):
        if not Path(ref_path).is_file():
            return None, f"reference audio {ref_path} is missing"
        reference = read_clip(Path(ref_path))
    item = Item(
        audio=read_clip(path),
        text=case.input_text if case.input_kind == "text" else None,
        reference=reference,
        melody=melody_of(case),
    )
    return item, ""


def judged_against(metric: Metric, item: Item) -> str:
    parts = []
    for need in metric.needs:
        if need == "text":
            parts.append("input text")
        elif need == "reference":
            parts.append("reference audio")
        elif need == "melody" or (need == "pitch_target" and item.melody):
            parts.append("target melody")
        elif need == "pitch_target":
            parts.append("reference audio")
    return ", ".join(parts) or "none (no reference)"


def _unavailable(metric: Metric, reason: str) -> dict[str, QualityScore]:
    return {
        v.name: QualityScore(
            metric=metric.name,
            family=metric.family,
            unit=v.unit,
            higher_is_better=v.higher_is_better,
            available=False,
            reason=reason,
        )
        for v in metric.values
    }


def score_case(
    case: Case, item: Item | None, why_not: str, metrics: list[Metric], targets: dict[str, Target],
    on_metric: Callable[[str], None] | None = None,
) -> dict[str, QualityScore]:  # fmt: skip
    """Every value of every metric for one case; failures become reasons, never numbers."""
    scores: dict[str, QualityScore] = {}
    for metric in metrics:
        if on_metric:
            on_metric(metric.name)
        reason = why_not or metric.unavailable() or ""
        if not reason and metric.speech_only and case.input_kind == "midi":
            reason = "a speech metric; this case renders music from MIDI"
        if not reason and item is not None:
            reason = metric.missing_inputs(item) or ""
        if reason or item is None:
            scores.update(_unavailable(metric, reason))
            continue
        start = time.perf_counter()
        try:
            computed: dict[str, Any] = metric.compute(item)
        except MetricUnavailable as exc:
            scores.update(_unavailable(metric, str(exc)))
            continue
        except Exception as exc:  # a metric bug or a library refusing this audio: say so
            scores.update(_unavailable(metric, f"failed: {type(exc).__name__}: {exc}"))
            continue
        seconds = time.perf_counter() - start
        value_names = {v.name for v in metric.values}
        details = {k: v for k, v in computed.items() if k not in value_names}
        for v in metric.values:
            raw = computed.get(v.name)
            if raw is None or raw != raw:  # missing or NaN
                scores[v.name] = _unavailable(metric, "no value for this input")[v.name]
                continue
            target = targets.get(v.name)
            scores[v.name] = QualityScore(
                metric=metric.name,
                family=metric.family,
                value=float(raw),
                unit=v.unit,
                higher_is_better=v.higher_is_better,
                target=target.value if target else None,
                target_op=target.op if target else None,
                passed=target.check(float(raw)) if target else None,
                judged_against=judged_against(metric, item),
                compute_s=seconds,
                details=details,
            )
    return scores


def evaluate_document(
    doc: ResultDocument,
    run_dir: Path,
    metrics: list[Metric],
    targets: dict[str, Target],
    progress: Progress | None = None,
) -> ResultDocument:
    """Fill ``case.quality`` for every case and ``doc.quality``; returns the same document."""
    from voxbench.results.folder import now_iso

    cases = [c for c in doc.cases if c.output_text is None or c.audio_file]
    total = len(cases) * len(metrics)
    done = 0
    start = time.perf_counter()
    for case in cases:
        item, why_not = case_item(case, run_dir)

        def tick(name: str, case: Case = case) -> None:
            nonlocal done
            if progress:
                progress(done, total, f"{name} · {case.id}")
            done += 1

        case.quality = score_case(case, item, why_not, metrics, targets, on_metric=tick)
    if progress:
        progress(total, total, "done")
    doc.quality = QualitySettings(
        metrics=[m.name for m in metrics],
        targets={name: t.text() for name, t in targets.items()},
        evaluated_at=now_iso(),
        compute_s=time.perf_counter() - start,
        unavailable={m.name: r for m in metrics if (r := m.unavailable())},
    )
    return doc
