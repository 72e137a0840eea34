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

from voxbench.quality.base import Clip, Item, Metric, Note
from voxbench.quality.scoring import Entry, judged_against, score_case, score_entries, score_item
from voxbench.quality.targets import Target
from voxbench.results.document import Case, QualitySettings, ResultDocument

__all__ = ["judged_against", "score_case", "score_item"]  # re-exported: scored in scoring.py

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
    if not path.resolve().is_relative_to(run_dir.resolve()):
        return None, f"audio file {case.audio_file} is outside the run folder; not read"
    if not path.is_file():
        return None, f"audio file {path} is missing"
    ref_path = case.input_meta.get("reference")
    if isinstance(ref_path, str) and not Path(ref_path).is_file():
        return None, f"reference audio {ref_path} is missing"
    try:  # a file that is not audio (or MIDI) is this case's reason, not the end of the run
        reference = read_clip(Path(ref_path)) if isinstance(ref_path, str) else None
        audio = read_clip(path)
        melody = melody_of(case)
    except Exception as exc:  # soundfile's LibsndfileError, mido's many, a melody of non-numbers
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return None, f"cannot read this case's audio or melody: {type(exc).__name__}: {first}"
    text = case.input_text if case.input_kind == "text" else None
    return Item(audio=audio, text=text, reference=reference, melody=melody), ""


def evaluate_document(
    doc: ResultDocument,
    run_dir: Path,
    metrics: list[Metric],
    targets: dict[str, Target],
    progress: Progress | None = None,
    *,
    jobs: int | None = None,
) -> ResultDocument:
    """Fill ``case.quality`` for every case and ``doc.quality``; returns the same document.

    ``jobs``: worker processes for the metric families (:func:`voxbench.quality.scoring.
    score_entries`); None for one per CPU, 1 for everything in this process. The scores are the
    same either way.
    """
    from voxbench.results.folder import now_iso

    cases = [c for c in doc.cases if c.output_text is None or c.audio_file]
    entries: list[Entry] = []
    for case in cases:
        item, why_not = case_item(case, run_dir)
        entries.append(Entry(case.id, case.input_kind, item, why_not))
    start = time.perf_counter()
    scored = score_entries(entries, metrics, targets, jobs=jobs, progress=progress)
    for case, scores in zip(cases, scored, strict=True):
        case.quality = scores
    doc.quality = QualitySettings(
        metrics=[m.name for m in metrics],
        targets={name: t.text() for name, t in targets.items()},
        evaluated_at=now_iso(),
        compute_s=time.perf_counter() - start,
        unavailable={m.name: r for m in metrics if (r := m.unavailable())},
    )
    return doc
