"""Kernels that speech engines spend time in, each on several backends, needing no model weights.

Every kernel exists as plain functions per backend (``mel_numpy``, ``mel_torch``, ...), usable and
tested on their own, and as a :class:`Kernel` entry in :data:`KERNELS` that builds a ready-to-time
call (:class:`Prepared`) for one size, backend and device. Inputs are synthetic and seeded, so
every run times the same data.

One module per family, each declaring its own ``KERNELS``:

- :mod:`.audio`: mel spectrogram, STFT and resampling (reference: librosa).
- :mod:`.sampling`: top-k, top-p, temperature and repetition penalty over logits (reference:
  numpy).
- :mod:`.codes`: MusicGen delay-pattern packing and unpacking of codec codes (reference: numpy).

:mod:`.base` holds what they share: :class:`Kernel`, :class:`Size`, :class:`Prepared`, the
backends and :func:`agreement`. To add a kernel, write its backend functions and its ``Kernel``
entry in the family's module; this registry picks it up.
"""

from __future__ import annotations

from voxbench.micro.kernels import audio, codes, sampling
from voxbench.micro.kernels.audio import (
    HOP,
    N_FFT,
    N_MELS,
    RESAMPLE_PAIRS,
    SincResampler,
    hann_window,
    mel_filterbank,
    mel_librosa,
    mel_numpy,
    mel_scipy,
    mel_torch,
    resample_librosa,
    resample_numpy,
    resample_scipy,
    resample_torch,
    stft_librosa,
    stft_numpy,
    stft_scipy,
    stft_torch,
    torchaudio_resample,
    torchaudio_spectral,
    voice_like,
)
from voxbench.micro.kernels.base import (
    AUDIO_SECONDS,
    BACKENDS,
    GPU_BACKENDS,
    QUICK_AUDIO_SECONDS,
    Kernel,
    Prepared,
    Size,
    agreement,
    backend_version,
    seconds_label,
)
from voxbench.micro.kernels.codes import (
    CODE_DTYPES,
    CODEBOOK_SIZE,
    CODEBOOKS,
    CODEC_FRAME_RATE,
    pack_delay_numpy,
    pack_delay_torch,
    pad_token,
    random_codes,
    unpack_delay_numpy,
    unpack_delay_torch,
)
from voxbench.micro.kernels.sampling import (
    CONTEXT_TOKENS,
    NUCLEUS_NOTE,
    QUICK_SAMPLING_SHAPES,
    REPETITION_PENALTY,
    SAMPLING_SETTINGS,
    SAMPLING_SHAPES,
    TEMPERATURE,
    TOP_K,
    TOP_P,
    VOCABS,
    random_context,
    random_logits,
    repetition_penalty_numpy,
    repetition_penalty_torch,
    temperature_numpy,
    temperature_torch,
    top_k_numpy,
    top_k_torch,
    top_p_numpy,
    top_p_torch,
)

# Every kernel by name, family by family: audio, sampling, codes.
KERNELS: dict[str, Kernel] = {**audio.KERNELS, **sampling.KERNELS, **codes.KERNELS}
FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(k.name for k in KERNELS.values() if k.family == family)
    for family in ("audio", "sampling", "codes")
}

__all__ = [
    "AUDIO_SECONDS",
    "BACKENDS",
    "CODEBOOKS",
    "CODEBOOK_SIZE",
    "CODEC_FRAME_RATE",
    "CODE_DTYPES",
    "CONTEXT_TOKENS",
    "FAMILIES",
    "GPU_BACKENDS",
    "HOP",
    "KERNELS",
    "NUCLEUS_NOTE",
    "N_FFT",
    "N_MELS",
    "QUICK_AUDIO_SECONDS",
    "QUICK_SAMPLING_SHAPES",
    "REPETITION_PENALTY",
    "RESAMPLE_PAIRS",
    "SAMPLING_SETTINGS",
    "SAMPLING_SHAPES",
    "TEMPERATURE",
    "TOP_K",
    "TOP_P",
    "VOCABS",
    "Kernel",
    "Prepared",
    "SincResampler",
    "Size",
    "agreement",
    "backend_version",
    "hann_window",
    "mel_filterbank",
    "mel_librosa",
    "mel_numpy",
    "mel_scipy",
    "mel_torch",
    "pack_delay_numpy",
    "pack_delay_torch",
    "pad_token",
    "random_codes",
    "random_context",
    "random_logits",
    "repetition_penalty_numpy",
    "repetition_penalty_torch",
    "resample_librosa",
    "resample_numpy",
    "resample_scipy",
    "resample_torch",
    "seconds_label",
    "stft_librosa",
    "stft_numpy",
    "stft_scipy",
    "stft_torch",
    "temperature_numpy",
    "temperature_torch",
    "top_k_numpy",
    "top_k_torch",
    "top_p_numpy",
    "top_p_torch",
    "torchaudio_resample",
    "torchaudio_spectral",
    "unpack_delay_numpy",
    "unpack_delay_torch",
    "voice_like",
]
