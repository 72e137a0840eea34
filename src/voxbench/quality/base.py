"""The contract every quality metric follows.

A metric family (pitch, spectral, perceptual, speaker, intelligibility) is a module that exposes
``METRICS: list[Metric]``. Each :class:`Metric` says what it needs (a reference clip, the input
text, a target melody, or nothing), which optional packages it imports, and computes one or more
named values for one :class:`Item`. Metrics never decide pass/fail (targets do, in
:mod:`voxbench.quality.targets`) and never return 0 for "could not compute": they raise
:class:`MetricUnavailable` with the reason, and the evaluator records it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

# "pitch_target": a target melody, or else reference audio to take the F0 contour from
Need = Literal["reference", "text", "melody", "pitch_target"]


class MetricUnavailable(Exception):
    """The metric cannot run here or on this item (missing package, no reference, too short)."""


@dataclass(frozen=True)
class Clip:
    """Mono float32 audio in [-1, 1] and its sample rate."""

    audio: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class Note:
    """One note of a target melody: onset and duration in seconds, MIDI pitch (69 = A4 = 440 Hz)."""

    onset: float
    duration: float
    pitch: float

    @property
    def hz(self) -> float:
        return 440.0 * 2.0 ** ((self.pitch - 69.0) / 12.0)


@dataclass(frozen=True)
class Item:
    """What a metric sees for one case: the audio produced and what it can be judged against."""

    audio: Clip
    text: str | None = None
    reference: Clip | None = None
    melody: tuple[Note, ...] | None = None


@dataclass(frozen=True)
class Value:
    """One computed value (e.g. ``f0_rmse_hz``) and how to read it."""

    name: str
    unit: str
    higher_is_better: bool
    description: str = ""


@dataclass(frozen=True)
class Metric:
    """A family's computation: ``compute(item)`` returns ``{value name: float}`` for ``values``.

    Keys that are not value names are kept as details (e.g. ``transcript``, ``recognizer``).
    """

    name: str
    family: str
    needs: tuple[Need, ...]
    values: tuple[Value, ...]
    compute: Callable[[Item], dict[str, Any]]
    requires: tuple[str, ...] = field(default=())  # importable module names
    pip_hint: str = "pip install 'voxbench[quality]'"
    reference_doc: str = ""  # the definition followed, for the report
    speech_only: bool = False  # judged only on speech and singing, not on rendered music (MIDI)
    # Parallel evaluation starts the costliest metrics first (longest-processing-time order) so
    # the workers finish together; an order-of-magnitude hint per second of audio, never a value.
    cost: float = 1.0

    def unavailable(self) -> str | None:
        """None when every required module is importable, else the reason with the fix."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            return f"{', '.join(missing)} not installed ({self.pip_hint})"
        return None

    def missing_inputs(self, item: Item) -> str | None:
        """None when the item has what the metric needs, else which input is missing."""
        for need in self.needs:
            if need == "reference" and item.reference is None:
                return "no reference audio for this input"
            if need == "text" and not item.text:
                return "no input text to compare a transcript with"
            if need == "melody" and not item.melody:
                return "no target melody for this input"
            if need == "pitch_target" and not item.melody and item.reference is None:
                return "no target melody or reference audio for this input"
        return None
