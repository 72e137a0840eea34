"""MCD's known answer: the same noise through two filters whose log-magnitude ratio is
6 dB * cos(3 w~) on the alpha = 0.42 warped axis. With SPTK's (causal) mel-cepstrum, Kubichek's MCD
is the RMS dB difference of the two spectra on that axis: 6 / sqrt(2) = 4.24 dB. The symmetric
real cepstrum gives half of it (2.1 dB), the defect these tests catch."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from voxbench.quality import spectral

SR = spectral.ANALYSIS_RATE
RIPPLE_DB = 6.0
TAPS = 129  # 8 ms: short against the 32 ms analysis window, so STFT(h * x) ~ H . STFT(x)
KUBICHEK = 10.0 / math.log(10.0) * math.sqrt(2.0)


def warped(omega: np.ndarray, alpha: float = spectral.ALPHA) -> np.ndarray:
    """The first-order all-pass frequency warping (Oppenheim & Johnson 1972)."""
    return omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))


def linear_phase_fir(db: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A symmetric ``TAPS``-tap FIR whose magnitude in dB is ``db(warped frequency)``."""
    n = 8192
    omega = np.linspace(0.0, math.pi, n // 2 + 1)
    h = np.fft.irfft(10.0 ** (db(warped(omega)) / 20.0), n)  # zero phase
    return np.roll(h, TAPS // 2)[:TAPS] * np.hanning(TAPS + 2)[1:-1]


def ratio_rms_db(h_a: np.ndarray, h_b: np.ndarray) -> float:
    """RMS over the warped axis of the mean-removed dB ratio of the two filters as built."""
    n = 8192
    omega = np.linspace(0.0, math.pi, n // 2 + 1)
    ratio = 20.0 * np.log10(np.abs(np.fft.rfft(h_a, n)) / np.abs(np.fft.rfft(h_b, n)))
    on_warped = np.interp(warped(np.linspace(0.0, math.pi, 4097), -spectral.ALPHA), omega, ratio)
    return float(np.sqrt(np.mean((on_warped - on_warped.mean()) ** 2)))


@pytest.fixture(scope="module")
def filtered_noise() -> tuple[np.ndarray, np.ndarray, float]:
    """(noise through +3 dB cos(3 w~), the same noise through -3 dB cos(3 w~), their RMS dB)."""
    h_a = linear_phase_fir(lambda w: RIPPLE_DB / 2 * np.cos(3 * w))
    h_b = linear_phase_fir(lambda w: -RIPPLE_DB / 2 * np.cos(3 * w))
    x = 0.1 * np.random.default_rng(7).standard_normal(3 * SR)
    a = np.convolve(x, h_a)[: len(x)]
    b = np.convolve(x, h_b)[: len(x)]
    return a, b, ratio_rms_db(h_a, h_b)


def test_mcd_is_the_rms_db_difference_of_the_spectra(filtered_noise):
    a, b, rms_db = filtered_noise
    # the filters as built (129 taps) hold a little less than the ideal 6 / sqrt(2) = 4.243 dB
    assert rms_db == pytest.approx(RIPPLE_DB / math.sqrt(2), abs=0.1)
    result = spectral.distances(a, b)
    assert result["mcd_db"] == pytest.approx(rms_db, abs=0.03)  # the symmetric cepstrum: 2.09


def test_mcd_matches_pysptk_sp2mc_on_the_same_frames(filtered_noise):
    pysptk = pytest.importorskip("pysptk")
    a, b, _ = filtered_noise
    result = spectral.distances(a, b)
    power_a = spectral.magnitudes(a) ** 2 + spectral.POWER_FLOOR
    power_b = spectral.magnitudes(b) ** 2 + spectral.POWER_FLOOR
    assert result["frames"] == len(power_a)  # equal lengths, one delay: the diagonal path

    def mc(power: np.ndarray) -> np.ndarray:
        return np.array([pysptk.sp2mc(p, spectral.ORDER, spectral.ALPHA) for p in power])[:, 1:]

    reference = KUBICHEK * np.sqrt(((mc(power_a) - mc(power_b)) ** 2).sum(axis=1))
    assert result["mcd_db"] == pytest.approx(float(reference.mean()), abs=0.01)
    # coefficient by coefficient too: voxbench's cepstra are SPTK's (slope 1), not half (0.5);
    # they differ a little where the noisy spectrum is interpolated rather than warped exactly
    ours = spectral.mel_cepstrum(spectral.power_db(power_a - spectral.POWER_FLOOR))[:, 1:]
    theirs = mc(power_a)
    slope = float((ours * theirs).sum() / (theirs * theirs).sum())
    assert slope == pytest.approx(1.0, abs=0.01)
    assert float(np.abs(ours - theirs).max()) < 0.05


def test_sp2mc_known_answer_and_voxbench_cepstrum_agree():
    """A power spectrum whose dB is 6 cos(3 w~): c3 = 6 ln 10 / 20 = 0.6908, MCD vs flat 4.2426."""
    pysptk = pytest.importorskip("pysptk")
    omega = np.linspace(0.0, math.pi, spectral.WINDOW // 2 + 1)
    power = 10.0 ** (RIPPLE_DB * np.cos(3 * warped(omega)) / 10.0)
    c_ref = pysptk.sp2mc(power, spectral.ORDER, spectral.ALPHA)
    flat = pysptk.sp2mc(np.ones_like(power), spectral.ORDER, spectral.ALPHA)
    assert c_ref[3] == pytest.approx(RIPPLE_DB * math.log(10) / 20, abs=1e-4)
    assert KUBICHEK * np.linalg.norm((c_ref - flat)[1:]) == pytest.approx(4.2426, abs=1e-3)
    ours = spectral.mel_cepstrum(spectral.power_db(power[None, :]))[0]
    ours_flat = spectral.mel_cepstrum(spectral.power_db(np.ones((1, len(power)))))[0]
    assert (ours - ours_flat)[3] == pytest.approx(0.6908, abs=1e-3)
    assert KUBICHEK * np.linalg.norm((ours - ours_flat)[1:]) == pytest.approx(4.2426, abs=0.01)
