"""Spectral distances between the audio and a reference recording: MCD, LSD, spectral convergence.

Both clips are resampled to 16 kHz (:data:`ANALYSIS_RATE`, the band PESQ-WB, STOI and DNSMOS also
judge, so engines with different native rates are compared over the same band) and analysed by one
short-time Fourier transform: 32 ms Hann window, 10 ms hop, 512-point FFT, frames centred on
``k * hop`` with zero padding at both ends, magnitudes divided by the window sum (a full-scale sine
peaks at 0.5). Every value is computed over the same frame pairs: the DTW path
(:func:`voxbench.quality._dsp.dtw_path`, Euclidean distance on mel-cepstra c1..c24, band +-10 %)
between the two clips, so timing differences do not count as spectral differences.

- ``mcd_db``: mel-cepstral distortion (Kubichek 1993, "Mel-cepstral distance measure for objective
  speech quality assessment"), ``(10 / ln 10) * sqrt(2 * sum_{d=1}^{24} (c_d - c'_d)^2)`` per frame
  pair, c0 (energy) excluded, averaged over the pairs. ``c`` is the mel-cepstrum in SPTK's
  convention (``sp2mc``, ``mcep``): the *causal* cepstrum of the natural-log amplitude spectrum
  after first-order all-pass frequency warping (alpha = 0.42, SPTK's value for 16 kHz; Oppenheim &
  Johnson 1972), ``ln |X(w~)| = c_0 + sum_{m>=1} c_m cos(m w~)``, so ``c_m`` for m >= 1 is twice the
  symmetric real cepstrum's coefficient. With that cepstrum the constant makes MCD (by Parseval)
  the RMS difference in dB of the two mean-removed log spectra on the warped axis, truncated to 24
  coefficients: a ratio of ``6 dB * cos(3 w~)`` between two spectra is ``6 / sqrt(2)`` = 4.24 dB.
  The warping is done by sampling the log spectrum at the warped frequencies, which is what SPTK's
  ``freqt`` does to a linear cepstrum; checked against ``pysptk.sp2mc`` (to 0.01 dB on filtered
  noise, ``tests/unit/test_quality_mcd.py``). The spectrum is the plain STFT, not a pitch-adaptive
  envelope (WORLD CheapTrick): cheaper by an F0 analysis, but for high voices (F0 above ~350 Hz)
  harmonics start to reach the top coefficients. MCD figures from different toolkits are not
  comparable to the decimal (envelope, order, alignment differ); compare engines under one tool.
- ``lsd_db``: log-spectral distance, ``sqrt(mean_k (10 log10 (P_ref[k] / P[k]))^2)`` per frame pair
  over all 257 bins, averaged over the pairs (as in speech bandwidth-extension papers, e.g. Kuleshov
  et al. 2017, with power in dB).
- ``spectral_convergence``: ``||  |S_ref| - |S|  ||_F / || |S_ref| ||_F`` over the aligned
  magnitude spectrograms (Arik et al. 2019, "Fast spectrogram inversion using multi-head
  convolutional neural networks").

Powers are floored at 1e-10 (-100 dB re full scale per bin, below 16-bit quantisation noise), so
digital silence and dither compare as equal. Identical clips give exactly 0 for all three.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from voxbench.quality._dsp import at_rate, dtw_path, require_signal, single_threaded_blas
from voxbench.quality.base import Item, Metric, MetricUnavailable, Value

if TYPE_CHECKING:
    import numpy as np

ANALYSIS_RATE = 16_000
WINDOW = 512  # 32 ms
HOP = 160  # 10 ms
ORDER = 24  # mel-cepstral coefficients c1..c24 (c0 excluded from MCD)
ALPHA = 0.42  # all-pass warping constant for 16 kHz
POWER_FLOOR = 1e-10
MIN_SECONDS = 0.1
# Kubichek's constant. By Parseval the RMS over the warped axis of sum_d c_d cos(d w~) (causal
# cepstrum) is sqrt(sum_d c_d^2 / 2); times 20 / ln 10 (natural-log amplitude to dB) that is
# (10 / ln 10) * sqrt(2 * sum_d c_d^2).
_MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)


@functools.cache
def _window() -> np.ndarray:
    import numpy as np

    w = np.hanning(WINDOW + 1)[:-1]  # periodic Hann
    return w / w.sum()


@functools.cache
def _cepstrum_matrix() -> np.ndarray:
    """``(bins, ORDER + 1)``: power spectrum in dB to mel-cepstrum c0..c``ORDER``.

    The cepstrum is that of the natural-log amplitude, ``dB * ln(10) / 20``. Sampling the log
    spectrum on a uniform grid of the warped axis (linear interpolation between FFT bins) and the
    real cepstrum of that even spectrum (an inverse DFT of length ``WINDOW``) are both linear, so
    together they are one matrix, applied to all frames by one product. The columns m >= 1 are
    doubled: the causal (SPTK) cepstrum folds the negative quefrencies onto the positive ones,
    which is what Kubichek's constant assumes (the module docstring).
    """
    import numpy as np

    bins = WINDOW // 2
    warped = np.linspace(0.0, math.pi, bins + 1)
    # The inverse of the all-pass warping is the same map with -alpha.
    a = -ALPHA
    linear = warped + 2.0 * np.arctan(a * np.sin(warped) / (1.0 - a * np.cos(warped)))
    position = np.clip(linear / math.pi * bins, 0.0, bins)
    left = np.minimum(np.floor(position).astype(np.int64), bins - 1)
    weight = position - left
    grid = np.arange(bins + 1)
    interpolate = np.zeros((bins + 1, bins + 1))  # [FFT bin, warped grid point]
    interpolate[left, grid] = 1.0 - weight
    interpolate[left + 1, grid] += weight
    # irfft: c[n] = (1/N) (X[0] + 2 sum_{0<k<N/2} X[k] cos(2 pi k n / N) + X[N/2] cos(pi n))
    inverse = 2.0 * np.cos(np.pi * np.outer(grid, np.arange(ORDER + 1)) / bins) / WINDOW
    inverse[[0, bins]] /= 2.0
    inverse[:, 1:] *= 2.0  # causal cepstrum: c_m + c_-m for m >= 1
    return (interpolate @ inverse) * (math.log(10.0) / 20.0)


def magnitudes(audio: np.ndarray) -> np.ndarray:
    """STFT magnitudes ``(frames, WINDOW // 2 + 1)`` of 16 kHz mono audio, as described above."""
    import numpy as np

    padded = np.pad(audio, WINDOW // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP]
    return np.abs(np.fft.rfft(frames * _window(), axis=1))


def power_db(power: np.ndarray) -> np.ndarray:
    """``10 log10(power + POWER_FLOOR)``: floored power in dB re full scale."""
    import numpy as np

    return 10.0 * np.log10(power + POWER_FLOOR)


def mel_cepstrum(db: np.ndarray) -> np.ndarray:
    """Mel-cepstra c0..c``ORDER`` ``(frames, ORDER + 1)`` of :func:`power_db` spectra."""
    return db @ _cepstrum_matrix()


def distances(reference: np.ndarray, audio: np.ndarray) -> dict[str, Any]:
    """MCD, LSD and spectral convergence of ``audio`` against ``reference`` (both 16 kHz mono)."""
    import numpy as np

    mag_ref, mag = magnitudes(reference), magnitudes(audio)
    db_ref, db = power_db(mag_ref**2), power_db(mag**2)
    mc_ref, mc = mel_cepstrum(db_ref)[:, 1:], mel_cepstrum(db)[:, 1:]
    ix, iy = dtw_path(mc_ref, mc)

    mcd = _MCD_SCALE * np.sqrt(((mc_ref[ix] - mc[iy]) ** 2).sum(axis=1))
    lsd = np.sqrt(((db_ref[ix] - db[iy]) ** 2).mean(axis=1))
    ref_norm = math.sqrt(float((mag_ref[ix] ** 2).sum()))
    if ref_norm == 0.0:
        raise MetricUnavailable("the reference has no energy on the aligned frames")
    convergence = math.sqrt(float(((mag_ref[ix] - mag[iy]) ** 2).sum())) / ref_norm
    return {
        "mcd_db": float(mcd.mean()),
        "lsd_db": float(lsd.mean()),
        "spectral_convergence": convergence,
        "alignment": "dtw",
        "frames": len(ix),
        "frames_reference": len(mc_ref),
        "frames_audio": len(mc),
    }


def compute(item: Item) -> dict[str, Any]:
    """Spectral distances of ``item.audio`` against ``item.reference`` at 16 kHz."""
    if item.reference is None:
        raise MetricUnavailable("no reference audio for this input")
    reference = at_rate(item.reference, ANALYSIS_RATE)
    audio = at_rate(item.audio, ANALYSIS_RATE)
    require_signal(reference, ANALYSIS_RATE, min_seconds=MIN_SECONDS, what="the reference")
    if len(audio) < MIN_SECONDS * ANALYSIS_RATE:
        raise MetricUnavailable(
            f"the audio is too short ({item.audio.seconds:.2f} s; at least {MIN_SECONDS:g} s)"
        )
    with single_threaded_blas():
        return distances(reference, audio)


METRICS: list[Metric] = [
    Metric(
        name="spectral",
        cost=0.5,
        family="spectral",
        needs=("reference",),
        values=(
            Value("mcd_db", "dB", False, "mel-cepstral distortion c1..c24, DTW-aligned"),
            Value("lsd_db", "dB", False, "log-spectral distance, DTW-aligned"),
            Value("spectral_convergence", "", False, "|| |S_ref| - |S| ||_F / || S_ref ||_F"),
        ),
        compute=compute,
        requires=("scipy",),
        reference_doc=(
            "MCD as Kubichek 1993 with DTW (SPTK-convention causal mel-cepstrum, alpha 0.42, "
            "c1..c24, 16 kHz; checked against pysptk.sp2mc); "
            "LSD in dB; spectral convergence as Arik et al. 2019"
        ),
    )
]
