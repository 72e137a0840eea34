"""Speaker similarity: cosine similarity of resemblyzer d-vectors of a clip and its reference.

Definition followed: a d-vector is the L2-normalised mean of the embeddings that a speaker encoder
trained with the generalized end-to-end (GE2E) loss gives for overlapping 1.6 s windows of an
utterance (Wan, Wang, Papir, Lopez Moreno, "Generalized End-to-End Loss for Speaker Verification",
ICASSP 2018); resemblyzer (Resemble AI, https://github.com/resemble-ai/Resemblyzer) ships such an
encoder, 256-dimensional, trained on LibriSpeech, VoxCeleb 1 and 2. ``speaker_similarity`` is the
cosine of the two d-vectors, as in the speaker-similarity ("SIM") column of Seed-TTS-eval (which
uses a WavLM-ECAPA encoder instead: figures from the two encoders are not interchangeable).

Both clips are resampled to 16 kHz and go through ``resemblyzer.preprocess_wav``: volume raised
to -30 dBFS (never lowered) and silences longer than resemblyzer's VAD limit cut out by
webrtcvad. A clip that is silent, or holds less than :data:`MIN_VOICED_SECONDS` of voiced audio
after that trimming, is reported unavailable rather than given a meaningless embedding.

The encoder (``VoiceEncoder("cpu")``) is loaded once per process on first use; during an
evaluation torch runs on the evaluation's thread budget (:func:`voxbench.quality.scoring.
library_threads`).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable, Value
from voxbench.quality.scoring import library_threads

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000  # resemblyzer's encoder works at 16 kHz
MIN_VOICED_SECONDS = 0.5  # less voiced audio than this after VAD trimming: no embedding
SILENT_PEAK = 1e-4  # a clip whose peak is below this (-80 dBFS) is silence
PIP_HINT = "pip install torch==2.13.0 'voxbench[speaker]' (the torch CPU wheel first)"

_encoder: Any = None
_encoder_lock = threading.Lock()


def _quiet_import() -> Any:
    """Import resemblyzer without the warnings its dependencies print on import.

    webrtcvad imports the deprecated ``pkg_resources`` (UserWarning) and resemblyzer imports
    ``scipy.ndimage.morphology`` (DeprecationWarning); neither is ours to fix.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            import resemblyzer
        except ImportError as exc:
            raise MetricUnavailable(f"resemblyzer cannot be imported ({PIP_HINT}): {exc}") from exc
    return resemblyzer


def encoder() -> Any:
    """The process-wide resemblyzer ``VoiceEncoder`` on the CPU, loaded on first use."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            resemblyzer = _quiet_import()
            _encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
        return _encoder


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to an evaluation's budget for the block (None: unchanged)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _at_16k(clip: Clip) -> np.ndarray:
    """The clip as float32 mono at 16 kHz."""
    import numpy as np

    from voxbench.quality._dsp import at_rate

    return np.asarray(at_rate(clip, SAMPLE_RATE), dtype=np.float32)


def embed(clip: Clip, what: str = "clip") -> np.ndarray:
    """The unit-length 256-d d-vector of ``clip``; ``what`` names it in the unavailable reason."""
    import numpy as np

    audio = _at_16k(clip)
    if audio.size == 0 or not np.isfinite(audio).all():
        raise MetricUnavailable(f"the {what} is empty or holds non-finite samples")
    if float(np.max(np.abs(audio))) < SILENT_PEAK:
        raise MetricUnavailable(f"the {what} is silent")
    resemblyzer = _quiet_import()
    wav = resemblyzer.preprocess_wav(audio)  # already at 16 kHz: no source_sr, no resampling
    voiced = len(wav) / SAMPLE_RATE
    if voiced < MIN_VOICED_SECONDS:
        raise MetricUnavailable(
            f"the {what} holds {voiced:.2f} s of voiced audio after VAD trimming "
            f"(at least {MIN_VOICED_SECONDS} s needed for a speaker embedding)"
        )
    with _torch_threads(library_threads()):
        vector = np.asarray(encoder().embed_utterance(wav), dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise MetricUnavailable(f"the speaker encoder gave no usable embedding for the {what}")
    return vector / norm


def similarity(a: Clip, b: Clip) -> float:
    """Cosine similarity of the d-vectors of two clips (1 = same voice, about 0.5 = unrelated)."""
    import numpy as np

    return float(np.dot(embed(a, "clip"), embed(b, "reference")))


def _compute(item: Item) -> dict[str, Any]:
    if item.reference is None:
        raise MetricUnavailable("no reference audio for this input")
    return {"speaker_similarity": similarity(item.audio, item.reference)}


METRICS: list[Metric] = [
    Metric(
        name="speaker",
        cost=3.0,
        family="speaker",
        needs=("reference",),
        values=(
            Value(
                name="speaker_similarity",
                unit="cos",
                higher_is_better=True,
                description="cosine similarity of resemblyzer d-vectors of the clip and the reference",
            ),
        ),
        compute=_compute,
        requires=("resemblyzer", "torch"),
        pip_hint=PIP_HINT,
        speech_only=True,
        reference_doc="Wan et al. 2018, GE2E d-vectors (resemblyzer); cosine similarity as Seed-TTS-eval SIM",
    ),
]
