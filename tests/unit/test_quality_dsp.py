"""Known answers for the DSP and perceptual quality metrics: tones of known pitch, identical clips,
noise against speech, time-stretched copies, and inputs the algorithms cannot judge."""

from __future__ import annotations

import importlib.util
import itertools
import math

import numpy as np
import pytest

from voxbench.engines.espeak import EspeakEngine
from voxbench.quality import _dsp
from voxbench.quality.base import Clip, Item, MetricUnavailable, Note

SR = 16_000
FOX = "The quick brown fox jumps over the lazy dog."


def tone(hz: float, seconds: float, sr: int = SR) -> np.ndarray:
    """A harmonic-rich tone (five harmonics, 1/k amplitudes), peak below 0.5."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 6))
    return (0.2 * x).astype(np.float32)


def melody_audio(notes: tuple[Note, ...], seconds: float, sr: int = SR) -> Clip:
    """The notes rendered as tones, silence between them."""
    audio = np.zeros(int(seconds * sr), dtype=np.float32)
    for note in notes:
        start = int(note.onset * sr)
        segment = tone(note.hz, note.duration, sr)
        audio[start : start + len(segment)] += segment
    return Clip(audio, sr)


NOTES = (Note(0.1, 0.4, 57), Note(0.6, 0.4, 60), Note(1.1, 0.4, 64))  # A3, C4, E4


def say(text: str, rate: int | None = None) -> Clip:
    """espeak-ng speech, in this process (skips where libespeak-ng is missing)."""
    reason = EspeakEngine.check()
    if reason:
        pytest.skip(reason)
    engine = EspeakEngine(rate=rate)
    engine.load()
    try:
        engine.synthesize("warm up")  # espeak's first utterance in a process comes out shorter
        out = engine.synthesize(text)
    finally:
        engine.close()
    return Clip(out.audio, out.sample_rate)


@pytest.fixture(scope="module")
def speech() -> Clip:
    return say(FOX)


@pytest.fixture(scope="module")
def slow_speech() -> Clip:
    """The same sentence spoken about 25 % slower: a time-stretched copy."""
    return say(FOX, rate=140)


@pytest.fixture(scope="module")
def noise(speech: Clip) -> Clip:
    rng = np.random.default_rng(7)
    return Clip(
        (0.1 * rng.standard_normal(len(speech.audio))).astype(np.float32), speech.sample_rate
    )


# --- _dsp -------------------------------------------------------------------------------------


def full_dtw_cost(cost: np.ndarray) -> float:
    """Textbook DTW by the cell-by-cell recursion, to check the vectorised one against."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i, j in itertools.product(range(1, n + 1), range(1, m + 1)):
        acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return float(acc[n, m])


def test_dtw_finds_the_optimal_path_of_the_full_recursion():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, m = rng.integers(1, 25, size=2)
        x, y = rng.standard_normal((n, 3)), rng.standard_normal((m, 3))
        ix, iy = _dsp.dtw_path(x, y, band=1.0)
        steps = np.stack([np.diff(ix), np.diff(iy)], axis=1)
        assert (ix[0], iy[0], ix[-1], iy[-1]) == (0, 0, n - 1, m - 1)
        assert {tuple(s) for s in steps} <= {(0, 1), (1, 0), (1, 1)}
        cost = _dsp.euclidean(x, y)
        assert cost[ix, iy].sum() == pytest.approx(full_dtw_cost(cost), abs=1e-9)


def test_dtw_maps_a_stretched_copy_back_onto_the_original():
    x = np.arange(10.0)[:, None]
    y = np.repeat(x, 2, axis=0)  # every frame held twice
    ix, iy = _dsp.dtw_path(x, y)
    assert np.array_equal(ix, iy // 2)
    ix, iy = _dsp.dtw_path(x, x)
    assert np.array_equal(ix, np.arange(10)) and np.array_equal(iy, np.arange(10))


def test_resample_keeps_frequency_and_duration():
    t = np.arange(22050) / 22050
    x = np.sin(2 * np.pi * 1000 * t)
    y = _dsp.resample(x, 22050, SR)
    assert len(y) == SR
    peak_bin = int(np.argmax(np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(SR - 2000)))))
    assert peak_bin * SR / (SR - 2000) == pytest.approx(1000, abs=2)
    assert np.array_equal(_dsp.resample(x, 22050, 22050), x)  # same rate: untouched


def test_require_signal_refuses_short_and_silent_audio():
    with pytest.raises(MetricUnavailable, match="too short"):
        _dsp.require_signal(np.ones(100), SR, min_seconds=0.25, what="the audio")
    with pytest.raises(MetricUnavailable, match="silent"):
        _dsp.require_signal(np.full(SR, 1e-6), SR, min_seconds=0.25, what="the audio")
    _dsp.require_signal(np.full(SR, 0.01), SR, min_seconds=0.25, what="the audio")


# --- pitch ------------------------------------------------------------------------------------


def test_pitch_of_a_tone_50_cents_sharp():
    pytest.importorskip("parselmouth")
    from voxbench.quality import pitch

    sharp = 220.0 * 2 ** (50 / 1200)
    item = Item(audio=Clip(tone(sharp, 1.0), SR), reference=Clip(tone(220.0, 1.0), SR))
    result = pitch.compute(item)
    assert result["f0_rmse_hz"] == pytest.approx(sharp - 220.0, abs=1.0)  # 6.4 Hz
    assert result["f0_rmse_cents"] == pytest.approx(50.0, abs=2.0)
    assert result["gpe"] == 0.0 and result["vde"] < 5.0
    assert (result["target"], result["alignment"]) == ("reference", "time")


def test_melody_f0_is_the_sounding_note_and_zero_between_notes():
    from voxbench.quality.pitch import melody_f0

    times = np.array([0.05, 0.15, 0.25, 0.35, 0.45])
    notes = (Note(0.2, 0.2, 81), Note(0.1, 0.2, 69))  # overlapping: the later start wins
    assert melody_f0(times, notes).tolist() == pytest.approx([0.0, 440.0, 880.0, 880.0, 0.0])


def test_pitch_against_a_melody_and_the_same_melody_a_semitone_up():
    pytest.importorskip("parselmouth")
    from voxbench.quality import pitch

    audio = melody_audio(NOTES, 1.5)
    exact = pitch.compute(Item(audio=audio, melody=NOTES))
    assert (exact["target"], exact["alignment"]) == ("melody", "time")
    assert exact["f0_rmse_cents"] < 5.0 and exact["gpe"] == 0.0
    assert exact["vde"] < 10.0  # only frames at note edges, where the 60 ms window straddles
    up = tuple(Note(n.onset, n.duration, n.pitch + 1) for n in NOTES)
    wrong = pitch.compute(Item(audio=audio, melody=up))
    assert wrong["f0_rmse_cents"] == pytest.approx(100.0, abs=5.0)
    octave = tuple(Note(n.onset, n.duration, n.pitch + 12) for n in NOTES)
    assert pitch.compute(Item(audio=audio, melody=octave))["gpe"] > 90.0


def test_pitch_against_a_melody_ignores_a_silent_tail_but_not_a_late_start():
    pytest.importorskip("parselmouth")
    from voxbench.quality import pitch

    tail = pitch.compute(Item(audio=melody_audio(NOTES, 2.5), melody=NOTES))
    assert tail["alignment"] == "time" and tail["f0_rmse_cents"] < 5.0
    late = tuple(Note(n.onset + 0.3, n.duration, n.pitch) for n in NOTES)
    shifted = pitch.compute(Item(audio=melody_audio(late, 1.8), melody=NOTES))
    assert shifted["alignment"] == "dtw" and shifted["gpe"] == 0.0


def test_pitch_aligns_a_slower_performance_by_dtw():
    pytest.importorskip("parselmouth")
    from voxbench.quality import pitch

    slower = tuple(Note(n.onset * 1.3, n.duration * 1.3, n.pitch) for n in NOTES)
    audio = melody_audio(slower, 1.95)
    result = pitch.compute(Item(audio=audio, melody=NOTES))
    assert result["alignment"] == "dtw"
    assert result["f0_rmse_cents"] < 5.0 and result["gpe"] == 0.0
    # frame by frame, the same performance is several notes off
    times, f0 = pitch.f0_contour(audio)
    plain = pitch.pitch_errors(*_dsp.trim_to_shorter(f0, pitch.melody_f0(times, NOTES)))
    assert plain["gpe"] > 20.0


def test_f0_contour_is_unvoiced_in_silence_and_voiced_on_a_tone():
    pytest.importorskip("parselmouth")
    from voxbench.quality import pitch

    audio = np.concatenate([np.zeros(SR // 2, np.float32), tone(330.0, 0.5)])
    times, f0 = pitch.f0_contour(Clip(audio, SR))
    assert len(times) == len(f0) and np.all(np.diff(times) == pytest.approx(0.01))
    assert np.all(f0[times < 0.4] == 0)
    assert np.median(f0[times > 0.6]) == pytest.approx(330.0, abs=1.0)


def test_pitch_without_a_voiced_target_is_unavailable(noise: Clip):
    pytest.importorskip("parselmouth")
    from voxbench.quality import pitch

    silent = Clip(np.zeros(SR, np.float32), SR)
    with pytest.raises(MetricUnavailable, match="no voiced frame"):
        pitch.compute(Item(audio=noise, reference=silent))
    with pytest.raises(MetricUnavailable, match="Praat"):
        pitch.compute(Item(audio=Clip(tone(220.0, 0.02), SR), reference=silent))


# --- spectral ---------------------------------------------------------------------------------


def test_spectral_distances_of_identical_audio_are_zero(speech: Clip):
    from voxbench.quality import spectral

    result = spectral.compute(Item(audio=speech, reference=speech))
    assert result["mcd_db"] < 1e-6 and result["lsd_db"] < 1e-6
    assert result["spectral_convergence"] < 1e-6


def test_spectral_distances_rank_noise_far_and_a_stretched_copy_near(
    speech: Clip, slow_speech: Clip, noise: Clip
):
    from voxbench.quality import spectral

    stretched = spectral.compute(Item(audio=slow_speech, reference=speech))
    noisy = spectral.compute(Item(audio=noise, reference=speech))
    assert stretched["frames_audio"] > 1.15 * stretched["frames_reference"]
    assert stretched["frames"] >= stretched["frames_audio"]  # every frame is on the DTW path
    assert noisy["mcd_db"] > 5.0 and noisy["mcd_db"] > 3 * stretched["mcd_db"]
    assert noisy["lsd_db"] > 2 * stretched["lsd_db"]
    assert noisy["spectral_convergence"] > 1.0 > stretched["spectral_convergence"]


def test_spectral_compares_across_sample_rates(speech: Clip):
    from voxbench.quality import spectral

    resampled = Clip(_dsp.resample(speech.audio, speech.sample_rate, SR), SR)
    result = spectral.compute(Item(audio=resampled, reference=speech))
    assert result["mcd_db"] < 0.01 and result["spectral_convergence"] < 0.01


def test_spectral_needs_a_reference_with_signal(speech: Clip):
    from voxbench.quality import spectral

    silent = Clip(np.zeros(SR, np.float32), SR)
    with pytest.raises(MetricUnavailable, match="silent"):
        spectral.compute(Item(audio=speech, reference=silent))


def test_mel_cepstrum_of_a_known_warped_ripple():
    """A log-amplitude ripple 0.2 cos(w~) on the warped axis is c1 = 0.2 (SPTK's causal cepstrum,
    ln|X| = c0 + sum c_m cos(m w~)) and nothing else; the symmetric real cepstrum would give 0.1."""
    from voxbench.quality import spectral

    omega = np.linspace(0.0, np.pi, spectral.WINDOW // 2 + 1)
    a = spectral.ALPHA
    warped = omega + 2 * np.arctan(a * np.sin(omega) / (1 - a * np.cos(omega)))
    ripple = spectral.mel_cepstrum(spectral.power_db(np.exp(2 * 0.2 * np.cos(warped))[None, :]))
    flat = spectral.mel_cepstrum(spectral.power_db(np.ones((1, len(omega)))))
    delta = (ripple - flat)[0]
    assert delta[1] == pytest.approx(0.2, abs=0.004)
    assert np.abs(delta[2:]).max() < 0.004


def test_a_gain_change_moves_lsd_and_convergence_but_not_mcd():
    """Half the amplitude: c0 only (excluded from MCD), 20 log10 2 dB in every bin, |S|/2."""
    from voxbench.quality import spectral

    rng = np.random.default_rng(5)
    reference = 0.1 * rng.standard_normal(SR)  # broadband: every bin far above the power floor
    result = spectral.distances(reference, 0.5 * reference)
    assert result["mcd_db"] < 0.01  # only the power floor's 1e-10 differs, in the faintest bins
    assert result["lsd_db"] == pytest.approx(20 * math.log10(2), abs=0.01)
    assert result["spectral_convergence"] == pytest.approx(0.5, abs=1e-6)


# --- perceptual -------------------------------------------------------------------------------


def test_pesq_and_stoi_of_identical_speech_are_at_their_maximum(speech: Clip):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from voxbench.quality import perceptual

    item = Item(audio=speech, reference=speech)
    pesq = perceptual.compute_pesq(item)
    assert pesq["pesq_wb"] == pytest.approx(4.64, abs=0.02)
    assert pesq["pesq_nb"] == pytest.approx(4.55, abs=0.02)
    stoi = perceptual.compute_stoi(item)
    assert stoi["stoi"] > 0.99 and stoi["estoi"] > 0.99


def test_pesq_and_stoi_of_noise_against_speech_are_bad(speech: Clip, noise: Clip):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from voxbench.quality import perceptual

    item = Item(audio=noise, reference=speech)
    pesq = perceptual.compute_pesq(item)
    assert pesq["pesq_wb"] < 2.0 and pesq["pesq_nb"] < 2.0
    stoi = perceptual.compute_stoi(item)
    assert stoi["stoi"] < 0.5 and stoi["estoi"] < 0.5


def test_perceptual_metrics_refuse_silent_and_too_short_input(speech: Clip):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from voxbench.quality import perceptual

    silent = Clip(np.zeros_like(speech.audio), speech.sample_rate)
    short = Clip(speech.audio[: speech.sample_rate // 10], speech.sample_rate)
    for compute in (perceptual.compute_pesq, perceptual.compute_stoi):
        with pytest.raises(MetricUnavailable, match="silent"):
            compute(Item(audio=silent, reference=speech))
        with pytest.raises(MetricUnavailable, match="silent"):
            compute(Item(audio=speech, reference=silent))
        with pytest.raises(MetricUnavailable, match="too short"):
            compute(Item(audio=short, reference=speech))
    with pytest.raises(MetricUnavailable, match="too short"):
        perceptual.compute_dnsmos(Item(audio=short))
    with pytest.raises(MetricUnavailable, match="silent"):
        perceptual.compute_dnsmos(Item(audio=silent))


def test_stoi_without_enough_speech_is_unavailable_not_1e5(speech: Clip):
    pytest.importorskip("pystoi")
    from voxbench.quality import perceptual

    # 0.5 s of audio but only 0.1 s of it within STOI's 40 dB dynamic range: too few frames
    audio = speech.audio[: speech.sample_rate // 2].copy()
    audio[speech.sample_rate // 10 :] *= 1e-3
    clip = Clip(audio, speech.sample_rate)
    with pytest.raises(MetricUnavailable, match="too short for STOI"):
        perceptual.compute_stoi(Item(audio=clip, reference=clip))


def test_dnsmos_scores_speech_above_noise(speech: Clip):
    pytest.importorskip("speechmos")
    from voxbench.quality import perceptual

    # 1.2 s of noise fills exactly one 9 s DNSMOS window once repeated: one model run
    rng = np.random.default_rng(3)
    noise = Clip((0.1 * rng.standard_normal(int(1.2 * SR))).astype(np.float32), SR)
    clean = perceptual.compute_dnsmos(Item(audio=speech))
    noisy = perceptual.compute_dnsmos(Item(audio=noise))
    for scores in (clean, noisy):
        assert all(1.0 <= v <= 5.0 for v in scores.values())
    assert clean["dnsmos_ovrl"] > noisy["dnsmos_ovrl"] + 0.5
    assert clean["dnsmos_bak"] > noisy["dnsmos_bak"]


# --- the metric declarations ------------------------------------------------------------------


def family_metrics():
    from voxbench.quality import perceptual, pitch, spectral

    return [*pitch.METRICS, *spectral.METRICS, *perceptual.METRICS]


def test_metric_names_and_values_are_the_contract():
    declared = {m.name: (m.family, [v.name for v in m.values]) for m in family_metrics()}
    assert declared == {
        "pitch": ("pitch", ["f0_rmse_hz", "f0_rmse_cents", "vde", "gpe"]),
        "spectral": ("spectral", ["mcd_db", "lsd_db", "spectral_convergence"]),
        "pesq": ("perceptual", ["pesq_wb", "pesq_nb"]),
        "stoi": ("perceptual", ["stoi", "estoi"]),
        "dnsmos": (
            "perceptual",
            ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"],
        ),
    }


def test_a_missing_package_makes_a_metric_unavailable_with_the_fix(monkeypatch):
    metrics = {m.name: m for m in family_metrics()}
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("parselmouth", "pesq") else real_find_spec(name, *a),
    )
    assert "parselmouth not installed" in (metrics["pitch"].unavailable() or "")
    assert "pip install" in (metrics["pesq"].unavailable() or "")
    assert metrics["spectral"].unavailable() is None
