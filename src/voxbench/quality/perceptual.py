"""Perceptual speech quality: PESQ and STOI against a reference, DNSMOS without one.

- ``pesq``: ITU-T P.862.2 wide band (``pesq_wb``, at 16 kHz) and P.862 narrow band (``pesq_nb``,
  at 8 kHz) MOS-LQO, 1.0 (bad) to about 4.64 (wide band) / 4.55 (narrow band) for identical
  signals, by the ``pesq`` package (the ITU reference C code). PESQ aligns the delay itself.
- ``stoi``: short-time objective intelligibility (Taal et al. 2011) and its extended form ESTOI
  (Jensen & Taal 2016), 0 to 1, by ``pystoi`` at its native 10 kHz.
- ``dnsmos``: Microsoft's DNSMOS P.835 (signal, background, overall) and P.808 MOS predictors
  (Reddy et al. 2021/2022), 1 to 5, no reference needed, by ``speechmos``, which follows Microsoft's
  ``dnsmos_local.py``: 16 kHz input in [-1, 1], 9.01 s windows with a 1 s hop averaged, clips shorter
  than 9.01 s repeated end to end until they fill a window. The two ONNX sessions are loaded once per
  process, on first use, with ONNX Runtime's default threading (in a parallel evaluation's worker,
  its share of the cores: :func:`voxbench.quality.scoring.library_threads`).

With a reference, both clips are resampled (:func:`scipy.signal.resample_poly`) to the rate each
algorithm is defined at and cut to the shorter one. Inputs the algorithms cannot judge (silent, or
shorter than they need) raise :class:`MetricUnavailable` with the reason, never a 0 score.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

from voxbench.quality._dsp import at_rate, require_signal, trim_to_shorter
from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable, Value
from voxbench.quality.scoring import library_threads

if TYPE_CHECKING:
    import numpy as np

PESQ_MIN_SECONDS = 0.25  # the ITU code refuses shorter buffers
STOI_RATE = 10_000
STOI_MIN_SECONDS = 0.4  # 30 frames of 25.6 ms at a 50 % hop, before silent frames are removed
DNSMOS_RATE = 16_000
DNSMOS_MIN_SECONDS = 1.0  # below this a 9 s window repeats the clip 9 times or more


def _pair(item: Item, rate: int, min_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Reference and audio at ``rate``, cut to the shorter, each checked for length and silence."""
    if item.reference is None:
        raise MetricUnavailable("no reference audio for this input")
    reference, audio = trim_to_shorter(at_rate(item.reference, rate), at_rate(item.audio, rate))
    require_signal(
        reference, rate, min_seconds=min_seconds, what="the reference (cut to the audio)"
    )
    require_signal(audio, rate, min_seconds=min_seconds, what="the audio (cut to the reference)")
    return reference, audio


def compute_pesq(item: Item) -> dict[str, Any]:
    """PESQ wide band at 16 kHz and narrow band at 8 kHz; NaN for a band the ITU code refuses."""
    from pesq import PesqError, pesq

    result: dict[str, Any] = {}
    for name, rate, mode in (("pesq_wb", 16_000, "wb"), ("pesq_nb", 8_000, "nb")):
        reference, audio = _pair(item, rate, PESQ_MIN_SECONDS)
        try:
            result[name] = float(pesq(rate, reference, audio, mode))
        except PesqError as exc:
            message = exc.args[0] if exc.args else type(exc).__name__
            if isinstance(message, bytes):
                message = message.decode(errors="replace")
            result[name] = float("nan")
            result[f"{name}_error"] = f"PESQ refused this input: {message}"
    if all(result[name] != result[name] for name in ("pesq_wb", "pesq_nb")):
        raise MetricUnavailable(str(result["pesq_wb_error"]))
    return result


def compute_stoi(item: Item) -> dict[str, Any]:
    """STOI and ESTOI at 10 kHz."""
    from pystoi import stoi

    reference, audio = _pair(item, STOI_RATE, STOI_MIN_SECONDS)
    with warnings.catch_warnings():
        # pystoi warns and returns 1e-5 when too few non-silent frames remain: make that an error
        warnings.filterwarnings("error", message="Not enough STFT frames", category=RuntimeWarning)
        try:
            plain = float(stoi(reference, audio, STOI_RATE, extended=False))
            extended = float(stoi(reference, audio, STOI_RATE, extended=True))
        except RuntimeWarning as exc:
            raise MetricUnavailable(
                "fewer than 30 non-silent frames (about 0.4 s of speech) in the reference: "
                "too short for STOI"
            ) from exc
    return {"stoi": plain, "estoi": extended}


def _dnsmos_model() -> Any:
    """The DNSMOS P.835 and P.808 ONNX sessions for this thread budget, loaded once per process."""
    return _dnsmos_sessions(library_threads())


@functools.cache
def _dnsmos_sessions(threads: int | None) -> Any:
    from pathlib import Path

    from speechmos import dnsmos

    models = Path(dnsmos.__file__).parent / "dnsmos_models"
    model = dnsmos.DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))
    if threads is not None:  # an evaluation's share of the cores
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        model.onnx_sess = ort.InferenceSession(str(models / "sig_bak_ovr.onnx"), options)
        model.p808_onnx_sess = ort.InferenceSession(str(models / "model_v8.onnx"), options)
    return model


def dnsmos_scores(clip: Clip) -> dict[str, float]:
    """DNSMOS overall, signal, background and P.808 MOS of one clip (no reference)."""
    import numpy as np

    audio = np.clip(at_rate(clip, DNSMOS_RATE), -1.0, 1.0)
    require_signal(audio, DNSMOS_RATE, min_seconds=DNSMOS_MIN_SECONDS, what="the audio")
    scores = _dnsmos_model()(audio, DNSMOS_RATE, False)
    return {
        "dnsmos_ovrl": float(scores["ovrl_mos"]),
        "dnsmos_sig": float(scores["sig_mos"]),
        "dnsmos_bak": float(scores["bak_mos"]),
        "dnsmos_p808": float(scores["p808_mos"]),
    }


def compute_dnsmos(item: Item) -> dict[str, Any]:
    """DNSMOS of ``item.audio``."""
    return dict(dnsmos_scores(item.audio))


def _mos(name: str, description: str) -> Value:
    return Value(name, "MOS", True, description)


METRICS: list[Metric] = [
    Metric(
        name="pesq",
        cost=2.0,
        family="perceptual",
        needs=("reference",),
        values=(
            _mos("pesq_wb", "PESQ wide band (P.862.2, 16 kHz), 1 to 4.64"),
            _mos("pesq_nb", "PESQ narrow band (P.862, 8 kHz), 1 to 4.55"),
        ),
        compute=compute_pesq,
        requires=("pesq",),
        reference_doc="ITU-T P.862 / P.862.2 via the pesq package (ITU reference code)",
        speech_only=True,
    ),
    Metric(
        name="stoi",
        cost=1.5,
        family="perceptual",
        needs=("reference",),
        values=(
            Value("stoi", "", True, "short-time objective intelligibility, 0 to 1"),
            Value("estoi", "", True, "extended STOI, 0 to 1"),
        ),
        compute=compute_stoi,
        requires=("pystoi",),
        reference_doc="STOI (Taal et al. 2011), ESTOI (Jensen & Taal 2016) via pystoi",
        speech_only=True,
    ),
    Metric(
        name="dnsmos",
        cost=10.0,
        family="perceptual",
        needs=(),
        values=(
            _mos("dnsmos_ovrl", "DNSMOS P.835 overall quality"),
            _mos("dnsmos_sig", "DNSMOS P.835 speech signal quality"),
            _mos("dnsmos_bak", "DNSMOS P.835 background noise quality"),
            _mos("dnsmos_p808", "DNSMOS P.808 overall quality"),
        ),
        compute=compute_dnsmos,
        requires=("speechmos", "librosa", "onnxruntime", "requests"),
        reference_doc="DNSMOS P.835/P.808 (Reddy et al. 2021/2022) via speechmos",
        speech_only=True,
    ),
]
