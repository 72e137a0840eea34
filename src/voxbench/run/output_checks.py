"""What an engine answered, judged before it can become a figure: garbage is flagged, never measured.

A call whose answer breaks a rule is recorded like a failed call (``kind: "output"``, ``type:
"BadOutput"``, ``rule``: the rule's name, and a message that says by how much) and gives no
latency, rtf or audio sample: it stays counted in the case's errors, its error rate and its
validity, as a call that raised would. The rules, in the order they are tried (an answer is
flagged for the first it breaks):

========== =====================================================================================
rule       broken when
========== =====================================================================================
dtype      audio is not a one-dimensional numpy array of floats or int16 (complex, object,
           other integers, a list, 2-D)
sample_rate the rate is not a positive int, changes between the chunks of one stream, or is not
           the ``sample_rate`` the engine declares (an int attribute; 0 or None declares none)
empty      no audio samples and no text from an engine that answers audio (0 samples is empty,
           not short)
nonfinite  any sample is NaN or ±Inf
length     longer than :data:`MAX_SECONDS_PER_CHAR` (60 s) per input character for a text
           input, or than :data:`MAX_SECONDS` (1 hour) for any input
clipped    more than :data:`CLIP_SHARE` (1 %) of the samples at or beyond full scale:
           ``|x| >= 1.0`` for floats, ``|x| >= 32767`` for int16
silent     the peak of the whole answer is below :data:`SILENCE_DBFS` (−60 dBFS: ``|x| <
           0.001`` of full scale), digital zeros included
empty_text a speech recogniser answered no text for an input that has a reference transcript
           (judged by the scenario, which knows the input)
========== =====================================================================================

The audio rules run where the audio is (inside the worker, after the clock has stopped, so they
cost no latency), over every chunk of a stream together, and over each answer of a batch call
apart. An engine that answers a rule's fault by design names the rule in a
``waive_output_checks`` attribute (a tuple of rule names): voxbench's own calibration engines
(:mod:`voxbench.engines.calibration`) answer digital silence and waive ``silent``. int16 audio
is accepted and kept as float32 (÷ 32768) for the saved WAV.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

CLIP_SHARE = 0.01
"""Share of samples at or beyond full scale above which an answer is clipped."""
SILENCE_DBFS = -60.0
"""Peak level (dB relative to full scale) below which an answer is silent."""
SILENCE_PEAK = 10 ** (SILENCE_DBFS / 20)  # 0.001 of full scale
MAX_SECONDS_PER_CHAR = 60.0
"""Longest plausible audio per input character of a text input, seconds."""
MAX_SECONDS = 3600.0
"""Longest plausible audio for any input, seconds."""
INT16_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Rule:
    """One output check: its name (recorded as the error's ``rule``) and when it is broken."""

    name: str
    broken_when: str


RULES: tuple[Rule, ...] = (
    Rule("dtype", "audio is not a 1-D numpy array of floats or int16"),
    Rule("sample_rate", "rate not a positive int, changing mid-stream, or not the declared one"),
    Rule("empty", "no audio samples and no text"),
    Rule("nonfinite", "a sample is NaN or Inf"),
    Rule("length", f"over {MAX_SECONDS_PER_CHAR:g} s per input character or {MAX_SECONDS:g} s"),
    Rule("clipped", f"over {CLIP_SHARE:.0%} of samples at |x| >= full scale"),
    Rule("silent", f"peak below {SILENCE_DBFS:g} dBFS"),
    Rule("empty_text", "a recogniser answered no text for speech with a reference transcript"),
)
"""Every rule, in the order an answer is judged."""

RULE_NAMES = frozenset(r.name for r in RULES)


def waived(engine: object) -> frozenset[str]:
    """The rules ``engine`` waives: the names in its ``waive_output_checks`` attribute."""
    own = getattr(engine, "waive_output_checks", ())
    if isinstance(own, str):
        return frozenset({own})
    return frozenset(own) if isinstance(own, (tuple, list, set, frozenset)) else frozenset()


def judge(
    engine: object, payload: Any, answers: list[list[tuple[Any, Any]]], *, has_text: bool
) -> dict[str, str] | None:
    """The call record's ``error`` for the first rule an answer of one call broke, or None.

    ``answers``: each answer's ``(audio, sample_rate)`` pieces (one answer with every chunk for a
    stream, one per input for a batch, an empty list for an answer without audio); ``has_text``:
    the call answered text. Rules the engine waives (:func:`waived`) are skipped.
    """
    waive = waived(engine)
    declared = declared_rate(engine)
    chars = len(payload) if isinstance(payload, str) else None
    audio_out = getattr(engine, "output_kind", "audio") == "audio"
    for pieces in answers or [[]]:
        check = AudioCheck(declared, waive)
        for audio, rate in pieces:
            check.add(audio, rate)
        verdict = check.verdict(chars=chars, has_text=has_text, audio_out=audio_out)
        if verdict is not None:
            return verdict
    return None


def bad_output(rule: str, message: str) -> dict[str, str]:
    """A call record's ``error`` for an answer that broke ``rule``."""
    return {
        "type": "BadOutput",
        "message": f"bad output ({rule}): {message}",
        "where": "",
        "kind": "output",
        "rule": rule,
    }


def declared_rate(engine: object) -> int | None:
    """The engine's ``sample_rate`` attribute when it is a positive int (numpy's too), else None."""
    return _positive_int(getattr(engine, "sample_rate", None))


def _positive_int(value: Any) -> int | None:
    if type(value) is int:  # the common case, without the ABC check
        return value if value > 0 else None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) > 0:
        return int(value)
    return None


class AudioCheck:
    """Tallies the audio of one answer (every chunk of a stream, or one whole answer), then
    judges it with :meth:`verdict`. Cheap: the pieces are joined once, then a min and a max, a
    count only near full scale."""

    def __init__(self, declared: int | None, waive: frozenset[str] = frozenset()) -> None:
        self.declared = declared
        self.waive = waive
        self._floats: list[Any] = []  # the pieces, tallied together when judged (one
        self._ints: list[Any] = []  # concatenation beats two reductions per stream chunk)
        self.samples = 0
        self.peak = 0.0  # in full-scale units
        self.clipped = 0
        self.nonfinite = 0
        self.rate: int | None = None
        self.broken: tuple[str, str] | None = None

    def add(self, audio: Any, rate: Any) -> None:
        """One piece of audio at ``rate``; the first dtype or rate fault is kept."""
        if self.broken is not None:
            return
        fault = _dtype_fault(audio)
        if fault is None:
            fault = self._rate_fault(rate)
        if fault is not None:
            self.broken = fault
            return
        (self._floats if audio.dtype.kind == "f" else self._ints).append(audio)

    def _tally_pieces(self) -> None:
        import numpy as np

        for group in (self._floats, self._ints):
            if group:
                self._tally(group[0] if len(group) == 1 else np.concatenate(group))
            group.clear()

    def _rate_fault(self, given: Any) -> tuple[str, str] | None:
        rate = _positive_int(given)
        if rate is None:
            return "sample_rate", f"sample rate {given!r} is not a positive int"
        if self.rate is not None and rate != self.rate:
            return "sample_rate", f"sample rate changed from {self.rate} to {rate} Hz mid-answer"
        if self.declared is not None and rate != self.declared:
            return "sample_rate", f"{rate} Hz answered; the engine declares {self.declared} Hz"
        self.rate = rate
        return None

    def _tally(self, audio: Any) -> None:
        import numpy as np

        n = len(audio)
        self.samples += n
        if not n:
            return
        # the ufuncs' reduce directly: ndarray.max() goes through a Python wrapper first
        hi, lo = float(np.maximum.reduce(audio)), float(np.minimum.reduce(audio))
        if audio.dtype.kind == "f":
            if not (math.isfinite(hi) and math.isfinite(lo)):
                self.nonfinite += int(np.count_nonzero(~np.isfinite(audio)))
                return
            scale, level = 1.0, 1.0
        else:  # int16
            scale, level = INT16_FULL_SCALE, 32767.0
        peak = max(abs(hi), abs(lo))
        self.peak = max(self.peak, peak / scale)
        if peak >= level:
            self.clipped += int(np.count_nonzero(np.abs(audio.astype(np.float64)) >= level))

    def verdict(
        self, *, chars: int | None, has_text: bool, audio_out: bool
    ) -> dict[str, str] | None:
        """The record's ``error`` for the first rule the answer broke, or None when it is sound.

        ``chars``: the input's length when it is text; ``has_text``: the answer holds text;
        ``audio_out``: the engine answers audio (``empty`` applies only then).
        """
        self._tally_pieces()
        for rule, message in self._faults(chars, has_text, audio_out):
            if rule not in self.waive:
                return bad_output(rule, message)
        return None

    def _faults(self, chars: int | None, has_text: bool, audio_out: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.broken is not None:
            out.append(self.broken)
            return out
        if not self.samples:
            if audio_out and not has_text:
                out.append(("empty", "no audio samples and no text"))
            return out
        n = self.samples
        if self.nonfinite:
            out.append(("nonfinite", f"{self.nonfinite:,} of {n:,} samples are NaN or Inf"))
            return out
        seconds = n / self.rate if self.rate else None
        if seconds is not None:
            limit = MAX_SECONDS if chars is None else min(MAX_SECONDS, MAX_SECONDS_PER_CHAR * chars)
            if seconds > limit:
                why = f"{MAX_SECONDS_PER_CHAR:g} s per input character" if chars else "1 hour"
                out.append(("length", f"{seconds:,.1f} s of audio, over {limit:g} s ({why})"))
        if self.clipped / n > CLIP_SHARE:
            out.append(
                (
                    "clipped",
                    f"{self.clipped:,} of {n:,} samples ({self.clipped / n:.1%}) at full scale, "
                    f"over {CLIP_SHARE:.0%}",
                )
            )
        if self.peak < SILENCE_PEAK and "silent" not in self.waive:
            level = "digital silence" if self.peak == 0 else f"peak {_dbfs(self.peak):.1f} dBFS"
            out.append(("silent", f"{level}, below {SILENCE_DBFS:g} dBFS"))
        return out


def _dtype_fault(audio: Any) -> tuple[str, str] | None:
    import numpy as np

    if not isinstance(audio, np.ndarray):
        return "dtype", f"audio is a {type(audio).__name__}, not a numpy array"
    if audio.dtype.kind == "f" or audio.dtype == np.int16:
        if audio.ndim != 1:
            return "dtype", f"audio of shape {audio.shape}; expected mono (one dimension)"
        return None
    return "dtype", f"{audio.dtype} audio; expected floats in [-1, 1] or int16"


def _dbfs(peak: float) -> float:
    return 20 * math.log10(peak)


def as_float(audio: Any) -> Any:
    """Audio as the float samples the saved WAV wants: int16 ÷ 32768, floats as they are."""
    import numpy as np

    if isinstance(audio, np.ndarray) and audio.dtype == np.int16:
        return audio.astype(np.float32) / INT16_FULL_SCALE
    return audio


def text_fault(text: str | None, *, speech_input: bool) -> dict[str, str] | None:
    """``empty_text`` for a recogniser that heard nothing in speech (an input with a reference
    transcript); None otherwise. An LLM's or a recogniser's empty answer elsewhere is not judged:
    silence in, nothing out, is right."""
    if speech_input and not (text or "").strip():
        return bad_output("empty_text", "no transcript for speech that has a reference")
    return None
