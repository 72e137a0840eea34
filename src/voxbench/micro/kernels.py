"""Kernels that speech engines spend time in, each on several backends, needing no model weights.

Every kernel exists as plain functions per backend (``mel_numpy``, ``mel_torch``, ...), usable and
tested on their own, and as a :class:`Kernel` entry in :data:`KERNELS` that builds a ready-to-time
call (:class:`Prepared`) for one size, backend and device. Inputs are synthetic and seeded, so
every run times the same data.

Families:

- **audio**: mel spectrogram and STFT (n_fft 1024, hop 256, 80 mels, Hann window, centred frames
  with zero padding: librosa's defaults), resampling 12→24 kHz and 22.05→16 kHz. Reference:
  librosa (``melspectrogram``, ``stft``, ``resample`` with soxr_hq); torchaudio's transforms run
  as one more backend where torchaudio is installed.
- **sampling**: logits processors over vocabularies of 1k, 32k and 152k tokens: top-k, top-p
  (nucleus), temperature and repetition penalty (as Hugging Face transformers'
  ``RepetitionPenaltyLogitsProcessor``: positive logits divided, negative multiplied). Masked
  tokens get ``-inf``. Reference: numpy.
- **codes**: codec frame codes ``[frames, codebooks]`` packed into one token stream with
  MusicGen's delay pattern (codebook k shifted by k frames, interleaved frame by frame, each
  codebook offset into its own id range) and unpacked again. Reference: numpy.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "scipy", "torch", "torchaudio", "librosa")
GPU_BACKENDS = ("torch", "torchaudio")
N_FFT = 1024
HOP = 256
N_MELS = 80
TOP_K = 50
TOP_P = 0.9
TEMPERATURE = 0.7
REPETITION_PENALTY = 1.2
CONTEXT_TOKENS = 256
CODEC_FRAME_RATE = 75  # EnCodec 24 kHz
CODEBOOKS = 8
CODEBOOK_SIZE = 1024
AUDIO_SECONDS = (0.5, 2.0, 10.0)
QUICK_AUDIO_SECONDS = (0.5, 2.0)
VOCABS = {"1k": 1024, "32k": 32000, "152k": 151936}
SAMPLING_SHAPES = [(v, b) for v in VOCABS for b in (1, 8)]
QUICK_SAMPLING_SHAPES = [("32k", 8), ("152k", 1)]


# ---------------------------------------------------------------------------------------------
# Synthetic inputs


def seconds_label(seconds: float) -> str:
    """``0.5`` → ``"0.5s"``, ``2.0`` → ``"2s"``."""
    return f"{seconds:g}s"


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


def random_logits(vocab: int, batch: int, seed: int = 0) -> np.ndarray:
    """Seeded float32 logits ``[batch, vocab]`` with a peaked softmax, as a language model's."""
    rng = np.random.default_rng(seed)
    return (3.0 * rng.standard_normal((batch, vocab))).astype(np.float32)


def random_context(vocab: int, batch: int, n: int = CONTEXT_TOKENS, seed: int = 1) -> np.ndarray:
    """Seeded previous token ids ``[batch, n]`` (int64, with repeats) for the repetition penalty."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, size=(batch, n), dtype=np.int64)


def random_codes(frames: int, codebooks: int, dtype: str, seed: int = 2) -> np.ndarray:
    """Seeded codec codes ``[frames, codebooks]`` in ``[0, CODEBOOK_SIZE)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, CODEBOOK_SIZE, size=(frames, codebooks)).astype(dtype)


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
# Sampling over logits (numpy and torch; batch along the first axis)


def top_k_numpy(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep exactly the ``k`` largest logits of each row; the rest become ``-inf``."""
    keep = np.argpartition(logits, -k, axis=-1)[..., -k:]
    out = np.full_like(logits, -np.inf)
    np.put_along_axis(out, keep, np.take_along_axis(logits, keep, -1), -1)
    return out


def top_k_torch(logits: Any, k: int) -> Any:
    """Keep exactly the ``k`` largest logits of each row (``torch.topk``); the rest ``-inf``."""
    import torch

    values, idx = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(-1, idx, values)


def _keep_nucleus(cum_sorted: np.ndarray, p: float) -> np.ndarray:
    """In descending order: keep a token while the probability before it is still below ``p``."""
    keep = np.empty(cum_sorted.shape, dtype=bool)
    keep[..., 0] = True
    keep[..., 1:] = cum_sorted[..., :-1] < p
    return keep


NUCLEUS_NOTE = (
    "top-p accumulates the sorted float32 probabilities in float64: a float32 running sum over "
    "152k tokens drifts enough to move the nucleus boundary by tens of tokens between backends"
)


def top_p_numpy(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: keep the smallest set of most probable tokens whose softmax
    probabilities sum to at least ``p``; the rest become ``-inf``."""
    order = np.argsort(-logits, axis=-1)
    ordered = np.take_along_axis(logits, order, -1)
    probs = np.exp(ordered - ordered[..., :1])
    cum = np.cumsum(probs, axis=-1, dtype=np.float64)  # see NUCLEUS_NOTE
    cum /= cum[..., -1:]
    keep_sorted = _keep_nucleus(cum, p)
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, -1)
    return np.where(keep, logits, np.float32(-np.inf))


def top_p_torch(logits: Any, p: float) -> Any:
    """Nucleus filtering with ``torch.sort``/``cumsum`` (see :func:`top_p_numpy`)."""
    import torch

    ordered, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.exp(ordered - ordered[..., :1])
    cum = probs.cumsum(dim=-1, dtype=torch.float64)  # see NUCLEUS_NOTE
    cum /= cum[..., -1:].clone()
    remove_sorted = torch.zeros_like(cum, dtype=torch.bool)
    remove_sorted[..., 1:] = cum[..., :-1] >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def temperature_numpy(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Logits divided by the temperature."""
    return logits / np.float32(temperature)


def temperature_torch(logits: Any, temperature: float) -> Any:
    """Logits divided by the temperature."""
    return logits / temperature


def repetition_penalty_numpy(
    logits: np.ndarray, previous: np.ndarray, penalty: float
) -> np.ndarray:
    """Penalise tokens already generated (``previous``: ids ``[batch, n]``): a positive logit is
    divided by ``penalty``, a negative one multiplied, once per token however often it repeats
    (transformers' ``RepetitionPenaltyLogitsProcessor``)."""
    picked = np.take_along_axis(logits, previous, -1)
    picked = np.where(picked < 0, picked * np.float32(penalty), picked / np.float32(penalty))
    out = logits.copy()
    np.put_along_axis(out, previous, picked, -1)
    return out


def repetition_penalty_torch(logits: Any, previous: Any, penalty: float) -> Any:
    """The same with ``torch.gather``/``scatter`` (as transformers implements it)."""
    import torch

    picked = torch.gather(logits, -1, previous)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return logits.scatter(-1, previous, picked)


# ---------------------------------------------------------------------------------------------
# Frame-code packing (MusicGen's delay pattern)


def pad_token(codebooks: int, codebook_size: int = CODEBOOK_SIZE) -> int:
    """The id of the padding token: one past the last codebook's range."""
    return codebooks * codebook_size


def pack_delay_numpy(codes: np.ndarray, codebook_size: int = CODEBOOK_SIZE) -> np.ndarray:
    """``codes [frames, K]`` → tokens ``[(frames + K - 1) * K]``: codebook ``k`` delayed by ``k``
    steps (MusicGen's delay pattern), offset by ``k * codebook_size``, interleaved step by step;
    the empty corners hold :func:`pad_token`. Same dtype as ``codes``."""
    frames, k_books = codes.shape
    out = np.full((frames + k_books - 1, k_books), pad_token(k_books, codebook_size), codes.dtype)
    for k in range(k_books):
        out[k : k + frames, k] = codes[:, k] + k * codebook_size
    return out.reshape(-1)


def unpack_delay_numpy(
    tokens: np.ndarray, codebooks: int, codebook_size: int = CODEBOOK_SIZE
) -> np.ndarray:
    """Inverse of :func:`pack_delay_numpy`: tokens → codes ``[frames, K]``."""
    steps = tokens.shape[0] // codebooks
    grid = tokens.reshape(steps, codebooks)
    frames = steps - codebooks + 1
    out = np.empty((frames, codebooks), tokens.dtype)
    for k in range(codebooks):
        out[:, k] = grid[k : k + frames, k] - k * codebook_size
    return out


def pack_delay_torch(codes: Any, codebook_size: int = CODEBOOK_SIZE) -> Any:
    """:func:`pack_delay_numpy` on torch tensors (any device)."""
    import torch

    frames, k_books = codes.shape
    out = torch.full(
        (frames + k_books - 1, k_books),
        pad_token(k_books, codebook_size),
        dtype=codes.dtype,
        device=codes.device,
    )
    for k in range(k_books):
        out[k : k + frames, k] = codes[:, k] + k * codebook_size
    return out.reshape(-1)


def unpack_delay_torch(tokens: Any, codebooks: int, codebook_size: int = CODEBOOK_SIZE) -> Any:
    """:func:`unpack_delay_numpy` on torch tensors (any device)."""
    import torch

    steps = tokens.shape[0] // codebooks
    grid = tokens.reshape(steps, codebooks)
    frames = steps - codebooks + 1
    out = torch.empty((frames, codebooks), dtype=tokens.dtype, device=tokens.device)
    for k in range(codebooks):
        out[:, k] = grid[k : k + frames, k] - k * codebook_size
    return out


# ---------------------------------------------------------------------------------------------
# The registry: sizes, backends and ready-to-time calls


@dataclass(frozen=True)
class Size:
    """One input size of a kernel: the case's workload label, input id and settings."""

    workload: str
    input_id: str
    input_kind: str
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    audio_seconds: float | None = None
    batch: int = 1


@dataclass
class Prepared:
    """A kernel bound to its input: ``call()`` runs it once; ``result()`` gives the last output
    as numpy for the agreement check; ``sync`` waits for the device (CUDA) or is None."""

    call: Callable[[], Any]
    to_numpy: Callable[[Any], np.ndarray]
    sync: Callable[[], None] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kernel:
    """A benchmarked kernel: name, family, reference backend, backends, sizes and builder."""

    name: str
    family: str
    summary: str
    reference: str
    backends: tuple[str, ...]
    sizes: Callable[[bool], list[Size]]
    build: Callable[[str, str, Size], Prepared]
    params: Callable[[Size], dict[str, Any]] = lambda size: {}


def backend_version(backend: str) -> str | None:
    """The installed version of a backend's library, or None when it is not installed."""
    module = backend
    if importlib.util.find_spec(module) is None:
        return None
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "unknown"


def _torch_device(device: str) -> tuple[Any, Callable[[], None] | None, dict[str, Any]]:
    import torch

    dev = torch.device(device)
    info: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(dev)
        return dev, (lambda: torch.cuda.synchronize(dev)), info
    return dev, None, info


def _numpy_out(x: Any) -> np.ndarray:
    return np.asarray(x)


def _torch_out(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy()


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
        if backend == "librosa":
            if kind == "mel":
                return Prepared(lambda: mel_librosa(y, sr), _numpy_out)
            return Prepared(lambda: stft_librosa(y), _numpy_out)
        if backend == "torchaudio":
            import torch

            dev, sync, info = _torch_device(device)
            spectral = torchaudio_spectral(kind, sr, device)
            ty = torch.from_numpy(y).to(dev)
            return Prepared(lambda: spectral(ty), _torch_out, sync, info)
        if backend in ("numpy", "scipy"):
            fn = {
                ("mel", "numpy"): mel_numpy,
                ("mel", "scipy"): mel_scipy,
                ("stft", "numpy"): stft_numpy,
                ("stft", "scipy"): stft_scipy,
            }[(kind, backend)]
            if kind == "mel":
                return Prepared(lambda: fn(y, fb, window), _numpy_out)
            return Prepared(lambda: fn(y, window), _numpy_out)
        import torch

        dev, sync, info = _torch_device(device)
        ty = torch.from_numpy(y).to(dev)
        tw = torch.from_numpy(window).to(dev)
        if kind == "mel":
            tfb = torch.from_numpy(fb).to(dev)
            return Prepared(lambda: mel_torch(ty, tfb, tw), _torch_out, sync, info)
        return Prepared(lambda: stft_torch(ty, tw), _torch_out, sync, info)

    return build


RESAMPLE_PAIRS = ((12000, 24000), (22050, 16000))


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
        return Prepared(lambda: resample_librosa(y, src, dst), _numpy_out)
    if backend == "scipy":
        return Prepared(lambda: resample_scipy(y, src, dst), _numpy_out)
    if backend == "torchaudio":
        import torch

        dev, sync, info = _torch_device(device)
        resampler = torchaudio_resample(src, dst, device)
        ty = torch.from_numpy(y).to(dev)
        return Prepared(lambda: resampler(ty), _torch_out, sync, info)
    r = SincResampler.design(src, dst)
    if backend == "numpy":
        return Prepared(lambda: resample_numpy(y, r), _numpy_out)
    import torch

    dev, sync, info = _torch_device(device)
    ty = torch.from_numpy(y).to(dev)
    kernel = torch.from_numpy(r.kernel[:, None, :]).to(dev)
    return Prepared(lambda: resample_torch(ty, kernel, r), _torch_out, sync, info)


def _sampling_sizes(quick: bool) -> list[Size]:
    return [
        Size(
            workload=f"vocab{label}-b{batch}",
            input_id="fp32",
            input_kind="logits",
            settings={"vocab": VOCABS[label], "batch": batch},
            batch=batch,
        )
        for label, batch in (QUICK_SAMPLING_SHAPES if quick else SAMPLING_SHAPES)
    ]


SAMPLING_SETTINGS = {
    "topk": {"top_k": TOP_K},
    "topp": {"top_p": TOP_P},
    "temperature": {"temperature": TEMPERATURE},
    "repetition_penalty": {"penalty": REPETITION_PENALTY, "context_tokens": CONTEXT_TOKENS},
}


def _build_sampling(kind: str) -> Callable[[str, str, Size], Prepared]:
    def build(backend: str, device: str, size: Size) -> Prepared:
        vocab, batch = int(size.settings["vocab"]), int(size.settings["batch"])
        logits = random_logits(vocab, batch)
        previous = random_context(vocab, batch)
        if backend == "numpy":
            calls: dict[str, Callable[[], Any]] = {
                "topk": lambda: top_k_numpy(logits, TOP_K),
                "topp": lambda: top_p_numpy(logits, TOP_P),
                "temperature": lambda: temperature_numpy(logits, TEMPERATURE),
                "repetition_penalty": lambda: repetition_penalty_numpy(
                    logits, previous, REPETITION_PENALTY
                ),
            }
            return Prepared(calls[kind], _numpy_out)
        import torch

        dev, sync, info = _torch_device(device)
        tl = torch.from_numpy(logits).to(dev)
        tp = torch.from_numpy(previous).to(dev)
        tcalls: dict[str, Callable[[], Any]] = {
            "topk": lambda: top_k_torch(tl, TOP_K),
            "topp": lambda: top_p_torch(tl, TOP_P),
            "temperature": lambda: temperature_torch(tl, TEMPERATURE),
            "repetition_penalty": lambda: repetition_penalty_torch(tl, tp, REPETITION_PENALTY),
        }
        return Prepared(tcalls[kind], _torch_out, sync, info)

    return build


CODE_DTYPES = ("int16", "int32")


def _codes_sizes(quick: bool) -> list[Size]:
    return [
        Size(
            workload=seconds_label(sec),
            input_id=f"{CODEBOOKS}cb-{dtype}",
            input_kind="codes",
            settings={
                "frames": math.ceil(sec * CODEC_FRAME_RATE),
                "codebooks": CODEBOOKS,
                "codebook_size": CODEBOOK_SIZE,
                "frame_rate": CODEC_FRAME_RATE,
                "dtype": dtype,
            },
            audio_seconds=sec,
        )
        for sec in (QUICK_AUDIO_SECONDS if quick else AUDIO_SECONDS)
        for dtype in CODE_DTYPES
    ]


def _build_codes(kind: str) -> Callable[[str, str, Size], Prepared]:
    def build(backend: str, device: str, size: Size) -> Prepared:
        frames, books = int(size.settings["frames"]), int(size.settings["codebooks"])
        codes = random_codes(frames, books, str(size.settings["dtype"]))
        tokens = pack_delay_numpy(codes)
        if backend == "numpy":
            if kind == "pack":
                return Prepared(lambda: pack_delay_numpy(codes), _numpy_out)
            return Prepared(lambda: unpack_delay_numpy(tokens, books), _numpy_out)
        import torch

        dev, sync, info = _torch_device(device)
        if kind == "pack":
            tc = torch.from_numpy(codes).to(dev)
            return Prepared(lambda: pack_delay_torch(tc), _torch_out, sync, info)
        tt = torch.from_numpy(tokens).to(dev)
        return Prepared(lambda: unpack_delay_torch(tt, books), _torch_out, sync, info)

    return build


def _codes_params(size: Size) -> dict[str, Any]:
    return {"dtype": size.settings["dtype"]}


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
    "topk": Kernel(
        "topk",
        "sampling",
        f"top-k filtering, k={TOP_K}",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("topk"),
    ),
    "topp": Kernel(
        "topp",
        "sampling",
        f"top-p (nucleus) filtering, p={TOP_P}",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("topp"),
    ),
    "temperature": Kernel(
        "temperature",
        "sampling",
        f"temperature scaling, T={TEMPERATURE}",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("temperature"),
    ),
    "repetition_penalty": Kernel(
        "repetition_penalty",
        "sampling",
        f"repetition penalty {REPETITION_PENALTY} over {CONTEXT_TOKENS} previous tokens",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("repetition_penalty"),
    ),
    "pack": Kernel(
        "pack",
        "codes",
        f"delay-pattern packing of {CODEBOOKS} codebooks at {CODEC_FRAME_RATE} frames/s",
        "numpy",
        ("numpy", "torch"),
        _codes_sizes,
        _build_codes("pack"),
        _codes_params,
    ),
    "unpack": Kernel(
        "unpack",
        "codes",
        f"delay-pattern unpacking of {CODEBOOKS} codebooks at {CODEC_FRAME_RATE} frames/s",
        "numpy",
        ("numpy", "torch"),
        _codes_sizes,
        _build_codes("unpack"),
        _codes_params,
    ),
}
FAMILIES = {
    family: tuple(k.name for k in KERNELS.values() if k.family == family)
    for family in ("audio", "sampling", "codes")
}


def agreement(output: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How far ``output`` is from ``reference``: ``max_abs_error`` and ``max_rel_error`` (the
    largest absolute difference divided by the reference's largest magnitude) over the entries
    finite in both, and ``mismatched`` entries (different shape or finiteness count as all)."""
    out = np.asarray(output)
    ref = np.asarray(reference)
    if out.shape != ref.shape:
        return {
            "max_abs_error": None,
            "max_rel_error": None,
            "mismatched": int(max(out.size, ref.size)),
            "note": f"shape {list(out.shape)} vs reference {list(ref.shape)}",
        }
    out_c = out.astype(np.complex128 if np.iscomplexobj(out) else np.float64)
    ref_c = ref.astype(np.complex128 if np.iscomplexobj(ref) else np.float64)
    fin_out, fin_ref = np.isfinite(out_c), np.isfinite(ref_c)
    both = fin_out & fin_ref
    mismatched = int(np.count_nonzero(fin_out != fin_ref))
    mismatched += int(np.count_nonzero(~fin_out & ~fin_ref & (out_c != ref_c)))
    if not both.any():
        return {"max_abs_error": 0.0, "max_rel_error": 0.0, "mismatched": mismatched}
    diff = np.abs(out_c[both] - ref_c[both])
    scale = float(np.abs(ref_c[both]).max())
    max_abs = float(diff.max())
    return {
        "max_abs_error": max_abs,
        "max_rel_error": max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf),
        "mismatched": mismatched,
    }
