"""Audio kernels: mel spectrogram and STFT (n_fft 1024, hop 256, 80 mels, Hann window, centred
frames with zero padding: librosa's defaults) and resampling 12→24 kHz and 22.05→16 kHz.

Reference: librosa (``melspectrogram``, ``stft``, ``resample`` with soxr_hq); torchaudio's
transforms run as one more backend where torchaudio is installed. The input is
:func:`voice_like`, a seeded band-limited harmonic signal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxbench.micro.kernels.base import (
    AUDIO_SECONDS,
    QUICK_AUDIO_SECONDS,
    Kernel,
    Prepared,
    Size,
    numpy_out,
    seconds_label,
    torch_device,
    torch_out,
)

N_FFT = 1024
HOP = 256
N_MELS = 80
RESAMPLE_PAIRS = ((12000, 24000), (22050, 16000))

# ---------------------------------------------------------------------------------------------
# The input


def voice_like(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A seeded, band-limited (< 4.5 kHz) harmonic signal with a gliding pitch, float32 mono.

    Band-limited so that every resampler passes it unchanged (up to its own filter), and faded
    in and out so that edge handling does not dominate the agreement figures. Each call returns
    a fresh copy of a cached signal.
    """
    return _voice_like(float(seconds), int(sample_rate), int(seed)).copy()


@functools.lru_cache(maxsize=16)
def _voice_like(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = max(round(seconds * sample_rate), 1)
    t = np.arange(n) / sample_rate
    f0 = 110.0 + 110.0 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    top = min(4500.0, 0.4 * sample_rate)
    y = np.zeros(n)
    for h in range(1, int(top // 110) + 1):
        amp = np.where(h * f0 < top, 1.0 / h, 0.0)
        y += amp * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    fade = min(n // 2, int(0.01 * sample_rate))
    if fade > 1:
        ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
        y[:fade] *= ramp
        y[-fade:] *= ramp[::-1]
    return (0.3 * y / max(np.abs(y).max(), 1e-9)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Mel spectrogram and STFT


def _hz_to_mel(freqs: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, log above."""
    f_sp = 200.0 / 3
    mels = freqs / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_part = min_log_mel + np.log(np.maximum(freqs, min_log_hz) / min_log_hz) / logstep
    return np.where(freqs >= min_log_hz, log_part, mels)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_part = min_log_hz * np.exp(logstep * (mels - min_log_mel))
    return np.where(mels >= min_log_mel, log_part, freqs)


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]``, Slaney scale and area normalisation,
    0 Hz to Nyquist: the same matrix as ``librosa.filters.mel(sr=..., n_fft=..., n_mels=...)``."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_pts = np.linspace(
        _hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2
    )
    mel_f = _mel_to_hz(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def hann_window(n: int = N_FFT) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window('hann', n)``), float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _frames(y: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """Centred, zero-padded, windowed frames ``[frames, n_fft]`` (librosa's ``center=True``)."""
    padded = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return frames * window


def stft_numpy(y: np.ndarray, window: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Complex STFT ``[n_fft // 2 + 1, frames]`` (complex64) with ``numpy.fft.rfft``."""
    return np.fft.rfft(_frames(y, n_fft, hop, window), axis=-1).T.astype(np.complex64, copy=False)


def stft_scipy(y: np.ndarray, window: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """The same STFT with ``scipy.fft.rfft`` (pocketfft, single worker) on the same frames."""
    import scipy.fft

    return scipy.fft.rfft(_frames(y, n_fft, hop, window), axis=-1).T


def mel_numpy(
    y: np.ndarray, fb: np.ndarray, window: np.ndarray, n_fft: int = N_FFT, hop: int = HOP
) -> np.ndarray:
    """Power mel spectrogram ``[n_mels, frames]``: |STFT|² through the mel filters (numpy)."""
    spec = np.fft.rfft(_frames(y, n_fft, hop, window), axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)
    return fb @ power.T


def mel_scipy(
    y: np.ndarray, fb: np.ndarray, window: np.ndarray, n_fft: int = N_FFT, hop: int = HOP
) -> np.ndarray:
    """The same mel spectrogram with ``scipy.fft.rfft``."""
    import scipy.fft

    spec = scipy.fft.rfft(_frames(y, n_fft, hop, window), axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)
    return fb @ power.T


def stft_torch(y: Any, window: Any, n_fft: int = N_FFT, hop: int = HOP) -> Any:
    """Complex STFT ``[n_fft // 2 + 1, frames]`` with ``torch.stft`` (tensors on any device)."""
    import torch

    return torch.stft(
        y,
        n_fft,
        hop_length=hop,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )


def mel_torch(y: Any, fb: Any, window: Any, n_fft: int = N_FFT, hop: int = HOP) -> Any:
    """Power mel spectrogram ``[n_mels, frames]`` with ``torch.stft`` and a matrix product."""
    spec = stft_torch(y, window, n_fft, hop)
    return fb @ (spec.real**2 + spec.imag**2)


def mel_librosa(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """The reference: ``librosa.feature.melspectrogram`` with the same settings."""
    import librosa

    return librosa.feature.melspectrogram(
        y=y, sr=sample_rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS
    )


def stft_librosa(y: np.ndarray) -> np.ndarray:
    """The reference: ``librosa.stft`` with the same settings."""
    import librosa

    return librosa.stft(y, n_fft=N_FFT, hop_length=HOP)


def torchaudio_spectral(kind: str, sample_rate: int, device: str = "cpu") -> Any:
    """torchaudio's ``MelSpectrogram`` (Slaney scale and norm, power 2) or ``Spectrogram``
    (complex) with the same settings as the other backends, as a module on ``device``."""
    import torch
    import torchaudio

    common = {"n_fft": N_FFT, "hop_length": HOP, "center": True, "pad_mode": "constant"}
    if kind == "mel":
        transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_mels=N_MELS,
            power=2.0,
            norm="slaney",
            mel_scale="slaney",
            **common,
        )
    else:
        transform = torchaudio.transforms.Spectrogram(power=None, **common)
    return transform.to(torch.device(device))


def torchaudio_resample(orig_sr: int, new_sr: int, device: str = "cpu") -> Any:
    """torchaudio's ``Resample`` transform (its filter designed once, as an engine keeps it)."""
    import torch
    import torchaudio

    return torchaudio.transforms.Resample(orig_sr, new_sr).to(torch.device(device))


# ---------------------------------------------------------------------------------------------
# Resampling


@dataclass(frozen=True)
class SincResampler:
    """Windowed-sinc polyphase resampling, the algorithm of ``torchaudio.functional.resample``
    (Hann-windowed sinc, 6 zero crossings, roll-off 0.99): one filter phase per output sample of
    the reduced ratio, applied with stride ``orig``."""

    orig: int
    new: int
    kernel: np.ndarray  # [new, 2 * width + orig], float32
    width: int

    @classmethod
    def design(
        cls, orig_sr: int, new_sr: int, zero_crossings: int = 6, rolloff: float = 0.99
    ) -> SincResampler:
        g = math.gcd(orig_sr, new_sr)
        orig, new = orig_sr // g, new_sr // g
        base = min(orig, new) * rolloff
        width = math.ceil(zero_crossings * orig / base)
        idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
        t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx) * base
        t = np.clip(t, -zero_crossings, zero_crossings)
        window = np.cos(t * math.pi / zero_crossings / 2) ** 2
        t *= math.pi
        with np.errstate(invalid="ignore", divide="ignore"):
            sinc = np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t))
        kernel = (sinc * window * base / orig).astype(np.float32)
        return cls(orig=orig, new=new, kernel=kernel, width=width)

    def out_length(self, n: int) -> int:
        return math.ceil(self.new * n / self.orig)


def resample_numpy(y: np.ndarray, r: SincResampler) -> np.ndarray:
    """Apply a :class:`SincResampler` with numpy: strided frames times the phase filters."""
    padded = np.pad(y, (r.width, r.width + r.orig))
    frames = np.lib.stride_tricks.sliding_window_view(padded, r.kernel.shape[1])[:: r.orig]
    return (frames @ r.kernel.T).reshape(-1)[: r.out_length(y.shape[-1])]


def resample_torch(y: Any, kernel: Any, r: SincResampler) -> Any:
    """Apply a :class:`SincResampler` with ``torch.nn.functional.conv1d`` (as torchaudio does);
    ``kernel`` is ``r.kernel`` as a ``[new, 1, taps]`` tensor on the device of ``y``."""
    import torch.nn.functional as F

    padded = F.pad(y[None, None], (r.width, r.width + r.orig))
    out = F.conv1d(padded, kernel, stride=r.orig)  # [1, new, frames]
    return out[0].T.reshape(-1)[: r.out_length(y.shape[-1])]


def resample_scipy(y: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """``scipy.signal.resample_poly`` (Kaiser-windowed FIR, polyphase)."""
    from scipy.signal import resample_poly

    g = math.gcd(orig_sr, new_sr)
    return resample_poly(y, new_sr // g, orig_sr // g).astype(np.float32, copy=False)


def resample_librosa(y: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """The reference: ``librosa.resample`` (soxr, high quality)."""
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=new_sr)


# ---------------------------------------------------------------------------------------------
# Sizes and builders


def _audio_sizes(
    rates: tuple[int, ...], quick_rates: tuple[int, ...]
) -> Callable[[bool], list[Size]]:
    def sizes(quick: bool) -> list[Size]:
        return [
            Size(
                workload=seconds_label(sec),
                input_id=f"{sr}Hz",
                input_kind="audio",
                settings={"sample_rate": sr, "n_fft": N_FFT, "hop": HOP},
                audio_seconds=sec,
            )
            for sec in (QUICK_AUDIO_SECONDS if quick else AUDIO_SECONDS)
            for sr in (quick_rates if quick else rates)
        ]

    return sizes


def _build_spectral(kind: str) -> Callable[[str, str, Size], Prepared]:
    """Builder for ``mel`` (kind ``"mel"``) or ``stft``."""

    def build(backend: str, device: str, size: Size) -> Prepared:
        sr = int(size.settings["sample_rate"])
        y = voice_like(float(size.audio_seconds or 0), sr)
        window = hann_window()
        fb = mel_filterbank(sr)
        mel = kind == "mel"
        if backend == "librosa":
            if mel:
                return Prepared(lambda: mel_librosa(y, sr), numpy_out)
            return Prepared(lambda: stft_librosa(y), numpy_out)
        if backend == "numpy" or backend == "scipy":
            if mel:
                mel_fn = mel_numpy if backend == "numpy" else mel_scipy
                return Prepared(lambda: mel_fn(y, fb, window), numpy_out)
            stft_fn = stft_numpy if backend == "numpy" else stft_scipy
            return Prepared(lambda: stft_fn(y, window), numpy_out)
        return _spectral_on_torch(kind, backend, device, y, sr, fb, window)

    return build


def _spectral_on_torch(
    kind: str,
    backend: str,
    device: str,
    y: np.ndarray,
    sample_rate: int,
    fb: np.ndarray,
    window: np.ndarray,
) -> Prepared:
    """The torch or torchaudio call of :func:`_build_spectral`, its inputs moved to ``device``."""
    import torch

    dev, sync, info = torch_device(device)
    ty = torch.from_numpy(y).to(dev)
    if backend == "torchaudio":
        spectral = torchaudio_spectral(kind, sample_rate, device)
        return Prepared(lambda: spectral(ty), torch_out, sync, info)
    tw = torch.from_numpy(window).to(dev)
    if kind == "mel":
        tfb = torch.from_numpy(fb).to(dev)
        return Prepared(lambda: mel_torch(ty, tfb, tw), torch_out, sync, info)
    return Prepared(lambda: stft_torch(ty, tw), torch_out, sync, info)


def _resample_sizes(quick: bool) -> list[Size]:
    return [
        Size(
            workload=seconds_label(sec),
            input_id=f"{src}-{dst}Hz",
            input_kind="audio",
            settings={"orig_sr": src, "new_sr": dst},
            audio_seconds=sec,
        )
        for sec in (QUICK_AUDIO_SECONDS if quick else AUDIO_SECONDS)
        for src, dst in RESAMPLE_PAIRS
    ]


def _build_resample(backend: str, device: str, size: Size) -> Prepared:
    src, dst = int(size.settings["orig_sr"]), int(size.settings["new_sr"])
    y = voice_like(float(size.audio_seconds or 0), src)
    if backend == "librosa":
        return Prepared(lambda: resample_librosa(y, src, dst), numpy_out)
    if backend == "scipy":
        return Prepared(lambda: resample_scipy(y, src, dst), numpy_out)
    if backend == "torchaudio":
        import torch

        dev, sync, info = torch_device(device)
        resampler = torchaudio_resample(src, dst, device)
        ty = torch.from_numpy(y).to(dev)
        return Prepared(lambda: resampler(ty), torch_out, sync, info)
    r = SincResampler.design(src, dst)
    if backend == "numpy":
        return Prepared(lambda: resample_numpy(y, r), numpy_out)
    import torch

    dev, sync, info = torch_device(device)
    ty = torch.from_numpy(y).to(dev)
    kernel = torch.from_numpy(r.kernel[:, None, :]).to(dev)
    return Prepared(lambda: resample_torch(ty, kernel, r), torch_out, sync, info)


KERNELS: dict[str, Kernel] = {
    "mel": Kernel(
        "mel",
        "audio",
        f"power mel spectrogram, {N_MELS} mels, n_fft {N_FFT}, hop {HOP}",
        "librosa",
        ("numpy", "scipy", "torch", "torchaudio", "librosa"),
        _audio_sizes((22050, 24000), (22050,)),
        _build_spectral("mel"),
    ),
    "stft": Kernel(
        "stft",
        "audio",
        f"complex STFT, n_fft {N_FFT}, hop {HOP}, Hann, centred",
        "librosa",
        ("numpy", "scipy", "torch", "torchaudio", "librosa"),
        _audio_sizes((22050, 24000), (24000,)),
        _build_spectral("stft"),
    ),
    "resample": Kernel(
        "resample",
        "audio",
        "resampling 12→24 kHz and 22.05→16 kHz",
        "librosa",
        ("numpy", "scipy", "torch", "torchaudio", "librosa"),
        _resample_sizes,
        _build_resample,
    ),
}
