"""Pitch accuracy: the F0 contour of the audio against a target melody or a reference recording.

F0 is Praat's autocorrelation tracker (Boersma 1993, "Accurate short-term analysis of the
fundamental frequency and the harmonics-to-noise ratio of a sampled sound"), called through
parselmouth's ``Sound.to_pitch_ac`` with a 10 ms hop and a 50-1100 Hz search range (speech and
singing, bass to soprano), all other settings Praat's defaults. A frame is voiced where Praat's
path finder picks a voiced candidate.

The target is, in order of preference:

- the item's melody, rendered to one F0 per frame at the audio's own frame times: a frame is
  voiced at the note's frequency while a note sounds (the latest-starting note wins where notes
  overlap) and unvoiced between notes;
- else the F0 contour of the reference audio, by the same tracker.

Alignment: frame k is compared with frame k (the longer side is cut) when the timing agrees: for a
reference, when the two clips' durations differ by at most 1 %; for a melody, when the audio's last
voiced frame is within 1 % of the melody's end (at least 0.1 s, the edge blur of a 60 ms analysis
window), so a tail of silence or breath after the last note does not count, while a shifted start,
a different tempo or a cut-off ending do. Otherwise the two contours are aligned by DTW
(:func:`voxbench.quality._dsp.dtw_path`) on F0 and voicing: a frame pair costs 0 when both are
unvoiced, 1 when one only is voiced, and ``min(|semitone difference|, 12) / 12`` when both are
voiced. The alignment therefore follows the notes and the voiced/unvoiced pattern; like every
DTW-based score it can only lower the error that a plain frame-by-frame comparison would show.

Values, over the compared frame pairs (DTW pairs count once each):

- ``f0_rmse_hz``, ``f0_rmse_cents``: root-mean-square F0 difference over pairs voiced on both
  sides, in Hz and in cents (``1200 * log2(f / f_target)``);
- ``vde``: voicing decision error, percent of all pairs whose voiced/unvoiced decisions differ;
- ``gpe``: gross pitch error, percent of pairs voiced on both sides whose F0 is more than 20 %
  off the target (Nakatani et al. 2008; Chu & Alwan 2009).

Where no pair is voiced on both sides, the F0 values and GPE are NaN (the evaluator reports them as
unavailable) while VDE is still reported.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from voxbench.quality._dsp import (
    LENGTH_TOLERANCE,
    dtw_path,
    lengths_differ,
    mono,
    trim_to_shorter,
)
from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable, Note, Value

if TYPE_CHECKING:
    import numpy as np

PITCH_FLOOR_HZ = 50.0
PITCH_CEILING_HZ = 1100.0
HOP_S = 0.01
GROSS_ERROR_RATIO = 0.2  # GPE: more than 20 % off the target
MELODY_END_TOLERANCE_S = 0.1  # where voicing ends is blurred by the analysis window
_OCTAVE_SEMITONES = 12.0  # DTW: the F0 cost saturates at an octave


def f0_contour(
    clip: Clip,
    *,
    floor_hz: float = PITCH_FLOOR_HZ,
    ceiling_hz: float = PITCH_CEILING_HZ,
    hop_s: float = HOP_S,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (s) and F0 (Hz, 0 where unvoiced) of ``clip`` by Praat's autocorrelation method.

    Raises :class:`MetricUnavailable` when the clip is too short for the pitch floor (Praat needs
    three periods of ``floor_hz``, 60 ms at 50 Hz).

    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> times, f0 = f0_contour(Clip(np.sin(2 * np.pi * 220 * t).astype(np.float32), 16000))
    >>> round(float(np.median(f0[f0 > 0])))
    220
    """
    import numpy as np
    import parselmouth

    sound = parselmouth.Sound(mono(clip.audio), sampling_frequency=float(clip.sample_rate))
    try:
        pitch = sound.to_pitch_ac(time_step=hop_s, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz)
    except parselmouth.PraatError as exc:
        reason = str(exc).splitlines()[0]
        raise MetricUnavailable(
            f"Praat cannot track pitch in {clip.seconds:.3f} s of audio: {reason}"
        ) from exc
    times = np.asarray(pitch.xs(), dtype=np.float64)
    f0 = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    return times, f0


def melody_f0(times: np.ndarray, notes: tuple[Note, ...] | list[Note]) -> np.ndarray:
    """Target F0 (Hz) at each of ``times``: the sounding note's frequency, 0 between notes.

    Where notes overlap, the one that started last wins (a monophonic rendering).
    """
    import numpy as np

    f0 = np.zeros(len(times))
    for note in sorted(notes, key=lambda n: n.onset):
        sounding = (times >= note.onset) & (times < note.onset + note.duration)
        f0[sounding] = note.hz
    return f0


def _target_contour(item: Item, times: np.ndarray) -> tuple[np.ndarray, float, str]:
    """The target F0 per frame, the target's duration (s) and what it came from.

    A melody is rendered on the audio's own frame grid, extended or cut to the melody's end.
    """
    import numpy as np

    if item.melody:
        end = max(n.onset + n.duration for n in item.melody)
        step = times[1] - times[0] if len(times) > 1 else HOP_S
        count = max(math.ceil((end - times[0]) / step), 1)
        return melody_f0(times[0] + step * np.arange(count), item.melody), end, "melody"
    if item.reference is None:
        raise MetricUnavailable("no target melody or reference audio for this input")
    _, target = f0_contour(item.reference)
    if not np.any(target > 0):
        raise MetricUnavailable("the reference audio has no voiced frame: no F0 to compare with")
    return target, item.reference.seconds, "reference"


def _pitch_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DTW cost between frames ``(voiced, semitones)``: see the module docstring."""
    import numpy as np

    va, vb = a[:, :1] > 0.5, b[None, :, 0] > 0.5
    steps = np.minimum(np.abs(a[:, 1:2] - b[None, :, 1]), _OCTAVE_SEMITONES) / _OCTAVE_SEMITONES
    return np.where(va != vb, 1.0, np.where(va & vb, steps, 0.0))


def _align(f0: np.ndarray, target: np.ndarray, use_dtw: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Compared frame pairs of the two contours and the alignment used ("time" or "dtw")."""
    import numpy as np

    if not use_dtw:
        a, b = trim_to_shorter(f0, target)
        return a, b, "time"

    def features(contour: np.ndarray) -> np.ndarray:
        voiced = contour > 0
        semitones = np.where(voiced, 12.0 * np.log2(np.where(voiced, contour, 1.0) / 440.0), 0.0)
        return np.column_stack([voiced.astype(np.float64), semitones])

    ix, iy = dtw_path(features(f0), features(target), distance=_pitch_distance)
    return f0[ix], target[iy], "dtw"


def pitch_errors(f0: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """F0 RMSE (Hz, cents), VDE and GPE (percent) of aligned contours (0 = unvoiced)."""
    import numpy as np

    voiced, voiced_target = f0 > 0, target > 0
    both = voiced & voiced_target
    result = {"vde": 100.0 * float(np.mean(voiced != voiced_target))}
    if not both.any():
        nan = float("nan")
        return result | {"f0_rmse_hz": nan, "f0_rmse_cents": nan, "gpe": nan}
    f, g = f0[both], target[both]
    cents = 1200.0 * np.log2(f / g)
    return result | {
        "f0_rmse_hz": float(np.sqrt(np.mean((f - g) ** 2))),
        "f0_rmse_cents": float(np.sqrt(np.mean(cents**2))),
        "gpe": 100.0 * float(np.mean(np.abs(f / g - 1.0) > GROSS_ERROR_RATIO)),
    }


def compute(item: Item) -> dict[str, Any]:
    """Pitch errors of ``item.audio`` against its melody, else its reference's F0 contour."""
    times, f0 = f0_contour(item.audio)
    if len(times) == 0:
        raise MetricUnavailable("the audio is too short for a single pitch frame")
    target, target_seconds, source = _target_contour(item, times)
    if source == "reference":
        use_dtw = lengths_differ(item.audio.seconds, target_seconds)
    else:
        voiced_times = times[f0 > 0]
        # nothing voiced: nothing to align, every target frame simply counts as a voicing error
        voiced_end = voiced_times[-1] if len(voiced_times) else target_seconds
        tolerance = max(LENGTH_TOLERANCE * target_seconds, MELODY_END_TOLERANCE_S)
        use_dtw = abs(voiced_end - target_seconds) > tolerance
    a, b, alignment = _align(f0, target, use_dtw)
    errors = pitch_errors(a, b)
    return errors | {
        "target": source,
        "alignment": alignment,
        "frames": len(a),
        "frames_voiced_both": int(((a > 0) & (b > 0)).sum()),
    }


METRICS: list[Metric] = [
    Metric(
        name="pitch",
        family="pitch",
        needs=("pitch_target",),
        values=(
            Value("f0_rmse_hz", "Hz", False, "RMS F0 error over frames voiced in both"),
            Value("f0_rmse_cents", "cents", False, "RMS F0 error in cents, frames voiced in both"),
            Value("vde", "%", False, "voicing decision error: frames voiced in one side only"),
            Value("gpe", "%", False, "gross pitch error: voiced frames more than 20 % off"),
        ),
        compute=compute,
        requires=("parselmouth",),
        reference_doc=(
            "Praat autocorrelation F0 (Boersma 1993), 10 ms hop, 50-1100 Hz; VDE and GPE (20 %) "
            "as in Nakatani et al. 2008 / Chu & Alwan 2009; DTW on F0 and voicing when lengths "
            "differ by more than 1 %"
        ),
    )
]
